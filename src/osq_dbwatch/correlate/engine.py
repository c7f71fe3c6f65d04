"""The chain engine: a pure per-host state machine (linking and expiry).

    Engine(config).process(state, rows) -> (state, findings)

`state` is one host's HostState (hoststate.py), `rows` that host's rows in
log order, `findings` the findings whose chain was created or whose severity
rose during this call. No I/O, no clock, no randomness: the same state and
rows always give the same result, which is what lets the caller batch,
persist, kill and restart, or run hosts on different machines.

A results-log line goes in through one function, FastPath.apply_line(data)
(fastpath.py): the fast path, else rows.parse_line and step(). correlate's
Runner, the Spark operator and the tests all call it. Both readers call the
same API below, one call per row.

    exec_class(query, invariant columns...)  -> the run's class (classify.py)
    on_exec(st, t, pid_key, cls)             -> None, or the codes on_exec_row needs
    on_exec_row(st, row, cls, codes)         a run that opens, joins or links to a chain
    on_file(st, FileRow)       on_egress(st, EgressRow)      on_history(st, HistoryRow)
    on_admin(st, AdminRow)     on_admin_snapshot(st, t, members)
    on_host_uuid(st, host_uuid)  a line's host_uuid decoration, when it differs from the state's
    egress_possible(address)         -> False: on_row(st, t) instead of on_egress (no connect to it is egress)
    egress_wanted(success, address, status) -> what on_egress asks: a made connect to an external address

Each call moves the host's watermark to the row's time and, after the row,
runs the periodic expiry sweep when it is due. An exec row is judged in two
calls so that a reader need not build the full row of a run nothing follows
from (nearly all of a fleet's runs).

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
import heapq
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Final

from .. import catalog, policy
from ..cmdline import (
    basename,
    redact_cmdline,
    redact_text,
    resolve_path,
    sql_dump_intent,
)
from ..config import Config, EgressAllowRule
from . import baseline as B
from . import evidence as E
from . import reasons as R
from . import scoring as S
from .addresses import Networks, ipv4_value, is_external_destination
from .classify import (
    AccessClass,
    Classifier,
    ExecClass,
    TransferClass,
    history_tool,
    is_web_transfer,
    run_key,
    staging_outputs,
)
from .empty import EMPTY, EMPTY_LIST
from .evidence import Evidence
from .findings import Finding
from .hoststate import Chain, HostState, PidEntry, own_admin_groups, share_admin_groups
from .rows import AdminRow, EgressRow, ExecRow, FileRow, HistoryRow, Row

__all__ = ["Chain", "Engine", "HostState", "PidEntry", "chain_uid", "ipv4_value", "is_external_destination"]

SLACK: Final = S.SLACK  # seconds: audit and inotify clocks and osquery's batching disagree a little
GRACE: Final = 3600  # keep a closed window's state this long for late rows of other queries
SWEEP: Final = 4 * 3600  # event time between full expiry sweeps of a host (the caps bound it in between)
# Per-host caps (issue 11 item 8): a flood of distinct users, pids or files on one host cannot grow its
# state without bound. Pending chains: correlator.max_pending_per_host. When a table passes its cap its
# oldest entries go (a dict's order is its insertion order) down to 7/8 of the cap, in one pass, so the
# trim costs O(1) per row on average; each dropped entry is counted (Engine.dropped, in the run summary).
MAX_RECENT: Final = 256  # recent unlinked files / connections kept per host
MAX_PIDS: Final = 4096  # pid -> run entries (linking and de-duplication)
MAX_SEEN: Final = 8192  # de-duplication keys of files and connections
MAX_HISTORY: Final = 8192  # history entry identities
MAX_EMITTED: Final = 4096  # severities of emitted findings of chains no longer pending (re-sends, late rows)
MAX_CLOSING: Final = 1024  # closed or evicted chains whose finding waits for the flush: emitted early past this
MAX_SNAPSHOT_MEMO: Final = 4096  # admin_accounts member lists whose shared groups are remembered (Engine._snapshot)
MAX_MEMO_MEMBERS: Final = 64  # longer member lists are not remembered (a hostile snapshot's key stays small)
_REDIRECT: Final = re.compile(r"(?:^|[\s;&|])\d?>>?\|?\s*([^\s;|&<>]+)")
_LINKABLE: Final[list[str]] = []  # on_exec's answer for a transfer run that may link (it has no baseline codes)


def _activity(chain: Chain) -> int:
    """A pending chain's last activity: the least recent goes first when a host has too many."""
    return max(chain.last_access, chain.last_dump, chain.last_egress)


def connect_made(success: bool, status: str) -> bool:
    """A connect the kernel took (the one place of this rule): status `succeeded` or `in_progress` (a
    non-blocking connect, as most clients make); a row without status (older agents) has success != 0."""
    if status:
        return status == "succeeded" or status == "in_progress"
    return success


