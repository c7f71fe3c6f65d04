"""Callgrind instruction counts of `osq-dbwatch correlate`: one tree against another, in one run.

Timings on a shared 2-core machine move by 5% or more from run to run; the
number of instructions executed does not. This counts them with valgrind's
callgrind over the first --lines lines (default 50,000) of the generated
1M-line bench log, minus the same command on an empty log (interpreter and
package start-up), for a base and a head tree, and prints both and the ratio.

    .venv/bin/python bench/instructions.py --base 9afeea0              # pure Python, this tree vs a rev
    .venv/bin/python bench/instructions.py --base /work/main --compiled # both trees' built .so files

A tree is a directory (a checkout) or a git revision of this repository
(exported with `git archive` into a temporary directory; pure Python only,
since a bare export has no compiled modules). Without --compiled each tree's
`src/` is copied without its `.so` files, so the interpreted code runs; with
--compiled each tree's `src/` runs as it is (build it first: `make setup`).
Both run under this interpreter (use the venv's, it has msgspec) with
PYTHONPATH=<tree>/src, which comes before the editable install's path. Every
run starts from an empty state file (older revisions have no `--state none`).
Each command runs once outside valgrind first, so `.pyc` files are warm.

--cpu N measures time instead: CPU seconds (user+sys) of the whole process, each tree N times over the
whole log (or --lines), the two trees alternating and the order swapped every round (base, head; head, base;
...), so drift of the machine's load falls on both; it prints every run, each tree's minimum and median, and
how many rounds head was the faster. Start-up (the empty log, minimum of N) is measured the same way and
printed apart. It takes the bench lock (/tmp/osq-dbwatch-bench.lock) for the whole sitting, so no other
timing overlaps it on the shared cores.

    .venv/bin/python bench/instructions.py --base 9afeea0 --cpu 5        # pure Python, whole 1M log

Exit status 0 unless a run fails; --max-ratio R exits 1 when head/base > R (with --cpu: of the minima).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_LOG = os.path.join(
    tempfile.gettempdir(), "osq-dbwatch-bench", "fleet-l1000000-h1000-s20261102-i100-w20-a100-v4.log"
)
COLLECTED = re.compile(rb"Collected : (\d+)")
BENCH_LOCK = "/tmp/osq-dbwatch-bench.lock"  # every timing on the shared machine runs under it (one at a time)


@dataclass(frozen=True)
class Count:
    """Instructions of one tree: the run over the lines, the empty run, and their difference."""

    label: str
    full: int
    empty: int

    @property
    def net(self) -> int:
        return self.full - self.empty


def export_tree(spec: str, compiled: bool, work: str, name: str) -> tuple[str, str]:
    """A `src/` directory to put on PYTHONPATH for `spec` (a directory or a git rev), and its label."""
    if os.path.isdir(spec):
        src = os.path.join(os.path.abspath(spec), "src")
        if not os.path.isdir(src):
            sys.exit(f"instructions: {spec} has no src/ directory")
        label = os.path.abspath(spec)
        if compiled:
            if not any(f.endswith(".so") for _, _, fs in os.walk(src) for f in fs):
                sys.exit(f"instructions: {spec} has no compiled modules (run `make setup` there)")
            return src, label + " (compiled)"
        dest = os.path.join(work, name, "src")
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.egg-info"))
        return dest, label + " (pure Python)"
    if compiled:
        sys.exit(f"instructions: --compiled needs built directories; {spec} is not a directory")
    rev = subprocess.run(
        ["git", "-C", REPO, "rev-parse", "--verify", "--short", spec + "^{commit}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if rev.returncode != 0:
        sys.exit(f"instructions: {spec} is neither a directory nor a git revision")
    dest = os.path.join(work, name)
    os.makedirs(dest)
    archive = subprocess.Popen(["git", "-C", REPO, "archive", rev.stdout.strip(), "src"], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", dest], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        sys.exit(f"instructions: git archive {spec} failed")
    return os.path.join(dest, "src"), f"{spec} ({rev.stdout.strip()}, pure Python)"


def command(src: str, config: str, log: str, work: str) -> tuple[list[str], dict[str, str], str]:
    state = os.path.join(work, "state")
    output = os.path.join(work, "findings")
    env = dict(os.environ, PYTHONPATH=src, PYTHONHASHSEED="0")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # .pyc files warm after the first run
    argv = [sys.executable, "-m", "osq_dbwatch", "correlate", "--config", config,
            "--state", state, "--output", output, log]  # fmt: skip
    return argv, env, state


def run(src: str, config: str, log: str, work: str, valgrind: bool) -> int:
    """Run the correlator once from an empty state; the instructions counted (0 without valgrind)."""
    argv, env, state = command(src, config, log, work)
    for path in (state, os.path.join(work, "findings")):
        if os.path.exists(path):
            os.unlink(path)
    if valgrind:
        argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv]
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if done.returncode not in (0, 1):  # 1: findings were written
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        sys.exit(f"instructions: {' '.join(argv[-8:])} exited {done.returncode}: {' | '.join(tail)}")
    if not valgrind:
        return 0
    found = COLLECTED.search(done.stderr)
    if found is None:
        sys.exit("instructions: no 'Collected' line in valgrind's output")
    return int(found.group(1))


def cpu_seconds(src: str, config: str, log: str, work: str) -> float:
    """CPU seconds (user+sys) of one correlator run from an empty state."""
    argv, env, state = command(src, config, log, work)
    for path in (state, os.path.join(work, "findings")):
        if os.path.exists(path):
            os.unlink(path)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        sys.exit(f"instructions: {' '.join(argv[-8:])} exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime


def alternate(trees: list[tuple[str, str]], config: str, log: str, empty: str, work: str,
              rounds: int) -> list[list[float]]:
    """CPU seconds of each tree's runs over `log`, alternating, the order swapped every round; warm first."""
    works = [os.path.join(work, f"cpu-{i}") for i in range(len(trees))]
    for (src, _), w in zip(trees, works):
        os.makedirs(w, exist_ok=True)
        run(src, config, empty, w, valgrind=False)  # .pyc files warm
    times: list[list[float]] = [[] for _ in trees]
    for r in range(rounds):
        order = list(range(len(trees)))
        if r % 2:
            order.reverse()
        for i in order:
            times[i].append(cpu_seconds(trees[i][0], config, log, works[i]))
        print(f"  round {r + 1}: " + ", ".join(f"{trees[i][1].split(' ')[0]} {times[i][-1]:.2f} s" for i in order),
              flush=True)
    return times


