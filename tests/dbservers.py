"""Live database servers, unprivileged test users and a pty runner.

A pytest plugin module (loaded by conftest.py) for the integration tests: real
PostgreSQL, MariaDB and Redis servers from the Debian packages, started once per
session on 127.0.0.1 with free ports and Unix sockets in a temp dir, and a way
to run real clients as unprivileged users on a real pseudo-terminal under a
login shell, the way a person at an SSH prompt would.

Nothing here skips: a missing server or client is a setup error that fails the
tests (CI installs them with tests/install-deps.sh). Every step is bounded in
time, and servers, sessions and temp dirs are cleaned up even on failure.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import glob
import os
import pwd
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from dataclasses import dataclass, field

import psutil
import pytest

LOOPBACK = "127.0.0.1"
TEST_USERS = ("dbw_alice", "dbw_mallory")
DB_NAME = "dbw_app"
TABLE = "items"
ROWS = 50
# Throwaway credentials of throwaway servers; tests assert they never leak.
PG_PASSWORDS = {"dbw_alice": "PgAlice-Sekr1t-7731", "dbw_mallory": "PgMallory-Sekr1t-5522"}
MY_PASSWORDS = {"dbw_alice": "MyAlice-Sekr1t-4410", "dbw_mallory": "MyMallory-Sekr1t-8093"}
REDIS_PASSWORD = "RedisSekr1t-9090"
STEP_TIMEOUT = 30.0
UNSET_LOGINUID = 4294967295
PROMPT = "DBW-PROMPT$ "


class LiveSetupError(RuntimeError):
    """A live server, user or client could not be set up (never a skip)."""


def run_checked(
    argv: Sequence[str],
    *,
    user: str | None = None,
    input: str | None = None,
    timeout: float = STEP_TIMEOUT,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> str:
    """Run argv to completion within timeout; raise LiveSetupError on failure."""
    try:
        proc = subprocess.run(
            list(argv), user=user, input=input, capture_output=True, text=True,
            timeout=timeout, env=env, cwd=cwd or "/",
        )
    except FileNotFoundError as exc:
        raise LiveSetupError(f"{argv[0]} not installed (run tests/install-deps.sh): {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise LiveSetupError(f"{' '.join(argv)} took longer than {timeout}s") from exc
    if proc.returncode != 0:
        raise LiveSetupError(
            f"{' '.join(argv)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-2000:]}"
        )
    return proc.stdout


def free_port() -> int:
    """A currently free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _make_dir(path: str, owner: str | None = None, mode: int = 0o755) -> str:
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    if owner:
        pw = pwd.getpwnam(owner)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


# --------------------------------------------------------------------------
# Unprivileged test users


