"""Reading /proc on a hostile host: every helper returns a record or None.

A process can exit (and its pid be reused) between any two reads, its argv
can be 100 KB of non-UTF-8 bytes, and /proc can deny us parts of it. So every
read here is bounded, decodes with surrogateescape (to_cell turns that into
\\xNN for osquery), and turns "gone" or "denied" into None instead of raising.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

PROC = "/proc"
MAX_CMDLINE_BYTES = 64 * 1024
MAX_SMALL_FILE = 64 * 1024
MAX_FDS_PER_PROCESS = 4096  # fd scans stop here: a process with 1M fds must not stall a scan
NO_LOGINUID = 4294967295
_GONE = (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError, OSError)


def read_bytes(path: str, limit: int = MAX_SMALL_FILE) -> bytes | None:
    """At most `limit` bytes of a /proc file, or None when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except _GONE:
        return None
    try:
        chunks: list[bytes] = []
        remaining = limit
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    except _GONE:
        return None
    finally:
        os.close(fd)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def pids(proc: str = PROC) -> list[int]:
    """Every numeric entry of /proc (processes, not threads)."""
    out: list[int] = []
    try:
        with os.scandir(proc) as entries:
            for entry in entries:
                name = entry.name
                if name.isdigit():
                    out.append(int(name))
    except OSError:
        return []
    return out


@dataclass(frozen=True)
class ProcStat:
    pid: int
    comm: str
    state: str
    ppid: int
    tty_nr: int
    start_ticks: int  # clock ticks after boot


def stat(pid: int, proc: str = PROC) -> ProcStat | None:
    """/proc/PID/stat. comm may hold spaces and parentheses: split at the last ')'."""
    data = read_bytes(f"{proc}/{pid}/stat", 4096)
    if not data:
        return None
    open_paren = data.find(b"(")
    close_paren = data.rfind(b")")
    if open_paren < 0 or close_paren < open_paren:
        return None
    fields = data[close_paren + 2 :].split()
    try:
        return ProcStat(
            pid=pid,
            comm=_decode(data[open_paren + 1 : close_paren]),
            state=fields[0].decode("ascii", "replace"),
            ppid=int(fields[1]),
            tty_nr=int(fields[4]),
            start_ticks=int(fields[19]),
        )
    except (IndexError, ValueError):
        return None


def cmdline(pid: int, limit: int = MAX_CMDLINE_BYTES, proc: str = PROC) -> list[str] | None:
    """argv (bounded to `limit` bytes); [] for kernel threads and zombies, None when gone."""
    data = read_bytes(f"{proc}/{pid}/cmdline", limit)
    if data is None:
        return None
    # Programs that set their process title (mongosh, via Node) leave the
    # old argv area padded with NULs: drop them all, not just the terminator.
    data = data.rstrip(b"\0")
    if not data:
        return []
    return [_decode(part) for part in data.split(b"\0")]


@dataclass(frozen=True)
class ProcIds:
    uid: int
    euid: int
    gid: int


def ids(pid: int, proc: str = PROC) -> ProcIds | None:
    """Real/effective uid and real gid from /proc/PID/status."""
    data = read_bytes(f"{proc}/{pid}/status", 16384)
    if not data:
        return None
    uid = gid = None
    euid = None
    try:
        for line in data.split(b"\n"):
            if line.startswith(b"Uid:"):
                parts = line.split()
                if len(parts) >= 3:
                    uid, euid = int(parts[1]), int(parts[2])
            elif line.startswith(b"Gid:"):
                parts = line.split()
                if len(parts) >= 2:
                    gid = int(parts[1])
                break  # Gid follows Uid
    except ValueError:
        return None
    if uid is None or gid is None or euid is None:
        return None
    return ProcIds(uid, euid, gid)


def loginuid(pid: int, proc: str = PROC) -> int | None:
    data = read_bytes(f"{proc}/{pid}/loginuid", 32)
    if not data:
        return None
    try:
        return int(data.strip())
    except ValueError:
        return None


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except _GONE:
        return None


def exe(pid: int, proc: str = PROC) -> str | None:
    target = _readlink(f"{proc}/{pid}/exe")
    if target is None:
        return None
    return target.removesuffix(" (deleted)")


def cwd(pid: int, proc: str = PROC) -> str | None:
    return _readlink(f"{proc}/{pid}/cwd")


def cgroup_path(pid: int, proc: str = PROC) -> str:
    """The process's cgroup path: the unified hierarchy's, else systemd's named one ("" when unknown).

    The whole path matters, not only the innermost unit: a unit under
    user@UID.service is one the user started (`systemd-run --user`), not a
    system service.
    """
    data = read_bytes(f"{proc}/{pid}/cgroup", 8192)
    if not data:
        return ""
    fallback = ""
    for line in _decode(data).splitlines():
        hierarchy, _, path = line.partition(":")
        controllers, _, path = path.partition(":")
        if hierarchy == "0" and not controllers:
            return path  # the unified hierarchy is authoritative
        if controllers == "name=systemd":
            fallback = path
    return fallback


