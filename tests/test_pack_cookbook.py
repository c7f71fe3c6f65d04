"""The hunting cookbook (docs/tables.md): every query is valid SQL over osquery's Linux
schema plus the extension's tables, and finds what it promises in a fixture host."""

from __future__ import annotations

import os
import re

import pytest

from osquery_sqlite import OsqueryDB

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cookbook() -> list[str]:
    with open(os.path.join(REPO, "docs", "tables.md"), encoding="utf-8") as handle:
        text = handle.read()
    section = text.split("<!-- section:cookbook -->", 1)[1].split("<!-- /section:cookbook -->", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


def test_cookbook_has_eight_to_ten_queries_joining_the_right_tables():
    queries = cookbook()
    assert 8 <= len(queries) <= 10
    text = " ".join(queries)
    for table in ("processes", "users", "logged_in_users", "process_open_sockets",
                  "db_cli_sessions", "dump_like_files", "db_client_history", "dbwatch_coverage"):
        assert re.search(rf"\b{table}\b", text), table
    for query in queries:
        assert re.search(r"\b(db_cli_sessions|dump_like_files|db_client_history|dbwatch_coverage)\b", query)
        assert re.search(r"\b(processes|users|logged_in_users|process_open_sockets)\b", query)


@pytest.fixture()
def host():
    db = OsqueryDB()
    db.insert("users", [
        {"uid": 1000, "username": "alice", "shell": "/bin/bash", "directory": "/home/alice"},
        {"uid": 114, "username": "postgres", "shell": "/bin/bash", "directory": "/var/lib/postgresql"},
        {"uid": 33, "username": "www-data", "shell": "/usr/sbin/nologin", "directory": "/var/www"},
    ])
    db.insert("logged_in_users", [{"type": "user", "user": "alice", "tty": "pts/3", "host": "198.51.100.2", "time": 1000, "pid": 500}])
    db.insert("processes", [
        {"pid": 100, "name": "bash", "cmdline": "-bash", "uid": 1000},
        {"pid": 600, "name": "php-fpm8.2", "cmdline": "php-fpm: pool www", "uid": 33},
        {"pid": 4343, "name": "pg_dump", "cmdline": "pg_dump -f /tmp/x.sql app", "uid": 33},
    ])
    db.insert("db_cli_sessions", [
        {"pid": 4242, "ppid": 100, "tool": "psql", "tool_kind": "client", "uid": 114, "username": "postgres",
         "login_user": "alice", "auid": 1000, "tty": "pts/3", "interactive": 1, "server_parent": "", "is_admin": 0,
         "allowed": 0, "service_context": "none", "target_host": "db1", "target_database": "app", "ancestry": "sudo < bash"},
        {"pid": 4343, "ppid": 600, "tool": "pg_dump", "tool_kind": "dump", "uid": 33, "username": "www-data",
         "login_user": "", "auid": 4294967295, "tty": "", "interactive": 0, "server_parent": "php-fpm8.2",
         "is_admin": 0, "allowed": 0, "service_context": "none", "output_path": "/tmp/x.sql"},
    ])
    db.insert("process_open_sockets", [
        {"pid": 4242, "family": 2, "remote_address": "203.0.113.5", "remote_port": 5432},
        {"pid": 4343, "family": 2, "remote_address": "198.51.100.9", "remote_port": 443},
    ])
    db.insert("dump_like_files", [{"path": "/tmp/x.sql", "uid": 1000, "size": 10, "mtime": 2000, "writer_pid": 4343,
                                   "kind_by_name": "strong"}])
    db.insert("db_client_history", [{"uid": 1000, "user": "alice", "engine": "postgres", "dump_like": 1,
                                     "command": "\\copy t to '/tmp/x.csv' csv", "intent": "copy_to"}])
    db.insert("dbwatch_coverage", [{"check_name": "audit_socket_events", "status": "blind", "detail": "auditd holds the socket"}])
    yield db
    db.close()


def test_every_cookbook_query_runs_and_finds_the_fixture(host):
    for query in cookbook():
        rows = host.query(query)
        assert rows, query


def test_cookbook_finds_the_web_shell_dump_and_the_sudo_session(host):
    queries = cookbook()
    web = next(q for q in queries if "server_parent != ''" in q)
    assert [(r["pid"], r["parent_name"]) for r in host.query(web)] == [(4343, "php-fpm8.2")]
    became = next(q for q in queries if "as_account" in q)
    assert [(r["as_account"], r["person"]) for r in host.query(became)] == [("postgres", "alice")]
