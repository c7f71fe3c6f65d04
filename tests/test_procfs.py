"""procfs: real processes and sockets, read the way db_cli_sessions reads them."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from osq_dbwatch import procfs


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_stat_of_a_running_process(sleeper) -> None:
    st = procfs.stat(sleeper.pid)
    assert st is not None
    assert st.comm == "sleep"
    assert st.ppid == os.getpid()
    assert st.start_ticks > 0


def test_comm_with_spaces_and_parentheses_is_parsed(tmp_path) -> None:
    # comm is user-controlled: "a) (b" must not shift the fields after it
    weird = tmp_path / "a) (b x"
    os.symlink("/bin/sleep", weird)
    proc = subprocess.Popen([str(weird), "30"])
    try:
        st = procfs.stat(proc.pid)
        assert st is not None and st.comm == "a) (b x"
        assert st.ppid == os.getpid()
    finally:
        proc.kill()
        proc.wait()


def test_cmdline_keeps_arguments_with_spaces_and_non_utf8_bytes(tmp_path) -> None:
    script = tmp_path / "s.sh"
    script.write_bytes(b"#!/bin/sh\nsleep 30\n")
    script.chmod(0o755)
    proc = subprocess.Popen([str(script).encode(), b"arg with space", b"\xff\xfe-bad", "caf\u00e9".encode()])
    try:
        time.sleep(0.1)
        argv = procfs.cmdline(proc.pid)
        assert argv is not None
        assert argv[-3:] == ["arg with space", b"\xff\xfe-bad".decode("utf-8", "surrogateescape"), "caf\u00e9"]
    finally:
        proc.kill()
        proc.wait()


def test_cmdline_is_bounded(tmp_path) -> None:
    big = "x" * 100_000
    proc = subprocess.Popen(["/bin/sh", "-c", "sleep 30", "sh", big])
    try:
        argv = procfs.cmdline(proc.pid, limit=4096)
        assert argv is not None
        assert sum(len(a) + 1 for a in argv) <= 4096 + 1
        full = procfs.cmdline(proc.pid)
        assert full is not None and sum(len(a) for a in full) <= procfs.MAX_CMDLINE_BYTES
    finally:
        proc.kill()
        proc.wait()


def test_every_reader_returns_none_for_a_vanished_process() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    pid = proc.pid  # reaped: gone from /proc
    assert procfs.stat(pid) is None
    assert procfs.cmdline(pid) is None
    assert procfs.ids(pid) is None
    assert procfs.loginuid(pid) is None
    assert procfs.exe(pid) is None
    assert procfs.cwd(pid) is None
    assert procfs.systemd_unit(pid) == ""
    assert procfs.socket_inodes(pid) == set()
    assert list(procfs.fd_targets(pid)) == []
    assert procfs.fd_open_for_write(pid, 1) is False


def test_zombie_has_empty_argv() -> None:
    proc = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        st = procfs.stat(proc.pid)
        if st is not None and st.state == "Z":
            break
        time.sleep(0.01)
    try:
        assert procfs.cmdline(proc.pid) == []
    finally:
        proc.wait()


def test_ids_and_loginuid_of_ourselves() -> None:
    ids = procfs.ids(os.getpid())
    assert ids is not None and ids.uid == os.getuid() and ids.euid == os.geteuid() and ids.gid == os.getgid()
    auid = procfs.loginuid(os.getpid())
    assert auid is None or auid >= 0


def test_tty_names() -> None:
    assert procfs.tty_name(0) == ""
    assert procfs.tty_name((136 << 8) | 3) == "pts/3"
    assert procfs.tty_name((137 << 8) | 1) == "pts/257"
    assert procfs.tty_name((4 << 8) | 1) == "tty1"
    assert procfs.tty_name((4 << 8) | 65) == "ttyS1"


def test_tty_of_a_process_on_a_pty() -> None:
    import pty

    pid, fd = pty.fork()
    if pid == 0:
        os.execv("/bin/sleep", ["sleep", "30"])
    try:
        time.sleep(0.1)
        st = procfs.stat(pid)
        assert st is not None
        assert procfs.tty_name(st.tty_nr).startswith("pts/")
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)


@pytest.mark.parametrize("family,address", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_tcp_peer_of_an_open_socket(family: int, address: str) -> None:
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((address, 0))
    server.listen(1)
    port = server.getsockname()[1]
    client = socket.create_connection((address, port))
    accepted, _ = server.accept()
    try:
        inode = os.fstat(client.fileno()).st_ino
        assert inode in procfs.socket_inodes(os.getpid())
        sockets = procfs.tcp_sockets()
        sock = sockets[inode]
        assert sock.remote_address == address
        assert sock.remote_port == port
        assert sock.state == "ESTABLISHED"
        listening = sockets[os.fstat(server.fileno()).st_ino]
        assert listening.state == "LISTEN" and listening.local_port == port
    finally:
        client.close()
        accepted.close()
        server.close()


def test_fd_open_for_write_reads_fdinfo_flags(tmp_path) -> None:
    path = tmp_path / "w.sql"
    path.write_text("x")
    with open(path, "a") as writer, open(path) as reader:
        assert procfs.fd_open_for_write(os.getpid(), writer.fileno())
        assert not procfs.fd_open_for_write(os.getpid(), reader.fileno())
        targets = dict(procfs.fd_targets(os.getpid()))
        assert targets[writer.fileno()] == str(path)


def test_systemd_unit_parsing(tmp_path) -> None:
    # /proc/PID/cgroup of a real host is whatever this container has; the parser
    # is checked on the formats systemd writes.
    proc_root = tmp_path / "proc"
    for pid, text in {
        1: "0::/system.slice/backup.service\n",
        2: "12:pids:/user.slice/user-1000.slice/session-4.scope\n0::/user.slice/user-1000.slice/session-4.scope\n",
        3: "0::/\n",
        4: "0::/system.slice/cron.service/cron-job.scope\n",
    }.items():
        (proc_root / str(pid)).mkdir(parents=True)
        (proc_root / str(pid) / "cgroup").write_text(text)
    assert procfs.systemd_unit(1, str(proc_root)) == "backup.service"
    assert procfs.systemd_unit(2, str(proc_root)) == "session-4.scope"
    assert procfs.systemd_unit(3, str(proc_root)) == ""
    assert procfs.systemd_unit(4, str(proc_root)) == "cron-job.scope"


def test_cgroup_path_keeps_the_user_manager(tmp_path) -> None:
    """`systemd-run --user psql` runs in x.service under user@UID.service: not a system service."""
    from osq_dbwatch import policy
    from osq_dbwatch.config import Config

    proc_root = tmp_path / "proc"
    for pid, text in {
        1: "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.service\n",
        2: "0::/system.slice/backup.service\n",
        3: "1:name=systemd:/system.slice/etl.service\n0::/\n",  # hybrid: unified root says nothing
        4: "1:name=systemd:/system.slice/etl.service\n",  # legacy hierarchy only
    }.items():
        (proc_root / str(pid)).mkdir(parents=True)
        (proc_root / str(pid) / "cgroup").write_text(text)
    user_unit = procfs.cgroup_path(1, str(proc_root))
    assert procfs.innermost_unit(user_unit) == "run-r1.service"
    assert not policy.service_context(Config(), "mallory", [], user_unit).known
    assert policy.service_context(Config(), "backup", [], procfs.cgroup_path(2, str(proc_root))).kind == "systemd"
    assert procfs.cgroup_path(3, str(proc_root)) == "/"
    assert procfs.cgroup_path(4, str(proc_root)) == "/system.slice/etl.service"


def test_pids_lists_us() -> None:
    assert os.getpid() in procfs.pids()
    assert procfs.boot_time() > 0