def innermost_unit(cgroup: str) -> str:
    """The innermost systemd unit (x.service / x.scope) of a cgroup path, or ""."""
    for part in reversed(cgroup.split("/")):
        if part.endswith((".service", ".scope")):
            return part
    return ""


def systemd_unit(pid: int, proc: str = PROC) -> str:
    """The innermost systemd unit in /proc/PID/cgroup, or ""."""
    return innermost_unit(cgroup_path(pid, proc))


def tty_name(tty_nr: int) -> str:
    """Name of a controlling terminal from stat's tty_nr ("" when none)."""
    if tty_nr <= 0:
        return ""
    major = (tty_nr >> 8) & 0xFFF
    minor = (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if 136 <= major <= 143:
        return f"pts/{minor + (major - 136) * 256}"
    if major == 4:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    if major == 5 and minor == 0:
        return "tty"
    if major == 5 and minor == 1:
        return "console"
    return f"{major}:{minor}"


def boot_time(proc: str = PROC) -> float:
    data = read_bytes(f"{proc}/stat", 1 << 20) or b""
    for line in data.split(b"\n"):
        if line.startswith(b"btime "):
            try:
                return float(line.split()[1])
            except (IndexError, ValueError):
                break
    return 0.0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def fd_targets(pid: int, proc: str = PROC, limit: int = MAX_FDS_PER_PROCESS) -> Iterator[tuple[int, str]]:
    """(fd, link target) for the process's open files, at most `limit` of them."""
    try:
        dir_fd = os.open(f"{proc}/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except _GONE:
        return
    try:
        # readlink relative to the open fd directory: no path walk per descriptor
        for count, name in enumerate(os.listdir(dir_fd)):
            if count >= limit:
                return
            try:
                target = os.readlink(name, dir_fd=dir_fd)
            except _GONE:
                continue  # closed meanwhile
            if name.isdigit():
                yield int(name), target
    except _GONE:
        return
    finally:
        os.close(dir_fd)


def socket_inodes(pid: int, proc: str = PROC) -> set[int]:
    out: set[int] = set()
    for _, target in fd_targets(pid, proc):
        if target.startswith("socket:["):
            try:
                out.add(int(target[8:-1]))
            except ValueError:
                continue
    return out


def fd_open_for_write(pid: int, fd: int, proc: str = PROC) -> bool:
    """Whether the descriptor was opened O_WRONLY or O_RDWR (fdinfo flags are octal)."""
    data = read_bytes(f"{proc}/{pid}/fdinfo/{fd}", 4096)
    if not data:
        return False
    for line in data.split(b"\n"):
        if line.startswith(b"flags:"):
            try:
                flags = int(line.split()[1], 8)
            except (IndexError, ValueError):
                return False
            return (flags & os.O_ACCMODE) in (os.O_WRONLY, os.O_RDWR)
    return False


# ---------------------------------------------------------------------------
# TCP sockets

TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


@dataclass(frozen=True)
class TcpSocket:
    inode: int
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int
    state: str


def _hex_address(text: str) -> str:
    # /proc/net/tcp{,6} prints each 32-bit word of the address as a host-order
    # integer: packing the integers back in host order gives network order.
    words = b"".join(struct.pack("=I", int(text[i : i + 8], 16)) for i in range(0, len(text), 8))
    if len(words) == 4:
        return socket.inet_ntop(socket.AF_INET, words)
    address = socket.inet_ntop(socket.AF_INET6, words)
    if address.startswith("::ffff:") and "." in address:
        return address[7:]  # IPv4-mapped
    return address


def parse_tcp_table(data: bytes) -> dict[int, TcpSocket]:
    """inode -> socket, from the text of /proc/net/tcp or tcp6."""
    out: dict[int, TcpSocket] = {}
    for line in data.split(b"\n")[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            local, remote = fields[1].decode(), fields[2].decode()
            laddr, lport = local.split(":")
            raddr, rport = remote.split(":")
            inode = int(fields[9])
            out[inode] = TcpSocket(
                inode=inode,
                local_address=_hex_address(laddr),
                local_port=int(lport, 16),
                remote_address=_hex_address(raddr),
                remote_port=int(rport, 16),
                state=TCP_STATES.get(int(fields[3], 16), fields[3].decode()),
            )
        except (ValueError, UnicodeDecodeError, OSError):
            continue
    return out


def tcp_sockets(net_dir: str = f"{PROC}/net") -> dict[int, TcpSocket]:
    """Every TCP socket of one network namespace (the reader's by default)."""
    out: dict[int, TcpSocket] = {}
    for name in ("tcp", "tcp6"):
        data = read_bytes(f"{net_dir}/{name}", 64 << 20)
        if data:
            out.update(parse_tcp_table(data))
    return out