def ensure_user(name: str) -> pwd.struct_passwd:
    """Create a local login user with a home dir unless it exists."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    try:
        run_checked(["useradd", "--create-home", "--shell", "/bin/bash", name])
    except LiveSetupError:
        # Another run may have created it in between; only its absence is fatal.
        pass
    pw = pwd.getpwnam(name)
    if not os.path.isdir(pw.pw_dir):
        _make_dir(pw.pw_dir, owner=name, mode=0o750)
    return pw


# --------------------------------------------------------------------------
# PostgreSQL


@dataclass
class PgServer:
    bin_dir: str
    datadir: str
    socket_dir: str
    port: int
    host: str = LOOPBACK
    database: str = DB_NAME
    passwords: dict[str, str] = field(default_factory=lambda: dict(PG_PASSWORDS))

    def admin_sql(self, sql: str, database: str | None = None) -> str:
        """Run SQL as the postgres superuser over the Unix socket."""
        return run_checked(
            [os.path.join(self.bin_dir, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", self.socket_dir, "-p", str(self.port), "-U", "postgres",
             "-d", database or self.database, "-c", sql],
            user="postgres",
        )

    @contextlib.contextmanager
    def table_locked(self, table: str = TABLE) -> Iterator[None]:
        """Hold an ACCESS EXCLUSIVE lock on table, so pg_dump blocks on it."""
        proc = subprocess.Popen(
            [os.path.join(self.bin_dir, "psql"), "-X", "-q", "-h", self.socket_dir, "-p", str(self.port),
             "-U", "postgres", "-d", self.database],
            user="postgres", stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, text=True, cwd="/", start_new_session=True,
        )
        assert proc.stdin is not None
        try:
            proc.stdin.write(f"BEGIN;\nLOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;\n")
            proc.stdin.flush()
            wait_until(
                lambda: self.admin_sql(
                    f"SELECT count(*) FROM pg_locks WHERE relation = '{table}'::regclass "
                    "AND mode = 'AccessExclusiveLock' AND granted"
                ).strip() not in ("", "0"),
                10, f"a lock on {table}",
            )
            yield
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.write("COMMIT;\n\\q\n")
                proc.stdin.close()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def stop(self) -> None:
        try:
            run_checked([os.path.join(self.bin_dir, "pg_ctl"), "-D", self.datadir, "-m", "immediate",
                         "-w", "-t", "20", "stop"], user="postgres", timeout=30)
        except LiveSetupError:
            _kill_pidfile(os.path.join(self.datadir, "postmaster.pid"))


def _kill_pidfile(path: str) -> None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open(path, encoding="ascii") as f:
            pid = int(f.readline().strip())
        os.kill(pid, signal.SIGKILL)


def start_postgres(base: str) -> PgServer:
    initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdbs:
        raise LiveSetupError("PostgreSQL server not installed (run tests/install-deps.sh)")
    bin_dir = os.path.dirname(initdbs[-1])
    root = _make_dir(os.path.join(base, "pg"), owner="postgres", mode=0o755)
    datadir = os.path.join(root, "data")
    sockdir = _make_dir(os.path.join(root, "sock"), owner="postgres", mode=0o755)
    run_checked([os.path.join(bin_dir, "initdb"), "-D", datadir, "-U", "postgres", "--no-sync",
                 "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
                 "--locale=C.UTF-8"], user="postgres", timeout=60)
    port = free_port()
    opts = (f"-c port={port} -c listen_addresses={LOOPBACK} -c unix_socket_directories={sockdir} "
            "-c fsync=off -c max_connections=40 -c shared_buffers=16MB")
    server = PgServer(bin_dir=bin_dir, datadir=datadir, socket_dir=sockdir, port=port)
    run_checked([os.path.join(bin_dir, "pg_ctl"), "-D", datadir, "-l", os.path.join(root, "server.log"),
                 "-w", "-t", "30", "-o", opts, "start"], user="postgres", timeout=45)
    try:
        server.admin_sql(f"CREATE DATABASE {DB_NAME}", database="postgres")
        roles = "; ".join(f"CREATE ROLE {u} LOGIN PASSWORD '{p}'" for u, p in server.passwords.items())
        server.admin_sql(roles, database="postgres")
        grants = ", ".join(server.passwords)
        server.admin_sql(
            f"CREATE TABLE {TABLE} (id int PRIMARY KEY, name text NOT NULL, card text NOT NULL);"
            f"INSERT INTO {TABLE} SELECT g, 'customer ' || g, '4000-0000-0000-' || lpad(g::text, 4, '0') "
            f"FROM generate_series(1, {ROWS}) g;"
            f"GRANT SELECT ON {TABLE} TO {grants};"
        )
    except BaseException:
        server.stop()
        raise
    return server


# --------------------------------------------------------------------------
# MariaDB


@dataclass
class MariaServer:
    datadir: str
    socket: str
    port: int
    files_dir: str
    proc: subprocess.Popen[bytes]
    host: str = LOOPBACK
    database: str = DB_NAME
    passwords: dict[str, str] = field(default_factory=lambda: dict(MY_PASSWORDS))

    def admin_argv(self) -> list[str]:
        return ["mariadb", "--no-defaults", "-S", self.socket, "-u", "root"]

    def admin_sql(self, sql: str) -> str:
        """Run SQL as root over the Unix socket (unix_socket authentication)."""
        return run_checked([*self.admin_argv(), "-N", "-B", "-e", sql])

    @contextlib.contextmanager
    def table_locked(self, table: str = TABLE) -> Iterator[None]:
        """Hold LOCK TABLES ... WRITE so mysqldump blocks after writing its header."""
        proc = subprocess.Popen(
            [*self.admin_argv(), "-N", "-B", self.database], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, cwd="/",
            start_new_session=True,
        )
        assert proc.stdin is not None
        try:
            proc.stdin.write(f"LOCK TABLES {table} WRITE;\n")
            proc.stdin.flush()
            wait_until(
                lambda: table in self.admin_sql(
                    f"SHOW OPEN TABLES FROM {self.database} WHERE In_use > 0"),
                10, f"a write lock on {table}",
            )
            yield
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.write("UNLOCK TABLES;\n")
                proc.stdin.close()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_mariadb(base: str) -> MariaServer:
    if not shutil.which("mariadbd", path="/usr/sbin:/usr/bin") or not shutil.which("mariadb-install-db"):
        raise LiveSetupError("MariaDB server not installed (run tests/install-deps.sh)")
    root = _make_dir(os.path.join(base, "my"), owner="mysql", mode=0o755)
    datadir = os.path.join(root, "data")
    files_dir = _make_dir(os.path.join(root, "files"), owner="mysql", mode=0o755)
    sock = os.path.join(root, "mysqld.sock")
    run_checked(["mariadb-install-db", "--no-defaults", "--user=mysql", f"--datadir={datadir}",
                 "--auth-root-authentication-method=socket", "--skip-test-db",
                 "--skip-name-resolve"], timeout=90)
    port = free_port()
    log = open(os.path.join(root, "server.log"), "ab")
    try:
        proc = subprocess.Popen(
            [shutil.which("mariadbd", path="/usr/sbin:/usr/bin") or "mariadbd", "--no-defaults",
             "--user=mysql", f"--datadir={datadir}", f"--socket={sock}", f"--port={port}",
             f"--bind-address={LOOPBACK}", f"--secure-file-priv={files_dir}",
             f"--pid-file={os.path.join(root, 'mariadbd.pid')}", "--skip-name-resolve",
             "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
             "--skip-log-bin", "--max-connections=40", "--lock-wait-timeout=60"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/", start_new_session=True,
        )
    finally:
        log.close()
    server = MariaServer(datadir=datadir, socket=sock, port=port, files_dir=files_dir, proc=proc)
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                raise LiveSetupError(f"mariadbd exited {proc.returncode}; see {root}/server.log")
            try:
                server.admin_sql("SELECT 1")
                return True
            except LiveSetupError:
                return False
        wait_until(ready, 60, "mariadbd to accept connections", interval=0.2)
        stmts = [
            f"CREATE DATABASE {DB_NAME}",
            f"USE {DB_NAME}",
            f"CREATE TABLE {DB_NAME}.{TABLE} (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, "
            "card VARCHAR(32) NOT NULL) ENGINE=InnoDB",
            f"INSERT INTO {DB_NAME}.{TABLE} SELECT seq, CONCAT('customer ', seq), "
            f"CONCAT('4000-0000-0000-', LPAD(seq, 4, '0')) FROM seq_1_to_{ROWS}",
        ]
        for user, password in server.passwords.items():
            for host in (LOOPBACK, "localhost"):
                stmts.append(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")
                stmts.append(f"GRANT SELECT, LOCK TABLES, SHOW VIEW, TRIGGER, EVENT ON {DB_NAME}.* "
                             f"TO '{user}'@'{host}'")
                stmts.append(f"GRANT FILE ON *.* TO '{user}'@'{host}'")
        server.admin_sql("; ".join(stmts))
    except BaseException:
        server.stop()
        raise
    return server


# --------------------------------------------------------------------------
# Redis


@dataclass
class RedisServer:
    dir: str
    port: int
    proc: subprocess.Popen[bytes]
    password: str = REDIS_PASSWORD
    host: str = LOOPBACK

    def cli(self, *args: str) -> str:
        return run_checked(["redis-cli", "-h", self.host, "-p", str(self.port), "--no-auth-warning",
                            "-a", self.password, *args])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_redis(base: str) -> RedisServer:
    exe = shutil.which("redis-server")
    if not exe or not shutil.which("redis-cli"):
        raise LiveSetupError("redis-server/redis-cli not installed (run tests/install-deps.sh)")
    owner = "redis" if _user_exists("redis") else None
    root = _make_dir(os.path.join(base, "redis"), owner=owner, mode=0o750)
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", LOOPBACK, "--dir", root, "--requirepass", REDIS_PASSWORD,
         "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
         "--repl-diskless-sync-delay", "0",  # `redis-cli --rdb` gets its snapshot at once
         "--logfile", os.path.join(root, "server.log"), "--dbfilename", "server-dump.rdb"],
        user=owner, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd="/", start_new_session=True,
    )
    server = RedisServer(dir=root, port=port, proc=proc)
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                raise LiveSetupError(f"redis-server exited {proc.returncode}")
            try:
                return server.cli("PING").strip() == "PONG"
            except LiveSetupError:
                return False
        wait_until(ready, 30, "redis-server to answer PING", interval=0.1)
        for i in range(1, ROWS + 1):
            server.cli("SET", f"customer:{i}", f"4000-0000-0000-{i:04d}")
    except BaseException:
        server.stop()
        raise
    return server


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


# --------------------------------------------------------------------------
# A listener that accepts and then says nothing: mongosh's target. There is
# no MongoDB server in Debian; mongosh connects, sends its hello and waits,
# which is what db_cli_sessions needs to see (process, target, TCP peer).


class SilentListener:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-listener", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self._conns.append(conn)

    @property
    def accepted(self) -> int:
        return len(self._conns)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in self._conns:
            with contextlib.suppress(OSError):
                c.close()
        self.sock.close()


# --------------------------------------------------------------------------
# The pty runner


class PtySession:
    """An interactive login shell for `user` on a fresh pseudo-terminal.

    The shell is a session leader whose controlling terminal is the pty, its
    audit login uid is set (as pam_loginuid does at login) before privileges
    are dropped, and commands are typed into it, so every client started here
    has the shell as parent, the pty as tty and the user's uid and loginuid.
    """

    def __init__(self, user: str, *, login_user: str | None = None,
                 env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        pw = pwd.getpwnam(user)
        self.user = user
        self.uid = pw.pw_uid
        self.login_user = login_user or user
        self.want_loginuid = pwd.getpwnam(self.login_user).pw_uid
        self.home = pw.pw_dir
        master, slave = os.openpty()
        # Wide terminal: readline does not wrap long typed commands.
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 400, 0, 0))
        self.tty = os.ttyname(slave)
        os.fchown(slave, pw.pw_uid, -1)  # like login(1): the user owns the tty
        os.fchmod(slave, 0o620)
        environment = {
            "HOME": pw.pw_dir, "USER": user, "LOGNAME": user, "SHELL": "/bin/bash",
            "PATH": "/usr/local/bin:/usr/bin:/bin", "TERM": "xterm", "LANG": "C.UTF-8",
            "PS1": PROMPT, "HISTFILE": "", "PAGER": "cat", "PSQL_PAGER": "cat",
        }
        environment.update(env or {})
        groups = os.getgrouplist(user, pw.pw_gid)
        workdir = cwd or pw.pw_dir
        pid = os.fork()
        if pid == 0:  # child: keep to plain system calls until exec
            try:
                os.close(master)
                os.setsid()
                fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
                for fd in (0, 1, 2):
                    os.dup2(slave, fd)
                if slave > 2:
                    os.close(slave)
                try:
                    fd = os.open("/proc/self/loginuid", os.O_WRONLY)
                    try:
                        os.write(fd, str(self.want_loginuid).encode())
                    finally:
                        os.close(fd)
                except OSError as exc:
                    os.write(2, f"dbw-pty: cannot set loginuid: {exc}\r\n".encode())
                os.setgroups(groups)
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)
                os.chdir(workdir)
                os.execve("/bin/bash", ["-bash", "--noprofile", "--norc", "-i"], environment)
            except BaseException as exc:  # noqa: BLE001 - report and never return into pytest
                with contextlib.suppress(BaseException):
                    os.write(2, f"dbw-pty: {exc!r}\r\n".encode())
            finally:
                os._exit(127)
        os.close(slave)
        self.pid = pid
        self.master = master
        self._buf = ""
        self._pos = 0
        self._closed = False
        self._eof = False
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        os.set_blocking(master, False)

    # -- terminal I/O

    def _read(self, timeout: float) -> bool:
        if self._eof:  # a closed master stays "readable": do not spin on it
            time.sleep(max(0.0, min(timeout, 0.1)))
            return False
        r, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        if not r:
            return False
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return False
        except OSError:  # EIO: every process on the terminal has gone
            self._eof = True
            return False
        if not data:
            self._eof = True
        self._buf += self._decoder.decode(data)
        return bool(data)

    def expect(self, pattern: str | re.Pattern[str], timeout: float = 20.0) -> re.Match[str]:
        """Wait for pattern in output after the previous match."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self._buf, self._pos)
            if m:
                self._pos = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0 or self._eof:
                why = "the terminal closed" if self._eof else f"timed out after {timeout}s"
                raise AssertionError(
                    f"{why} waiting for {rx.pattern!r} on {self.user}'s pty; "
                    f"output tail: {self._buf[-1500:]!r}"
                )
            self._read(min(left, 0.5))

    def expect_prompt(self, timeout: float = 20.0) -> None:
        self.expect(re.escape(PROMPT), timeout)

    def send(self, text: str) -> None:
        data = text.encode()
        while data:
            try:
                n = os.write(self.master, data)
            except BlockingIOError:
                select.select([], [self.master], [], 1.0)
                continue
            data = data[n:]

    def run(self, command: str) -> None:
        """Type a line and press Enter (a terminal sends CR), without waiting."""
        self.send(command + "\r")

    @property
    def output(self) -> str:
        return self._buf

    # -- processes

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def wait_for_process(self, name: str, timeout: float = 20.0) -> psutil.Process:
        """The shell's descendant whose program is `name` (after any wrapper exec)."""
        deadline = time.monotonic() + timeout
        while True:
            for proc in self.descendants():
                try:
                    argv = proc.cmdline()
                    exe = os.path.basename(proc.exe())
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                first = os.path.basename(" ".join(argv).split(" ", 1)[0]) if argv else ""
                if exe in ("perl", "sh", "bash", "dash"):
                    continue  # pg_wrapper (perl) before it execs the real binary
                if first == name or exe == name:
                    return proc
            if time.monotonic() > deadline:
                names = [p.name() for p in self.descendants()]
                raise AssertionError(
                    f"no {name} process under {self.user}'s shell after {timeout}s (saw {names}); "
                    f"output tail: {self._buf[-1500:]!r}"
                )
            self._read(0.1)

    def wait_gone(self, proc: psutil.Process, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:  # the process may be reaped between any two of these calls
                if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                    return
            except psutil.NoSuchProcess:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{proc.name()} ({proc.pid}) still running after {timeout}s; "
                                     f"output tail: {self._buf[-1500:]!r}")
            self._read(0.1)

    def loginuid(self) -> int:
        try:
            with open(f"/proc/{self.pid}/loginuid", encoding="ascii") as f:
                return int(f.read().strip())
        except FileNotFoundError:  # a kernel built without audit has no login uid
            return UNSET_LOGINUID

    @property
    def loginuid_refused(self) -> str:
        """The kernel's refusal to set the login uid, as the child reported it ("" when set)."""
        m = re.search(r"dbw-pty: cannot set loginuid: ([^\r\n]*)", self._buf)
        return m.group(1) if m else ""

    @property
    def auid(self) -> int:
        """The login uid clients started here inherit (what the kernel really holds)."""
        return self.loginuid()

    @property
    def expected_login_user(self) -> str:
        """login_user a table should report: the login user's name, or "" without a login uid."""
        auid = self.auid
        if auid == UNSET_LOGINUID:
            return ""
        return pwd.getpwuid(auid).pw_name

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        victims = self.descendants()
        with contextlib.suppress(psutil.NoSuchProcess):
            victims.append(psutil.Process(self.pid))
        # Anything else still in the shell's session (a job that re-parented).
        for proc in psutil.process_iter():
            with contextlib.suppress(OSError, psutil.Error):
                if proc.pid != self.pid and os.getsid(proc.pid) == self.pid:
                    victims.append(proc)
        for proc in victims:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        with contextlib.suppress(OSError):
            os.close(self.master)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            time.sleep(0.05)
        psutil.wait_procs(victims, timeout=5)


