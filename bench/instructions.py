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

Exit status 0 unless a run fails; --max-ratio R exits 1 when head/base > R.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_LOG = os.path.join(
    tempfile.gettempdir(), "osq-dbwatch-bench", "fleet-l1000000-h1000-s20261102-i100-w20-a100-v4.log"
)
COLLECTED = re.compile(rb"Collected : (\d+)")


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
    ap.add_argument("--lines", type=int, default=50_000, help="lines from the start of the log (default 50,000)")
    ap.add_argument("--log", default=DEFAULT_LOG, help="results log (default: the 1M-line bench log)")
    ap.add_argument("--config", default=os.path.join(HERE, "config.yml"), help="policy (default bench/config.yml)")
    ap.add_argument("--max-ratio", type=float, help="exit 1 when head/base instructions exceed this")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        sys.exit("instructions: valgrind is not installed (apt-get install valgrind)")
    if not os.path.isfile(args.log):
        sys.exit(f"instructions: no log at {args.log} (bench/gen_log.py or bench/bench_correlate.py makes it)")
    with tempfile.TemporaryDirectory(prefix="osq-instr-") as work:
        lines, empty = os.path.join(work, "lines.log"), os.path.join(work, "empty.log")
        with open(args.log, "rb") as src, open(lines, "wb") as dst:
            for n, line in enumerate(src):
                if n >= args.lines:
                    break
                dst.write(line)
        open(empty, "wb").close()
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