def chain_uid(host: str, user: str, identity: str) -> str:
    digest = hashlib.sha256(f"osq-dbwatch\0{host}\0{user}\0{identity}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _trim(table: dict[str, Any], cap: int) -> int:
    """Drop the oldest entries of a table past its cap, down to 7/8 of it; returns how many went."""
    excess = len(table) - cap * 7 // 8
    old = list(table)[:excess]
    for key in old:
        del table[key]
    return excess


def _evidence_before(items: list[Evidence], cut: int) -> bool:
    """Some evidence older than `cut` (the expiry sweep rebuilds only a list that has some)."""
    for e in items:
        if e.t < cut:
            return True
    return False


def _pids_before(pids: dict[str, PidEntry], cut: int) -> bool:
    for entry in pids.values():
        if entry[0] < cut:
            return True
    return False


def _times_before(table: dict[str, int], cut: int) -> bool:
    for t in table.values():
        if t < cut:
            return True
    return False


def _add(items: list[Any], value: Any) -> bool:
    if value in items:
        return False
    items.append(value)
    return True


class Engine:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.w_dump = config.dump_after_access_seconds
        self.w_egress = config.egress_after_dump_seconds
        self.settings = config.correlator
        self.networks = Networks(config)
        self.classes = Classifier(config, self.networks)
        # Command lines of unusual runs repeat (a chain's own runs, resends).
        self._redact = lru_cache(maxsize=8192)(redact_cmdline)
        # A whole admin_accounts snapshot's member list -> the shared admin groups it gives (_snapshot).
        self._snapshot_groups: dict[tuple[tuple[str, str], ...], dict[str, list[str]]] = {}
        # Entries dropped at the per-host caps during this engine's life, by table (the run summary).
        self.dropped: dict[str, int] = {}
        self.evicted = 0  # pending chains evicted (max_pending_per_host) during this engine's life
        # Where findings of closing chains go when a host's closing set reaches MAX_CLOSING before its
        # flush (the correlator writes them at once); None: they wait for flush() as before.
        self.sink: Callable[[HostState, list[Finding]], None] | None = None

    # -- batches of typed rows ------------------------------------------------

    def process(self, state: HostState, rows: Sequence[Row]) -> tuple[HostState, list[Finding]]:
        """Feed rows, then flush: the whole state machine in one call."""
        self.step(state, rows)
        return state, self.flush(state)

    def step(self, state: HostState, rows: Sequence[Row]) -> None:
        """Feed rows without producing findings (process() = step() ... flush())."""
        for row in rows:
            if type(row) is ExecRow:
                self.on_exec_full(state, row)
            elif type(row) is FileRow:
                self.on_file(state, row)
            elif type(row) is EgressRow:
                if row.query == "db_connect":
                    self.on_db_connect(state, row)
                else:
                    self.on_egress(state, row)
            elif type(row) is HistoryRow:
                self.on_history(state, row)
            elif type(row) is AdminRow:
                self.on_admin(state, row)

    def flush(self, state: HostState) -> list[Finding]:
        """Findings for chains created or raised since the last flush, then expiry."""
        findings = S.findings_due(state)
        self._expire(state)
        self._cap_emitted(state)
        return findings

    # -- every row ------------------------------------------------------------

    @staticmethod
    def on_host_uuid(st: HostState, host_uuid: str) -> None:
        """The host's host_uuid decoration (findings' host.id and device.uid); readers call it when it changed."""
        st.host_uuid = host_uuid

    @staticmethod
    def _at(st: HostState, t: int) -> None:
        """The host's watermark: the newest event time seen."""
        if t <= st.watermark:
            return
        st.watermark = t

    def _done(self, st: HostState) -> None:
        """After each row: the periodic expiry sweep, when due (keeps a long batch's state as small as a short one's),
        and the baseline's caps."""
        if st.watermark - st.last_expiry >= SWEEP:
            self._expire(st)
        b = st.baseline
        if len(b.pending) > B.MAX_KEYS or len(b.users) > B.MAX_KEYS or len(b.runs) > B.MAX_KEYS \
                or len(b.tools) > B.MAX_KEYS or len(b.parents) > B.MAX_KEYS:
            self._count("baseline", B.cap(b))

    # -- exec rows: DB clients, sessions, transfer tools ----------------------

    def exec_class(self, query: str, path: str, cmdline: str, cwd: str, uid: int | None, username: str,
                   has_session: bool, login_user: str, parent_path: str, parent_cmdline: str,
                   ancestors: tuple[tuple[str, str], ...] = (), unit: str = "", tty: str = "") -> ExecClass | None:
        """What a run's invariant columns decide (classify.py; memoised); None: not a command of its query's kind."""
        key = run_key(path, cmdline, cwd, uid, username, has_session, login_user, parent_path, parent_cmdline, ancestors,
                      unit, tty)
        # sessions read /proc: the program's order
        return self.classes.exec_class(query == "transfer_exec", key, query != "db_cli_sessions")

    def on_exec(self, st: HostState, t: int, pid_key: str, cls: ExecClass | None) -> list[str] | None:
        """What every run does to the state (pid table, de-duplication, baseline).

        None: nothing follows (and the row is done). Otherwise the run opens,
        joins or links to a chain: the caller hands its full row to
        on_exec_row() with these codes (an access's baseline codes; [] for a transfer).
        """
        # _at() and _done() inline: nearly every line of a fleet's log comes through here.
        if t > st.watermark:  # noqa: PLR1730 - max() is a call when interpreted
            st.watermark = t
        codes: list[str] | None = None
        if cls is not None:
            if type(cls) is AccessClass:  # not isinstance(): a call when interpreted (AccessClass is final)
                # A DB client run's gate, inline (a call less on nearly every line): baseline codes when the run is
                # unusual; none when it is a resend or expected.
                # One pid, one access: Debian's psql wrapper execs twice; sessions repeat the exec row.
                # The pid's entry is the de-duplication record too: same tool and user within the window.
                pids = st.pids
                entry = pids.get(pid_key)
                w = self.w_dump
                if entry is None or entry[4] != cls.tool or entry[1] != cls.user or entry[2] != "db" \
                        or not -w <= t - entry[0] <= w:  # not abs(): a call when interpreted
                    if type(pids) is not dict:  # empty.EMPTY, shared by all hosts: a table of its own first
                        pids = st.pids = {}
                    # "files" is the class's tuple, shared and immutable (written as a JSON list).
                    pids[pid_key] = (t, cls.user, "db", cls.out_files, cls.tool)
                    if len(pids) > MAX_PIDS:
                        self._cap_pids(st)
                    expected = cls.expected
                    if expected is None:
                        expected = self.classes.expected(cls, st.host, st.admin_groups, t)
                    if expected:
                        B.defer_keys(st.baseline, cls.keys, t)  # what observe() learns, without judging
                    else:
                        # Judged only: an unusual run is learned when its chain closes (_learn_closed), never
                        # while a chain is open, so a burst of runs cannot make its own chain habitual.
                        if st.chains:
                            self._close_due(st)
                        codes = B.judge_keys(st.baseline, self.settings, cls.keys, t)
            elif self._transfer_gate(st, cls, pid_key, t):
                codes = _LINKABLE
        if codes is None and st.watermark - st.last_expiry >= SWEEP:
            self._expire(st)
        return codes

    def on_exec_row(self, st: HostState, row: ExecRow, cls: ExecClass, codes: list[str]) -> None:
        """The second call for a run on_exec() did not finish."""
        if isinstance(cls, AccessClass):
            self._access_chain(st, row, cls, codes)
        else:
            self._transfer_link(st, row, cls)
        self._done(st)

    def on_exec_full(self, st: HostState, row: ExecRow) -> None:
        """exec_class(), on_exec() and on_exec_row() of a typed row."""
        cls = self.exec_class(row.query, row.path, row.cmdline, row.cwd, row.uid, row.username, row.has_session,
                              row.login_user, row.parent_path, row.parent_cmdline, row.ancestors, row.systemd_unit,
                              row.tty)
        codes = self.on_exec(st, row.time, str(row.pid), cls)
        if codes is not None and cls is not None:
            self.on_exec_row(st, row, cls, codes)

    def _transfer_gate(self, st: HostState, cls: TransferClass, pid_key: str, t: int) -> bool:
        """What every transfer tool run does to the state (dedup, pid); True when it may link or is an upload."""
        entry = st.pids.get(pid_key)
        if entry is not None and entry[0] == t and entry[4] == cls.tcmd.tool and entry[2] == "transfer":
            return False  # osquery sent the row again
        if type(st.pids) is not dict:  # empty.EMPTY, shared by all hosts: a table of its own first
            st.pids = {}
        st.pids[pid_key] = (t, cls.user, "transfer", cls.files, cls.tcmd.tool)  # shared tuple, as above
        if len(st.pids) > MAX_PIDS:
            self._cap_pids(st)
        if cls.staging:
            return bool(st.chains) and bool(cls.files)
        return bool(cls.external)

    def _process(self, row: ExecRow, redacted: str) -> dict[str, Any]:
        return E.exec_process(row, redacted, self._redact(row.parent_cmdline) if row.parent_cmdline else "")

    def _access_chain(self, st: HostState, row: ExecRow, cls: AccessClass, baseline_codes: list[str]) -> None:
        """An unusual DB client run: open or join its chain."""
        user = cls.user
        t = row.time
        cmd = cls.cmd
        out = cls.out
        server = cls.server
        svc_known = cls.svc_known
        window_ok = self.classes.window_ok(user, st.host, t)
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
        if row.interactive is None and cls.parent_unknown:
            context.append(R.PARENT_UNKNOWN.code)  # no evidence of automation either way
        elif not interactive and not svc_known and not server:
            context.append(R.NON_INTERACTIVE.code)

        paths = [out] if out else []
        if ">" in row.parent_cmdline and catalog.is_shell(basename(row.parent_path) or row.parent_cmdline.split(" ", 1)[0]):
            for target in _REDIRECT.findall(row.parent_cmdline):
                resolved = resolve_path(target, row.cwd)
                if resolved and not resolved.startswith("/dev/"):
                    paths.append(resolved)
        data: dict[str, Any] = {"stage": "access", "query": row.query, "tool": cmd.tool, "engine": cmd.engine,
                                "database": cmd.database, "db_host": cmd.host, "db_user": cmd.user,
                                "dump_intent": cmd.dump_intent, "output_path": out}
        if cmd.dump_intent and not paths and not cls.program_tool:
            data["to_stdout"] = True  # a dump with no file: it may be streamed (_try_egress, same pipeline)
        if cls.program_tool:
            data["server_program"] = cls.program_tool
        evidence = E.linked(f"x|{row.query}|{row.pid}|{t}|{row.path}", t, {
            "process": self._process(row, redacted),
            "data": data,
        })
        links = [R.FROM_SESSION.code] if row.query == "db_cli_sessions" else []
        self._open_or_join(st, user, t, cmd.tool, evidence, paths, [row.pid], [row.username] if row.username else [],
                           server, context, baseline_codes, links)

    def _transfer_link(self, st: HostState, row: ExecRow, cls: TransferClass) -> None:
        """A staging command over a chain's files joins it; an external upload is remembered as egress."""
        tcmd = cls.tcmd
        t = row.time
        files = cls.files
        redacted = self._redact(row.cmdline)
        if cls.staging:
            outputs: tuple[str, ...] | None = None
            for chain in st.chains.values():
                if not any(p in chain.paths for p in files):
                    continue
                if outputs is None:
                    outputs = staging_outputs(tcmd, row.cmdline, row.cwd)
                ev_id = f"s|{row.pid}|{t}"
                if any(e.id == ev_id for e in chain.evidences):
                    continue
                chain.evidences.append(E.linked(ev_id, t, {
                    "process": self._process(row, redacted),
                    "data": {"stage": "staging", "query": row.query, "tool": tcmd.tool}}))
                for p in outputs:
                    _add(chain.paths, p)
                _add(chain.context, R.DUMP_STAGED.code)
                _add(chain.techniques, S.T_ARCHIVE)
                _add(chain.links, R.LINKED_BY_PATH.code)
                chain.dirty = True
            return
        upload = Evidence(E.UPLOAD, f"u|{row.pid}|{t}", t, query=row.query, tool=tcmd.tool, pid=row.pid, user=cls.user,
                          files=files, address=cls.external[0], process=self._process(row, redacted),
                          ppid=row.parent_pid)
        if cls.server and not any(self._program_run(c, upload) for c in st.chains.values()):
            # The server's own transfer, with no client's COPY ... TO PROGRAM seen: a chain of the server's account.
            evidence = E.linked(f"x|{row.query}|{row.pid}|{t}|{row.path}", t, {
                "process": self._process(row, redacted),
                "data": {"stage": "access", "query": row.query, "tool": tcmd.tool, "server_program": tcmd.tool},
            })
            # Its pid stays out of the chain's pids: those are the chain's DB clients, whose own connects are no egress.
            self._open_or_join(st, cls.user, t, tcmd.tool, evidence, [], [], [row.username] if row.username else [],
                               R.SERVER_EXFIL.code, [], [], [])
        self._remember_egress(st, upload)

    # -- history ----------------------------------------------------------------

    def on_history(self, st: HostState, row: HistoryRow) -> None:
        self._at(st, row.time)
        self._history(st, row)
        self._done(st)

    def _history(self, st: HostState, row: HistoryRow) -> None:
        tool = history_tool(row.file, row.engine)
        if row.baseline:
            B.learn(st.baseline, row.user, tool, "", row.time, with_hour=False)
            return
        key = E.history_id(row.user, row.file, row.command)
        if key in st.history:
            st.history[key] = max(st.history[key], row.time)
            return
        if type(st.history) is not dict:  # empty.EMPTY
            st.history = {}
        st.history[key] = row.time
        if len(st.history) > MAX_HISTORY:
            self._count("history", _trim(st.history, MAX_HISTORY))
        t = row.time
        user = row.user
        intent, out = row.intent, row.output_path
        if not intent:
            found = sql_dump_intent(row.command)
            if found is not None:
                intent, out = found.intent, found.path
        if st.chains:
            self._close_due(st)
        baseline_codes = B.judge(st.baseline, self.settings, user, tool, "", t)
        facts = policy.AccessFacts(user=user, tool=tool, parent_path="", host=st.host, cmdline=row.command)
        if self._expected_by_policy(st, facts, t):
            B.learn(st.baseline, user, tool, "", t, with_hour=False)  # expected: learned at once
            return
        context = [R.DUMP_INTENT.code] if intent else []
        evidence = E.linked(key, t, {
            "data": {"stage": "access", "query": row.query, "tool": tool, "engine": row.engine,
                     "history_file": row.file, "command": redact_text(row.command)[:4096],
                     "dump_intent": intent, "output_path": out},
            "actor": {"user": {"name": user}},
        })
        paths = [out] if out.startswith("/") else []
        # A client writes its history when it exits: the access began up to a window earlier.
        self._open_or_join(st, user, t, tool, evidence, paths, [], [user], "", context, baseline_codes,
                           [R.FROM_HISTORY.code], earliest=t - self.w_dump)

    # -- database connects (db_connect) ---------------------------------------------

    def on_db_connect(self, st: HostState, row: EgressRow) -> None:
        """A db_connect row: a program that is not a known client talks to a database port or socket.

        In a login session that is an access (network-seen-access): it opens or joins the user's chain like a
        client's run, so a renamed pg_dump, a script or an implant is judged by what it did next.
        """
        self._at(st, row.time)
        if connect_made(row.success, row.status) and row.login_user:  # audit: the auid's name; eBPF (no auid): the uid's name of a non-system user
            self._db_connect(st, row)
        self._done(st)

    def _db_connect(self, st: HostState, row: EgressRow) -> None:
        t = row.time
        user = row.login_user
        tool = basename(row.path) or "unknown"
        if tool in self.classes.db_tools or tool in catalog.DB_SERVERS:
            return  # a known client's run is its exec row (db_cli_exec); a server replicates
        pid_key = str(row.pid)
        entry = st.pids.get(pid_key)
        if entry is not None and entry[2] == "db" and abs(t - entry[0]) <= self.w_dump:
            return  # this run is already an access (a client's exec, or this program's first connect)
        if type(st.pids) is not dict:  # empty.EMPTY
            st.pids = {}
        st.pids[pid_key] = (t, user, "db", (), tool)
        if len(st.pids) > MAX_PIDS:
            self._cap_pids(st)
        facts = policy.AccessFacts(user=user, tool=tool, parent_path="", host=st.host, cmdline="")
        if self._expected_by_policy(st, facts, t):
            B.learn(st.baseline, user, tool, "", t)  # expected: learned at once, as a history access is
            return
        if st.chains:
            self._close_due(st)
        baseline_codes = B.judge(st.baseline, self.settings, user, tool, "", t)
        unix = row.address.startswith("/")  # a Unix socket's path (rows.py puts it where the address goes)
        engine = catalog.db_socket_engine(row.address) if unix else catalog.db_port_engine(row.port)
        process: dict[str, Any] = {"pid": row.pid, "user": {"name": user}}
        if row.path:
            process["file"] = {"path": row.path, "name": tool, "type_id": 1, "type": "Regular File"}
        data: dict[str, Any] = {"stage": "access", "query": row.query, "tool": tool, "engine": engine}
        if unix:
            data["db_socket"] = row.address
        else:
            data["db_host"] = row.address
            data["db_port"] = row.port
        if row.status:
            data["connect_status"] = row.status
        evidence = E.linked(f"n|{row.pid}|{t}", t, {"process": process, "data": data})
        context = [R.NETWORK_SEEN_ACCESS.code]
        self._open_or_join(st, user, t, tool, evidence, [], [row.pid], [user], "", context, baseline_codes,
                           [R.FROM_CONNECT.code])

    def _expected_by_policy(self, st: HostState, facts: policy.AccessFacts, t: int) -> bool:
        """An access known only by user and tool (a history entry, a database connect; no process context):
        expected when an allow rule names it, the user is an admin, or a service account is in its window."""
        user = facts.user
        return policy.matching_allow_rule(self.config, facts) is not None \
            or policy.is_admin(self.config, user, st.admin_groups.get(user, ())) \
            or (policy.is_service_account(self.config, user)
                and policy.automation_window_ok(self.config, t, user, st.host))

    # -- admins -----------------------------------------------------------------

    def admin_rows_missing(self, st: HostState) -> bool:
        """admins.groups is configured, yet this host has sent no admin_accounts row naming a member of any group.

        Its admins' work would then be judged unusual: the caller warns (once per host and run).
        """
        return bool(self.config.admin_groups) and not st.admin_snapshot and not st.admin_groups

    def on_admin_snapshot(self, st: HostState, t: int, members: list[tuple[str, str]]) -> None:
        """A whole admin_accounts snapshot (t: its unixTime) of (username, groupname) pairs."""
        self._at(st, t)
        self._snapshot(st, t, members)
        self._done(st)

    def on_admin(self, st: HostState, row: AdminRow) -> None:
        """One admin_accounts row: a snapshot's member, or a differential addition or removal."""
        self._at(st, row.time)
        if row.mode == "snapshot":
            self._snapshot(st, row.snapshot_id, [(row.username, row.groupname)])
        elif row.groupname in self.config.admin_groups:
            admins = own_admin_groups(st)  # a shared one is copied first
            groups = admins.setdefault(row.username, [])
            if row.mode == "removed":
                if row.groupname in groups:
                    groups.remove(row.groupname)
                if not groups:
                    admins.pop(row.username, None)
            else:
                _add(groups, row.groupname)
            st.admin_groups = share_admin_groups(admins)
        self._done(st)

    def _snapshot(self, st: HostState, snapshot_id: int, members: list[tuple[str, str]]) -> None:
        """Members of a snapshot: a newer snapshot replaces the set, an older one arriving late is ignored."""
        if snapshot_id != st.admin_snapshot:
            if snapshot_id < st.admin_snapshot:
                return
            st.admin_snapshot = snapshot_id
            # A new snapshot's groups follow from its members alone, and a fleet's hosts mostly have the same
            # members: the shared groups of a member list are remembered (a host's first snapshot cost 9,000
            # instructions, a third of a new host's; bench/bench_correlate.py --sweep).
            key = tuple(members)
            shared = self._snapshot_groups.get(key)
            if shared is not None:
                st.admin_groups = shared
                return
            st.admin_groups = EMPTY
            self._members(st, members)
            if (type(st.admin_groups) is not dict and len(members) <= MAX_MEMO_MEMBERS
                    and len(self._snapshot_groups) < MAX_SNAPSHOT_MEMO):
                self._snapshot_groups[key] = st.admin_groups  # shared and read-only (empty.Frozen), or EMPTY
            return
        self._members(st, members)

    def _members(self, st: HostState, members: list[tuple[str, str]]) -> None:
        """Members of the host's current snapshot, added to its admin groups."""
        admin_groups = self.config.admin_groups
        admins: dict[str, list[str]] | None = None
        for username, groupname in members:
            if groupname in admin_groups:
                if admins is None:
                    admins = own_admin_groups(st)  # a shared one is copied first
                _add(admins.setdefault(username, []), groupname)
        if admins is not None:
            st.admin_groups = share_admin_groups(admins)  # one copy for the hosts with the same admins

    # -- chains -----------------------------------------------------------------

    def _open_or_join(self, st: HostState, user: str, t: int, tool: str, evidence: Evidence, paths: list[str],
                      pids: list[int], uid_users: list[str], server: str, context: list[str],
                      baseline_codes: list[str], links: list[str], earliest: int | None = None) -> None:
        chain = None
        for c_uid in self._user_index(st).get(user, ()):
            c = st.chains.get(c_uid)
            if c is not None and c.start - self.w_dump <= t <= c.last_access + self.w_dump:
                chain = c
                break
        if chain is None:
            uid = chain_uid(st.host, user, evidence.id)
            chain = Chain(uid=uid, user=user, start=t if earliest is None else earliest, last_access=t)
            self._add_chain(st, chain)
            chain.stages.append("access")
            chain.techniques.append(S.T_REPOSITORY)
            if len(st.chains) > self.settings.max_pending_per_host:
                self._evict(st)
            if uid not in st.chains:
                return
        else:
            chain.start = min(chain.start, t if earliest is None else earliest)
            chain.last_access = max(chain.last_access, t)
        if not any(e.id == evidence.id for e in chain.evidences):
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
            if server in S.WEB_SHELL_SERVERS:
                _add(chain.techniques, S.T_WEB_SHELL)
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
            if e.t < oldest:
                break
            self._try_egress(st, chain, e)

    # -- the derived indexes of the pending chains (HostState.by_user, evict_heap, next_close) ---------------

    @staticmethod
    def _user_index(st: HostState) -> dict[str, list[str]]:
        index = st.by_user
        if index is None:  # after a load: rebuilt once, in the chains' order
            index = st.by_user = {}
            for uid, c in st.chains.items():
                index.setdefault(c.user, []).append(uid)
        return index

    def _add_chain(self, st: HostState, chain: Chain) -> None:
        index = self._user_index(st)  # before the chain is in: a rebuilt index must not hold it twice
        if type(st.chains) is not dict:  # empty.EMPTY
            st.chains = {}
        st.chains[chain.uid] = chain
        index.setdefault(chain.user, []).append(chain.uid)
        if st.evict_heap:
            heapq.heappush(st.evict_heap, (_activity(chain), chain.uid))
        # A late row can open a chain that closes before the ones already pending.
        close = self._close_time(chain)
        if st.next_close and close < st.next_close:
            st.next_close = close

    def _drop_chain(self, st: HostState, uid: str) -> Chain:
        chain = st.chains.pop(uid)
        uids = self._user_index(st).get(chain.user)
        if uids is not None and uid in uids:
            uids.remove(uid)
            if not uids:
                del st.by_user[chain.user]  # type: ignore[union-attr]
        else:
            st.by_user = None  # someone changed the chains behind the index: rebuilt when next needed
        return chain

    def _evict(self, st: HostState) -> None:
        """Evict the pending chain least recently active (ties: the smallest uid), in O(log n).

        The heap holds (activity, uid) as pushed; a chain's activity only grows, so an entry whose chain
        moved on is pushed again with its present activity, and the first entry that is current is the
        minimum over all chains (what min() over every chain would pick).
        """
        heap = st.evict_heap
        if not heap or len(heap) > 4 * len(st.chains) + 64:
            heap = st.evict_heap = [(_activity(c), uid) for uid, c in st.chains.items()]  # its own (not EMPTY_LIST)
            heapq.heapify(heap)
        while True:
            activity, uid = heapq.heappop(heap)
            chain = st.chains.get(uid)
            if chain is None:
                continue  # closed or evicted since
            now = _activity(chain)
            if now != activity:
                heapq.heappush(heap, (now, uid))
                continue
            break
        victim = self._drop_chain(st, uid)
        self._learn_closed(st, victim)
        if victim.dirty:
            self._closing(st, victim)  # its finding is still emitted
        st.evictions += 1
        self.evicted += 1

    def _closing(self, st: HostState, chain: Chain) -> None:
        """A closed or evicted chain whose finding is due: at the next flush, or at once past MAX_CLOSING."""
        if type(st.closing) is not dict:  # empty.EMPTY
            st.closing = {}
        st.closing[chain.uid] = chain
        if len(st.closing) >= MAX_CLOSING and self.sink is not None:
            # findings_due() scores the closing chains and the pending ones: show it only the closing.
            chains, st.chains = st.chains, {}
            try:
                found = S.findings_due(st)
            finally:
                st.chains = chains
            self.sink(st, found)

    def _count(self, table: str, n: int) -> None:
        self.dropped[table] = self.dropped.get(table, 0) + n

    def _cap_pids(self, st: HostState) -> None:
        if len(st.pids) > MAX_PIDS:
            self._count("pids", _trim(st.pids, MAX_PIDS))

    def _seen(self, st: HostState, key: str, t: int, window: int) -> bool:
        """True when this identity was seen within `window` seconds (a resend)."""
        before = st.seen.get(key)
        if before is not None and -window <= t - before <= window:  # not abs(): a call when interpreted
            return True
        if type(st.seen) is not dict:  # empty.EMPTY
            st.seen = {}
        st.seen[key] = t
        if len(st.seen) > MAX_SEEN:
            self._count("seen", _trim(st.seen, MAX_SEEN))
        return False

    # -- dumps ------------------------------------------------------------------

    def on_file(self, st: HostState, row: FileRow) -> None:
        """A dump-like file (dump_file_events, dump_like_files): remembered, and linked to any chain it fits.

        Baseline rows (files already there at a first run) and deletions are not evidence.
        """
        t = row.time
        if t > st.watermark:  # noqa: PLR1730 - _at() and _done() inline, as in on_exec (max() is a call)
            st.watermark = t
        if not row.baseline and row.action != "DELETED":
            self._file(st, row)
        if st.watermark - st.last_expiry >= SWEEP:
            self._expire(st)

    def _file(self, st: HostState, row: FileRow) -> None:
        t = row.time
        path = row.path
        if self._seen(st, f"f|{path}|{row.action}|{t}|{row.inode}", t, self.w_dump):
            return
        # E.file()'s Evidence, built here: a call less for every file row, interpreted
        f = Evidence(E.FILE, "", t, row.query, "", 0, "", path, (), "", None, row.owner, row.size, row.sha256,
                     row.writer_pid, row.action)
        if st.files and st.files[-1].path == path:
            # CREATED (0 bytes) then UPDATED rows: one file, whose largest size counts.
            before = st.files[-1].size
            if before is not None and (f.size is None or f.size < before):
                f.size = before
            st.files[-1] = f
        else:
            if type(st.files) is not list:  # empty.EMPTY_LIST, shared by all hosts: a list of its own first
                st.files = []
            st.files.append(f)
            if len(st.files) > MAX_RECENT:
                del st.files[0]
        old = self._moved_from(st, f) if row.action == "MOVED_TO" and st.chains else ""
        for chain in st.chains.values():
            if old and old in chain.paths and path not in chain.paths:
                chain.paths.append(path)  # the chain's dump under its new name: linked by path from here on
                _add(chain.links, R.LINKED_BY_RENAME.code)
            self._try_file(st, chain, f)
            if old:
                for e in chain.evidences:
                    if e.id == "f|" + path and e.ocsf is not None:
                        e.ocsf["data"]["renamed_from"] = old

    @staticmethod
    def _moved_from(st: HostState, f: Evidence) -> str:
        """The old name of a rename (`mv x.sql notes.txt`), or "".

        inotify reports a rename as MOVED_FROM (the old name) then MOVED_TO (the new one) from one read, so
        in the same second. osquery stats each path as it handles the event: the old name no longer exists,
        so its row has no inode, while the MOVED_TO row carries the inode the file's earlier rows had.
        """
        for x in st.files[-2::-1]:
            if x.t < f.t - 1:
                break
            if x.action == "MOVED_FROM" and x.path != f.path:
                return x.path
        return ""

    def _try_file(self, st: HostState, chain: Chain, f: Evidence) -> None:
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
            if e.id == ev_id:
                E.grow_file(e, f.size)
                return
        chain.evidences.append(E.linked_file(f))
        _add(chain.paths, path)
        chain.first_dump = min(chain.first_dump, t) if chain.first_dump else t
        chain.last_dump = max(chain.last_dump, t)
        _add(chain.stages, "dump")
        _add(chain.techniques, S.T_LOCAL_DATA)
        _add(chain.techniques, S.T_STAGED)
        for code in links:
            _add(chain.links, code)
        if path.startswith(("/var/www/", "/srv/www/")) or "/public_html/" in path:
            _add(chain.context, R.DUMP_IN_WEB_ROOT.code)
        chain.dirty = True
        oldest = t - SLACK - GRACE
        for e in st.egress[::-1]:
            if e.t < oldest:
                break
            self._try_egress(st, chain, e)

    # -- egress -------------------------------------------------------------------

    def egress_wanted(self, success: bool, address: str, status: str = "") -> bool:
        """Only a made connect (connect_made) to an external address is evidence; a failed one is no egress."""
        return connect_made(success, status) and self.networks.external(address)

    def egress_possible(self, address: str) -> bool:
        """False: a connect to this address is no evidence, whatever its outcome (egress_wanted's first question;
        a reader asks it before it builds a connect's row, since most connects are internal)."""
        networks = self.networks
        answer = networks.answers.get(address)  # Networks.external()'s memo first: a call less per connect
        return networks.external(address) if answer is None else answer

    def on_egress(self, st: HostState, row: EgressRow) -> None:
        """A db_egress connect (evidence when egress_wanted)."""
        t = row.time
        if t > st.watermark:  # noqa: PLR1730 - _at() and _done() inline, as in on_exec (max() is a call)
            st.watermark = t
        if self.egress_wanted(row.success, row.address, row.status):
            self._connect(st, row)
        if st.watermark - st.last_expiry >= SWEEP:
            self._expire(st)

    def on_row(self, st: HostState, t: int) -> None:
        """A row a reader found to be no evidence by asking the engine (egress_wanted): the watermark and the sweep."""
        if t > st.watermark:  # noqa: PLR1730 - _at() and _done() inline, as in on_exec (max() is a call)
            st.watermark = t
        if st.watermark - st.last_expiry >= SWEEP:
            self._expire(st)

    def _connect(self, st: HostState, row: EgressRow) -> None:
        t = row.time
        key = f"e|{row.pid}|{row.address}|{row.port}|{t}"
        if self._seen(st, key, t, self.w_egress):
            return
        # The evidence's process object is built when the connection joins a chain (evidence.linked_egress).
        self._remember_egress(st, E.connect(key, t, row.query, basename(row.path), row.pid,
                                            row.login_user if row.has_session and row.login_user else "", row.path,
                                            row.address, row.port, row.status))

    def _remember_egress(self, st: HostState, e: Evidence) -> None:
        if type(st.egress) is not list:  # empty.EMPTY_LIST
            st.egress = []
        st.egress.append(e)
        if len(st.egress) > MAX_RECENT:
            del st.egress[0]
        for chain in st.chains.values():
            self._try_egress(st, chain, e)

    def _try_egress(self, st: HostState, chain: Chain, e: Evidence) -> None:
        t = e.t
        if chain.first_dump:
            if not (chain.first_dump - SLACK <= t <= chain.last_dump + self.w_egress):
                return
        elif not (chain.start - SLACK <= t <= chain.last_access + self.w_egress):
            return
        elif t <= chain.start and e.pid and chain.pids and (t < chain.start or e.pid < chain.pids[0]) \
                and self._streamed(chain, e) is None:
            # Exec and socket rows share the audit clock: no slack between them. Within one second the
            # pid orders them (a payload downloaded just before the access is not egress after it).
            return
        links: list[str] = []
        pid_info = st.pids.get(str(e.pid)) if e.pid else None
        files = list(e.files) or (list(pid_info[3]) if pid_info else [])
        streamed = self._streamed(chain, e)
        if streamed is not None:
            links.append(R.LINKED_BY_PID.code)
        elif self._program_run(chain, e):
            links.append(R.LINKED_BY_PROGRAM.code)
        elif any(p in chain.paths for p in files):
            links.append(R.LINKED_BY_PATH.code)
            if not e.files:
                links.append(R.LINKED_BY_PID.code)
        elif e.pid and e.pid in chain.pids:
            if not chain.first_dump:
                return  # the client's own connection to its database server
            links.append(R.LINKED_BY_PID.code)
        elif e.user:
            if e.user != chain.user:
                return
        elif pid_info is not None and pid_info[1] == chain.user:
            links.append(R.LINKED_BY_PID.code)
        else:
            return
        if any(x.id == e.id for x in chain.evidences):
            return
        if self.config.egress_allow:
            rule = self._egress_allowed(st, chain, e)
            if rule is not None:
                # A known backup target: shown in the chain, with the rule, but no egress stage (no escalation).
                entry = E.linked_egress(e)
                if entry.ocsf is not None:
                    entry.ocsf["data"]["egress_allowed"] = f"egress_allow rule at line {rule.line}: {rule.destination}"
                chain.evidences.append(entry)
                if e.kind == E.UPLOAD and e.pid:
                    self._allow_connects(chain, e.pid, entry.ocsf["data"]["egress_allowed"] if entry.ocsf else "")
                _add(chain.context, R.EGRESS_ALLOWED.code)
                for code in links:
                    _add(chain.links, code)
                chain.dirty = True
                return
        if streamed is not None:
            # The dump went through the pipe: the full chain (scoring.score), its dump at the access's time.
            # No "dump" stage or file evidence: no file was written; the reason says it was streamed.
            at = streamed.t
            _add(chain.context, R.STREAMED_DUMP.code)
            _add(chain.techniques, S.T_LOCAL_DATA)
            chain.first_dump = min(chain.first_dump, at) if chain.first_dump else at
            chain.last_dump = max(chain.last_dump, at)
        chain.evidences.append(E.linked_egress(e))
        chain.last_egress = max(chain.last_egress, t)
        _add(chain.stages, "egress")
        _add(chain.techniques, S.T_WEB_SERVICE if is_web_transfer(e.tool, e.port) else S.T_OTHER_PROTOCOL)
        for code in links:
            _add(chain.links, code)
        chain.dirty = True

    def _egress_allowed(self, st: HostState, chain: Chain, e: Evidence) -> EgressAllowRule | None:
        """The egress_allow rule naming this upload's or connect's destination for the chain's user, or None.

        A connect carries only an address: one by the pid of an allowed upload (rclone to s3:...) is allowed too.
        """
        rule = policy.matching_egress_allow(self.config, e.address, e.port, chain.user, st.host, e.tool)
        if rule is None and e.kind == E.CONNECT and e.pid:
            for u in st.egress:
                if u.kind == E.UPLOAD and u.pid == e.pid:
                    rule = policy.matching_egress_allow(self.config, u.address, u.port, chain.user, st.host, u.tool)
                    if rule is not None:
                        break
        return rule

    @staticmethod
    def _allow_connects(chain: Chain, pid: int, why: str) -> None:
        """An allowed upload's own connects, linked before its exec row arrived (db_egress lines come first in
        a minute's results), are allowed too: the chain's egress stage stays only for other egress."""
        others = False
        for x in chain.evidences:
            obj = x.ocsf
            data = obj.get("data") if obj is not None else None
            if obj is None or data is None or data.get("stage") != "egress" or "egress_allowed" in data:
                continue
            if (obj.get("process") or {}).get("pid") == pid:
                data["egress_allowed"] = why
            else:
                others = True
        if not others and "egress" in chain.stages:
            chain.stages.remove("egress")
            for technique in (S.T_OTHER_PROTOCOL, S.T_WEB_SERVICE):
                if technique in chain.techniques:
                    chain.techniques.remove(technique)

    @staticmethod
    def _streamed(chain: Chain, e: Evidence) -> Evidence | None:
        """The chain's access that dumps to stdout into this upload, in the same pipeline (None: none).

        A shell forks a pipeline's commands together: same parent pid, same second.
        """
        if e.kind != E.UPLOAD or not e.ppid:
            return None
        for x in chain.evidences:
            obj = x.ocsf
            if obj is None or abs(x.t - e.t) > 1:
                continue
            data = obj.get("data") or {}
            if data.get("stage") == "access" and data.get("to_stdout"):
                parent = (obj.get("process") or {}).get("parent_process") or {}
                if parent.get("pid") == e.ppid:
                    return x
        return None

    def _program_run(self, chain: Chain, e: Evidence) -> bool:
        """A connect or upload by the transfer tool the chain's COPY ... TO PROGRAM has the server run.

        The server's run has no login session and a pid no chain knows: its tool and time tie it to the COPY.
        """
        if chain.server != R.SERVER_EXFIL.code:
            return False  # set by any access with such a COPY (classify.program_tool)
        if e.kind == E.UPLOAD and not self.classes.server_account(e.user):
            return False
        if e.kind == E.CONNECT and e.user:
            return False
        for x in chain.evidences:
            obj = x.ocsf
            if obj is None:
                continue
            data = obj.get("data") or {}
            if data.get("server_program") == e.tool and data.get("stage") == "access" \
                    and x.t - SLACK <= e.t <= x.t + self.w_egress:
                return True
        return False

    # -- expiry -------------------------------------------------------------------

    def _close_time(self, chain: Chain) -> int:
        """When a chain can take nothing more: its windows have passed, plus GRACE for late rows."""
        return max(chain.last_access + self.w_dump + self.w_egress, chain.last_dump + self.w_egress,
                   chain.last_egress) + GRACE

    def _close_due(self, st: HostState) -> None:
        """Close the chains whose windows have passed (their findings go out at the next flush).

        Close times only grow (they follow the chains' last times), so the earliest one found by the last
        scan stays a lower bound (HostState.next_close): rows before it skip the scan.
        """
        now = st.watermark
        if st.next_close and now <= st.next_close:
            return
        due: list[str] = []
        earliest = 0
        for u, c in st.chains.items():
            close = self._close_time(c)
            if close < now:
                due.append(u)
            elif not earliest or close < earliest:
                earliest = close
        st.next_close = earliest
        for uid in due:
            chain = self._drop_chain(st, uid)
            self._learn_closed(st, chain)
            if chain.dirty:
                self._closing(st, chain)

    def _cap_emitted(self, st: HostState) -> None:
        """Emitted severities of chains no longer pending: the oldest go past MAX_EMITTED (pending ones stay)."""
        emitted = st.emitted
        if len(emitted) <= MAX_EMITTED + len(st.chains):
            return
        keep = MAX_EMITTED * 7 // 8
        closed = [u for u in emitted if u not in st.chains and u not in st.closing]
        for u in closed[: len(closed) - keep]:
            del emitted[u]
        self._count("emitted", max(0, len(closed) - keep))

    def _learn_closed(self, st: HostState, chain: Chain) -> None:
        """A closed chain teaches the baseline its accesses, when it stayed a bare access.

        A chain that reached a dump, an egress or a server context is never habit.
        """
        if len(chain.stages) > 1 or chain.server:
            return
        for e in chain.evidences:
            obj = e.ocsf
            if obj is None:
                continue
            data = obj.get("data") or {}
            if data.get("stage") != "access":
                continue
            tool = str(data.get("tool") or "").split(" ", 1)[0]
            if "history_file" in data:
                B.learn(st.baseline, chain.user, tool, "", e.t, with_hour=False)
                continue
            parent = (obj.get("process") or {}).get("parent_process") or {}
            B.learn(st.baseline, chain.user, tool,
                    B.parent_key(str((parent.get("file") or {}).get("path") or ""), str(parent.get("cmd_line") or "")),
                    e.t)

    def _expire(self, st: HostState) -> None:
        """Drop what can no longer matter; a full sweep at most every SWEEP seconds of event time."""
        now = st.watermark
        if st.chains:
            self._close_due(st)
        if now - st.last_expiry < SWEEP:
            return
        st.last_expiry = now
        horizon = now - max(self.w_dump, self.w_egress) - GRACE
        # A table is rebuilt rather than deleted from, since most entries are stale by the next sweep (order is
        # kept), but only when it holds a stale entry: a host's first row and a quiet host's sweep build nothing.
        # An emptied table goes back to the shared empty one (empty.EMPTY, EMPTY_LIST).
        if _evidence_before(st.files, horizon):
            st.files = [f for f in st.files if f.t >= horizon] or EMPTY_LIST
        if _evidence_before(st.egress, horizon):
            st.egress = [e for e in st.egress if e.t >= horizon] or EMPTY_LIST
        pid_horizon = now - self.w_dump - self.w_egress - GRACE
        if _pids_before(st.pids, pid_horizon):
            st.pids = {k: v for k, v in st.pids.items() if v[0] >= pid_horizon} or EMPTY
        if _times_before(st.seen, horizon):
            st.seen = {k: v for k, v in st.seen.items() if v >= horizon} or EMPTY
        expiry = now - self.settings.state_expiry_seconds
        if _times_before(st.history, expiry):
            for k in [k for k, v in st.history.items() if v < expiry]:
                del st.history[k]
        if st.emitted:
            stale = [u for u, (_, last) in st.emitted.items()
                     if last < expiry and u not in st.chains and u not in st.closing]
            for u in stale:
                del st.emitted[u]
        self._cap_emitted(st)
        if now - st.baseline.pruned >= 86400:
            st.baseline.pruned = now
            B.prune(st.baseline, now, self.settings.state_expiry_seconds)