# --------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def live_base() -> Iterator[str]:
    """A temp dir under /tmp (a default dump root) that every test user can enter."""
    base = tempfile.mkdtemp(prefix="dbw-live-", dir="/tmp")
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def test_users() -> dict[str, pwd.struct_passwd]:
    if os.geteuid() != 0:
        raise LiveSetupError("the live tests run as root (they create users and start servers)")
    return {name: ensure_user(name) for name in TEST_USERS}


@pytest.fixture(scope="session")
def pg_server(live_base: str, test_users: dict[str, pwd.struct_passwd]) -> Iterator[PgServer]:
    server = start_postgres(live_base)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb_server(live_base: str, test_users: dict[str, pwd.struct_passwd]) -> Iterator[MariaServer]:
    server = start_mariadb(live_base)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(live_base: str) -> Iterator[RedisServer]:
    server = start_redis(live_base)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongo_listener() -> Iterator[SilentListener]:
    listener = SilentListener()
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture
def dump_dir(live_base: str) -> str:
    """A fresh world-writable (sticky) dir under /tmp for a test's dump files."""
    return _make_dir(tempfile.mkdtemp(prefix="dumps-", dir=live_base), mode=0o1777)


@pytest.fixture
def pty_shell(test_users: dict[str, pwd.struct_passwd]) -> Iterator[Callable[..., PtySession]]:
    """Factory: pty_shell(user, login_user=None, env=None) -> a shell at its prompt."""
    sessions: list[PtySession] = []

    def start(user: str, *, login_user: str | None = None, env: dict[str, str] | None = None,
              cwd: str | None = None) -> PtySession:
        session = PtySession(user, login_user=login_user, env=env, cwd=cwd)
        sessions.append(session)
        session.expect_prompt()
        return session

    try:
        yield start
    finally:
        for session in sessions:
            session.close()


