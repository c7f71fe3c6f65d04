"""db_cli_sessions: a row per running database client or dump tool."""

from __future__ import annotations

from typing import Iterable

from .base import BIGINT, INTEGER, TEXT, QueryContext, Row, Table


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
        raise NotImplementedError("db_cli_sessions: in progress")
