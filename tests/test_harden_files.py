"""Issue 11 items 3, 5 and 7 and the low ones the correlator owns: private state and output
files, the state lock, FIFOs, devices, gzip, a full disk, a damaged state, the launcher."""

from __future__ import annotations

import gzip
import json
import os
import resource
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time

import pytest
from correlate_scenarios.helpers import correlate_proc
from test_correlate_cli import CONFIG, INSIDER, _accesses, _append, _hosts

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _one_line_error(proc: subprocess.CompletedProcess[bytes], expect: str) -> str:
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 2, (proc.returncode, lines)
    assert len(lines) == 1 and expect in lines[0], lines
    assert b"Traceback" not in proc.stderr
    return lines[0]


# -- item 3: --output and --state -----------------------------------------------------


def test_a_symlink_planted_at_the_output_is_refused_and_its_target_untouched(tmp_path) -> None:
    target = tmp_path / "victim"
    target.write_text("keep\n")
    (tmp_path / "o.json").symlink_to(target)
    proc = correlate_proc(["--config", CONFIG, "--state", str(tmp_path / "s"), "--output", str(tmp_path / "o.json"), INSIDER])
    _one_line_error(proc, "symbolic link")
    assert target.read_text() == "keep\n"


@pytest.mark.parametrize("planted", ["s.sqlite", "s.sqlite-wal", "s.sqlite-shm"])
def test_a_symlink_planted_at_the_state_or_its_companions_is_refused(tmp_path, planted: str) -> None:
    target = tmp_path / "victim"
    target.write_text("keep\n")
    (tmp_path / planted).symlink_to(target)
    proc = correlate_proc(["--config", CONFIG, "--state", str(tmp_path / "s.sqlite"), INSIDER])
    _one_line_error(proc, "symbolic link")
    assert target.read_text() == "keep\n"


@pytest.mark.parametrize(("which", "mode"), [("state", 0o666), ("state", 0o620), ("output", 0o646)])
def test_a_file_others_can_write_is_refused(tmp_path, which: str, mode: int) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"")
    path.chmod(mode)
    args = ["--state", str(path)] if which == "state" else ["--state", str(tmp_path / "s"), "--output", str(path)]
    _one_line_error(correlate_proc(["--config", CONFIG, *args, INSIDER]), "others can write")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
@pytest.mark.parametrize("which", ["state", "output"])
def test_a_file_of_another_user_is_refused(tmp_path, which: str) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"")
    path.chmod(0o600)
    os.chown(path, 65534, 65534)
    args = ["--state", str(path)] if which == "state" else ["--state", str(tmp_path / "s"), "--output", str(path)]
    _one_line_error(correlate_proc(["--config", CONFIG, *args, INSIDER]), "neither you nor root")


