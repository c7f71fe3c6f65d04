"""Classification: what a DB client or transfer tool run is, from the columns that do not change between runs.

A fleet's logs are mostly the same few thousand commands, so a run's class
(its parsed command, login user, server context, baseline keys, and the parts
of "expected" that do not depend on the host) is computed once per distinct
combination of its invariant columns and kept in the one memo, ExecMemo. Both
readers of the log (fastpath.py and rows.py through Engine.step) ask
Classifier.exec_class, so a run is judged the same whichever reads it.

The tool names this module spells (web transfer tools, raw socket tools,
compressors, archivers, history files) are together at the top, each read by
one function; the catalog owns them once it registers them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final, final

from .. import catalog, policy
from ..cmdline import (
    DbCommand,
    TransferCommand,
    basename,
    parse_db_command,
    parse_transfer_command,
    resolve_path,
    split_cmdline,
)
from ..config import Config
from . import baseline as B
from . import reasons as R
from .addresses import Networks
from .rows import session, to_int

# ---------------------------------------------------------------------------
# Tool knowledge: all of it from the catalog (docs/catalog.md); Final names so compiled code keeps them in C statics

WEB_TRANSFER_TOOLS: Final = catalog.WEB_TRANSFER_TOOLS
WEB_PORTS: Final = (80, 443, 8080, 8443)
RAW_SOCKET_TOOLS: Final = catalog.STREAM_TRANSFER_TOOLS  # every run may send: never staging
_COMPRESSORS: Final = catalog.COMPRESSOR_SUFFIXES
_BUNDLED_OUTPUT: Final = catalog.BUNDLED_OUTPUT_TOOLS  # tar's `czf OUT`
_PREFIX_OUTPUT: Final = catalog.PREFIX_OUTPUT_TOOLS  # split's last operand is the pieces' prefix
_OUTPUT_OPTS: Final = frozenset({"-f", "-o", "-out", "--output", "--file"})
# PostgreSQL's COPY ... TO PROGRAM 'command' (quotes doubled inside), as osquery logs the client's argv joined.
_TO_PROGRAM: Final = re.compile(r"\bTO\s+PROGRAM\s+(?:E?'((?:[^']|'')*)'|\$\$(.*?)\$\$)", re.IGNORECASE | re.DOTALL)
_BUNDLED_FLAGS: Final = re.compile(r"-?[a-zA-Z]*f")


def is_web_transfer(tool: str, port: int | None) -> bool:
    """Egress over a web service (T1567) rather than another protocol (T1048)."""
    return tool in WEB_TRANSFER_TOOLS or port in WEB_PORTS


def history_tool(file: str, engine: str) -> str:
    """The client that wrote a history file (by its name, else by the table's engine column)."""
    source = catalog.history_source_for(file)
    return (source.tool if source is not None else "") or catalog.history_tool(engine) or engine or "db-client"


def staging_outputs(tcmd: TransferCommand, cmdline: str, cwd: str) -> tuple[str, ...]:
    """Files a staging command writes (and reads), resolved: they join the chain's paths."""
    argv = split_cmdline(cmdline)
    outs: list[str] = []
    for i, tok in enumerate(argv[:-1]):
        # -f/-o/-out FILE; tar's bundled flags ending in f (`tar czf OUT`, `tar -czf OUT`)
        tar_f = tcmd.tool in _BUNDLED_OUTPUT and _BUNDLED_FLAGS.fullmatch(tok) is not None and (tok[0] == "-" or i == 1)
        if tok in _OUTPUT_OPTS or tar_f:
            outs.append(argv[i + 1])
    suffix = _COMPRESSORS.get(tcmd.tool)
    if suffix:
        outs.extend(f + suffix for f in tcmd.files)
    if tcmd.tool in _PREFIX_OUTPUT and len(tcmd.files) >= 2:
        outs.append(tcmd.files[-1])  # the prefix of the pieces
    return tuple(p for p in (resolve_path(o, cwd) for o in [*outs, *tcmd.files]) if p)


# ---------------------------------------------------------------------------
# Classes

MAX_PER_CLASS: Final = 4096  # hosts remembered per memoised class


@final  # no subclasses: readers test `type(cls) is AccessClass` (isinstance() is a call when interpreted)
@dataclass(slots=True)
class AccessClass:
    """What a DB client run's invariant fields (path, command line, cwd, users, parents) decide."""

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
    program_tool: str = ""  # the transfer tool a COPY ... TO PROGRAM makes the server run ("" when none)
    parent_unknown: bool = False  # no parent, ancestor, terminal or unit known (the parent exited before the query ran)
    allowed: bool | None = None  # an allow rule matches on any host; None: it depends on the host
    allowed_on: dict[str, bool] = field(default_factory=dict)  # host -> an allow rule matches (when allowed is None)
    windows: bool | None = None  # automation windows name this user on any host; None: it depends on the host
    expected: bool | None = None  # what Classifier.expected() says on any host at any time; None: it depends

    def facts(self, host: str) -> policy.AccessFacts:
        return policy.AccessFacts(user=self.user, tool=self.tool, parent_path=self.parent_path, host=host,
                                  cmdline=self.cmdline)


class TransferClass:
    """What a transfer tool run's invariant fields decide, computed once per command.

    Read-only once built; a plain class so that compiled, its constructor is native (see cmdline.ProgramArgs).
    """

    def __init__(self, tcmd: TransferCommand, user: str, files: tuple[str, ...], external: tuple[str, ...],
                 staging: bool, server: bool = False) -> None:
        self.tcmd = tcmd
        self.server = server  # run by a database server's process tree (COPY ... TO PROGRAM, a UDF)
        self.user = user
        self.files = files  # local files it reads, resolved
        self.external = external  # external destinations
        self.staging = staging  # staging (or a transfer that uploads nothing): links to chains by path only


ExecClass = AccessClass | TransferClass


# ---------------------------------------------------------------------------
# The one memo

MAX_KEYS: Final = 32768  # memoised column combinations (then the memo starts afresh)
MAX_VARIANTS: Final = 16  # memoised combinations of one command line (the oldest goes first)
MAX_KEY_TEXT: Final = 4096  # characters of text columns above which a combination is not memoised


# A run's invariant columns as the memo compares them, in one of two forms that never compare equal (their lengths
# differ), so one memo serves both readers of the log:
# - a typed row's (Engine.exec_class): run_key() of its 12 values, uid an int, has_session a bool;
# - the fast path's, of a decoded line (FAST_KEY_SIZE values): (path, cmdline, cwd, uid column, username, auid column,
#   login_user, parent_path, parent_cmdline) with the uid and auid columns as logged (str, int or None: the
#   decoder admits nothing else), read by rows.to_int and rows.session only when the memo has no class for them.
# Compared as one tuple (C code), where comparing a dozen fields one by one is a dozen interpreted steps.
RunKey = tuple[Any, ...]
FAST_KEY_SIZE: Final = 9


def run_key(path: str, cmdline: str, cwd: str, uid: int | None, username: str, has_session: bool, login_user: str,
            parent_path: str, parent_cmdline: str, ancestors: tuple[tuple[str, str], ...], unit: str,
            tty: str) -> RunKey:
    """A typed row's memo key (see RunKey)."""
    return (path, cmdline, cwd, uid, username, has_session, login_user, parent_path, parent_cmdline, ancestors, unit,
            tty)


class _MemoisedRun:
    """A memoised run: its key (RunKey) and its class (None: not one of ours)."""

    __slots__ = ("cls", "key")

    def __init__(self, key: RunKey, cls: ExecClass | None) -> None:
        self.key = key
        self.cls = cls


class ExecMemo:
    """Invariant columns (RunKey) -> class, looked up by the command line first.

    Hashing one string and comparing the rest as one tuple costs less than hashing a tuple
    of a dozen fresh values; the command line tells nearly every run apart.
    """

    def __init__(self) -> None:
        self.by_cmdline: dict[str, list[_MemoisedRun]] = {}
        self.size = 0

    def find(self, cmdline: str, key: RunKey) -> _MemoisedRun | None:
        seen = self.by_cmdline.get(cmdline)
        if seen is not None:
            for e in seen:
                if e.key == key:
                    return e
        return None

    def put(self, cmdline: str, entry: _MemoisedRun) -> None:
        if self.size >= MAX_KEYS:
            self.by_cmdline.clear()
            self.size = 0
        seen = self.by_cmdline.get(cmdline)
        if seen is None:
            self.by_cmdline[cmdline] = [entry]
        else:
            if len(seen) >= MAX_VARIANTS:
                del seen[0]
                self.size -= 1
            seen.append(entry)
        self.size += 1


# ---------------------------------------------------------------------------
# The classifier


def _ancestors(parent_path: str, parent_cmdline: str, more: tuple[tuple[str, str], ...]) -> list[policy.Ancestor]:
    chain = []
    if parent_path or parent_cmdline:
        name = basename(parent_path) or basename(parent_cmdline.split(" ", 1)[0])
        chain.append(policy.Ancestor(name.lstrip("-"), parent_path, parent_cmdline))
    chain.extend(policy.Ancestor(n or basename(p), p) for n, p in more)
    return chain


class Classifier:
    """Classes of runs for one config, each computed once (ExecMemo)."""

    def __init__(self, config: Config, networks: Networks) -> None:
        self.config = config
        self.networks = networks
        self.db_tools = catalog.db_tools_with_extras(config.extra_db_clients, config.extra_dump_tools)
        self.transfer_tools = catalog.transfer_tools_with_extras(config.extra_transfer_tools)
        self.admin_users = frozenset(config.admin_users)
        self.access = ExecMemo()
        self.transfers = ExecMemo()
        self.sessions = ExecMemo()  # db_cli_sessions: command lines in the program's order (logged=False)
        # Pure functions whose arguments recur under many distinct runs (a command line under other
        # users, directories or parents; the same parents under many command lines).
        self._parse_db = lru_cache(maxsize=8192)(self._parse_db_uncached)
        self._parse_transfer = lru_cache(maxsize=8192)(self._parse_transfer_uncached)
        self._resolve = lru_cache(maxsize=16384)(resolve_path)
        self._context = lru_cache(maxsize=16384)(self._context_uncached)
        self._windows_named: dict[tuple[str, str], bool] = {}

    def exec_class(self, transfer: bool, key: RunKey, logged: bool = True) -> ExecClass | None:
        """The class of a transfer tool run (transfer) or DB client run of a RunKey; None: not a command of that kind.

        `logged=False`: a DB client's command line read from /proc in the program's order (db_cli_sessions),
        not as osquery logs argv (cmdline.split_cmdline); such runs have a memo of their own.
        """
        memo = self.transfers if transfer else self.access if logged else self.sessions
        cmdline: str = key[1]
        seen = memo.by_cmdline.get(cmdline)  # memo.find(cmdline, key) inline: nearly every exec row asks it
        if seen is not None:
            for e in seen:
                if e.key == key:
                    return e.cls
        path: str = key[0]
        cwd: str = key[2]
        username: str = key[4]
        login_user: str = key[6]
        parent_path: str = key[7]
        parent_cmdline: str = key[8]
        uid: int | None
        ancestors: tuple[tuple[str, str], ...]
        if len(key) == FAST_KEY_SIZE:
            uid = to_int(key[3])
            has_session = session(key[5])
            ancestors, unit, tty = (), "", ""
        else:
            uid = key[3]
            has_session = key[5]
            ancestors, unit, tty = key[9], key[10], key[11]
        user = login_user if has_session and login_user else username or (str(uid) if uid is not None else "")
        cls: ExecClass | None
        if transfer:
            cls = self._transfer_class(path, cmdline, cwd, user, username, has_session, parent_path, parent_cmdline,
                                       ancestors)
        else:
            cls = self._access_class(path, cmdline, cwd, user, username, has_session, parent_path, parent_cmdline,
                                     ancestors, unit, tty, logged)
        size = len(path) + len(cmdline) + len(cwd) + len(username) + len(login_user) + len(parent_path) \
            + len(parent_cmdline)
        if size <= MAX_KEY_TEXT:  # hostile multi-kilobyte command lines are judged, not remembered
            memo.put(cmdline, _MemoisedRun(key, cls))
        return cls

    def _parse_db_uncached(self, path: str, cmdline: str, logged: bool) -> DbCommand | None:
        return parse_db_command(path, split_cmdline(cmdline, logged) or [path], self.db_tools)

    def _parse_transfer_uncached(self, path: str, cmdline: str) -> TransferCommand | None:
        return parse_transfer_command(path, split_cmdline(cmdline) or [path], self.transfer_tools)

    def _context_uncached(self, user: str, username: str, has_session: bool, parent_path: str, parent_cmdline: str,
                          more: tuple[tuple[str, str], ...], unit: str, tty: str) -> tuple[bool, str, bool, bool]:
        """(known service context, server code, unusual parent, interactive by ancestry) of a process."""
        ancestors = _ancestors(parent_path, parent_cmdline, more)
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

    def _access_class(self, path: str, cmdline: str, cwd: str, user: str, username: str, has_session: bool,
                      parent_path: str, parent_cmdline: str, ancestors: tuple[tuple[str, str], ...], unit: str,
                      tty: str, logged: bool = True) -> AccessClass | None:
        cmd = self._parse_db(path, cmdline, logged)
        if cmd is None:
            return None
        tool = cmd.tool.split(" ", 1)[0]
        out = self._resolve(cmd.output_path, cwd) if cmd.output_path else ""
        svc_known, server, odd_parent, interactive = self._context(
            user, username, has_session, parent_path, parent_cmdline, ancestors, unit, tty
        )
        program = self.program_tool(cmd, cmdline)
        if program and not server:
            server = R.SERVER_EXFIL.code  # the database server itself will send the data out
        cls = AccessClass(cmd, user, tool, out, (out,) if out else (), f"|{tool}|{user}", svc_known, server, odd_parent,
                          interactive, B.keys(user, tool, B.parent_key(parent_path, parent_cmdline)),
                          bool(user) and user in self.admin_users, parent_path, cmdline,
                          program, not (parent_path or parent_cmdline or ancestors or unit or tty))
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
        # expected() when none of it depends on the host, its admin groups or the time.
        if cls.allowed or (not server and (cls.admin_by_name or (svc_known and cls.windows is False))):
            cls.expected = True
        elif server and cls.allowed is False:
            cls.expected = False
        return cls

    def _transfer_class(self, path: str, cmdline: str, cwd: str, user: str, username: str = "",
                        has_session: bool = True, parent_path: str = "", parent_cmdline: str = "",
                        ancestors: tuple[tuple[str, str], ...] = ()) -> TransferClass | None:
        tcmd = self._parse_transfer(path, cmdline)
        if tcmd is None:
            return None
        files = tuple(p for p in (self._resolve(f, cwd) for f in tcmd.files) if p)
        external = tuple(d for d in tcmd.destinations if self.networks.external_destination(d))
        staging = tcmd.kind == "staging" or not (tcmd.upload or tcmd.tool in RAW_SOCKET_TOOLS)
        server = False
        if tcmd.kind == "transfer" and external:
            # A database server's process tree: the server (or its `sh -c`, run as the server's account
            # with no login session) is the parent or grandparent.
            anc = _ancestors(parent_path, parent_cmdline, ancestors)
            found = policy.server_ancestor(anc)
            server = (found is not None and policy.unusual_parent(found) == R.DB_SERVER_PARENT.code) or (
                not has_session and catalog.is_db_server(username) and bool(anc) and catalog.is_shell(anc[0].name))
        return TransferClass(tcmd, user, files, external, staging, server)

    @staticmethod
    def server_account(user: str) -> bool:
        """A database server's own account (postgres): what a server-spawned command runs as."""
        return bool(user) and catalog.is_db_server(user)

    def program_tool(self, cmd: DbCommand, cmdline: str) -> str:
        """The transfer tool a COPY ... TO PROGRAM runs towards an external destination ("" when none)."""
        if cmd.dump_intent != "COPY TO PROGRAM":
            return ""
        m = _TO_PROGRAM.search(cmdline)
        if m is None:
            return ""
        program = (m.group(1) if m.group(1) is not None else m.group(2) or "").replace("''", "'")
        for part in re.split(r"[|;&]+", program):  # `gzip | curl ...`: any command of the program
            argv = split_cmdline(part.strip())
            if not argv:
                continue
            if catalog.is_shell(basename(argv[0])) and len(argv) > 2 and argv[1] == "-c":
                argv = split_cmdline(argv[2])
            if not argv:
                continue
            tcmd = self._parse_transfer(argv[0], " ".join(argv))
            if tcmd is not None and tcmd.kind == "transfer" and any(
                    self.networks.external_destination(d) for d in tcmd.destinations):
                return tcmd.tool
        return ""

    # -- what depends on the host and the time ------------------------------------

    def expected(self, cls: AccessClass, host: str, admin_groups: dict[str, list[str]], t: int) -> bool:
        """An allow rule, an admin, or a service context inside its automation window explains the run."""
        expected = cls.expected
        if expected is not None:
            return expected
        allowed = cls.allowed
        if allowed is None:
            allowed = self._allowed_on(cls, host)
        if allowed:
            return True
        if cls.server:
            return False
        if cls.admin_by_name:
            return True
        groups = admin_groups.get(cls.user)
        if groups and policy.is_admin(self.config, cls.user, groups):
            return True
        if not cls.svc_known:
            return False
        windows = cls.windows
        if windows is None:
            windows = self._windows_named_on(cls.user, host)
        return not windows or policy.automation_window_ok(self.config, t, cls.user, host)

    def _allowed_on(self, cls: AccessClass, host: str) -> bool:
        """Whether an allow rule matches the run on this host (rules naming hosts), memoised per class."""
        allowed = cls.allowed_on.get(host)
        if allowed is None:
            allowed = policy.matching_allow_rule(self.config, cls.facts(host)) is not None
            if len(cls.allowed_on) >= MAX_PER_CLASS:
                cls.allowed_on.clear()
            cls.allowed_on[host] = allowed
        return allowed

    def _windows_named_on(self, user: str, host: str) -> bool:
        key = (user, host)
        named = self._windows_named.get(key)
        if named is None:
            named = bool(policy.windows_for(self.config, user, host))
            if len(self._windows_named) >= MAX_KEYS:
                self._windows_named.clear()
            self._windows_named[key] = named
        return named

    def window_ok(self, user: str, host: str, t: int) -> bool:
        return not self.config.automation_windows or policy.automation_window_ok(self.config, t, user, host)
