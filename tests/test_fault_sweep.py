"""The fault sweep of issue 11: the correlator under the faults its users' worst days bring.

One table of cases (CASES): rotation (plain, twice, compressed), copytruncate, both under
--follow, symlinks, locks, FIFO, /dev/zero, gzip, a full disk, a damaged state, SIGKILL. Each case runs the real command in child processes and returns
an Outcome: lines fed, lines lost (a fed line whose finding never came), findings written
twice, whether it survived (exit status, one clear line on stderr, no traceback, nothing
outside its files touched), and the peak resident memory of its children. Every line fed is
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
from test_correlate_cli import CONFIG, _accesses

PY = [sys.executable, "-m", "osq_dbwatch", "correlate", "--config", CONFIG]


@dataclass
class Outcome:
    fed: int = 0  # lines fed that each give one finding
    lost: int = 0
    twice: int = 0  # findings written more than once
    survived: bool = True
    detail: str = ""
    peak_rss_kb: int = 0


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

    def start(self, args: list[str], stdin: bytes | None = None, preexec: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
        out = tempfile.TemporaryFile(dir=self.dir)
        err = tempfile.TemporaryFile(dir=self.dir)
        child = subprocess.Popen([*PY, *args], stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                 stdout=out, stderr=err, preexec_fn=preexec)
        child._sweep_files = (out, err)  # type: ignore[attr-defined]
        if stdin is not None:
            assert child.stdin is not None
            child.stdin.write(stdin)
            child.stdin.close()
        return child

    def finish(self, child: subprocess.Popen[bytes], timeout: float = 60) -> Child:
        """Reap the child with wait4 (for its peak memory)."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                child.kill()
                pid, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.02)
        child.returncode = os.waitstatus_to_exitcode(status)
        self.peak_rss_kb = max(self.peak_rss_kb, usage.ru_maxrss)
        out, err = child._sweep_files  # type: ignore[attr-defined]
        out.seek(0)
        err.seek(0)
        result = Child(child.returncode, out.read(), err.read())
        out.close()
        err.close()
        return result

    def run(self, args: list[str], stdin: bytes | None = None, preexec: Callable[[], None] | None = None,
            timeout: float = 60) -> Child:
        return self.finish(self.start(args, stdin, preexec), timeout)

    def stop(self, child: subprocess.Popen[bytes]) -> Child:
        child.send_signal(signal.SIGTERM)
        return self.finish(child, 30)

    def wait_for(self, out: Path, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(hosts(out)) < count:
            time.sleep(0.05)


def hosts(path: Path) -> list[str]:
    if not path.exists():
        return []
    with open(path) as handle:
        return [json.loads(line)["device"]["hostname"] for line in handle if line.strip()]


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


# name -> case. The lead adds the YAML alias bomb, the planted-secret sweep and the distinct-user
# flood here from their branches.
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
        "faults_survived": sum(1 for o in RESULTS.values() if o.survived and not o.lost and not o.twice),
        "lines_fed": sum(o.fed for o in RESULTS.values()),
        "lines_lost": sum(o.lost for o in RESULTS.values()),
        "findings_twice": sum(o.twice for o in RESULTS.values()),
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
    assert (outcome.lost, outcome.twice) == (0, 0), outcome