def test_new_state_and_output_files_are_0600_whatever_the_umask(tmp_path) -> None:
    state, out = tmp_path / "s.sqlite", tmp_path / "o.json"
    proc = subprocess.run([sys.executable, "-c", "import os, sys; os.umask(0); from osq_dbwatch.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", "correlate", "--config", CONFIG, "--state", str(state),
                           "--output", str(out), "--follow", INSIDER], capture_output=True, timeout=60,
                          preexec_fn=lambda: signal.alarm(4))
    assert proc.returncode == -signal.SIGALRM, proc.stderr  # stopped while following: -wal and -shm still there
    for path in (state, out, tmp_path / "s.sqlite-wal", tmp_path / "s.sqlite-shm"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_world_writable_directory_without_sticky_bit_is_refused_for_the_state(tmp_path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    _one_line_error(correlate_proc(["--config", CONFIG, "--state", str(shared / "s"), INSIDER]), "no sticky bit")


# -- item 5: the lock -----------------------------------------------------------------


def _holder(tmp_path, state: str) -> subprocess.Popen[bytes]:
    log = tmp_path / "held.log"
    log.write_text(_accesses(1)[0] + "\n")
    child = subprocess.Popen([sys.executable, "-m", "osq_dbwatch", "correlate", "--follow", "--config", CONFIG, "--state",
                              state, "--output", str(tmp_path / "held.jsonl"), str(log)], stderr=subprocess.PIPE)
    deadline = time.time() + 20
    while time.time() < deadline and not (os.path.exists(tmp_path / "held.jsonl") and _hosts(str(tmp_path / "held.jsonl"))):
        time.sleep(0.05)
    return child


def test_a_second_run_on_a_held_state_fails_naming_the_holder(tmp_path) -> None:
    state = str(tmp_path / "s.sqlite")
    holder = _holder(tmp_path, state)
    try:
        proc = correlate_proc(["--config", CONFIG, "--state", state, INSIDER], timeout=30)
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.wait(timeout=20)
    line = _one_line_error(proc, f"in use by process {holder.pid}")
    assert "--wait" in line and proc.stdout == b""


def test_wait_waits_for_the_holder_and_then_emits_each_finding_once(tmp_path) -> None:
    state = str(tmp_path / "s.sqlite")
    holder = _holder(tmp_path, state)
    waiter = subprocess.Popen([sys.executable, "-m", "osq_dbwatch", "correlate", "--wait", "--config", CONFIG, "--state",
                               state, str(tmp_path / "held.log")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.5)
    assert waiter.poll() is None  # still waiting
    holder.send_signal(signal.SIGTERM)
    holder.wait(timeout=20)
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert f"in use by process {holder.pid}; waiting" in err.decode()
    assert out == b""  # the holder emitted that finding; the state says so


# -- item 7: FIFOs, stdin, devices --------------------------------------------------------


def test_a_fifo_is_read_as_a_stream_and_says_so(tmp_path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with open(INSIDER, "rb") as handle:
        data = handle.read()
    child = subprocess.Popen([sys.executable, "-m", "osq_dbwatch", "correlate", "--config", CONFIG, "--state",
                              str(tmp_path / "s"), str(fifo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with open(fifo, "wb") as writer:
        writer.write(data)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.count(b"\n") == 1 and b"Traceback" not in err
    assert b"a FIFO, read as a stream" in err


def test_standard_input_says_it_is_a_stream(tmp_path) -> None:
    with open(INSIDER, "rb") as handle:
        proc = correlate_proc(["--config", CONFIG, "--state", str(tmp_path / "s")], stdin=handle.read())
    assert proc.returncode == 0 and b"standard input read as a stream (no position kept)" in proc.stderr


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_character_device_is_refused_with_one_line(tmp_path, device: str) -> None:
    proc = correlate_proc(["--config", CONFIG, "--state", str(tmp_path / "s"), device], timeout=20)
    _one_line_error(proc, f"{device}: a character device, not a log file")


# -- low: gzip, a full disk, a damaged state, the launcher --------------------------------------


def test_a_gzip_log_is_read_like_the_plain_one_and_resumed(tmp_path) -> None:
    plain = correlate_proc(["--config", CONFIG, "--state", str(tmp_path / "p"), INSIDER])
    packed = tmp_path / "results.log.1.gz"
    with open(INSIDER, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    proc = correlate_proc(["--config", CONFIG, "--state", str(tmp_path / "g"), str(packed)])
    assert proc.returncode == 0 and proc.stdout == plain.stdout and proc.stdout.count(b"\n") == 1, proc.stderr
    again = correlate_proc(["--config", CONFIG, "--state", str(tmp_path / "g"), str(packed)])
    assert again.returncode == 0 and again.stdout == b"" and b"already read" in again.stderr


def test_a_damaged_gzip_log_is_one_line(tmp_path) -> None:
    packed = tmp_path / "bad.gz"
    data = gzip.compress(b"".join(line.encode() + b"\n" for line in _accesses(200)))
    packed.write_bytes(data[: len(data) // 2])
    _one_line_error(correlate_proc(["--config", CONFIG, "--state", str(tmp_path / "s"), str(packed)]), "damaged gzip data")


def test_findings_to_a_full_standard_output_are_one_line(tmp_path) -> None:
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "osq_dbwatch", "correlate", "--config", CONFIG, "--state",
                               str(tmp_path / "s"), INSIDER], stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and "standard output: cannot write findings: No space left on device" in lines[0], lines


def _fsize_limit(limit: int):  # noqa: ANN202 - a preexec_fn
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("state", ["none", "file"])
def test_a_full_file_system_is_one_line_and_a_later_run_loses_nothing(tmp_path, state: str) -> None:
    log = tmp_path / "a.log"
    log.write_text("\n".join(_accesses(300)) + "\n")
    out = tmp_path / "o.jsonl"
    state_arg = "none" if state == "none" else str(tmp_path / "s.sqlite")
    args = [sys.executable, "-m", "osq_dbwatch", "correlate", "--config", CONFIG, "--state", state_arg, "--output", str(out),
            str(log)]
    env = {**os.environ, "OSQ_DBWATCH_BATCH_LINES": "50"}
    proc = subprocess.run(args, capture_output=True, timeout=120, env=env, preexec_fn=_fsize_limit(150_000))
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and b"Traceback" not in proc.stderr, lines
    assert "File too large" in lines[0] or "full" in lines[0], lines
    if state == "file":
        again = subprocess.run(args, capture_output=True, timeout=120, env=env)
        assert again.returncode == 0, again.stderr
        assert sorted(_hosts(str(out))) == sorted(f"h-{i}" for i in range(300))


def _damage(path: str, sql: str) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(sql)
    db.close()


@pytest.mark.parametrize("sql", [
    "UPDATE positions SET offset = -5",
    "UPDATE meta SET value = 'soon' WHERE key = 'watermark'",
    "UPDATE hosts SET state = '{\"host\": \"h-0\", \"chains\": ' WHERE host = 'h-0'",
    "UPDATE hosts SET state = '{\"host\": \"h-0\", \"emitted\": 7, \"seen\": [1]}' WHERE host = 'h-0'",
])
def test_a_damaged_state_is_refused_with_one_line_and_nothing_is_emitted_again(tmp_path, sql: str) -> None:
    state = str(tmp_path / "s.sqlite")
    log = tmp_path / "a.log"
    log.write_text("\n".join(_accesses(3)) + "\n")
    assert correlate_proc(["--config", CONFIG, "--state", state, str(log)]).stdout.count(b"\n") == 3
    _damage(state, sql)
    with open(log, "rb") as handle:  # the same events once more, on stdin: a fresh host would emit them again
        proc = correlate_proc(["--config", CONFIG, "--state", state, "-"], stdin=handle.read())
    _one_line_error(proc, "damaged state")
    assert proc.stdout == b""
    reset = correlate_proc(["--config", CONFIG, "--state", state, "--reset", str(log)])
    assert reset.returncode == 0 and reset.stdout.count(b"\n") == 3


def test_the_launcher_without_its_package_says_so_in_one_line(tmp_path) -> None:
    alone = tmp_path / "somewhere" / "extension"
    alone.mkdir(parents=True)
    shutil.copy(os.path.join(REPO, "extension", "osq_dbwatch.ext"), alone / "osq_dbwatch.ext")
    bare = shutil.which("python3", path="/usr/bin:/bin")
    assert bare is not None
    env = {"PATH": "/usr/bin:/bin", "OSQ_DBWATCH_PYTHON": bare}
    assert subprocess.run([bare, "-c", "import osq_dbwatch"], capture_output=True, env=env).returncode != 0
    proc = subprocess.run(["sh", str(alone / "osq_dbwatch.ext"), "--socket", str(tmp_path / "sock")], capture_output=True,
                          timeout=30, env=env)
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and b"Traceback" not in proc.stderr, lines
    assert "osq-dbwatch extension:" in lines[0] and "not installed" in lines[0]


def test_a_schema_1_state_is_upgraded_and_its_positions_kept(tmp_path) -> None:
    log = tmp_path / "a.log"
    log.write_text("\n".join(_accesses(3)) + "\n")
    state = str(tmp_path / "s.sqlite")
    assert correlate_proc(["--config", CONFIG, "--state", state, str(log)]).returncode == 0
    # Rewrite the positions as schema 1 kept them: by path, with the raw first 64 bytes.
    st = os.stat(log)
    db = sqlite3.connect(state, isolation_level=None)
    db.execute("DROP TABLE positions")
    db.execute("CREATE TABLE positions (source TEXT PRIMARY KEY, offset INTEGER NOT NULL, line INTEGER NOT NULL,"
               " head BLOB NOT NULL, dev INTEGER NOT NULL, ino INTEGER NOT NULL)")
    db.execute("INSERT INTO positions VALUES (?, ?, 3, ?, ?, ?)",
               (str(log), st.st_size, log.read_bytes()[:64], st.st_dev, st.st_ino))
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    db.close()
    _append(str(log), _accesses(2, start=3))
    proc = correlate_proc(["--config", CONFIG, "--state", state, str(log)])
    assert proc.returncode == 0, proc.stderr
    assert sorted(json.loads(x)["device"]["hostname"] for x in proc.stdout.splitlines()) == ["h-3", "h-4"]


def test_baseline_reads_a_state_a_follow_run_holds(tmp_path) -> None:
    state = str(tmp_path / "s.sqlite")
    holder = _holder(tmp_path, state)
    try:
        proc = subprocess.run([sys.executable, "-m", "osq_dbwatch", "baseline", "--state", state], capture_output=True,
                              timeout=60)
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.wait(timeout=20)
        assert holder.stderr is not None
        holder.stderr.close()
    assert proc.returncode == 0 and b"h-0:" in proc.stdout, proc.stderr
