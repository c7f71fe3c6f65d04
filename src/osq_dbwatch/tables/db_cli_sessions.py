"""db_cli_sessions: a row per running database client or dump tool.

Cheap first: one read of /proc/PID/stat per process gives its name, parent,
terminal and start; only processes named like a DB tool (or an interpreter
that may be running one, `perl /usr/bin/psql`) get their argv read, and only
those that parse as a DB command get the expensive reads (ids, exe, cwd,
cgroup, ancestors, sockets).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .. import catalog, policy, procfs
from ..cmdline import parse_db_command, redact_cmdline, resolve_path
from ..config import Config
from .accounts import Accounts
from .base import BIGINT, INTEGER, TEXT, Deadline, QueryContext, Row, Table

MAX_CMDLINE_OUT = 8192
MAX_ANCESTORS = 64  # pid 1 is normally reached long before; a loop in /proc must not spin
COMM_LEN = 15  # the kernel truncates comm to 15 bytes
TIME_BUDGET_S = 5.0


def _candidate_names(tools: Iterable[str]) -> frozenset[str]:
    names = {name[:COMM_LEN] for name in tools}
    # Interpreters run DB clients written as scripts (Debian's psql is Perl,
    # mycli/pgcli are Python, mongosh is Node): their argv decides.
    names.update(catalog.INTERPRETERS)
    return frozenset(names)


_VERSIONED = re.compile(r"^(python|perl|ruby|php|node|lua)[\d.]*$")


@dataclass
class _Scan:
    """Per-generate caches: every process's stat is read at most once."""

    stats: dict[int, procfs.ProcStat | None]
    boot: float
    accounts: Accounts
    tcp: dict[int, procfs.TcpSocket] | None = None

    def stat(self, pid: int) -> procfs.ProcStat | None:
        if pid not in self.stats:
            self.stats[pid] = procfs.stat(pid)
        return self.stats[pid]

    def tcp_table(self) -> dict[int, procfs.TcpSocket]:
        if self.tcp is None:
            self.tcp = procfs.tcp_sockets()
        return self.tcp


