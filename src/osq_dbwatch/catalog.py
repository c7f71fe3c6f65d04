"""The one catalog of names osq-dbwatch recognises.

The extension, the pack renderer and the correlator all import these records;
nothing else in the project spells a tool name. A new DB client is one entry
here plus its test cases in tests/test_catalog.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Engine = Literal[
    "postgres",
    "mysql",
    "mongo",
    "redis",
    "mssql",
    "oracle",
    "sqlite",
    "clickhouse",
    "cassandra",
    "influx",
    "cockroach",
    "generic",
]
ToolKind = Literal["client", "dump"]
TransferKind = Literal["transfer", "staging"]


@dataclass(frozen=True)
class DbTool:
    """A database client or dump/export tool, matched on its executable basename."""

    name: str
    engine: Engine
    kind: ToolKind
    # Some multi-purpose binaries are a DB client only with a sub-command
    # (`clickhouse client`, `cockroach sql`): the first argument must be one of these.
    subcommands: tuple[str, ...] = ()
    # Sub-commands that make the same binary a dump tool (`cockroach dump`).
    dump_subcommands: tuple[str, ...] = ()


@dataclass(frozen=True)
class TransferTool:
    """A tool that moves data off the host (transfer) or packs it for that (staging)."""

    name: str
    kind: TransferKind


DB_TOOLS: tuple[DbTool, ...] = (
    # PostgreSQL
    DbTool("psql", "postgres", "client"),
    DbTool("pgcli", "postgres", "client"),
    DbTool("pg_dump", "postgres", "dump"),
    DbTool("pg_dumpall", "postgres", "dump"),
    DbTool("pg_basebackup", "postgres", "dump"),
    # MySQL / MariaDB
    DbTool("mysql", "mysql", "client"),
    DbTool("mariadb", "mysql", "client"),
    DbTool("mysqlsh", "mysql", "client"),
    DbTool("mycli", "mysql", "client"),
    DbTool("mysqldump", "mysql", "dump"),
    DbTool("mariadb-dump", "mysql", "dump"),
    DbTool("mysqlpump", "mysql", "dump"),
    DbTool("mydumper", "mysql", "dump"),
    DbTool("mariadb-backup", "mysql", "dump"),
    DbTool("mariabackup", "mysql", "dump"),
    DbTool("xtrabackup", "mysql", "dump"),
    # MongoDB
    DbTool("mongo", "mongo", "client"),
    DbTool("mongosh", "mongo", "client"),
    DbTool("mongodump", "mongo", "dump"),
    DbTool("mongoexport", "mongo", "dump"),
    # Redis (`redis-cli --rdb FILE` is a dump: see cmdline.parse_db_command)
    DbTool("redis-cli", "redis", "client"),
    # Microsoft SQL Server
    DbTool("sqlcmd", "mssql", "client"),
    DbTool("bcp", "mssql", "dump"),
    # Oracle
    DbTool("sqlplus", "oracle", "client"),
    DbTool("expdp", "oracle", "dump"),
    DbTool("exp", "oracle", "dump"),
    # SQLite
    DbTool("sqlite3", "sqlite", "client"),
    DbTool("litecli", "sqlite", "client"),
    # ClickHouse
    DbTool("clickhouse-client", "clickhouse", "client"),
    DbTool("clickhouse", "clickhouse", "client", subcommands=("client",)),
    # Cassandra
    DbTool("cqlsh", "cassandra", "client"),
    # InfluxDB
    DbTool("influx", "influx", "client", dump_subcommands=("backup", "export")),
    # CockroachDB
    DbTool("cockroach", "cockroach", "client", subcommands=("sql", "dump"), dump_subcommands=("dump",)),
    # Generic multi-engine clients
    DbTool("usql", "generic", "client"),
    DbTool("isql", "generic", "client"),
)

TRANSFER_TOOLS: tuple[TransferTool, ...] = tuple(
    [
        TransferTool(n, "transfer")
        for n in (
            "curl", "wget", "scp", "sftp", "rsync", "rclone", "nc", "ncat", "netcat",
            "socat", "ftp", "lftp", "tftp", "smbclient", "aws", "gsutil", "az", "s3cmd",
            "azcopy", "gcloud", "mc", "ssh",
        )
    ]
    + [
        TransferTool(n, "staging")
        for n in (
            "openssl", "split", "base64", "tar", "zip", "gzip", "pigz", "bzip2", "xz",
            "7z", "7za", "zstd", "gpg",
        )
    ]
)

# Processes whose children should not be database clients (a web shell or an
# SQL injection that reaches a shell). Prefix entries end with "*".
WEB_SERVERS: tuple[str, ...] = (
    "httpd", "apache2", "nginx", "lighttpd", "caddy", "php-fpm*", "php-cgi*", "lsphp*",
    "uwsgi", "gunicorn", "uvicorn", "node", "php", "tomcat*", "catalina*", "jetty",
    "puma", "unicorn", "passenger*", "hypercorn",
)
DB_SERVERS: tuple[str, ...] = (
    "postgres", "postmaster", "mysqld", "mariadbd", "mongod", "mongos", "redis-server",
    "sqlservr", "oracle", "tnslsnr", "clickhouse-server", "db2sysc", "influxd",
    "cockroach-server", "memcached",
)
# Accounts web servers run as; a DB client under one with no login session
# and no service context is a web shell until shown otherwise.
WEB_ACCOUNTS: tuple[str, ...] = ("www-data", "apache", "nginx", "http", "nobody", "wwwrun", "lighttpd")

CRON_DAEMONS: tuple[str, ...] = ("cron", "crond", "anacron", "atd", "fcron", "systemd-cron")
AUTOMATION_AGENTS: tuple[str, ...] = (
    "ansible", "ansible-playbook", "ansible-pull", "salt-minion", "salt-call", "puppet",
    "chef-client", "cinc-client", "airflow", "jenkins", "agent.jar", "nrpe", "nagios",
    "icinga2", "zabbix_agentd", "zabbix_agent2", "telegraf", "datadog-agent",
    "node_exporter", "postgres_exporter", "mysqld_exporter", "redis_exporter",
    "sensu-agent", "rundeck", "rundeckd", "gitlab-runner", "buildkite-agent",
    # Ansible runs modules on the managed host as `python3 ~/.ansible/tmp/.../AnsiballZ_command.py`
    "AnsiballZ_*",
)
WAL_ARCHIVERS: tuple[str, ...] = (
    "wal-g", "wal-e", "pgbackrest", "barman", "barman-cloud-wal-archive",
    "barman-cloud-backup", "pg_probackup", "pg_receivewal",
)
SHELLS: tuple[str, ...] = ("sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "tcsh", "csh", "busybox", "ash")
# Ancestors that mark a person at a keyboard (Falco's view of "interactive").
# sudo and su are not here: they switch users for cron jobs and web shells as
# readily as for people, and a person's sudo already has a terminal.
LOGIN_ANCESTORS: tuple[str, ...] = ("sshd", "login", "tmux: server", "tmux", "screen", "mosh-server", "agetty")
INTERPRETERS: tuple[str, ...] = ("python", "python3", "perl", "ruby", "php", "node", "lua", "java")

# Package-name prefixes (Debian and RPM) of database servers and clients: the
# Fleet label for database hosts matches installed packages on these. Chosen so
# that shared libraries pulled in everywhere (libpq5, mysql-common,
# mariadb-common, python3-redis) do not match. SQLite is left out: every host
# has it, and a file is not a database host.
DB_PACKAGE_PREFIXES: tuple[str, ...] = (
    "postgresql", "pgcli", "pgbackrest", "mysql-client", "mysql-server", "mysql-shell",
    "default-mysql-", "mariadb-client", "mariadb-server", "mariadb-backup", "percona-server",
    "percona-xtrabackup", "mongodb", "redis", "mssql-tools",
    "mssql-server", "oracle-instantclient", "clickhouse", "cassandra", "influxdb", "cockroach",
    "mycli", "usql",
)

# Directories an attacker stages binaries and files in.
STAGING_DIRS: tuple[str, ...] = ("/tmp/", "/var/tmp/", "/dev/shm/", "/run/", "/var/www/")

# Where dump files land; the extension scans these and the deploy config
# watches them with file events.
DEFAULT_DUMP_ROOTS: tuple[str, ...] = ("/tmp", "/var/tmp", "/dev/shm", "/home", "/root", "/var/www", "/srv")

# Dump-like names. "Strong" suffixes are dump-like by name alone; "weak" ones
# only with a dump content signature (a .json or .db file is not a dump by itself).
DUMP_SUFFIXES_STRONG: tuple[str, ...] = (".sql", ".csv", ".tsv", ".dump", ".bak", ".bson", ".rdb", ".pgdump", ".sqlc")
DUMP_SUFFIXES_WEAK: tuple[str, ...] = (".json", ".jsonl", ".ndjson", ".db", ".sqlite", ".sqlite3", ".txt", ".out")
COMPRESSION_SUFFIXES: tuple[str, ...] = (".gz", ".bz2", ".xz", ".zst", ".zip", ".7z", ".tar", ".tgz", ".lz4", ".gpg", ".enc")

# ---------------------------------------------------------------------------
# Lookups (built once; the lists above stay the source)

DB_TOOLS_BY_NAME: dict[str, DbTool] = {t.name: t for t in DB_TOOLS}
TRANSFER_TOOLS_BY_NAME: dict[str, TransferTool] = {t.name: t for t in TRANSFER_TOOLS}


def db_tool_names(kind: ToolKind | None = None) -> tuple[str, ...]:
    """Basenames of DB tools (of one kind, or all)."""
    return tuple(
        t.name for t in DB_TOOLS if (kind is None or t.kind == kind)
    )


def transfer_tool_names(kind: TransferKind | None = None) -> tuple[str, ...]:
    return tuple(t.name for t in TRANSFER_TOOLS if kind is None or t.kind == kind)


# The kernel cuts a process's comm to 15 characters (TASK_COMM_LEN 16), so
# `clickhouse-server` shows as `clickhouse-serv`: a 15-character name also
# matches the longer names it is the start of.
COMM_LENGTH = 15


def _matches_name(name: str, patterns: tuple[str, ...]) -> bool:
    if not name:
        return False
    truncated = len(name) == COMM_LENGTH
    for pattern in patterns:
        if pattern.endswith("*"):
            if name.startswith(pattern[:-1]):
                return True
        elif name == pattern or (truncated and pattern.startswith(name)):
            return True
    return False


def is_web_server(name: str) -> bool:
    return _matches_name(name, WEB_SERVERS)


def is_db_server(name: str) -> bool:
    return _matches_name(name, DB_SERVERS)


def is_cron(name: str) -> bool:
    return name.lower() in CRON_DAEMONS


def is_automation_agent(name: str) -> bool:
    return _matches_name(name, AUTOMATION_AGENTS) or _matches_name(name, WAL_ARCHIVERS)


def is_shell(name: str) -> bool:
    return name.lstrip("-") in SHELLS


def dump_suffix_strength(path: str) -> Literal["strong", "weak", ""]:
    """How dump-like a file name is, after peeling compression suffixes."""
    name = path.rsplit("/", 1)[-1].lower()
    while True:
        for suffix in COMPRESSION_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                break
        else:
            break
    if name.endswith(DUMP_SUFFIXES_STRONG):
        return "strong"
    if name.endswith(DUMP_SUFFIXES_WEAK):
        return "weak"
    return ""


def db_tools_with_extras(
    extra_clients: tuple[tuple[str, str], ...] = (), extra_dumps: tuple[tuple[str, str], ...] = ()
) -> dict[str, DbTool]:
    """The DB tool table plus site-specific tools from the config's `extra_tools`."""
    table = dict(DB_TOOLS_BY_NAME)
    for name, engine in extra_clients:
        table[name] = DbTool(name, engine, "client")  # type: ignore[arg-type]
    for name, engine in extra_dumps:
        table[name] = DbTool(name, engine, "dump")  # type: ignore[arg-type]
    return table


def transfer_tools_with_extras(extra: tuple[str, ...] = ()) -> dict[str, TransferTool]:
    table = dict(TRANSFER_TOOLS_BY_NAME)
    for name in extra:
        table.setdefault(name, TransferTool(name, "transfer"))
    return table
