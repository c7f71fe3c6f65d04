"""The chain engine: a pure per-host state machine.

    Engine(config).process(state, rows) -> (state, findings)

`state` is one host's HostState (JSON-serialisable), `rows` that host's rows
in log order, `findings` the findings whose chain was created or whose
severity rose during this call. No I/O, no clock, no randomness: the same
state and rows always give the same result, which is what lets the caller
batch, persist, kill and restart, or run hosts on different machines.

Chains (contract section 4): an unusual access opens a chain keyed by host
and login user (auid's user, else uid's user). Further accesses by the same
user within `dump_after_access` join it. A dump-like file joins when it
appears within `dump_after_access` of an access and is the user's (owner is
the login user or the access's uid user), or its path was named by the
chain's command lines (`-f`, `INTO OUTFILE`, `\\copy to`, shell redirects:
the file a server writes for INTO OUTFILE is owned by mysql but belongs to
the client's user), or its writer pid is one of the chain's. An egress (a
`db_egress` connect to an external address, or a `transfer_exec` upload to an
external destination) joins within `egress_after_dump` of a dump (or of the
access when no dump was seen) when it is the user's, when its pid is a
transfer or DB process whose user or files belong to the chain, or when it
uploads a chain's file. Evidence may arrive in any order within the windows:
files and connections seen before their access are kept for a while and
linked when the access arrives.
"""

from __future__ import annotations

import hashlib
import re
import socket
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Final, Sequence

if TYPE_CHECKING:  # fixed-width ints for mypyc; annotations only, so no runtime dependency
    from mypy_extensions import i64

from .. import catalog, policy
from ..cmdline import (
    DbCommand,
    TransferCommand,
    basename,
    parse_db_command,
    parse_transfer_command,
    redact_cmdline,
    redact_text,
    resolve_path,
    split_cmdline,
    sql_dump_intent,
)
from ..config import Config
from . import baseline as B
from . import reasons as R
from .findings import Finding
from .rows import COMPILED, AdminRow, EgressRow, ExecRow, FileRow, HistoryRow, Row

SLACK: Final = 5  # seconds: audit and inotify clocks and osquery's batching disagree a little
GRACE: Final = 3600  # keep a closed window's state this long for late rows of other queries
SWEEP: Final = 4 * 3600  # event time between full expiry sweeps of a host (the caps bound it in between)
MAX_RECENT: Final = 256  # recent unlinked files / connections kept per host
MAX_PIDS: Final = 4096
MAX_SEEN: Final = 8192
MAX_PER_CLASS: Final = 4096  # hosts remembered per memoised class
WEB_TRANSFER_TOOLS: Final = frozenset({"curl", "wget", "aws", "gsutil", "az", "azcopy", "gcloud", "rclone", "s3cmd", "mc"})
_INTERNAL_SUFFIXES: Final = (".localhost", ".local", ".internal", ".lan", ".localdomain", ".home.arpa", ".intranet", ".corp")
_DOTTED_QUAD: Final = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")
_REDIRECT: Final = re.compile(r"(?:^|[\s;&|])\d?>>?\|?\s*([^\s;|&<>]+)")
_OUTPUT_OPTS: Final = frozenset({"-f", "-o", "-out", "--output", "--file"})
_TAR_FLAGS: Final = re.compile(r"-?[a-zA-Z]*f")
_COMPRESSORS = {"gzip": ".gz", "pigz": ".gz", "bzip2": ".bz2", "xz": ".xz", "zstd": ".zst"}
_HISTORY_TOOLS = {"postgres": "psql", "mysql": "mysql", "mongo": "mongosh", "redis": "redis-cli", "sqlite": "sqlite3"}
_HISTORY_FILES = {".psql_history": "psql", ".mysql_history": "mysql", ".mariadb_history": "mysql",
                  ".dbshell": "mongo", ".mongosh_repl_history": "mongosh", ".rediscli_history": "redis-cli",
                  ".sqlite_history": "sqlite3"}


# ---------------------------------------------------------------------------
# State

# time, user, kind, files, tool. Compiled code unpacks a fixed tuple type like this one into a C struct
# on every read and builds a new tuple to store it: compare entries by value, never with `is`.
PidEntry = tuple[int, str, str, tuple[str, ...], str]


def _pid_entry(value: Any) -> PidEntry:
    """A saved pid entry; state files of 0.1.0 kept them as objects without the tool."""
    if type(value) is dict:
        return (value["t"], value["user"], value["kind"], tuple(value["files"]), "")
    t, user, kind, files, tool = value
    return (t, user, kind, tuple(files), tool)


class FileSeen:
    """A dump-like file written lately (a dump_file_events row), kept to link to chains that open after it."""

    def __init__(self, t: int, path: str, owner: str, size: int | None, sha256: str, writer_pid: int, query: str,
                 action: str) -> None:
        self.t = t
        self.path = path
        self.owner = owner
        self.size = size
        self.sha256 = sha256
        self.writer_pid = writer_pid
        self.query = query
        self.action = action

    def to_json(self) -> dict[str, Any]:
        return {"t": self.t, "path": self.path, "owner": self.owner, "size": self.size, "sha256": self.sha256,
                "writer_pid": self.writer_pid, "query": self.query, "action": self.action}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FileSeen":
        return cls(data["t"], data["path"], data["owner"], data["size"], data["sha256"], data["writer_pid"],
                   data["query"], data["action"])


@dataclass
class Chain:
    uid: str
    user: str
    start: int
    last_access: int
    first_dump: int = 0
    last_dump: int = 0
    last_egress: int = 0
    tools: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    uid_users: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    server: str = ""  # ladder code of a server context, "" when none
    context: list[str] = field(default_factory=list)
    baseline: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    techniques: list[str] = field(default_factory=list)
    evidences: list[dict[str, Any]] = field(default_factory=list)  # OCSF evidence + "_id", "_t"
    dirty: bool = False

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _CHAIN_FIELDS}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Chain":
        return cls(**data)

    def close_time(self, w_dump: int, w_egress: int) -> int:
        return max(self.last_access + w_dump + w_egress, self.last_dump + w_egress, self.last_egress) + GRACE


_CHAIN_FIELDS: Final = tuple(f.name for f in fields(Chain) if f.name != "dirty")


