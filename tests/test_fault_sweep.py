"""The fault sweep of issue 11: the correlator under the faults its users' worst days bring.

One table of cases (CASES): rotation (plain, twice, compressed), copytruncate, both under
--follow, symlinks, locks, FIFO, /dev/zero, gzip, a full disk, a damaged state, SIGKILL, the
YAML alias bomb (correlator and extension) and planted secrets. Each case runs the real
command in child processes and returns
an Outcome: lines fed, lines lost (a fed line whose finding never came), findings written
twice, planted secrets found in any output, whether it survived (exit status, one clear line
on stderr, no traceback, nothing outside its files touched), and the peak resident memory of
its children (the extension's included). Every line fed is
an access on a host of its own, so each line gives exactly one finding: lost lines are
counted from the findings.

The figures of the whole sweep are printed at the end of the module (and written as JSON to
$OSQ_DBWATCH_SWEEP_REPORT when set), for the issue's closing note.

To add a fault: write `def _case_x(w: Work) -> Outcome` and add one row to CASES.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from core_standin import CoreStandin
from secrets_sweep import (
    PLANTED_SECRETS,
    SECRET_CMDLINES,
    SECRET_FORMS,
    leaked,
    plant_homes,
    planted_db_client_pids,
    planted_history_rows,
    start_planted_clients,
    stop_clients,
    write_accounts_shim,
    write_planted_log,
)
from test_config_hostile import window_bomb
from test_correlate_cli import CONFIG, _accesses

from osq_dbwatch.cmdline import redact_cmdline, redact_text
from osq_dbwatch.config import MAX_ALIAS_VALUES, ConfigError, load_config

PY = [sys.executable, "-m", "osq_dbwatch", "correlate", "--config", CONFIG]


@dataclass
class Outcome:
    fed: int = 0  # lines fed that each give one finding
    lost: int = 0
    twice: int = 0  # findings written more than once
    survived: bool = True
    detail: str = ""
    peak_rss_kb: int = 0
    leaked: int = 0  # distinct planted secrets found in any output


@dataclass
class Child:
    code: int
    out: bytes
    err: bytes


@dataclass
class Work:
    """A case's directory and helpers; records the peak memory of the children it runs."""

    dir: Path
    peak_rss_kb: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self, count: int, start: int) -> list[str]:
        return _accesses(count, start=start, prefix="sw")

    def append(self, path: Path | str, count: int, start: int) -> None:
        with open(path, "a") as handle:
            handle.write("".join(line + "\n" for line in self.lines(count, start)))

    def start(self, args: list[str], stdin: bytes | None = None, preexec: Callable[[], None] | None = None,
              base: list[str] = PY) -> subprocess.Popen[bytes]:
        out = tempfile.TemporaryFile(dir=self.dir)
        err = tempfile.TemporaryFile(dir=self.dir)
        child = subprocess.Popen([*base, *args], stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                 stdout=out, stderr=err, preexec_fn=preexec)
        child._sweep_files = (out, err)  # type: ignore[attr-defined]
        if stdin is not None:
            assert child.stdin is not None
            child.stdin.write(stdin)
            child.stdin.close()
        return child

    def finish(self, child: subprocess.Popen[bytes], timeout: float = 60) -> Child:
        """Reap the child, sampling its peak memory (VmHWM) until it exits.

        Not wait4's ru_maxrss: the kernel records the high-water mark of the memory a child
        replaces at exec, and a child forked from pytest starts out as pytest (348 MB late
        in a full run). VmHWM belongs to the program's own memory since its exec; sampled
        every 20 ms, so at most the last 20 ms of a child's life go unseen."""
        deadline = time.monotonic() + timeout
        while True:
            self.peak_rss_kb = max(self.peak_rss_kb, _peak_since_exec_kb(child))
            pid, status, _ = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                child.kill()
                pid, status, _ = os.wait4(child.pid, 0)
                break
            time.sleep(0.02)
        child.returncode = os.waitstatus_to_exitcode(status)
        out, err = child._sweep_files  # type: ignore[attr-defined]
        out.seek(0)
        err.seek(0)
        result = Child(child.returncode, out.read(), err.read())
        out.close()
        err.close()
        return result

    def run(self, args: list[str], stdin: bytes | None = None, preexec: Callable[[], None] | None = None,
            timeout: float = 60, base: list[str] = PY) -> Child:
        return self.finish(self.start(args, stdin, preexec, base), timeout)

    def stop(self, child: subprocess.Popen[bytes]) -> Child:
        child.send_signal(signal.SIGTERM)
        return self.finish(child, 30)

    def wait_for(self, out: Path, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(hosts(out)) < count:
            time.sleep(0.05)


def _peak_since_exec_kb(child: subprocess.Popen[bytes]) -> int:
    """The child's VmHWM once it runs its own program (before its exec it is a copy of pytest)."""
    args = [os.fsencode(a) for a in child.args]  # type: ignore[union-attr]
    try:
        with open(f"/proc/{child.pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")[:-1]
        # a script's argv gains its interpreter in front: compare what follows the program
        if argv[-(len(args) - 1):] != args[1:] if len(args) > 1 else argv[:1] != args[:1]:
            return 0
        with open(f"/proc/{child.pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass  # gone, or a zombie without memory
    return 0


def hosts(path: Path) -> list[str]:
    if not path.exists():
        return []
    with open(path) as handle:
        # a line without its newline is still being written by a running child (wait_for polls)
        return [json.loads(line)["device"]["hostname"] for line in handle if line.strip() and line.endswith("\n")]


def judge(fed: list[int], found: list[str]) -> tuple[int, int]:
    """(lines lost, findings twice) of the line numbers fed against the findings' hosts."""
    want = {f"sw-{i}" for i in fed}
    return len(want - set(found)), len(found) - len(set(found))


def clean_error(child: Child, expect: str) -> bool:
    lines = child.err.decode(errors="replace").splitlines()
    return child.code == 2 and len(lines) == 1 and expect in lines[0] and b"Traceback" not in child.err


def clean_run(child: Child) -> bool:
    return child.code == 0 and b"Traceback" not in child.err


def _outcome(w: Work, fed: list[int], out: Path, survived: bool, detail: str = "") -> Outcome:
    lost, twice = judge(fed, hosts(out))
    return Outcome(len(fed), lost, twice, survived, detail)


# -- the cases ------------------------------------------------------------------------------


def _case_rotation(w: Work) -> Outcome:
    """Renamed away (logrotate's default) between two runs; the new file starts with the same first line."""
    log, out, state = w.dir / "live.log", w.dir / "out", w.dir / "s"
    args = ["--state", str(state), "--output", str(out), str(log)]
    w.append(log, 100, 0)
    ok = clean_run(w.run(args))
    w.append(log, 20, 100)
    os.rename(log, str(log) + ".1")
    with open(log, "w") as handle:
        handle.write(w.lines(1, 0)[0] + "\n")
    w.append(log, 200, 200)
    ok &= clean_run(w.run(args))
    return _outcome(w, [*range(120), *range(200, 400)], out, ok)


def _case_double_rotation(w: Work) -> Outcome:
    """Two rotations between runs: a generation no run saw at the path."""
    log, out, state = w.dir / "live.log", w.dir / "out", w.dir / "s"
    args = ["--state", str(state), "--output", str(out), str(log)]
    w.append(log, 50, 0)
    ok = clean_run(w.run(args))
    w.append(log, 10, 50)
    os.rename(log, f"{log}.1")
    w.append(log, 60, 100)
    os.rename(f"{log}.1", f"{log}.2")
    os.rename(log, f"{log}.1")
    w.append(log, 40, 200)
    ok &= clean_run(w.run(args))
    return _outcome(w, [*range(60), *range(100, 160), *range(200, 240)], out, ok)


def _case_follow_double_rotation(w: Work) -> Outcome:
    """--follow: two rotations within one second (ROTATE_GRACE)."""
    log, out = w.dir / "live.log", w.dir / "out"
    w.append(log, 30, 0)
    child = w.start(["--follow", "--state", str(w.dir / "s"), "--output", str(out), str(log)])
    w.wait_for(out, 30)
    os.rename(log, f"{log}.1")
    w.append(log, 30, 100)
    time.sleep(0.5)
    os.rename(log, f"{log}.2")
    w.append(log, 30, 200)
    w.wait_for(out, 90)
    time.sleep(0.2)
    ok = clean_run(w.stop(child))
    return _outcome(w, [*range(30), *range(100, 130), *range(200, 230)], out, ok)


def _case_rotation_compressed(w: Work) -> Outcome:
    """Rotated and compressed at once (logrotate's compress without delaycompress) between two runs."""
    log, out, state = w.dir / "live.log", w.dir / "out", w.dir / "s"
    args = ["--state", str(state), "--output", str(out), str(log)]
    w.append(log, 100, 0)
    ok = clean_run(w.run(args))
    w.append(log, 25, 100)
    with open(log, "rb") as src, gzip.open(f"{log}.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.unlink(log)
    w.append(log, 100, 200)
    ok &= clean_run(w.run(args))
    return _outcome(w, [*range(125), *range(200, 300)], out, ok)


def _case_copytruncate(w: Work) -> Outcome:
    """logrotate's copytruncate between two runs; the new content outgrows the old offset."""
    log, out, state = w.dir / "live.log", w.dir / "out", w.dir / "s"
    args = ["--state", str(state), "--output", str(out), str(log)]
    w.append(log, 100, 0)
    ok = clean_run(w.run(args))
    w.append(log, 30, 100)
    shutil.copyfile(log, f"{log}.1")
    os.truncate(log, 0)
    w.append(log, 300, 200)
    ok &= clean_run(w.run(args))
    return _outcome(w, [*range(130), *range(200, 500)], out, ok)


def _case_follow_copytruncate(w: Work) -> Outcome:
    """--follow: lines written just before a copytruncate are only in the copy."""
    log, out = w.dir / "live.log", w.dir / "out"
    w.append(log, 30, 0)
    child = w.start(["--follow", "--state", str(w.dir / "s"), "--output", str(out), str(log)])
    w.wait_for(out, 30)
    w.append(log, 20, 100)
    shutil.copyfile(log, f"{log}.1")
    os.truncate(log, 0)
    w.append(log, 30, 200)
    w.wait_for(out, 80)
    time.sleep(0.2)
    ok = clean_run(w.stop(child))
    return _outcome(w, [*range(30), *range(100, 120), *range(200, 230)], out, ok)


def _case_symlinks(w: Work) -> Outcome:
    """Symlinks planted at --output, --state and the state's -wal: refused, their targets untouched."""
    log = w.dir / "a.log"
    w.append(log, 10, 0)
    victim = w.dir / "victim"
    victim.write_text("keep\n")
    ok = True
    for planted, args in ((w.dir / "o", ["--state", str(w.dir / "s1"), "--output", str(w.dir / "o")]),
                          (w.dir / "s2", ["--state", str(w.dir / "s2")]),
                          (w.dir / "s3-wal", ["--state", str(w.dir / "s3")])):
        planted.symlink_to(victim)
        ok &= clean_error(w.run([*args, str(log)]), "symbolic link")
    ok &= victim.read_text() == "keep\n"
    out = w.dir / "good"
    ok &= clean_run(w.run(["--state", str(w.dir / "s4"), "--output", str(out), str(log)]))
    return _outcome(w, list(range(10)), out, ok)


def _case_lock(w: Work) -> Outcome:
    """A second correlator on a held state fails naming the holder; --wait waits; each finding once."""
    log, out, state = w.dir / "a.log", w.dir / "out", w.dir / "s"
    w.append(log, 50, 0)
    holder = w.start(["--follow", "--state", str(state), "--output", str(out), str(log)])
    w.wait_for(out, 50)
    ok = clean_error(w.run(["--state", str(state), "--output", str(out), str(log)]), f"in use by process {holder.pid}")
    waiter = w.start(["--wait", "--state", str(state), "--output", str(out), str(log)])
    w.append(log, 50, 100)
    w.wait_for(out, 100)
    ok &= clean_run(w.stop(holder))
    ok &= clean_run(w.finish(waiter))
    return _outcome(w, [*range(50), *range(100, 150)], out, ok)


def _case_fifo(w: Work) -> Outcome:
    """A FIFO as LOG: read as a stream."""
    fifo, out = w.dir / "pipe", w.dir / "out"
    os.mkfifo(fifo)
    child = w.start(["--state", str(w.dir / "s"), "--output", str(out), str(fifo)])
    with open(fifo, "w") as writer:
        writer.write("".join(line + "\n" for line in w.lines(100, 0)))
    done = w.finish(child)
    return _outcome(w, list(range(100)), out, clean_run(done) and b"read as a stream" in done.err)


def _case_dev_zero(w: Work) -> Outcome:
    """/dev/zero as LOG: refused at once, not read forever."""
    started = time.monotonic()
    child = w.run(["--state", str(w.dir / "s"), "/dev/zero"], timeout=20)
    took = time.monotonic() - started
    return Outcome(0, 0, 0, clean_error(child, "character device") and took < 15, f"{took:.1f}s")


def _case_gzip(w: Work) -> Outcome:
    """A gzip-compressed rotated log: read decompressed, and not twice."""
    packed, out = w.dir / "live.log.2.gz", w.dir / "out"
    with gzip.open(packed, "wt") as handle:
        handle.write("".join(line + "\n" for line in w.lines(100, 0)))
    args = ["--state", str(w.dir / "s"), "--output", str(out), str(packed)]
    ok = clean_run(w.run(args)) and clean_run(w.run(args))
    return _outcome(w, list(range(100)), out, ok)


def _fsize(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit writes fail (EFBIG), as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def _case_full_disk(w: Work) -> Outcome:
    """The file system fills up mid-run (a small RLIMIT_FSIZE): one line; the next run loses nothing."""
    log, out = w.dir / "a.log", w.dir / "out"
    w.append(log, 400, 0)
    args = ["--state", str(w.dir / "s"), "--output", str(out), str(log)]
    full = w.run(args, preexec=_fsize(200_000))
    lines = full.err.decode(errors="replace").splitlines()
    ok = full.code == 2 and len(lines) == 1 and b"Traceback" not in full.err
    ok &= clean_run(w.run(args))
    return _outcome(w, list(range(400)), out, ok, lines[0][:120] if lines else "")


def _case_damaged_state(w: Work) -> Outcome:
    """Damaged state rows: refused with one line, nothing emitted again; --reset starts afresh."""
    log, out = w.dir / "a.log", w.dir / "out"
    w.append(log, 20, 0)
    ok = True
    for n, damage in enumerate(("UPDATE positions SET offset = -1", "UPDATE meta SET value = 'x' WHERE key = 'watermark'",
                                "UPDATE hosts SET state = '{\"host\": ' WHERE rowid = 1")):
        state = w.dir / f"s{n}"
        ok &= clean_run(w.run(["--state", str(state), "--output", str(out) if n == 0 else str(w.dir / f"o{n}"), str(log)]))
        db = sqlite3.connect(state, isolation_level=None)
        db.execute(damage)
        db.close()
        again = w.run(["--state", str(state), "-"], stdin=log.read_bytes())
        ok &= clean_error(again, "damaged state") and again.out == b""
    return _outcome(w, list(range(20)), out, ok)


def _case_sigkill(w: Work) -> Outcome:
    """SIGKILL mid-run, then a restart: every finding once."""
    log, out = w.dir / "a.log", w.dir / "out"
    w.append(log, 2000, 0)
    args = ["--state", str(w.dir / "s"), "--output", str(out), str(log)]
    os.environ["OSQ_DBWATCH_BATCH_LINES"] = "100"
    try:
        child = w.start(args)
        w.wait_for(out, 300, timeout=30)
        child.send_signal(signal.SIGKILL)
        w.finish(child)
        ok = clean_run(w.run(args))
    finally:
        del os.environ["OSQ_DBWATCH_BATCH_LINES"]
    return _outcome(w, list(range(2000)), out, ok)


# -- hostile config and planted secrets (s5-harden) ------------------------------------------


def _extension_peak_kb(core: CoreStandin) -> int:
    assert core.proc is not None
    with open(f"/proc/{core.proc.pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _at_alias_line(message: str, bomb: Path) -> bool:
    """The message names the bomb's file and the line of the first alias past the bound (the bomb's
    aliases start on line 5), and says it is the aliases (the file name is no evidence of that)."""
    _, sep, rest = message.partition(f"{bomb}: line ")
    number, _, reason = rest.partition(":")
    return bool(sep) and number.isdigit() and 5 < int(number) <= 5 + MAX_ALIAS_VALUES and "alias" in reason


def _case_alias_bomb_correlator(w: Work) -> Outcome:
    """Issue 11's alias bomb (550 KB, 40,000 aliases of one window) as --config: rejected at its
    line within a second (parse timed in-process; the child's wall includes start-up), bounded
    memory (it took 4 GB), one line; the same log then runs clean with a valid config."""
    bomb = window_bomb(w.dir / "bomb.yml")
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_config(str(bomb))
    parse_s = time.monotonic() - started
    ok = parse_s < 1.0 and _at_alias_line(str(info.value), bomb)
    log, out = w.dir / "a.log", w.dir / "out"
    w.append(log, 30, 0)
    started = time.monotonic()
    child = w.run(["--config", str(bomb), "--state", str(w.dir / "s"), "--output", str(out), str(log)])
    wall = time.monotonic() - started
    ok &= clean_error(child, f"{bomb}: line ") and _at_alias_line(child.err.decode(), bomb) and wall < 10
    ok &= not out.exists()
    ok &= w.peak_rss_kb < 200 * 1024
    ok &= clean_run(w.run(["--state", str(w.dir / "s"), "--output", str(out), str(log)]))
    return _outcome(w, list(range(30)), out, ok, f"parse {parse_s:.2f}s, child {wall:.1f}s")


def _case_alias_bomb_extension(w: Work) -> Outcome:
    """The bomb as the extension's config: it registers, serves with defaults and says so in
    dbwatch_coverage (config_readable blind, file:line, alias). The rejection itself is the parse
    the correlator case times; here the first answer must come well inside osquery's ~10 s
    patience (0.5 s alone, 5 s allowed for a loaded machine)."""
    bomb = window_bomb(w.dir / "bomb.yml")
    env = {"OSQ_DBWATCH_PYTHON": sys.executable, "OSQ_DBWATCH_CONFIG": str(bomb)}
    with CoreStandin(env=env, call_timeout=30) as core:
        started = time.monotonic()
        coverage = {r["check_name"]: r for r in core.generate("dbwatch_coverage")}
        answered = time.monotonic() - started
        sessions = core.generate_raw("db_cli_sessions")
        history = core.generate_raw("db_client_history")
        assert core.proc is not None
        alive = core.proc.poll() is None and core.ping().code == 0
        w.peak_rss_kb = max(w.peak_rss_kb, _extension_peak_kb(core))
        err = core.stderr_text()
    row = coverage.get("config_readable", {})
    detail = row.get("detail", "")
    ok = (alive and answered < 5.0 and sessions.status.code == 0 and history.status.code == 0
          and row.get("status") == "blind" and _at_alias_line(detail, bomb) and "using defaults" in detail and "Traceback" not in err and w.peak_rss_kb < 100 * 1024)
    return Outcome(0, 0, 0, ok, f"coverage answered in {answered:.2f}s")


def _sweep(outputs: dict[str, bytes]) -> tuple[set[str], list[str]]:
    """(the distinct planted secrets found, the outputs they were found in with their forms)."""
    found_all: set[str] = set()
    where: list[str] = []
    for name, data in outputs.items():
        found = leaked(data)
        if found:
            found_all.update(found)
            where.append(f"{name}: {', '.join(k for k, v in PLANTED_SECRETS.items() if v in found)}")
    return found_all, where


def _case_planted_secrets(w: Work) -> Outcome:
    """Every planted form through every output: correlate's OCSF and ECS findings, stdout,
    stderr and state database (with -wal, -shm); the HTML and --text reports; `osq-dbwatch
    tables --json`; and the extension's tables over Thrift, with its stderr. The inputs must
    reach each output (every form in a finding; the planted clients and history files in the
    tables), so an empty output cannot pass."""
    log = w.dir / "planted.log"
    write_planted_log(log)
    passwd, group = plant_homes(w.dir)
    shim = write_accounts_shim(w.dir / "osq-dbwatch-planted", passwd, group)
    small = w.dir / "tables.yml"  # dump_like_files scans this case's directory, not the machine's /tmp
    small.write_text(f"dump_roots: [{w.dir}]\n")
    config = ["--config", os.path.join(os.path.dirname(__file__), "correlate_scenarios", "config.yml")]
    report = [sys.executable, "-m", "osq_dbwatch", "report"]
    outputs: dict[str, bytes] = {}
    ok = True
    clients = start_planted_clients(w.dir / "bin")
    try:
        # Independent children run side by side: the case's wall time is the sweep's largest.
        tables = w.start(["tables", "--json", "--config", str(small)], base=[shim])
        correlators = {fmt: w.start([*config, "--format", fmt, "--state", str(w.dir / f"{fmt}.state"),
                                     "--output", str(w.dir / f"{fmt}.jsonl"), str(log)]) for fmt in ("ocsf", "ecs")}
        for fmt, running in correlators.items():
            child = w.finish(running)
            ok &= clean_run(child)
            out, state = w.dir / f"{fmt}.jsonl", w.dir / f"{fmt}.state"
            text = out.read_text() if out.exists() else ""
            for form, line in SECRET_FORMS.items():  # each form reached a finding, redacted
                shown = redact_cmdline(line) if form in SECRET_CMDLINES else redact_text(line)
                ok &= json.dumps(shown)[1:-1] in text
            outputs.update({f"correlate {fmt} findings": text.encode(), f"correlate {fmt} stdout": child.out,
                            f"correlate {fmt} stderr": child.err})
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(f"{state}{suffix}"):
                    outputs[f"correlate {fmt} state{suffix}"] = Path(f"{state}{suffix}").read_bytes()
        html = w.dir / "report.html"
        reports = (w.start(["-o", str(html), str(w.dir / "ocsf.jsonl")], base=report),
                   w.start(["--text", str(w.dir / "ocsf.jsonl")], base=report))

        with CoreStandin(ext_argv=[shim], env={"OSQ_DBWATCH_CONFIG": str(small)}, call_timeout=30) as core:
            for table in ("db_cli_sessions", "db_client_history", "dbwatch_coverage", "dump_like_files"):
                rows = core.generate(table)
                outputs[f"extension {table}"] = json.dumps(rows).encode()
                if table == "db_cli_sessions":
                    ok &= planted_db_client_pids(clients) <= {int(r["pid"]) for r in rows}
                if table == "db_client_history":
                    ok &= len(rows) == planted_history_rows()
            w.peak_rss_kb = max(w.peak_rss_kb, _extension_peak_kb(core))
            outputs["extension stderr"] = core.stderr_text().encode()

        child = w.finish(tables)
        ok &= clean_run(child)
        try:
            payload = json.loads(child.out)
        except ValueError:
            payload = {}
        ok &= planted_db_client_pids(clients) <= {int(r["pid"]) for r in payload.get("db_cli_sessions", [])}
        ok &= len(payload.get("db_client_history", [])) == planted_history_rows()
        outputs.update({"tables --json": child.out, "tables stderr": child.err})
        child = w.finish(reports[0])
        ok &= clean_run(child) and html.exists() and b"web-7" in html.read_bytes()
        outputs.update({"report html": html.read_bytes() if html.exists() else b"", "report stderr": child.err})
        child = w.finish(reports[1])
        ok &= clean_run(child) and b"web-7" in child.out and b"pg-10" in child.out
        outputs.update({"report --text": child.out, "report --text stderr": child.err})
    finally:
        stop_clients(clients)
    found, where = _sweep(outputs)
    return Outcome(0, 0, 0, ok, f"{len(outputs)} outputs swept, {len(PLANTED_SECRETS)} secrets planted"
                   + (f"; leaked in {len(where)} outputs: {'; '.join(where)}" if where else ""), leaked=len(found))


FLOOD_USERS = 20_000
FLOOD_SECONDS = 90.0  # generous: the time bound is a hang detector; flatness is tested in test_host_caps
FLOOD_RSS_MB = 200.0  # generous: about 60 MB


def _case_user_flood(w: Work) -> Outcome:
    """Issue 11 item 8: distinct users on one host, each an unusual access: every finding once, time and
    memory bounded (the per-host caps), the evictions counted in the summary."""
    from test_host_caps import flood_lines

    log, out = w.dir / "flood.log", w.dir / "out"
    log.write_text("\n".join(flood_lines(FLOOD_USERS)) + "\n")
    started = time.monotonic()
    child = w.run(["--state", str(w.dir / "s"), "--output", str(out), str(log)], timeout=2 * FLOOD_SECONDS)
    seconds = time.monotonic() - started
    users = []
    if out.exists():
        with open(out) as handle:
            users = [json.loads(line)["actor"]["user"]["name"] for line in handle if line.strip()]
    want = {f"user{i}" for i in range(FLOOD_USERS)}
    summary = child.err.decode(errors="replace")
    ok = (clean_run(child) and seconds < FLOOD_SECONDS and w.peak_rss_kb < FLOOD_RSS_MB * 1024
          and "pending chains evicted" in summary and "dropped at per-host caps" in summary)
    return Outcome(FLOOD_USERS, len(want - set(users)), len(users) - len(set(users)), ok,
                   f"{seconds:.1f} s, peak RSS {w.peak_rss_kb / 1024:.0f} MB; {summary.strip()[-300:]}")


# name -> case. One row per case: branches add rows without touching each other's.
CASES: dict[str, Callable[[Work], Outcome]] = {
    "rotation": _case_rotation,
    "double rotation": _case_double_rotation,
    "rotation with compress": _case_rotation_compressed,
    "follow: two rotations in one second": _case_follow_double_rotation,
    "copytruncate": _case_copytruncate,
    "follow: copytruncate": _case_follow_copytruncate,
    "symlinks at output and state": _case_symlinks,
    "lock": _case_lock,
    "FIFO": _case_fifo,
    "/dev/zero": _case_dev_zero,
    "gzip": _case_gzip,
    "full disk": _case_full_disk,
    "damaged state": _case_damaged_state,
    "SIGKILL and restart": _case_sigkill,
    "alias bomb: correlator": _case_alias_bomb_correlator,
    "alias bomb: extension": _case_alias_bomb_extension,
    "planted secrets: every output": _case_planted_secrets,
    "distinct-user flood on one host": _case_user_flood,
}

RESULTS: dict[str, Outcome] = {}


@pytest.fixture(scope="module", autouse=True)
def _figures(request: pytest.FixtureRequest):  # noqa: ANN202 - a generator fixture
    started = time.monotonic()
    yield
    if not RESULTS:
        return
    figures = {
        "faults_tried": len(RESULTS),
        "faults_survived": sum(1 for o in RESULTS.values() if o.survived and not o.lost and not o.twice
                               and not o.leaked),
        "lines_fed": sum(o.fed for o in RESULTS.values()),
        "lines_lost": sum(o.lost for o in RESULTS.values()),
        "findings_twice": sum(o.twice for o in RESULTS.values()),
        "secrets_planted": len(PLANTED_SECRETS) if "planted secrets: every output" in RESULTS else 0,
        "secrets_leaked": sum(o.leaked for o in RESULTS.values()),
        "peak_rss_mb": round(max(o.peak_rss_kb for o in RESULTS.values()) / 1024, 1),
        "seconds": round(time.monotonic() - started, 1),
        "cases": {name: asdict(o) for name, o in RESULTS.items()},
    }
    report = os.environ.get("OSQ_DBWATCH_SWEEP_REPORT")
    if report:
        with open(report, "w") as handle:
            json.dump(figures, handle, indent=1, sort_keys=True)
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    line = (f"fault sweep: {figures['faults_survived']}/{figures['faults_tried']} faults survived, "
            f"{figures['lines_lost']} of {figures['lines_fed']} lines lost, {figures['findings_twice']} findings twice, "
            f"{figures['secrets_leaked']} of {figures['secrets_planted']} planted secrets leaked, "
            f"peak RSS {figures['peak_rss_mb']} MB, {figures['seconds']} s")
    if terminal is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # shown without -s
            terminal.write_line("")
            terminal.write_line(line)
    else:
        print(line)


@pytest.mark.parametrize("name", list(CASES))
def test_fault(name: str, tmp_path: Path) -> None:
    w = Work(tmp_path)
    outcome = CASES[name](w)
    outcome.peak_rss_kb = w.peak_rss_kb
    RESULTS[name] = outcome
    assert outcome.survived, outcome
    assert (outcome.lost, outcome.twice, outcome.leaked) == (0, 0, 0), outcome
