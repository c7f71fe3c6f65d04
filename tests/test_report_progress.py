"""Progress on long runs: a status line when standard error is a terminal (a real pty here), silence otherwise."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from typing import Any

import pytest
from conftest import REPO

from osq_dbwatch import progress as P

CONFIG = os.path.join(REPO, "bench", "config.yml")


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("progress") / "fleet.log")
    subprocess.run([sys.executable, os.path.join(REPO, "bench", "gen_log.py"), "--lines", "30000", "--hosts", "30",
                    "--out", path], check=True, capture_output=True, timeout=300)
    return path


def _run(args: list[str], stdout: Any, stderr_tty: bool = True, stdout_tty: bool = False,
         env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    """Run osq-dbwatch with standard error on a new pty (or a pipe); returns (code, what the pty got, stdout)."""
    cmd = [sys.executable, "-m", "osq_dbwatch", *args]
    full_env = {**os.environ, **(env or {})}
    if not stderr_tty:
        proc = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=full_env,
                              timeout=300)
        return proc.returncode, proc.stderr, b""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=slave if stdout_tty else stdout, stderr=slave, stdin=subprocess.DEVNULL,
                            env=full_env)
    os.close(slave)
    got = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the pty
                break
            if not data:
                break
            got += data
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=60), got, b""


def _status_part(screen: bytes) -> bytes:
    """The screen less correlate's closing summary and hint lines, which follow the status line."""
    lines = screen.split(b"\r\n")
    while len(lines) > 1 and lines[-2].startswith(b"osq-dbwatch correlate: "):
        del lines[-2]
    return b"\r\n".join(lines)


def _final(screen: bytes) -> str:
    """The status line as a terminal shows it last (what follows the last carriage return)."""
    text = _status_part(screen).decode()
    assert text.endswith("\r\n"), text[-200:]
    return text[:-2].rsplit("\r", 1)[-1].replace("\x1b[K", "")


def test_correlate_shows_bytes_lines_rate_and_findings_on_a_terminal(log, tmp_path) -> None:
    out = tmp_path / "findings.jsonl"
    with open(out, "wb") as handle:
        code, screen, _ = _run(["correlate", "--config", CONFIG, "--state", str(tmp_path / "s.sqlite"), log], handle,
                               env={"OSQ_DBWATCH_BATCH_LINES": "5000"})
    assert code == 0
    findings = len(out.read_bytes().splitlines())
    with open(log, "rb") as handle:
        lines = sum(1 for _ in handle)
    size = P.human_bytes(os.path.getsize(log))
    assert findings > 0
    assert _final(screen) == f"correlate: 100% of {size}, {lines:,} lines, " + _final(screen).split(", ")[2] + \
        f", {findings:,} findings"
    assert re.fullmatch(r"[\d,]+/s", _final(screen).split(", ")[2])
    # Redrawn in place, never more than one line.
    assert _status_part(screen).count(b"\n") == 1 and screen.count(b"\r") >= 2


def test_correlate_is_quiet_when_stderr_is_not_a_terminal(log, tmp_path) -> None:
    with open(tmp_path / "f.jsonl", "wb") as handle:
        code, err, _ = _run(["correlate", "--config", CONFIG, "--state", str(tmp_path / "s.sqlite"), log], handle,
                            stderr_tty=False)
    # Only the run's one-line summary (always printed), no status line.
    assert code == 0 and err.count(b"\n") == 1 and err.startswith(b"osq-dbwatch correlate: ") and b"\r" not in err


def test_correlate_is_quiet_when_its_output_shares_the_terminal(log, tmp_path) -> None:
    code, screen, _ = _run(["correlate", "--config", CONFIG, "--state", str(tmp_path / "s.sqlite"), log], None,
                           stdout_tty=True)
    assert code == 0
    assert b'"class_uid"' in screen
    assert not any(line.startswith(b"correlate:") or b"\rcorrelate:" in line for line in screen.split(b"\n"))


def test_findings_are_the_same_with_and_without_the_status_line(log, tmp_path) -> None:
    outs = []
    for tty in (True, False):
        path = tmp_path / f"{tty}.jsonl"
        with open(path, "wb") as handle:
            _run(["correlate", "--config", CONFIG, "--state", str(tmp_path / f"{tty}.sqlite"), log], handle,
                 stderr_tty=tty, env={"OSQ_DBWATCH_BATCH_LINES": "7000"})
        outs.append(path.read_bytes())
    assert outs[0] == outs[1] and outs[0]