@dataclass
class HostState:
    host: str
    watermark: int = 0
    admin_groups: dict[str, list[str]] = field(default_factory=dict)  # user -> admin groups (from admin_accounts)
    admin_snapshot: int = 0
    chains: dict[str, Chain] = field(default_factory=dict)
    files: list[FileSeen] = field(default_factory=list)
    egress: list[dict[str, Any]] = field(default_factory=list)
    # pid -> (time, user, kind "db" or "transfer", files it reads or writes, tool): links and de-duplicates
    pids: dict[str, PidEntry] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    emitted: dict[str, list[int]] = field(default_factory=dict)  # uid -> [severity, last event time]
    history: dict[str, int] = field(default_factory=dict)  # history entry identities (snapshots repeat them)
    baseline: B.Baseline = field(default_factory=B.Baseline)
    evictions: int = 0
    last_expiry: int = 0  # event time of the last full expiry sweep
    # Chains closed or evicted since the last flush whose finding is still due
    # (always empty between flushes, so never serialised).
    closing: dict[str, Chain] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "watermark": self.watermark,
            "admin_groups": self.admin_groups,
            "admin_snapshot": self.admin_snapshot,
            "chains": {uid: c.to_json() for uid, c in self.chains.items()},
            "files": [f.to_json() for f in self.files],
            "egress": self.egress,
            "pids": self.pids,
            "seen": self.seen,
            "emitted": self.emitted,
            "history": self.history,
            "baseline": self.baseline.to_json(),
            "evictions": self.evictions,
            "last_expiry": self.last_expiry,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "HostState":
        return cls(
            host=data["host"],
            watermark=data.get("watermark", 0),
            admin_groups=data.get("admin_groups", {}),
            admin_snapshot=data.get("admin_snapshot", 0),
            chains={uid: Chain.from_json(c) for uid, c in data.get("chains", {}).items()},
            files=[FileSeen.from_json(f) for f in data.get("files", [])],
            egress=data.get("egress", []),
            pids={k: _pid_entry(v) for k, v in data.get("pids", {}).items()},
            seen=data.get("seen", {}),
            emitted=data.get("emitted", {}),
            history=data.get("history", {}),
            baseline=B.Baseline.from_json(data.get("baseline", {})),
            evictions=data.get("evictions", 0),
            last_expiry=data.get("last_expiry", 0),
        )


@dataclass(slots=True)
class AccessClass:
    """What a DB client run's invariant fields (path, command line, cwd, users, parents) decide.

    Computed once per distinct combination (Engine.access_class): a fleet's
    logs are mostly the same few thousand commands, so each later run only
    pays for what depends on its pid, time and host.
    """

    cmd: DbCommand
    user: str  # login user, else the uid's user
    tool: str
    out: str  # resolved output path, "" when none
    out_files: tuple[str, ...]  # (out,) or ()
    seen_suffix: str  # dedup key after the pid
    svc_known: bool
    server: str
    odd_parent: bool
    interactive_by_ancestry: bool
    keys: B.Keys
    admin_by_name: bool
    parent_path: str
    cmdline: str
    allowed: bool | None = None  # an allow rule matches on any host; None: it depends on the host
    allowed_on: dict[str, bool] = field(default_factory=dict)  # host -> an allow rule matches (when allowed is None)
    windows: bool | None = None  # automation windows name this user on any host; None: it depends on the host
    expected: bool | None = None  # what _expected() says on any host at any time; None: it depends

    def facts(self, host: str) -> policy.AccessFacts:
        return policy.AccessFacts(user=self.user, tool=self.tool, parent_path=self.parent_path, host=host,
                                  cmdline=self.cmdline)


class TransferClass:
    """What a transfer tool run's invariant fields decide (Engine.transfer_class), computed once per command.

    Read-only once built; a plain class so that compiled, its constructor is native (see cmdline.ProgramArgs).
    """

    def __init__(self, tcmd: TransferCommand, user: str, files: tuple[str, ...], external: tuple[str, ...],
                 staging: bool) -> None:
        self.tcmd = tcmd
        self.user = user
        self.files = files  # local files it reads, resolved
        self.external = external  # external destinations
        self.staging = staging  # staging (or a transfer that uploads nothing): links to chains by path only


# ---------------------------------------------------------------------------
# Helpers


def ipv4_value(address: str) -> int:
    """The 32-bit value of a plain dotted quad (four decimal octets, no leading zeros), else -1.

    Connection logs are full of these. Compiled, a loop reads one far faster
    than a regular expression and socket.inet_aton; interpreted, those are the
    faster way (see rows.decimal).
    """
    size: i64 = len(address)
    if size < 7 or size > 15:
        return -1
    if not COMPILED:
        return int.from_bytes(socket.inet_aton(address), "big") if _DOTTED_QUAD.fullmatch(address) else -1
    value: i64 = 0
    octet: i64 = 0
    digits: i64 = 0
    dots: i64 = 0
    i: i64 = 0
    while i < size:
        ch: i64 = ord(address[i])
        if ch == 46:  # "."
            if digits == 0 or dots == 3:
                return -1
            value = value * 256 + octet
            dots += 1
            octet = 0
            digits = 0
        elif 48 <= ch <= 57:
            if digits > 0 and octet == 0:
                return -1  # a leading zero
            octet = octet * 10 + ch - 48
            if octet > 255:
                return -1
            digits += 1
        else:
            return -1
        i += 1
    if dots != 3 or digits == 0:
        return -1
    return value * 256 + octet