def cpu_main(args: argparse.Namespace, work: str, log: str, empty: str) -> int:
    trees = [export_tree(spec, args.compiled, work, name) for name, spec in (("base", args.base), ("head", args.head))]
    with open(BENCH_LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"instructions: waiting for {BENCH_LOCK} (another timing runs)", file=sys.stderr, flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        print(f"CPU seconds (user+sys) of {os.path.basename(args.log)}"
              f"{'' if args.lines is None else f', first {args.lines:,} lines'}, {args.cpu} rounds alternating, "
              f"load {os.getloadavg()[0]:.1f} at the start ({time.strftime('%H:%M UTC', time.gmtime())}):")
        times = alternate(trees, args.config, log, empty, work, args.cpu)
        starts = alternate(trees, args.config, empty, empty, work, args.cpu)
    for (_, label), runs, start in zip(trees, times, starts):
        print(f"  {label}: min {min(runs):.2f} s, median {statistics.median(runs):.2f} s, "
              f"start-up (empty log) min {min(start):.2f} s")
    base, head = times
    ratio = min(head) / min(base)
    faster = sum(1 for b, h in zip(base, head) if h < b)
    print(f"head/base of the minima: {ratio:.4f} ({(ratio - 1) * 100:+.1f}%); head faster in {faster} of {args.cpu} rounds")
    return 1 if args.max_ratio is not None and ratio > args.max_ratio else 0


def measure(label: str, src: str, config: str, lines: str, empty: str, work: str) -> Count:
    os.makedirs(work, exist_ok=True)
    run(src, config, lines, work, valgrind=False)  # warm the .pyc files
    run(src, config, empty, work, valgrind=False)
    return Count(label, run(src, config, lines, work, True), run(src, config, empty, work, True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="directory or git revision to compare against")
    ap.add_argument("--head", default=REPO, help="directory or git revision (default: this tree)")
    ap.add_argument("--compiled", action="store_true", help="run the trees' compiled modules as built")
    ap.add_argument("--lines", type=int, help="lines from the start of the log (default 50,000; --cpu: all)")
    ap.add_argument("--log", default=DEFAULT_LOG, help="results log (default: the 1M-line bench log)")
    ap.add_argument("--config", default=os.path.join(HERE, "config.yml"), help="policy (default bench/config.yml)")
    ap.add_argument("--max-ratio", type=float, help="exit 1 when head/base instructions exceed this")
    ap.add_argument("--cpu", type=int, metavar="N", help="CPU seconds instead, N rounds alternating (see above)")
    args = ap.parse_args(argv)
    if args.cpu is not None and args.cpu < 1:
        sys.exit("instructions: --cpu needs at least one round")
    if args.cpu is None and args.lines is None:
        args.lines = 50_000
    if args.cpu is None and shutil.which("valgrind") is None:
        sys.exit("instructions: valgrind is not installed (apt-get install valgrind)")
    if not os.path.isfile(args.log):
        sys.exit(f"instructions: no log at {args.log} (bench/gen_log.py or bench/bench_correlate.py makes it)")
    with tempfile.TemporaryDirectory(prefix="osq-instr-") as work:
        lines, empty = os.path.join(work, "lines.log"), os.path.join(work, "empty.log")
        if args.lines is None:
            lines = args.log
        else:
            with open(args.log, "rb") as src, open(lines, "wb") as dst:
                for n, line in enumerate(src):
                    if n >= args.lines:
                        break
                    dst.write(line)
        open(empty, "wb").close()
        if args.cpu is not None:
            return cpu_main(args, work, lines, empty)
        counts = []
        for name, spec in (("base", args.base), ("head", args.head)):
            src_dir, label = export_tree(spec, args.compiled, work, name)
            counts.append(measure(label, src_dir, args.config, lines, empty, os.path.join(work, name + "-run")))
    base, head = counts
    print(f"callgrind instructions over the first {args.lines:,} lines of {os.path.basename(args.log)}, "
          "start-up (empty log) subtracted:")  # fmt: skip
    for c in counts:
        print(f"  {c.label}: {c.net / 1e6:,.0f}M  (run {c.full / 1e6:,.0f}M, start-up {c.empty / 1e6:,.0f}M)")
    ratio = head.net / base.net
    print(f"head/base: {ratio:.4f} ({(ratio - 1) * 100:+.1f}%)")
    return 1 if args.max_ratio is not None and ratio > args.max_ratio else 0


if __name__ == "__main__":
    sys.exit(main())