def test_baseline_and_report_show_progress_too(log, tmp_path) -> None:
    state = str(tmp_path / "s.sqlite")
    findings = tmp_path / "f.jsonl"
    with open(findings, "wb") as handle:
        assert _run(["correlate", "--config", CONFIG, "--state", state, log], handle, stderr_tty=False)[0] == 0
    with open(tmp_path / "baseline.txt", "wb") as handle:
        code, screen, _ = _run(["baseline", "--state", state], handle)
    assert code == 0
    table = (tmp_path / "baseline.txt").read_text().splitlines()
    hosts = sum(1 for line in table if not line.startswith(" "))
    habits = sum(1 for line in table if line.startswith(" "))
    assert re.fullmatch(rf"baseline: {hosts} hosts, [\d,]+/s, {habits:,} habits", _final(screen))
    with open(tmp_path / "r.html", "wb") as handle:
        code, screen, _ = _run(["report", str(findings)], handle)
    assert code == 0
    found = findings.read_text().splitlines()
    chains = len({json.loads(line)["finding_info"]["uid"] for line in found})
    lines = len(found)
    assert re.fullmatch(rf"report: 100% of [\d.]+ kB, {lines} lines, [\d,]+/s, {chains} chains", _final(screen))
    with open(tmp_path / "r2.html", "wb") as handle:
        code, err, _ = _run(["report", str(findings)], handle, stderr_tty=False)
    assert code == 0 and err == b""


# -- the module on its own -------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_quiet_progress_hands_back_what_it_was_given() -> None:
    quiet = P.Progress("x", stream=io.StringIO())
    assert not quiet.active
    items = iter([(1, b"a")])
    assert quiet.lines(items) is items
    batch = object()
    assert quiet.batch(batch) is batch
    quiet.add(5, 10)
    quiet.close()
    assert quiet.stream.getvalue() == ""


def test_redraws_at_most_four_times_a_second(monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr(P.time, "monotonic", lambda: now[0])
    term = _Terminal()
    prog = P.Progress("correlate", stream=term, enabled=True, counter=lambda: 3, total_bytes=2000, check_every=1)
    seen = []
    for item in prog.lines([(n, b"x" * 99) for n in range(1, 11)]):
        seen.append(item)
        now[0] += 0.1
    assert len(seen) == 10
    assert term.getvalue().count("\r") == 3  # at 0.3 s (first item over the interval), 0.6, 0.9 ... of 1.0 s
    prog.close()
    assert term.getvalue().endswith("\rcorrelate: 50% of 2.0 kB, 10 lines, 10/s, 3 findings\x1b[K\n")


def test_counts_lines_a_consumer_stopped_reading() -> None:
    prog = P.Progress("c", stream=_Terminal(), enabled=True)
    lines = prog.lines([b"a", b"bb", b"ccc"])
    for item in lines:
        if item == b"bb":
            break
    del lines  # the generator is closed: what it handed out is counted
    assert (prog.count, prog.bytes) == (2, 5)


def test_status_line_never_wider_than_the_terminal(monkeypatch) -> None:
    term = _Terminal()
    monkeypatch.setattr(P.os, "get_terminal_size", lambda fd: os.terminal_size((30, 24)))
    monkeypatch.setattr(term, "fileno", lambda: 2, raising=False)
    prog = P.Progress("correlate", stream=term, enabled=True, counter=lambda: 123456)
    prog.add(10_000_000, 10**9)
    prog.draw()
    assert term.getvalue() == "\r" + prog.status()[:29] + "\x1b[K"


def test_a_message_meanwhile_clears_the_status_line_and_stands_above_it(monkeypatch) -> None:
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # not the same terminal
    prog = P.Progress("correlate")
    assert prog.active and sys.stderr is not term
    prog.add(10, 100)
    prog.draw()
    print("osq-dbwatch correlate: x.log:3: skipped: not JSON", file=sys.stderr)
    prog.draw()
    prog.close()
    assert sys.stderr is term
    screen = term.getvalue()
    assert screen.startswith("\rcorrelate: 100 B, 10 lines, ")
    assert "\x1b[K\r\x1b[Kosq-dbwatch correlate: x.log:3: skipped: not JSON\n\r" in screen
    assert screen.endswith("\x1b[K\n")


def test_correlate_bad_line_messages_and_the_status_line_share_a_terminal(tmp_path) -> None:
    log = tmp_path / "bad.log"
    log.write_text("not json\n" * 3)
    with open(tmp_path / "f.jsonl", "wb") as handle:
        code, screen, _ = _run(["correlate", "--state", str(tmp_path / "s.sqlite"), str(log)], handle)
    assert code == 0
    text = screen.decode()
    assert f"osq-dbwatch correlate: {log}:1: skipped:" in text
    # Every message begins on a cleared line; the final status line comes before the summary.
    for line in text.split("\r\n")[:-1]:
        if "skipped:" in line and "correlate: " in line.split("osq-dbwatch")[0]:
            pytest.fail(f"a message ran into the status line: {line!r}")
    assert re.search(r"\rcorrelate: 100% of 27 B, 3 lines, [\d,]+/s, 0 findings\x1b\[K\r\n", text)