def chain_uid(host: str, user: str, identity: str) -> str:
    digest = hashlib.sha256(f"osq-dbwatch\0{host}\0{user}\0{identity}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def is_external_destination(config: Config, dest: str, is_external_address: Callable[[str], bool] | None = None) -> bool:
    """An upload destination outside the organisation.

    IP literals go through policy.is_external_address (internal_networks);
    a host name is external unless it is single-label or ends in a local
    suffix (.local, .internal, .lan, ...), since the correlator does no DNS.
    """
    dest = dest.strip("[]").lower()
    if not dest:
        return False
    if dest[0].isdigit() or ":" in dest:
        if is_external_address is not None and ipv4_value(dest) >= 0:
            return is_external_address(dest)  # a plain dotted quad is a valid address
        try:
            import ipaddress

            ipaddress.ip_address(dest.split("%", 1)[0])
            if is_external_address is not None:
                return is_external_address(dest)
            return policy.is_external_address(config, dest)
        except ValueError:
            pass
    if dest == "localhost" or "." not in dest or dest.endswith(_INTERNAL_SUFFIXES):
        return False
    return True


def _add(items: list[Any], value: Any) -> bool:
    if value in items:
        return False
    items.append(value)
    return True


def _ms(t: int) -> int:
    return int(t) * 1000


# ---------------------------------------------------------------------------
# The engine


class Engine:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.w_dump = config.dump_after_access_seconds
        self.w_egress = config.egress_after_dump_seconds
        self.settings = config.correlator
        self.db_tools = catalog.db_tools_with_extras(config.extra_db_clients, config.extra_dump_tools)
        self.transfer_tools = catalog.transfer_tools_with_extras(config.extra_transfer_tools)
        # Pure memoisation: command lines repeat a lot in real logs.
        self._parse_db = lru_cache(maxsize=8192)(self._parse_db_uncached)
        self._parse_transfer = lru_cache(maxsize=8192)(self._parse_transfer_uncached)
        self._redact = lru_cache(maxsize=8192)(redact_cmdline)
        self._context = lru_cache(maxsize=16384)(self._context_uncached)
        self._external_slow = lru_cache(maxsize=16384)(lambda a: policy.is_external_address(config, a))
        # internal_networks as (network, mask) integers for the IPv4 fast check
        self._internal_v4 = tuple((int(n.network_address), int(n.netmask)) for n in config.internal_networks
                                  if n.version == 4)
        self._resolve = lru_cache(maxsize=16384)(resolve_path)
        self._admin_users = frozenset(config.admin_users)
        self._external_dest = lru_cache(maxsize=16384)(lambda d: is_external_destination(config, d, self._external))
        self._access_class = lru_cache(maxsize=8192)(self._access_class_uncached)
        self._transfer_class = lru_cache(maxsize=8192)(self._transfer_class_uncached)
        self._windows_named = lru_cache(maxsize=16384)(lambda user, host: bool(policy.windows_for(config, user, host)))

    def _external(self, address: str) -> bool:
        """policy.is_external_address(config, address), with plain dotted quads checked on integers.

        Connection logs are full of distinct addresses, so a cache alone does not
        help and ipaddress objects cost microseconds each. The ranges are the ones
        ipaddress calls loopback, link-local, unspecified, multicast and reserved.
        """
        n = ipv4_value(address)
        if n < 0:
            return self._external_slow(address)
        if n == 0 or n >> 24 == 127 or n >> 16 == 0xA9FE or n >> 28 >= 0xE:
            return False
        for network, mask in self._internal_v4:
            if n & mask == network:
                return False
        return True

    def _parse_db_uncached(self, path: str, cmdline: str) -> DbCommand | None:
        return parse_db_command(path, split_cmdline(cmdline) or [path], self.db_tools)

    def _parse_transfer_uncached(self, path: str, cmdline: str) -> TransferCommand | None:
        return parse_transfer_command(path, split_cmdline(cmdline) or [path], self.transfer_tools)

    # -- entry point --------------------------------------------------------

    def process(self, state: HostState, rows: Sequence[Row]) -> tuple[HostState, list[Finding]]:
        """Feed rows, then flush: the whole state machine in one call."""
        self.step(state, rows)
        return state, self.flush(state)

    def step(self, state: HostState, rows: Sequence[Row]) -> None:
        """Feed rows without producing findings (process() = step() ... flush())."""
        for row in rows:
            t = row.time
            if t > state.watermark:
                state.watermark = t
            kind = type(row)
            if kind is ExecRow:
                if row.query == "transfer_exec":  # type: ignore[union-attr]
                    self._transfer(state, row)  # type: ignore[arg-type]
                else:
                    self._access_exec(state, row)  # type: ignore[arg-type]
            elif kind is FileRow:
                self._file(state, row)  # type: ignore[arg-type]
            elif kind is EgressRow:
                self._db_egress(state, row)  # type: ignore[arg-type]
            elif kind is HistoryRow:
                self._history(state, row)  # type: ignore[arg-type]
            elif kind is AdminRow:
                self._admin(state, row)  # type: ignore[arg-type]
            if state.watermark - state.last_expiry >= SWEEP:
                self._expire(state)  # keeps a long batch's state as small as a short one's

    def flush(self, state: HostState) -> list[Finding]:
        """Findings for chains created or raised since the last flush, then expiry."""
        findings = self._findings(state)
        self._expire(state)
        return findings

    # -- dedup --------------------------------------------------------------

    def _seen(self, st: HostState, key: str, t: int, window: int) -> bool:
        """True when this identity was seen within `window` seconds (a resend)."""
        before = st.seen.get(key)
        if before is not None and abs(t - before) <= window:
            return True
        st.seen[key] = t
        if len(st.seen) > MAX_SEEN:
            for old in list(st.seen)[: len(st.seen) - MAX_SEEN]:
                del st.seen[old]
        return False

    # -- admins -------------------------------------------------------------

    def admin_snapshot(self, st: HostState, snapshot_id: int, members: list[tuple[str, str]]) -> None:
        """An admin_accounts snapshot line: _admin() of each (username, groupname) in one call."""
        if snapshot_id != st.admin_snapshot:
            if snapshot_id < st.admin_snapshot:
                return  # an older snapshot arriving late
            st.admin_groups = {}
            st.admin_snapshot = snapshot_id
        admin_groups = self.config.admin_groups
        for username, groupname in members:
            if groupname in admin_groups:
                _add(st.admin_groups.setdefault(username, []), groupname)

    def _admin(self, st: HostState, row: AdminRow) -> None:
        if row.mode == "snapshot" and row.snapshot_id != st.admin_snapshot:
            # A new snapshot replaces the set (array form and one-row-a-line form alike).
            if row.snapshot_id >= st.admin_snapshot:
                st.admin_groups = {}
                st.admin_snapshot = row.snapshot_id
            else:
                return  # an older snapshot arriving late
        if row.groupname not in self.config.admin_groups:
            return
        groups = st.admin_groups.setdefault(row.username, [])
        if row.mode == "removed":
            if row.groupname in groups:
                groups.remove(row.groupname)
            if not groups:
                st.admin_groups.pop(row.username, None)
        else:
            _add(groups, row.groupname)

    # -- accesses -----------------------------------------------------------

    @staticmethod
    def _ancestors(parent_path: str, parent_cmdline: str, more: tuple[tuple[str, str], ...]) -> list[policy.Ancestor]:
        chain = []
        if parent_path or parent_cmdline:
            name = basename(parent_path) or basename(parent_cmdline.split(" ", 1)[0])
            chain.append(policy.Ancestor(name.lstrip("-"), parent_path, parent_cmdline))
        chain.extend(policy.Ancestor(n or basename(p), p) for n, p in more)
        return chain

    def _context_uncached(self, user: str, username: str, has_session: bool, parent_path: str, parent_cmdline: str,
                          more: tuple[tuple[str, str], ...], unit: str, tty: str) -> tuple[bool, str, bool, bool]:
        """(known service context, server code, unusual parent, interactive by ancestry) of a process.

        Pure in its arguments, so memoised: the same parents and users recur.
        """
        ancestors = self._ancestors(parent_path, parent_cmdline, more)
        svc = policy.service_context(self.config, user, ancestors, unit)
        server_anc = policy.server_ancestor(ancestors)
        server = ""
        if server_anc is not None:
            server = policy.unusual_parent(server_anc) or R.WEB_SERVER_PARENT.code
        elif policy.is_web_account(username) and not has_session and not svc.known:
            server = R.WEB_ACCOUNT_NO_SESSION.code
        odd_parent = bool(ancestors) and policy.unusual_parent(ancestors[0]) in ("parent-in-staging-dir", "hidden-parent")
        interactive = policy.interactive(tty, ancestors) or parent_cmdline.startswith("-")
        return svc.known, server, odd_parent, interactive

    def access_class(self, row: ExecRow) -> "AccessClass | None":
        """What the invariant fields of a DB client run decide (None: not a DB command).

        Memoised on those fields: a fleet runs the same commands over and over.
        """
        return self._access_class(row.path, row.cmdline, row.cwd, row.uid, row.username, row.has_session, row.login_user,
                                  row.parent_path, row.parent_cmdline, row.ancestors, row.systemd_unit, row.tty)

    def _access_class_uncached(self, path: str, cmdline: str, cwd: str, uid: int | None, username: str, has_session: bool,
                               login_user: str, parent_path: str, parent_cmdline: str,
                               ancestors: tuple[tuple[str, str], ...], unit: str, tty: str) -> "AccessClass | None":
        cmd = self._parse_db(path, cmdline)
        if cmd is None:
            return None
        user = login_user if has_session and login_user else username or (str(uid) if uid is not None else "")
        tool = cmd.tool.split(" ", 1)[0]
        out = self._resolve(cmd.output_path, cwd) if cmd.output_path else ""
        svc_known, server, odd_parent, interactive = self._context(
            user, username, has_session, parent_path, parent_cmdline, ancestors, unit, tty
        )
        cls = AccessClass(cmd, user, tool, out, (out,) if out else (), f"|{tool}|{user}", svc_known, server, odd_parent, interactive,
                          B.keys(user, tool, B.parent_key(parent_path, parent_cmdline)),
                          bool(user) and user in self._admin_users, parent_path, cmdline)
        # The parts of "expected" that do not depend on the host, when they do not.
        rules = self.config.allow
        if any(r.host is None and policy.allow_rule_matches(r, cls.facts("")) for r in rules):
            cls.allowed = True
        elif not any(r.host is not None for r in rules):
            cls.allowed = False
        named = [w for w in self.config.automation_windows if not w.users or user in w.users]
        if any(not w.hosts for w in named):
            cls.windows = True
        elif not named:
            cls.windows = False
        # _expected() when none of it depends on the host, its admin groups or the time.
        if cls.allowed or (not server and (cls.admin_by_name or (svc_known and cls.windows is False))):
            cls.expected = True
        elif server and cls.allowed is False:
            cls.expected = False
        return cls

    def _access_exec(self, st: HostState, row: ExecRow) -> None:
        cls = self.access_class(row)
        if cls is None:
            return
        baseline_codes = self.access_gate(st, cls, str(row.pid), row.time)
        if baseline_codes is not None:
            self.access_chain(st, row, cls, baseline_codes)

    def access_gate(self, st: HostState, cls: "AccessClass", pid_key: str, t: int) -> list[str] | None:
        """What every DB client run does to the state (dedup, pid, baseline).

        Returns the baseline codes when the run is unusual (access_chain() goes
        on with it), None when it is a resend or expected. Nearly every line of
        a fleet's log comes through here, hence the inlined dictionary work.
        """
        # One pid, one access: Debian's psql wrapper execs twice; sessions repeat the exec row.
        # The pid's entry is the de-duplication record too: same tool and user within the window.
        # (pid_key: the pid as str(int) writes it)
        pids = st.pids
        entry = pids.get(pid_key)
        if entry is not None and entry[4] == cls.tool and entry[1] == cls.user and entry[2] == "db" \
                and abs(t - entry[0]) <= self.w_dump:
            return None
        # "files" is the class's tuple, shared and immutable (written as a JSON list).
        pids[pid_key] = (t, cls.user, "db", cls.out_files, cls.tool)
        if len(pids) > MAX_PIDS:
            self._cap_pids(st)
        expected = cls.expected
        if expected is None:
            expected = self._expected(st, cls, t)
        if expected:
            B.defer_keys(st.baseline, cls.keys, t)  # what observe() learns, without judging
            return None
        return B.observe_keys(st.baseline, self.settings, cls.keys, t)

    def _expected(self, st: HostState, cls: "AccessClass", t: int) -> bool:
        """An allow rule, an admin, or a service context inside its automation window explains the run."""
        allowed = cls.allowed
        if allowed is None:
            allowed = self._allowed_on(cls, st.host)
        if allowed:
            return True
        if cls.server:
            return False
        if cls.admin_by_name:
            return True
        groups = st.admin_groups.get(cls.user)
        if groups and policy.is_admin(self.config, cls.user, groups):
            return True
        if not cls.svc_known:
            return False
        windows = cls.windows
        if windows is None:
            windows = self._windows_named(cls.user, st.host)
        return not windows or policy.automation_window_ok(self.config, t, cls.user, st.host)

    def _allowed_on(self, cls: "AccessClass", host: str) -> bool:
        """Whether an allow rule matches the run on this host (rules naming hosts), memoised per class."""
        allowed = cls.allowed_on.get(host)
        if allowed is None:
            allowed = policy.matching_allow_rule(self.config, cls.facts(host)) is not None
            if len(cls.allowed_on) >= MAX_PER_CLASS:
                cls.allowed_on.clear()
            cls.allowed_on[host] = allowed
        return allowed

    def _window_ok(self, user: str, host: str, t: int) -> bool:
        return not self.config.automation_windows or policy.automation_window_ok(self.config, t, user, host)

    def access_chain(self, st: HostState, row: ExecRow, cls: "AccessClass", baseline_codes: list[str]) -> None:
        """An unusual DB client run: open or join its chain."""
        user = cls.user
        t = row.time
        cmd = cls.cmd
        out = cls.out
        server = cls.server
        svc_known = cls.svc_known
        window_ok = self._window_ok(user, st.host, t)
        context: list[str] = []
        if svc_known and not window_ok:
            context.append(R.SERVICE_OUTSIDE_WINDOW.code)
        if cmd.dump_intent:
            context.append(R.DUMP_INTENT.code)
        redacted = self._redact(row.cmdline)
        if redacted != row.cmdline or (row.parent_cmdline and self._redact(row.parent_cmdline) != row.parent_cmdline):
            context.append(R.PASSWORD_ON_CMDLINE.code)
        if cls.odd_parent:
            context.append(R.UNUSUAL_PARENT.code)
        interactive = row.interactive if row.interactive is not None else cls.interactive_by_ancestry
        if not interactive and not svc_known and not server:
            context.append(R.NON_INTERACTIVE.code)

        paths = [out] if out else []
        if ">" in row.parent_cmdline and catalog.is_shell(basename(row.parent_path) or row.parent_cmdline.split(" ", 1)[0]):
            for target in _REDIRECT.findall(row.parent_cmdline):
                resolved = resolve_path(target, row.cwd)
                if resolved and not resolved.startswith("/dev/"):
                    paths.append(resolved)
        evidence = {
            "_id": f"x|{row.query}|{row.pid}|{t}|{row.path}",
            "_t": t,
            "process": self._process(row, redacted),
            "data": {"stage": "access", "query": row.query, "tool": cmd.tool, "engine": cmd.engine,
                     "database": cmd.database, "db_host": cmd.host, "db_user": cmd.user,
                     "dump_intent": cmd.dump_intent, "output_path": out},
        }
        links = [R.FROM_SESSION.code] if row.query == "db_cli_sessions" else []
        self._open_or_join(st, user, t, cmd.tool, evidence, paths, [row.pid], [row.username] if row.username else [],
                           server, context, baseline_codes, links)

    def _history(self, st: HostState, row: HistoryRow) -> None:
        tool = _HISTORY_FILES.get(basename(row.file)) or _HISTORY_TOOLS.get(row.engine) or row.engine or "db-client"
        if row.baseline:
            B.learn(st.baseline, row.user, tool, "", row.time, with_hour=False)
            return
        key = f"h|{row.user}|{row.file}|{row.command}"
        if key in st.history:
            st.history[key] = max(st.history[key], row.time)
            return
        st.history[key] = row.time
        if len(st.history) > MAX_SEEN:
            for old in list(st.history)[: len(st.history) - MAX_SEEN]:
                del st.history[old]
        t = row.time
        user = row.user
        intent, out = row.intent, row.output_path
        if not intent:
            found = sql_dump_intent(row.command)
            if found is not None:
                intent, out = found.intent, found.path
        baseline_codes = B.judge(st.baseline, self.settings, user, tool, "", t)
        B.learn(st.baseline, user, tool, "", t, with_hour=False)
        facts = policy.AccessFacts(user=user, tool=tool, parent_path="", host=st.host, cmdline=row.command)
        if policy.matching_allow_rule(self.config, facts) is not None:
            return
        if policy.is_admin(self.config, user, st.admin_groups.get(user, ())):
            return
        if policy.is_service_account(self.config, user) and policy.automation_window_ok(self.config, t, user, st.host):
            return
        context = [R.DUMP_INTENT.code] if intent else []
        evidence = {
            "_id": f"h|{row.user}|{row.file}|{row.command}",
            "_t": t,
            "data": {"stage": "access", "query": row.query, "tool": tool, "engine": row.engine,
                     "history_file": row.file, "command": redact_text(row.command)[:4096],
                     "dump_intent": intent, "output_path": out},
            "actor": {"user": {"name": user}},
        }
        paths = [out] if out.startswith("/") else []
        # A client writes its history when it exits: the access began up to a window earlier.
        self._open_or_join(st, user, t, tool, evidence, paths, [], [user], "", context, baseline_codes,
                           [R.FROM_HISTORY.code], earliest=t - self.w_dump)

    def _open_or_join(self, st: HostState, user: str, t: int, tool: str, evidence: dict[str, Any], paths: list[str],
                      pids: list[int], uid_users: list[str], server: str, context: list[str],
                      baseline_codes: list[str], links: list[str], earliest: int | None = None) -> None:
        chain = None
        for c in st.chains.values():
            if c.user == user and c.start - self.w_dump <= t <= c.last_access + self.w_dump:
                chain = c
                break
        if chain is None:
            uid = chain_uid(st.host, user, evidence["_id"])
            chain = Chain(uid=uid, user=user, start=t if earliest is None else earliest, last_access=t)
            st.chains[uid] = chain
            chain.stages.append("access")
            chain.techniques.append("T1213")
            if len(st.chains) > self.settings.max_pending_per_host:
                self._evict(st)
            if uid not in st.chains:
                return
        else:
            chain.start = min(chain.start, t if earliest is None else earliest)
            chain.last_access = max(chain.last_access, t)
        if not any(e["_id"] == evidence["_id"] for e in chain.evidences):
            chain.evidences.append(evidence)
        _add(chain.tools, tool)
        for p in paths:
            _add(chain.paths, p)
        for pid in pids:
            _add(chain.pids, pid)
        for u in uid_users:
            _add(chain.uid_users, u)
        if server and not chain.server:
            chain.server = server
            if server in (R.WEB_SERVER_PARENT.code, R.WEB_ACCOUNT_NO_SESSION.code):
                _add(chain.techniques, "T1505.003")
        for code in context:
            _add(chain.context, code)
        for code in baseline_codes:
            if not chain.baseline:
                chain.baseline.append(code)
            else:
                _add(chain.baseline, code)
        for code in links:
            _add(chain.links, code)
        chain.dirty = True
        # Evidence seen before its access (newest first; the lists are in arrival order).
        oldest = chain.start - SLACK - GRACE
        for f in st.files[::-1]:
            if f.t < oldest:
                break
            self._try_file(st, chain, f)
        for e in st.egress[::-1]:
            if e["t"] < oldest:
                break
            self._try_egress(st, chain, e)

    def _evict(self, st: HostState) -> None:
        victim = min(st.chains.values(), key=lambda c: (max(c.last_access, c.last_dump, c.last_egress), c.uid))
        del st.chains[victim.uid]
        if victim.dirty:
            st.closing[victim.uid] = victim  # its finding is still emitted at the next flush
        st.evictions += 1

    def _cap_pids(self, st: HostState) -> None:
        if len(st.pids) > MAX_PIDS:
            for old in list(st.pids)[: len(st.pids) - MAX_PIDS]:
                del st.pids[old]

    # -- dumps --------------------------------------------------------------

    def _file(self, st: HostState, row: FileRow) -> None:
        if row.baseline:
            return
        self.file_event(st, row.query, row.time, row.path, row.action, row.inode, row.owner, row.size, row.sha256,
                        row.writer_pid)

    def file_event(self, st: HostState, query: str, t: int, path: str, action: str, inode: int | None, owner: str,
                   size: int | None, sha256: str, writer_pid: int) -> None:
        """A dump-like file written (not a baseline row): remembered, and linked to any chain it fits."""
        if action == "DELETED":
            return
        if self._seen(st, f"f|{path}|{action}|{t}|{inode}", t, self.w_dump):
            return
        f = FileSeen(t, path, owner, size, sha256, writer_pid, query, action)
        if st.files and st.files[-1].path == path:
            st.files[-1] = f  # CREATED then UPDATED: one file
        else:
            st.files.append(f)
            if len(st.files) > MAX_RECENT:
                del st.files[0]
        for chain in st.chains.values():
            self._try_file(st, chain, f)

    def _try_file(self, st: HostState, chain: Chain, f: FileSeen) -> None:
        t = f.t
        if not (chain.start - SLACK <= t <= chain.last_access + self.w_dump):
            return
        path = f.path
        links: list[str] = []
        if path in chain.paths:
            links.append(R.LINKED_BY_PATH.code)
        elif f.writer_pid and f.writer_pid in chain.pids:
            links.append(R.LINKED_BY_PID.code)
        elif not (f.owner and (f.owner == chain.user or f.owner in chain.uid_users)):
            return
        if not links and not catalog.dump_suffix_strength(path):
            return
        ev_id = "f|" + path
        for e in chain.evidences:
            if e["_id"] == ev_id:
                return
        file_obj: dict[str, Any] = {"path": path, "name": basename(path), "type_id": 1, "type": "Regular File"}
        if f.size is not None:
            file_obj["size"] = f.size
        if f.owner:
            file_obj["owner"] = {"name": f.owner}
        if f.sha256:
            file_obj["hashes"] = [{"algorithm_id": 3, "algorithm": "SHA-256", "value": f.sha256}]
        chain.evidences.append({"_id": ev_id, "_t": t, "file": file_obj,
                                "data": {"stage": "dump", "query": f.query, "action": f.action}})
        _add(chain.paths, path)
        chain.first_dump = min(chain.first_dump, t) if chain.first_dump else t
        chain.last_dump = max(chain.last_dump, t)
        _add(chain.stages, "dump")
        _add(chain.techniques, "T1005")
        _add(chain.techniques, "T1074")
        for code in links:
            _add(chain.links, code)
        if path.startswith("/var/www/") or "/public_html/" in path or path.startswith("/srv/www/"):
            _add(chain.context, R.DUMP_IN_WEB_ROOT.code)
        chain.dirty = True
        oldest = t - SLACK - GRACE
        for e in st.egress[::-1]:
            if e["t"] < oldest:
                break
            self._try_egress(st, chain, e)

    # -- transfers and egress -------------------------------------------------

    def transfer_class(self, row: ExecRow) -> "TransferClass | None":
        """What the invariant fields of a transfer tool run decide (None: not a transfer command); memoised."""
        return self._transfer_class(row.path, row.cmdline, row.cwd, row.uid, row.username, row.has_session, row.login_user)

    def _transfer_class_uncached(self, path: str, cmdline: str, cwd: str, uid: int | None, username: str,
                                 has_session: bool, login_user: str) -> "TransferClass | None":
        tcmd = self._parse_transfer(path, cmdline)
        if tcmd is None:
            return None
        user = login_user if has_session and login_user else username or (str(uid) if uid is not None else "")
        files = tuple(p for p in (self._resolve(f, cwd) for f in tcmd.files) if p)
        external = tuple(d for d in tcmd.destinations if self._external_dest(d))
        staging = tcmd.kind == "staging" or not (tcmd.upload or tcmd.tool in ("nc", "ncat", "netcat", "socat"))
        return TransferClass(tcmd, user, files, external, staging)

    def _transfer(self, st: HostState, row: ExecRow) -> None:
        cls = self.transfer_class(row)
        if cls is not None and self.transfer_gate(st, cls, str(row.pid), row.time):
            self.transfer_link(st, row, cls)

    def transfer_gate(self, st: HostState, cls: "TransferClass", pid_key: str, t: int) -> bool:
        """What every transfer tool run does to the state (dedup, pid); True when it may link or is an upload."""
        entry = st.pids.get(pid_key)
        if entry is not None and entry[0] == t and entry[4] == cls.tcmd.tool and entry[2] == "transfer":
            return False  # osquery sent the row again
        st.pids[pid_key] = (t, cls.user, "transfer", cls.files, cls.tcmd.tool)  # shared tuple, as above
        if len(st.pids) > MAX_PIDS:
            self._cap_pids(st)
        if cls.staging:
            return bool(st.chains) and bool(cls.files)
        return bool(cls.external)

    def transfer_link(self, st: HostState, row: ExecRow, cls: "TransferClass") -> None:
        """A staging command over a chain's files joins it; an external upload is remembered as egress."""
        tcmd = cls.tcmd
        t = row.time
        files = list(cls.files)
        redacted = self._redact(row.cmdline)
        if cls.staging:
            outputs: tuple[str, ...] | None = None
            for chain in st.chains.values():
                if not any(p in chain.paths for p in files):
                    continue
                if outputs is None:
                    outputs = self._staging_outputs(tcmd, row.cmdline, row.cwd)
                ev_id = f"s|{row.pid}|{t}"
                if any(e["_id"] == ev_id for e in chain.evidences):
                    continue
                chain.evidences.append({"_id": ev_id, "_t": t, "process": self._process(row, redacted),
                                        "data": {"stage": "staging", "query": row.query, "tool": tcmd.tool}})
                for p in outputs:
                    _add(chain.paths, p)
                _add(chain.context, R.DUMP_STAGED.code)
                _add(chain.techniques, "T1560")
                _add(chain.links, R.LINKED_BY_PATH.code)
                chain.dirty = True
            return
        e = {"_id": f"u|{row.pid}|{t}", "t": t, "pid": row.pid, "user": cls.user, "files": files, "tool": tcmd.tool,
             "dest": cls.external[0], "port": None, "query": row.query,
             "process": self._process(row, redacted)}
        self._remember_egress(st, e)

    def _staging_outputs(self, tcmd: TransferCommand, cmdline: str, cwd: str) -> tuple[str, ...]:
        """Files a staging command writes (and reads): they join the chain's paths."""
        argv = split_cmdline(cmdline)
        outs: list[str] = []
        for i, tok in enumerate(argv[:-1]):
            # -f/-o/-out FILE; tar's bundled flags ending in f (`tar czf OUT`, `tar -czf OUT`)
            tar_f = tcmd.tool == "tar" and _TAR_FLAGS.fullmatch(tok) is not None and (tok[0] == "-" or i == 1)
            if tok in _OUTPUT_OPTS or tar_f:
                outs.append(argv[i + 1])
        suffix = _COMPRESSORS.get(tcmd.tool)
        if suffix:
            outs.extend(f + suffix for f in tcmd.files)
        if tcmd.tool == "split" and len(tcmd.files) >= 2:
            outs.append(tcmd.files[-1])  # the prefix of the pieces
        return tuple(p for p in (self._resolve(o, cwd) for o in [*outs, *tcmd.files]) if p)

    def _db_egress(self, st: HostState, row: EgressRow) -> None:
        if row.success and self._external(row.address):
            self.socket_egress(st, row.query, row.time, row.pid, row.path, row.has_session, row.login_user, row.address,
                               row.port)

    def socket_egress(self, st: HostState, query: str, t: int, pid: int, path: str, has_session: bool, login_user: str,
                      address: str, port: int | None) -> None:
        """A successful connect to an external address (db_egress): remembered, and linked to any chain it fits."""
        key = f"e|{pid}|{address}|{port}|{t}"
        if self._seen(st, key, t, self.w_egress):
            return
        # The evidence's process object is built when the connection joins a chain (_egress_process).
        e = {"_id": key, "t": t, "pid": pid, "user": login_user if has_session and login_user else "", "files": (),
             "tool": basename(path), "ip": address, "port": port, "query": query, "path": path}
        self._remember_egress(st, e)

    @staticmethod
    def _egress_process(e: dict[str, Any]) -> dict[str, Any]:
        process = e.get("process")
        if process is not None:
            return process  # a transfer tool's, built from its exec row
        process = {"pid": e["pid"]}
        if e["path"]:
            process["file"] = {"path": e["path"], "name": e["tool"], "type_id": 1, "type": "Regular File"}
        if e["user"]:
            process["user"] = {"name": e["user"]}
        return process

    def _remember_egress(self, st: HostState, e: dict[str, Any]) -> None:
        st.egress.append(e)
        if len(st.egress) > MAX_RECENT:
            del st.egress[0]
        for chain in st.chains.values():
            self._try_egress(st, chain, e)

    def _try_egress(self, st: HostState, chain: Chain, e: dict[str, Any]) -> None:
        t = e["t"]
        if chain.first_dump:
            if not (chain.first_dump - SLACK <= t <= chain.last_dump + self.w_egress):
                return
        elif not (chain.start - SLACK <= t <= chain.last_access + self.w_egress):
            return
        links: list[str] = []
        pid_info = st.pids.get(str(e["pid"])) if e["pid"] else None
        files = list(e["files"]) or (list(pid_info[3]) if pid_info else [])
        if any(p in chain.paths for p in files):
            links.append(R.LINKED_BY_PATH.code)
            if not e["files"]:
                links.append(R.LINKED_BY_PID.code)
        elif e["pid"] and e["pid"] in chain.pids:
            if not chain.first_dump:
                return  # the client's own connection to its database server
            links.append(R.LINKED_BY_PID.code)
        elif e["user"]:
            if e["user"] != chain.user:
                return
        elif pid_info is not None and pid_info[1] == chain.user:
            links.append(R.LINKED_BY_PID.code)
        else:
            return
        if any(x["_id"] == e["_id"] for x in chain.evidences):
            return
        evidence: dict[str, Any] = {"_id": e["_id"], "_t": t, "process": self._egress_process(e),
                                    "data": {"stage": "egress", "query": e["query"], "tool": e["tool"]}}
        if e.get("ip"):
            endpoint: dict[str, Any] = {"ip": e["ip"]}
            if e["port"] is not None:
                endpoint["port"] = e["port"]
        else:
            endpoint = {"hostname": e["dest"]}
        evidence["dst_endpoint"] = endpoint
        chain.evidences.append(evidence)
        chain.last_egress = max(chain.last_egress, t)
        _add(chain.stages, "egress")
        web = e["tool"] in WEB_TRANSFER_TOOLS or e.get("port") in (80, 443, 8080, 8443)
        _add(chain.techniques, "T1567" if web else "T1048")
        for code in links:
            _add(chain.links, code)
        chain.dirty = True

    # -- evidence objects -----------------------------------------------------

    def _process(self, row: ExecRow, redacted: str) -> dict[str, Any]:
        process: dict[str, Any] = {
            "pid": row.pid,
            "cmd_line": redacted,
            "file": {"path": row.path, "name": basename(row.path), "type_id": 1, "type": "Regular File"},
            "created_time": _ms(row.time),
            "user": {"name": row.username, **({"uid": str(row.uid)} if row.uid is not None else {})},
        }
        if row.cwd:
            process["working_directory"] = row.cwd
        if row.parent_pid or row.parent_path or row.parent_cmdline:
            parent: dict[str, Any] = {"pid": row.parent_pid}
            if row.parent_cmdline:
                parent["cmd_line"] = self._redact(row.parent_cmdline)
            if row.parent_path:
                parent["file"] = {"path": row.parent_path, "name": basename(row.parent_path), "type_id": 1,
                                  "type": "Regular File"}
            process["parent_process"] = parent
        return process

    # -- scoring and output -----------------------------------------------------

    def score(self, chain: Chain) -> tuple[int, list[str]]:
        """Score and reason labels of a chain (see reasons.py for the bands)."""
        labels = [R.label(R.UNUSUAL_ACCESS.code)]
        has_dump = "dump" in chain.stages
        has_egress = "egress" in chain.stages
        severity = 2
        if has_dump:
            labels.append(R.label(R.DUMP_AFTER_ACCESS.code))
            severity = 3
        if has_egress:
            if has_dump and chain.last_egress >= chain.first_dump - SLACK:
                labels.append(R.label(R.EGRESS_AFTER_DUMP.code))
                severity = 4
            elif not has_dump:
                labels.append(R.label(R.EGRESS_AFTER_ACCESS.code))
                severity = 3
        if chain.server:
            if severity < 4:
                labels.append(R.label(chain.server, R.BAND_BASE[4] - R.BAND_BASE[severity]))
                severity = 4
            else:
                labels.append(R.label(chain.server, 0))
            if has_dump and has_egress and severity == 4:
                labels.append(R.label(R.SERVER_CHAIN_EGRESS.code))
                severity = 5
        base = R.BAND_BASE[severity]
        low, high = base - 10, base + 9
        score = base
        for code in chain.context:
            score += R.REASONS[code].delta
            labels.append(R.label(code))
        score = max(low, min(high, score))
        for code in chain.baseline:
            score += R.REASONS[code].delta
            labels.append(R.label(code))
        for code in chain.links:
            labels.append(R.label(code))
        return max(0, min(100, score)), labels

    def finding(self, st: HostState, chain: Chain, update: bool) -> Finding:
        score, labels = self.score(chain)
        severity = R.severity_of(score)
        evidences = sorted(chain.evidences, key=lambda e: (e["_t"], e["_id"]))
        times = [e["_t"] for e in evidences]
        clean = [{k: v for k, v in e.items() if not k.startswith("_")} for e in evidences]
        title, message = self._sentences(st.host, chain, evidences)
        # Stages in the order their first events happened (rows of different
        # queries reach the log in any order); a chain always opens with its
        # access (a history entry's time is only when the file was written).
        first: dict[str, int] = {}
        for e in evidences:
            stage = e["data"]["stage"]
            if stage in chain.stages and stage not in first:
                first[stage] = e["_t"]
        order = ("access", "dump", "egress")
        stages = sorted(chain.stages, key=lambda s: (s != "access", first.get(s, 0), order.index(s)))
        return Finding(
            uid=chain.uid,
            host=st.host,
            user=chain.user,
            severity_id=severity,
            score=score,
            update=update,
            time_ms=_ms(max(times)),
            first_seen_ms=_ms(min(times)),
            last_seen_ms=_ms(max(times)),
            title=title,
            message=message,
            stages=stages,
            reasons=labels,
            techniques=sorted(chain.techniques, key=lambda x: ("T1505.003", "T1213", "T1005", "T1074", "T1560", "T1048", "T1567").index(x)),
            evidences=clean,
        )

    def _sentences(self, host: str, chain: Chain, evidences: list[dict[str, Any]]) -> tuple[str, str]:
        tools = ", ".join(chain.tools)
        where = {
            R.WEB_SERVER_PARENT.code: " under a web server",
            R.DB_SERVER_PARENT.code: " under a database server",
            R.WEB_ACCOUNT_NO_SESSION.code: " as a web server account with no login session",
        }.get(chain.server, "")
        dumps = [e["file"]["path"] for e in evidences if "file" in e]
        dests = [e["dst_endpoint"].get("ip") or e["dst_endpoint"].get("hostname") for e in evidences if "dst_endpoint" in e]
        if "egress" in chain.stages and dumps:
            title = f"Database dump sent off {host} by {chain.user}"
        elif "egress" in chain.stages:
            title = f"Unusual database access by {chain.user} on {host} followed by an outbound transfer"
        elif dumps:
            title = f"Unusual database access by {chain.user} on {host} followed by a dump"
        else:
            title = f"Unusual database access by {chain.user} on {host}"
        if chain.server in (R.WEB_SERVER_PARENT.code, R.WEB_ACCOUNT_NO_SESSION.code):
            title = "Possible web shell: " + title[0].lower() + title[1:]
        message = f"{chain.user} ran {tools} on {host}{where}"
        if dumps:
            message += f", then {len(dumps)} dump-like file{'s' if len(dumps) > 1 else ''} appeared ({dumps[0]})"
        if dests:
            message += f", then data went out to {dests[0]}"
        return title, redact_text(message + ".")

    def _findings(self, st: HostState) -> list[Finding]:
        out: list[Finding] = []
        chains = list(st.closing.values()) + list(st.chains.values())
        st.closing.clear()
        for chain in chains:
            if not chain.dirty:
                continue
            chain.dirty = False
            finding = self.finding(st, chain, update=False)
            previous = st.emitted.get(chain.uid)
            if previous is None:
                out.append(finding)
            elif finding.severity_id > previous[0]:
                finding.update = True
                out.append(finding)
            else:
                previous[1] = max(previous[1], finding.last_seen_ms // 1000)
                continue
            st.emitted[chain.uid] = [finding.severity_id, finding.last_seen_ms // 1000]
        return out

    # -- expiry ---------------------------------------------------------------

    def _expire(self, st: HostState) -> None:
        """Drop what can no longer matter; a full sweep at most every SWEEP seconds of event time."""
        now = st.watermark
        if st.chains:
            for uid in [u for u, c in st.chains.items() if c.close_time(self.w_dump, self.w_egress) < now]:
                chain = st.chains.pop(uid)
                if chain.dirty:
                    st.closing[uid] = chain
        if now - st.last_expiry < SWEEP:
            return
        st.last_expiry = now
        horizon = now - max(self.w_dump, self.w_egress) - GRACE
        st.files = [f for f in st.files if f.t >= horizon]
        st.egress = [e for e in st.egress if e["t"] >= horizon]
        pid_horizon = now - self.w_dump - self.w_egress - GRACE
        # Rebuilt rather than deleted from: most entries are stale by the next sweep (order is kept).
        st.pids = {k: v for k, v in st.pids.items() if v[0] >= pid_horizon}
        st.seen = {k: v for k, v in st.seen.items() if v >= horizon}
        expiry = now - self.settings.state_expiry_seconds
        for table2 in (st.history,):
            stale = [k for k, v in table2.items() if v < expiry]
            for k in stale:
                del table2[k]
        stale = [u for u, (_, last) in st.emitted.items() if last < expiry and u not in st.chains and u not in st.closing]
        for u in stale:
            del st.emitted[u]
        if now - st.baseline.pruned >= 86400:
            st.baseline.pruned = now
            B.prune(st.baseline, now, self.settings.state_expiry_seconds)