class DbCliSessions(Table):
    name = "db_cli_sessions"
    description = "Running database clients and dump tools, with who runs them, from where, and what they target."
    COLUMNS = (
        ("pid", BIGINT, "process id"),
        ("ppid", BIGINT, "parent process id"),
        ("start_time", BIGINT, "process start, seconds since the epoch"),
        ("path", TEXT, "executable (/proc/PID/exe)"),
        ("cmdline", TEXT, "command line, secrets redacted, at most 8 KiB"),
        ("cwd", TEXT, "working directory"),
        ("tool", TEXT, "catalog tool name (psql, mysqldump, ...)"),
        ("engine", TEXT, "database engine (postgres, mysql, mongo, redis, ...)"),
        ("tool_kind", TEXT, "client or dump"),
        ("uid", BIGINT, "real user id"),
        ("euid", BIGINT, "effective user id"),
        ("username", TEXT, "name of uid"),
        ("auid", BIGINT, "login uid (/proc/PID/loginuid); 4294967295 = no login session"),
        ("login_user", TEXT, "name of auid; empty without a login session"),
        ("tty", TEXT, "controlling terminal (pts/3), empty when none"),
        ("interactive", INTEGER, "1 when a terminal or a login daemon is behind it"),
        ("parent_name", TEXT, "parent's name"),
        ("parent_path", TEXT, "parent's executable"),
        ("ancestry", TEXT, "ancestor names, nearest first, up to pid 1, joined by ' < '"),
        ("ancestry_paths", TEXT, "ancestor executables, same order, joined by ' < '"),
        ("ancestry_pids", TEXT, "ancestor pids, same order, joined by ' < '"),
        ("systemd_unit", TEXT, "systemd unit from /proc/PID/cgroup"),
        ("service_context", TEXT, "cron, automation:AGENT, systemd:UNIT, service-account:USER or none"),
        ("server_parent", TEXT, "web or database server among parent/grandparent"),
        ("is_admin", INTEGER, "1 when the login user (else user) is a configured admin or in an admin group"),
        ("is_service_account", INTEGER, "1 when the user is a configured service account"),
        ("in_automation_window", INTEGER, "1 when now is inside an automation window naming this user/host"),
        ("allowed", INTEGER, "1 when a config allow rule matches"),
        ("target_host", TEXT, "database host named on the command line"),
        ("target_port", TEXT, "database port named on the command line"),
        ("target_database", TEXT, "database named on the command line"),
        ("target_user", TEXT, "database user named on the command line"),
        ("dump_intent", TEXT, "why this is a dump (tool, -f, --result-file, \\copy to, INTO OUTFILE, ...)"),
        ("output_path", TEXT, "dump output file, absolute when the cwd is known"),
        ("remote_peers", TEXT, "remote addr:port of its established TCP sockets, comma-separated"),
        ("reasons", TEXT, "short comma-separated factors (dump, web-server-parent, no-login-session, ...)"),
    )

    def generate(self, ctx: QueryContext) -> Iterable[Row]:
        config = self.env.config
        tools = catalog.db_tools_with_extras(config.extra_db_clients, config.extra_dump_tools)
        names = _candidate_names(tools)
        wanted = ctx.int_equals("pid")
        pids = wanted if wanted is not None else procfs.pids()
        scan = _Scan(stats={}, boot=procfs.boot_time(), accounts=self.env.accounts())
        deadline = Deadline(TIME_BUDGET_S)
        now = time.time()
        rows: list[Row] = []
        for pid in pids:
            if deadline.expired():
                break
            st = scan.stat(pid)
            if st is None:
                continue  # gone, or not a process
            # A process title may rewrite comm: "mongosh " or "mongosh mongodb" (15 bytes of
            # "mongosh mongodb://..."): its first word is the program.
            comm = st.comm.split(" ", 1)[0]
            if comm not in names and not _VERSIONED.match(comm):
                continue
            row = self._session(pid, st, tools, scan, config, now)
            if row is not None:
                rows.append(row)
        return rows

    def _session(self, pid: int, st: procfs.ProcStat, tools: Mapping[str, catalog.DbTool], scan: _Scan, config: Config, now: float) -> Row | None:
        argv = procfs.cmdline(pid)
        if not argv:
            return None  # gone, kernel thread or zombie
        if len(argv) == 1 and " " in argv[0].strip():
            argv = argv[0].split()  # a rewritten process title: "mongosh --host x" in one string
        else:
            argv = [arg.strip() if index == 0 else arg for index, arg in enumerate(argv)]
        path = procfs.exe(pid) or ""
        command = parse_db_command(path or argv[0], argv, tools)
        if command is None:
            return None
        ids = procfs.ids(pid)
        if ids is None:
            return None  # exited while we looked
        accounts = scan.accounts
        username = accounts.name(ids.uid)
        auid = procfs.loginuid(pid)
        login_user = accounts.name(auid) if auid is not None and auid != procfs.NO_LOGINUID else None
        cwd = procfs.cwd(pid) or ""
        cgroup = procfs.cgroup_path(pid)
        unit = procfs.innermost_unit(cgroup)
        tty = procfs.tty_name(st.tty_nr)

        ancestors, ancestor_pids = self._ancestors(st.ppid, scan)
        # pid 1 does not count as a service context (contract §4).
        above_init = [a for a, p in zip(ancestors, ancestor_pids) if p != 1]
        context = policy.service_context(config, username or "", above_init, cgroup)
        server = policy.server_ancestor(ancestors)
        parent = ancestors[0] if ancestors else None

        person = login_user or username or ""
        groups = accounts.groups_of(person, ids.gid if person == username else None) if person else set()
        admin = policy.is_admin(config, person, groups)
        service_account = policy.is_service_account(config, username or "")
        users = {u for u in (username, login_user) if u}
        in_window = any(policy.in_automation_window(config, now, u, self.env.hostname) for u in users)
        windows_apply = any(policy.windows_for(config, u, self.env.hostname) for u in users)

        full_cmdline = " ".join(argv)
        # Only the first 8 KiB are emitted; redacting twice that keeps every
        # secret pattern whole at the cut and bounds the regex work per process.
        redacted = redact_cmdline(full_cmdline[: 2 * MAX_CMDLINE_OUT])
        # Allow-rule globs run over the whole command line: past 16 KiB (a hostile
        # length, and a cost) nothing is allowed rather than cutting the line,
        # which could drop the `; curl ...` that keeps a rule from matching.
        long_cmdline = len(full_cmdline) > 2 * MAX_CMDLINE_OUT
        allowed = not long_cmdline and any(
            policy.matching_allow_rule(
                config,
                policy.AccessFacts(user=u, tool=command.tool.split(" ")[0], parent_path=parent.path if parent else "",
                                   host=self.env.hostname, cmdline=full_cmdline),
            )
            is not None
            for u in (users or {""})
        )
        peers = self._peers(pid, scan)
        output = resolve_path(command.output_path, cwd) if command.output_path else ""

        reasons: list[str] = []
        if command.kind == "dump":
            reasons.append("dump-tool")
        if command.dump_intent and command.kind != "dump":
            reasons.append("dump-intent")
        unusual = policy.unusual_parent(parent)
        if unusual:
            reasons.append(unusual)
        elif server is not None:
            reasons.append("server-grandparent")
        if policy.is_web_account(username or ""):
            reasons.append("web-account")
        if login_user is None:
            reasons.append("no-login-session")
        if admin:
            reasons.append("admin")
        if context.known:
            reasons.append(f"service-context:{context.kind}")
        if windows_apply:
            reasons.append("in-automation-window" if in_window else "outside-automation-window")
        if allowed:
            reasons.append("allow-rule")
        if long_cmdline:
            reasons.append("long-cmdline")
        if any(policy.is_external_address(config, p.rsplit(":", 1)[0].strip("[]")) for p in peers):
            reasons.append("external-peer")

        return {
            "pid": pid,
            "ppid": st.ppid,
            "start_time": int(scan.boot + st.start_ticks / procfs.CLOCK_TICKS) if scan.boot else None,
            "path": path or None,
            "cmdline": redacted[:MAX_CMDLINE_OUT],
            "cwd": cwd or None,
            "tool": command.tool,
            "engine": command.engine,
            "tool_kind": command.kind,
            "uid": ids.uid,
            "euid": ids.euid,
            "username": username,
            "auid": auid,
            "login_user": login_user or "",
            "tty": tty,
            "interactive": policy.interactive(tty, ancestors),
            "parent_name": parent.name if parent else None,
            "parent_path": (parent.path or None) if parent else None,
            "ancestry": " < ".join(a.name for a in ancestors),
            "ancestry_paths": " < ".join(a.path for a in ancestors),
            "ancestry_pids": " < ".join(str(p) for p in ancestor_pids),
            "systemd_unit": unit,
            "service_context": str(context),
            "server_parent": server.name if server else "",
            "is_admin": admin,
            "is_service_account": service_account,
            "in_automation_window": in_window,
            "allowed": allowed,
            "target_host": command.host,
            "target_port": command.port,
            "target_database": command.database,
            "target_user": command.user,
            "dump_intent": command.dump_intent,
            "output_path": output,
            "remote_peers": ",".join(peers),
            "reasons": ",".join(reasons),
        }

    @staticmethod
    def _ancestors(ppid: int, scan: _Scan) -> tuple[list[policy.Ancestor], list[int]]:
        """Nearest first, up to and including pid 1 (or where /proc stops answering)."""
        ancestors: list[policy.Ancestor] = []
        chain: list[int] = []
        pid = ppid
        seen: set[int] = set()
        while pid > 0 and pid not in seen and len(chain) < MAX_ANCESTORS:
            seen.add(pid)
            st = scan.stat(pid)
            if st is None:
                break
            argv = procfs.cmdline(pid, 4096) or []
            ancestors.append(policy.Ancestor(name=st.comm, path=procfs.exe(pid) or "",
                                             cmdline=redact_cmdline(" ".join(argv))))
            chain.append(pid)
            pid = st.ppid
        return ancestors, chain

    @staticmethod
    def _peers(pid: int, scan: _Scan) -> list[str]:
        inodes = procfs.socket_inodes(pid)
        if not inodes:
            return []
        table = scan.tcp_table()
        if not inodes <= table.keys():
            # Another network namespace: its own view of the TCP table.
            table = {**table, **procfs.tcp_sockets(f"{procfs.PROC}/{pid}/net")}
        peers: list[str] = []
        for inode in sorted(inodes):
            sock = table.get(inode)
            if sock is None or sock.state not in ("ESTABLISHED", "SYN_SENT"):
                continue
            host = f"[{sock.remote_address}]" if ":" in sock.remote_address else sock.remote_address
            peer = f"{host}:{sock.remote_port}"
            if peer not in peers:
                peers.append(peer)
        return peers