# --------------------------------------------------------------------------
# Assertions shared by the live table tests

EQUALS = 2  # osquery's ConstraintOperator EQUALS


def rows_where(core: Any, table: str, column: str, value: str) -> list[dict[str, str]]:
    """Rows of `table` whose `column` equals `value`, asked as osquery would.

    Constraints are only hints to a table (SQLite re-filters in real osquery),
    so the rows are filtered here as well. No cell may be the text "None".
    """
    rows = core.generate(table, {column: [(EQUALS, value)]})
    for row in rows:
        for col, cell in row.items():
            assert cell != "None", f"{table}.{col} is the text 'None': {row}"
    return [r for r in rows if r.get(column) == value]


def session_row(core: Any, pid: int) -> dict[str, str]:
    rows = rows_where(core, "db_cli_sessions", "pid", str(pid))
    assert len(rows) == 1, f"db_cli_sessions has {len(rows)} rows for pid {pid}: {rows}"
    return rows[0]


def assert_seen_in_session(row: dict[str, str], shell: PtySession, proc: psutil.Process, *,
                           tool: str | Sequence[str], engine: str, kind: str) -> None:
    """Who, from where and what: the columns every live session test checks."""
    tools = {tool} if isinstance(tool, str) else set(tool)
    assert row["pid"] == str(proc.pid)
    assert row["ppid"] == str(shell.pid), row
    assert row["uid"] == str(shell.uid) and row["username"] == shell.user, row
    # What the kernel holds: the pty runner's login uid, unless the kernel refused it.
    assert row["auid"] == str(shell.auid), row
    assert row["login_user"] == shell.expected_login_user, row
    # The column documents "pts/N"; a /dev/ prefix would name the same tty.
    assert row["tty"] in (shell.tty.removeprefix("/dev/"), shell.tty), (row["tty"], shell.tty)
    assert row["interactive"] == "1", row
    assert row["parent_name"] == "bash", row
    assert row["parent_path"] in ("/usr/bin/bash", "/bin/bash"), row
    assert row["ancestry_pids"].split(" < ")[0] == str(shell.pid), row["ancestry_pids"]
    assert row["ancestry"].split(" < ")[0] == "bash", row["ancestry"]
    assert row["ancestry_pids"].split(" < ")[-1] == "1", row["ancestry_pids"]  # up to init
    assert row["tool"] in tools, row
    assert row["engine"] == engine, row
    assert row["tool_kind"] == kind, row
    assert row["path"] == os.readlink(f"/proc/{proc.pid}/exe"), row
    assert abs(int(row["start_time"]) - proc.create_time()) <= 2, (row["start_time"], proc.create_time())


def assert_no_secret(rows: Sequence[dict[str, str]], *secrets: str) -> None:
    assert rows, "no rows to check"
    for row in rows:
        for col, cell in row.items():
            for secret in secrets:
                assert secret not in cell, f"secret leaked in column {col}: {cell!r}"


def assert_peer(row: dict[str, str], port: int) -> None:
    peers = [p.strip() for p in row["remote_peers"].split(",") if p.strip()]
    assert f"{LOOPBACK}:{port}" in peers, row["remote_peers"]
