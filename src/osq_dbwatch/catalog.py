"""The one catalog of names osq-dbwatch recognises, and what each tool means.

The extension, the pack renderer and the correlator all import these records;
nothing else in the project spells a tool name. For each DB engine it holds
its clients' option spec (which option names the host, the output, a
secret), the history files they write and the dump statements they speak;
for each transfer tool, how it names files, destinations and secrets.
cmdline.py is the one parser of these records. A new DB client is one entry
here plus its test cases in tests/test_catalog.py (docs/catalog.md).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace
from typing import Literal

# A quoted or bare target in SQL or a meta-command: one of the three groups holds it.
QUOTED_OR_WORD = r"(?:'([^'\n]{0,4096})'|\"([^\"\n]{0,4096})\"|([^\s;'\"]{1,4096}))"

Engine = Literal[
    "postgres",
    "mysql",
    "mongo",
    "redis",
    "mssql",
    "oracle",
    "sqlite",
    "duckdb",
    "clickhouse",
    "cassandra",
    "influx",
    "cockroach",
    "generic",
]
ToolKind = Literal["client", "dump"]
TransferKind = Literal["transfer", "staging"]
HostForm = Literal["host:port", "host,port", "ezconnect"]

# ---------------------------------------------------------------------------
# How a tool's command line is read: option specs
#
# cmdline.py holds the one parser; these records say which option or
# positional argument of a tool carries which meaning, and which carry secrets
# (redaction reads the same records as the parser).

# Roles a positional argument can have (OptionSpec.positional), in order:
#   database, user, host, port, output  that field (first value wins)
#   host/database   mongosh's db address: HOST[:PORT]/DB, HOST:PORT, a word with a dot is a host,
#                   another word the database
#   direction       bcp's `out`/`queryout`: a dump word (OptionSpec.dump_directions),
#                   the next positional is the output file
#   connect*        Oracle's user[/password][@connect] (every remaining positional)
#   sql*            the remaining positionals are SQL (sqlite3 DB 'select ...')
#   password        a secret (unixODBC isql DSN USER PASSWORD): never read, redacted
#   ignore          read past
PositionalRole = Literal[
    "database", "user", "host", "port", "output", "host/database", "direction", "connect*", "sql*", "password",
    "ignore",
]


@dataclass(frozen=True)
class OptionSpec:
    """Which options and positional arguments of one DB tool carry which meaning."""

    host: tuple[str, ...] = ()
    port: tuple[str, ...] = ()
    user: tuple[str, ...] = ()
    database: tuple[str, ...] = ()
    output: tuple[str, ...] = ()  # output file of a dump/export
    sql: tuple[str, ...] = ()  # inline statement (-c, -e, --eval, --query)
    uri: tuple[str, ...] = ()
    secret: tuple[str, ...] = ()  # options whose next token is a secret
    # Options that take no value (so the next token is positional). An option both here and in a
    # value list takes its value only glued on with `=` (mongodump --archive[=FILE], mysql --pager[=CMD]).
    flags: tuple[str, ...] = ()
    attached_secret: tuple[str, ...] = ()  # "-pSECRET" style
    values: tuple[str, ...] = ()  # options that take a value with no role here (`psql -f FILE`)
    value_counts: tuple[tuple[str, int], ...] = ()  # options taking more than one value (sqlite3 -lookaside SIZE N)
    # Value options whose value may hold spaces (mysqldump --where 'id > 5', a prompt): on a logged line it
    # may be several words. Other values are one word, which lets cmdline.recover_order tell them apart.
    spaced_values: tuple[str, ...] = ()
    no_target: tuple[str, ...] = ()  # flags that make the positionals name no server (mongosh --nodb)
    script_suffixes: tuple[str, ...] = ()  # a positional ending so is a script run, not a target (mongosh x.js)
    # Names of database files (sqlite3, duckdb): on a logged line, whose quotes are gone, the file
    # among the words an SQL option swallowed (`sqlite3 -cmd .once /tmp/x.csv app.db`).
    database_suffixes: tuple[str, ...] = ()
    positional: tuple[PositionalRole, ...] = ("database",)
    dump_positional: tuple[PositionalRole, ...] = ()  # instead of `positional` under a dump sub-command
    dump_directions: tuple[str, ...] = ()  # words of the `direction` role that make a dump (bcp out)
    # An output option makes the command a dump with this intent (redis-cli --rdb FILE).
    output_is_dump: str = ""
    # Flags that name a dump intent when nothing else does (psql --csv).
    flag_intents: tuple[tuple[str, str], ...] = ()
    # Words after which the next N words are secrets (redis-cli AUTH [user] pass; mysqladmin password NEW).
    secret_words: tuple[tuple[str, int], ...] = ()
    # `user[:password]@host` without a scheme names the target (mysqlsh).
    schemeless_uri: bool = False


@dataclass(frozen=True)
class HistorySource:
    """A history file a DB client writes in its user's home."""

    path: str  # relative to the home; a directory when `suffix` is set
    engine: Engine
    tool: str  # the client that writes it (the correlator names this tool)
    octal: bool = False  # libedit escapes (\040 for a space)
    suffix: str = ""  # when set, `path` is a directory and files ending in it are read


@dataclass(frozen=True)
class DumpStatement:
    """A statement or client meta-command that writes query results to a file or program.

    `pattern` captures the target in one of its groups (quoted or bare) or has
    empty groups when there is none; `engines` are the clients that speak it.
    Every pattern is tried on every text: a history file or `sh -c` line does
    not always say which client it was for.
    """

    intent: str
    engines: tuple[Engine, ...]
    pattern: re.Pattern[str]
    names_file: bool = True  # False: the target is a program or stdout, never a path


@dataclass(frozen=True)
class EngineInfo:
    """What one engine's clients share: how they name a target, their default
    option spec, the history files they write, the dump statements they speak."""

    engine: Engine
    options: OptionSpec
    history: tuple[HistorySource, ...] = ()
    # A value holding `user@host` (no `/`) in a host or database option is a schemeless URI (mysql).
    at_is_uri: bool = False
    # A `scheme://` value in a host/database/user option is split into its parts (Oracle keeps
    # `user/pass@//host:port/service` whole: see host_form).
    uri_fields: bool = True
    host_form: HostForm = "host:port"  # host,port: SQL Server [tcp:]host[,port]; ezconnect: [//]host[:port][/service]
    conninfo: bool = False  # libpq `key=value` connection strings (positional or in -d)
    masks_password: bool = False  # the client overwrites its password in /proc (-px xxxx)
    output_assignments: tuple[str, ...] = ()  # positional `KEY=FILE` naming the output (expdp dumpfile=)


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
    # The tool's own option spec; None: its engine's (EngineInfo.options).
    options: OptionSpec | None = None


@dataclass(frozen=True)
class TransferSpec:
    """How a transfer or staging tool names local files, destinations and secrets."""

    values: tuple[str, ...] = ()  # options with a value that is neither a file nor a destination
    upload_files: tuple[str, ...] = ()  # the value is a local file sent out (curl -T, wget --post-file)
    upload_data: tuple[str, ...] = ()  # data sent out; `@FILE` in the value names a local file (curl -d)
    upload_flags: tuple[str, ...] = ()  # prefixes of options that send data, taking no value here (wget --post-data)
    input_files: tuple[str, ...] = ()  # the value is a local file read (openssl -in)
    destinations: tuple[str, ...] = ()  # the value is HOST[:PORT] (openssl -connect)
    attached: tuple[str, ...] = ()  # short options whose value may be glued on (curl -T/tmp/x)
    subcommand_words: int = 0  # leading words that are a sub-command (`aws s3 cp`: 2)
    cloud_copy: bool = False  # a local file before a remote target is an upload (`aws s3 cp F s3://b`)
    remote_paths: bool = False  # HOST:PATH is a remote (scp, rsync)
    numeric_ports: bool = False  # a bare number is a port (`nc HOST PORT`)
    first_word_is_host: bool = False  # the first plain word is the destination (nc, ssh)
    addresses: bool = False  # socat's TYPE:ADDRESS arguments (TCP:host:port, OPEN:/path)
    option_bundle: bool = False  # the first word may be bundled letters (`tar czf OUT IN`), f naming the output
    output_prefix_last: bool = False  # the last file argument is the prefix of the files written (split IN PREFIX)
    secret: tuple[str, ...] = ()  # options whose next token is a secret
    attached_secret: tuple[str, ...] = ()  # -pSECRET
    user_options: tuple[str, ...] = ()  # value is USER[:PASSWORD]: the user is kept (curl -u)


@dataclass(frozen=True)
class TransferTool:
    """A tool that moves data off the host (transfer) or packs it for that (staging)."""

    name: str
    kind: TransferKind
    spec: TransferSpec = field(default_factory=TransferSpec, compare=False)
    web: bool = False  # speaks HTTP(S) to a web or cloud endpoint (its egress is web egress)
    stream: bool = False  # sends whatever is piped in (`nc HOST PORT < x.sql`): egress with no upload option
    compress_suffix: str = ""  # a compressor: the suffix it adds to the files it packs


@dataclass(frozen=True)
class PasswordTool:
    """A program outside the tool lists whose command lines carry passwords.

    `like` names the catalog tool whose secret options it shares (an admin
    tool shares its client's); `secret_words` add its own.
    """

    name: str
    like: str = ""
    secret: tuple[str, ...] = ()
    attached_secret: tuple[str, ...] = ()
    secret_words: tuple[tuple[str, int], ...] = ()


# ---------------------------------------------------------------------------
# Option specs, by engine and (where a tool differs) by tool

def _both_dashes(*options: str) -> tuple[str, ...]:
    """`-x` and `--x`: the sqlite3 and duckdb shells read an option with either (they skip a second dash)."""
    return (*options, *("-" + option for option in options))


# psql [OPTION]... [DBNAME [USERNAME]] (psql --help, PostgreSQL 15-17)
_PG = OptionSpec(
    host=("-h", "--host"), port=("-p", "--port"), user=("-U", "--username"),
    database=("-d", "--dbname"), output=("-o", "--output"), sql=("-c", "--command"),
    flags=("-w", "-W", "-X", "-A", "-t", "-x", "-q", "-a", "-b", "-e", "-E", "-H", "-l", "-n", "-s", "-S", "-z",
           "-0", "-1", "-V", "--csv", "--html", "--list", "--no-password", "--password", "--no-psqlrc", "--quiet",
           "--echo-all", "--echo-errors", "--echo-queries", "--echo-hidden", "--no-readline", "--single-step",
           "--single-line", "--single-transaction", "--tuples-only", "--no-align", "--expanded",
           "--field-separator-zero", "--record-separator-zero", "--version", "-c", "-C", "--clean", "--create",
           "--schema-only", "--data-only", "-O", "--no-owner", "--verbose"),
    # psql: -f runs a script (input, not output), -v/-P/-F/-R set variables and
    # separators; their values are not the database name.
    values=("-f", "--file", "-L", "--log-file", "-v", "--set", "--variable", "-P", "--pset",
            "-F", "--field-separator", "-R", "--record-separator", "-T", "--table-attr"),
    spaced_values=("-v", "--set", "--variable", "-P", "--pset", "-T", "--table-attr"),
    positional=("database", "user"),  # psql [DBNAME [USERNAME]]
)
_PSQL = replace(_PG, flag_intents=(("--csv", "--csv"),))
# pgcli [OPTIONS] [DBNAME] [USERNAME]: -u is the user too, -v the version, -D a DSN alias.
_PGCLI = OptionSpec(
    host=("-h", "--host"), port=("-p", "--port"), user=("-U", "--username", "-u", "--user"),
    database=("-d", "--dbname"),
    flags=("-W", "--password", "-w", "--no-password", "--single-connection", "-v", "--version", "--list-dsn",
           "--less-chatty", "-l", "--list", "--auto-vertical-output", "--ping"),
    values=("-D", "--dsn", "--pgclirc", "--row-limit", "--prompt", "--prompt-dsn", "--warn", "--ssh-tunnel",
            "--init-command", "--log-file"),
    spaced_values=("--prompt", "--prompt-dsn", "--init-command"),
    positional=("database", "user"),
)
# pg_dump [OPTION]... [DBNAME] (pg_dump --help, PostgreSQL 15-17)
_PG_DUMP_VALUES = (
    "-j", "--jobs", "-F", "--format", "-Z", "--compress", "-E", "--encoding", "-S", "--superuser", "--role",
    "--lock-wait-timeout", "--extra-float-digits", "--rows-per-insert", "--filter", "--restrict-key", "--sync-method",
)
_PG_DUMP_FLAGS = (
    "-w", "-W", "-a", "-b", "-B", "-c", "-C", "-O", "-s", "-v", "-x", "-X", "-V",
    "--clean", "--create", "--schema-only", "--data-only", "--no-owner", "--verbose", "--version",
    "--inserts", "--column-inserts", "--if-exists", "--no-password", "--password", "--large-objects", "--blobs",
    "--no-large-objects", "--no-blobs", "--no-privileges", "--no-acl", "--binary-upgrade", "--attribute-inserts",
    "--disable-dollar-quoting", "--disable-triggers", "--enable-row-security", "--load-via-partition-root",
    "--no-comments", "--no-publications", "--no-security-labels", "--no-subscriptions", "--no-sync",
    "--no-table-access-method", "--no-tablespaces", "--no-toast-compression", "--no-unlogged-table-data",
    "--on-conflict-do-nothing", "--quote-all-identifiers", "--serializable-deferrable", "--use-set-session-authorization",
)
_PG_DUMP = OptionSpec(
    host=("-h", "--host"), port=("-p", "--port"), user=("-U", "--username"),
    database=("-d", "--dbname"), output=("-f", "--file"),
    flags=_PG_DUMP_FLAGS,
    # pg_dump -j 4 -n public -t users -F d: these values are not the database name
    values=(*_PG_DUMP_VALUES, "-n", "--schema", "-N", "--exclude-schema", "-t", "--table", "-T", "--exclude-table",
            "--exclude-table-data", "-e", "--extension", "--exclude-extension", "--include-foreign-data",
            "--section", "--snapshot", "--table-and-children", "--exclude-table-and-children",
            "--exclude-table-data-and-children"),
    positional=("database", "user"),
)
# pg_dumpall [OPTION]...: no positional argument; -t is --tablespaces-only, -l names the
# database it connects to, -d takes a connection string.
_PG_DUMPALL = OptionSpec(
    host=("-h", "--host"), port=("-p", "--port"), user=("-U", "--username"),
    database=("-d", "--dbname", "-l", "--database"), output=("-f", "--file"),
    flags=(*_PG_DUMP_FLAGS, "-g", "--globals-only", "-r", "--roles-only", "-t", "--tablespaces-only",
           "--no-role-passwords"),
    values=(*_PG_DUMP_VALUES, "--exclude-database"),
    positional=(),
)
# pg_basebackup [OPTION]...: -D names the output; -X/-Z/-c/-l/-S/-t/-T/-r/-s take values, -d a connection string.
_PG_BASEBACKUP = OptionSpec(
    host=("-h", "--host"), port=("-p", "--port"), user=("-U", "--username"), database=("-d", "--dbname"),
    output=("-D", "--pgdata"),
    flags=("-P", "--progress", "-R", "--write-recovery-conf", "-v", "--verbose", "-w", "--no-password", "-W",
           "--password", "-z", "--gzip", "-C", "--create-slot", "-n", "--no-clean", "-N", "--no-sync", "-V",
           "--version", "--no-estimate-size", "--no-manifest", "--no-slot", "--no-verify-checksums",
           "--manifest-force-encode"),
    values=("-F", "--format", "-r", "--max-rate", "-T", "--tablespace-mapping", "--waldir", "-X", "--wal-method",
            "-Z", "--compress", "-c", "--checkpoint", "-l", "--label", "-S", "--slot", "-s", "--status-interval",
            "-t", "--target", "-i", "--incremental", "--manifest-checksums", "--sync-method"),
    positional=(),
)
# The mysql client (mariadb --help, MariaDB 10.11; MySQL 8 additions): -r is --raw and
# -T --debug-info (flags); only --tee writes a file; --pager takes its command only after `=`.
_MYSQL_CONNECTION_VALUES = (
    "-S", "--socket", "--default-character-set", "--character-sets-dir", "--default-auth", "--plugin-dir",
    "--protocol", "--ssl-ca", "--ssl-capath", "--ssl-cert", "--ssl-cipher", "--ssl-crl", "--ssl-crlpath",
    "--ssl-key", "--tls-version", "--ssl-mode", "--ssl-fips-mode", "--tls-ciphersuites", "--compression-algorithms",
    "--zstd-compression-level", "--server-public-key-path", "--network-namespace", "--dns-srv-name",
    "--connect-timeout", "--max-allowed-packet", "--net-buffer-length",
)
_MYSQL = OptionSpec(
    host=("-h", "--host"), port=("-P", "--port"), user=("-u", "--user"),
    database=("-D", "--database"), output=("--tee",),
    sql=("-e", "--execute"), attached_secret=("-p",),
    flags=("-B", "--batch", "-N", "-s", "-v", "-t", "-E", "-A", "-q", "-f", "--force", "-r", "--raw",
           "-T", "--debug-info", "-n", "--unbuffered", "-X", "--xml", "-H", "--html", "-C", "--compress",
           "--password", "-p", "--no-auto-rehash", "--skip-column-names", "--silent", "--table", "--vertical",
           "--safe-updates", "-U", "-G", "-w", "--wait", "--skip-password", "-b", "--no-beep", "-c", "--comments",
           "-o", "--one-database", "-L", "--skip-line-numbers", "-i", "--ignore-spaces", "-I", "-?", "--help",
           "-V", "--version", "--pager", "--no-pager", "--no-tee", "--binary-mode", "--local-infile",
           "--ssl", "--skip-ssl", "--ssl-verify-server-cert", "--sigint-ignore", "--show-warnings"),
    values=(*_MYSQL_CONNECTION_VALUES, "--init-command", "--prompt", "--pager", "-O", "--delimiter",
            "--max-join-size", "--select-limit", "--quick-max-column-width", "--server-arg", "--load-data-local-dir",
            "--histignore"),
    spaced_values=("--init-command", "--prompt", "--pager", "--server-arg"),
)
# mycli takes its password as a value (-p PASS, --password PASS, --pass PASS); -R is its prompt, -l its log.
_MYCLI = replace(_MYSQL, secret=("-p", "--password", "--pass", "--ssh-password"),
                 flags=tuple(f for f in _MYSQL.flags if f not in ("-p", "--password", "--local-infile")) + (
                     "--csv", "--warn", "--no-warn", "--auto-vertical-output", "--list-dsn", "--ssl"),
                 values=(*_MYSQL.values, "-R", "-l", "--logfile", "--defaults-group-suffix", "--defaults-file",
                         "--myclirc", "--login-path", "--charset", "-d", "--dsn", "--ssh-user", "--ssh-host",
                         "--ssh-port", "--ssh-key-filename", "--ssh-config-path", "--ssh-config-host",
                         "--local-infile"),
                 spaced_values=(*_MYSQL.spaced_values, "-R"))
# mysqlsh: --uri or a positional user[:pass]@host[:port][/schema]; -D/--schema name the schema, -f runs a script.
_MYSQLSH = replace(_MYSQL, schemeless_uri=True, uri=("--uri",), database=("-D", "--database", "--schema"),
                   flags=(*_MYSQL.flags, "--sql", "--sqlc", "--sqlx", "--js", "--javascript", "--py", "--python",
                          "--json", "--tabbed", "--interactive", "--quiet-start", "--no-wizard", "--nw",
                          "--redirect-primary", "--redirect-secondary", "--cluster", "--replicaset", "--name-cache",
                          "--no-name-cache"),
                   values=(*_MYSQL.values, "-f", "--file", "--log-level", "--dba", "--save-passwords",
                           "--credential-store-helper", "--ssh", "--ssh-identity-file", "--ssh-config-file",
                           "--pym"))
# mysqldump / mariadb-dump / mysqlpump: -r/--result-file and -T/--tab name the output.
_MYSQLDUMP = OptionSpec(
    host=("-h", "--host"), port=("-P", "--port"), user=("-u", "--user"),
    output=("-r", "--result-file", "-T", "--tab"), attached_secret=("-p",),
    flags=("-B", "--databases", "-A", "--all-databases", "--single-transaction", "--routines", "-R",
           "--triggers", "--events", "-E", "--quick", "-q", "--skip-lock-tables", "--lock-tables", "-l",
           "-x", "--lock-all-tables", "-d", "--no-data", "-t", "--no-create-info", "-n", "--no-create-db",
           "-C", "--compress", "--password", "-p", "--opt", "--extended-insert", "-e", "--hex-blob",
           "-X", "--xml", "-c", "--complete-insert", "-f", "--force", "-v", "--verbose", "-K",
           "--disable-keys", "--add-drop-table", "--add-drop-database", "--no-tablespaces", "-y",
           "--skip-password", "-Y", "--all-tablespaces", "-i", "--comments", "-a", "--create-options", "-H",
           "--add-drop-trigger", "-F", "--flush-logs", "-N", "--no-set-names", "-Q", "--quote-names", "-V",
           "--version", "-?", "--help", "--master-data", "--source-data", "--dump-slave", "--dump-replica",
           "--apply-slave-statements", "--include-master-host-port", "--add-locks", "--allow-keywords",
           "--compact", "--dump-date", "--flush-privileges", "--insert-ignore", "--replace", "--skip-opt",
           "--order-by-primary", "--tz-utc", "--skip-tz-utc", "--column-statistics", "--set-charset",
           "--skip-comments", "--skip-extended-insert", "--skip-add-drop-table", "--skip-quick", "--ssl",
           "--skip-ssl", "--ssl-verify-server-cert", "--users", "--watch-progress", "--defer-table-indexes"),
    # --master-data[=#], --source-data[=#], --dump-slave[=#]: a value only after `=`
    values=(*_MYSQL_CONNECTION_VALUES, "-w", "--where", "--ignore-table", "--ignore-table-data", "--ignore-database",
            "--master-data", "--source-data", "--dump-slave", "--dump-replica", "--set-gtid-purged",
            "--fields-terminated-by", "--fields-enclosed-by", "--fields-optionally-enclosed-by", "--fields-escaped-by",
            "--lines-terminated-by", "--compatible", "--as-of", "--system", "--log-error", "--max-statement-time",
            "--parallel", "--default-parallelism", "--parallel-schemas", "--include-databases",
            "--exclude-databases", "--include-tables", "--exclude-tables", "--include-routines", "--exclude-routines",
            "--include-events", "--exclude-events", "--include-triggers", "--exclude-triggers", "--include-users",
            "--exclude-users", "--compress-output", "--mysqld-long-query-time"),
    spaced_values=("-w", "--where"),
)
# mydumper takes its password as the next argument and names its output directory with -o;
# its -v takes a verbosity level.
_MYDUMPER = OptionSpec(
    host=("-h", "--host"), port=("-P", "--port"), user=("-u", "--user"), database=("-B", "--database"),
    output=("-o", "--outputdir"), secret=("-p", "--password"), attached_secret=("-p",),
    flags=("-c", "--compress", "-e", "--build-empty-files", "-G", "-E", "-R", "-m", "-k",
           "--no-locks", "--less-locking", "--triggers", "--events", "--routines", "-N", "--insert-ignore",
           "--no-schemas", "-d", "--no-data", "-W", "--no-views", "-K", "--kill-long-queries", "-D", "--daemon",
           "-C", "--compress-protocol", "--tz-utc", "--skip-tz-utc", "--use-savepoints", "--lock-all-tables",
           "--trx-consistency-only", "--success-on-1146", "-V", "--version", "--help", "-?"),
    values=("-v", "--verbose", "-T", "--tables-list", "-s", "--statement-size", "-r", "--rows", "-F",
            "--chunk-filesize", "-x", "--regex", "-i", "--ignore-engines", "-l", "--long-query-guard", "-I",
            "--snapshot-interval", "-L", "--logfile", "-U", "--updated-since", "-S", "--socket", "-t", "--threads",
            "--defaults-file", "--defaults-extra-file", "-O", "--omit-from-file", "--where"),
    spaced_values=("--where",),
    positional=(),
)
# mariabackup / xtrabackup: -H is the host, -h the datadir; --stream takes its format.
_MARIABACKUP = OptionSpec(
    host=("-H", "--host"), port=("-P", "--port"), user=("-u", "--user"), output=("--target-dir", "--extract-to"),
    attached_secret=("-p",), secret=("--encrypt-key",),
    flags=("--backup", "--prepare", "--compress", "-p", "--password", "--copy-back", "--move-back", "--galera-info",
           "--slave-info", "--no-lock", "--safe-slave-backup", "--rsync", "--export", "--version", "-v", "--help",
           "-?", "--no-backup-locks", "--decompress", "--remove-original"),
    values=("-h", "--datadir", "-S", "--socket", "--stream", "--databases", "--databases-exclude", "--tables",
            "--tables-exclude", "--tables-file", "--parallel", "--compress-threads", "--encrypt", "--encrypt-key-file",
            "--incremental-basedir", "--incremental-dir", "--extra-lsndir", "--throttle", "--use-memory",
            "--open-files-limit", "--ftwrl-wait-timeout", "--kill-long-queries-timeout", "-t", "--tmpdir",
            "--defaults-file", "--defaults-extra-file", "--compress"),
    positional=(),
)
# mongosh/mongo [options] [DB ADDRESS] [FILE.js ...] (mongosh --help and its arg-parser: --nodb
# means no address; a first positional ending .js/.mongodb is a script). --authenticationDatabase
# names where the user is defined, not the target. The Go tools (mongodump, mongoexport) take a
# connection string positional, -d/--db, --uri, also -pPASS; their --archive takes a file only after `=`.
_MONGO = OptionSpec(
    host=("--host", "-h"), port=("--port",), user=("-u", "--username"),
    database=("-d", "--db"), output=("-o", "--out", "--archive"), sql=("--eval",),
    uri=("--uri",), secret=("-p", "--password", "--tlsCertificateKeyFilePassword", "--sslPEMKeyPassword",
                            "--awsSecretAccessKey", "--awsSessionToken", "--awsIamSessionToken"),
    attached_secret=("-p",),
    flags=("--quiet", "--nodb", "--norc", "--shell", "--ssl", "--tls", "--gzip", "--jsonArray", "--pretty", "--oplog",
           "--archive", "--json", "--retryWrites", "--deepInspect", "--deep-inspect", "--verbose", "-v", "--version",
           "--help", "--build-info", "--ipv6", "--tlsAllowInvalidHostnames", "--tlsAllowInvalidCertificates",
           "--tlsFIPSMode", "--tlsUseSystemCA", "--tlsInsecure", "--sslAllowInvalidCertificates",
           "--sslAllowInvalidHostnames", "--sslFIPSMode", "--apiStrict", "--apiDeprecationErrors",
           "--oidcTrustedEndpoint", "--oidcIdTokenAsAccessToken", "--oidcNoNonce", "--oidcDumpTokens",
           "--skipStartupWarnings", "--forceTableScan", "--dumpDbUsersAndRoles",
           "--viewsAsCollections", "--noHeaderLine", "--slaveOk", "-k", "--assertExists"),
    values=("--authenticationDatabase", "--authenticationMechanism", "--gssapiServiceName", "--gssapiHostName",
            "--sspiHostnameCanonicalization", "--sspiRealmOverride", "--tlsCertificateKeyFile", "--tlsCAFile",
            "--tlsCertificateSelector", "--tlsCRLFile", "--tlsDisabledProtocols", "--sslPEMKeyFile", "--sslCAFile",
            "--sslCRLFile", "--sslCertificateSelector", "--sslDisabledProtocols", "--apiVersion", "--awsAccessKeyId",
            "--keyVaultNamespace", "--kmsURL", "--cryptSharedLibPath", "--csfleLibraryPath", "--jsContext",
            "--locale", "--browser", "--oidcFlows", "--oidcRedirectUri", "--oidcRedirectUrl", "-f", "--file", "--config", "-c", "--collection", "-q", "--query", "--queryFile",
            "--readPreference", "--excludeCollection", "--excludeCollectionsWithPrefix", "-j",
            "--numParallelCollections", "--fields", "--fieldFile", "--type", "--jsonFormat", "--skip", "--limit",
            "--sort"),
    spaced_values=("-q", "--query", "--sort", "--fields"),
    positional=("host/database",),
    no_target=("--nodb",),
    script_suffixes=(".js", ".mongodb"),
)
# mongodump/mongoexport [options] [CONNECTION STRING]: a plain argument is only ever a `mongodb://` URI.
_MONGO_TOOLS = replace(_MONGO, positional=(), no_target=(), script_suffixes=())
# redis-cli (redis-cli --help, 7.x): positionals are a command (`redis-cli keys *`); --rdb FILE is a dump.
_REDIS = OptionSpec(
    host=("-h",), port=("-p",), user=("--user",), database=("-n",), output=("--rdb", "--functions-rdb"),
    uri=("-u",), secret=("-a", "--pass"),
    flags=("--raw", "--no-raw", "--csv", "--json", "--quoted-json", "--tls", "--insecure", "--no-auth-warning", "-c",
           "--scan", "--bigkeys", "--memkeys", "--hotkeys", "--keystats", "--stat", "--latency", "--latency-history",
           "--latency-dist", "--pipe", "--replica", "--slave", "--ldb", "--ldb-sync-mode", "-e", "--askpass", "-x",
           "-2", "-3", "-4", "-6", "--quoted-input", "--verbose", "--help", "--version"),
    values=("-s", "-r", "-i", "-d", "-D", "-X", "-t", "--sni", "--cacert", "--cacertdir", "--cert", "--key",
            "--tls-ciphers", "--tls-ciphersuites", "--show-pushes", "--lru-test", "--pipe-timeout",
            "--memkeys-samples", "--keystats-samples", "--pattern", "--quoted-pattern", "--count", "--cursor",
            "--top", "--intrinsic-latency", "--eval", "--cluster"),
    positional=(), output_is_dump="--rdb", secret_words=(("AUTH", 2), ("AUTH2", 2)),
)
# sqlcmd (mssql-tools18 `sqlcmd -?`): no positional argument; -h/-s/-t/-c/-w take values
# (header rows, separator, timeout, batch terminator, width), -z/-Z a new password.
_MSSQL = OptionSpec(
    host=("-S",), user=("-U",), database=("-d",), output=("-o",), sql=("-Q", "-q"),
    secret=("-P", "-z", "-Z"), attached_secret=("-P",),
    flags=("-E", "-C", "-W", "-N", "-k", "-k1", "-k2", "-A", "-b", "-D", "-e", "-g", "-G", "-I", "-j", "-L",
           "-Lc", "-M", "-p", "-p1", "-r", "-r0", "-r1", "-R", "-u", "-x", "-X", "-X1", "-?", "--version"),
    values=("-h", "-s", "-t", "-c", "-w", "-a", "-f", "-H", "-i", "-K", "-l", "-m", "-v", "-V", "-y", "-Y", "-F",
            "--authentication-method", "--driver-logging-level", "--format"),
    spaced_values=("-v",),
    positional=(),
)
# bcp TABLE out|queryout FILE [options]
_BCP = OptionSpec(host=("-S",), user=("-U",), database=("-d",), secret=("-P",), attached_secret=("-P",),
                  flags=("-c", "-n", "-w", "-T", "-k", "-E", "-N", "-D", "-G", "-q", "-R", "-u", "-v", "-x"),
                  values=("-a", "-b", "-C", "-e", "-f", "-F", "-h", "-i", "-K", "-l", "-L", "-m", "-o", "-r", "-t",
                          "-V"),
                  spaced_values=("-h",),
                  positional=("database", "direction"), dump_directions=("out", "queryout"))
# clickhouse-client: any server setting is also an option with a value (--max_threads 8): the common ones here.
# Its one documented plain argument is a clickhouse:// connection string (read as any URI is).
_CLICKHOUSE = OptionSpec(
    host=("--host", "-h"), port=("--port",), user=("--user", "-u"), database=("--database", "-d"),
    sql=("--query", "-q"), secret=("--password", "--jwt", "--ssh-key-passphrase"),
    flags=("--multiline", "-m", "--multiquery", "-n", "--secure", "-s", "--ask-password", "--vertical", "-E",
           "--time", "-t", "--stacktrace", "--progress", "--echo", "--verbose", "--version", "-V", "--help",
           "--no-warnings", "--highlight", "--hardware-utilization", "--print-profile-events", "--interactive",
           "--accept-invalid-certificate"),
    values=("--queries-file", "-f", "--format", "--output-format", "--input-format", "--config-file", "-C",
            "--config", "--connection", "--history_file", "--quota_key", "--query_id", "--ssh-key-file",
            "--max_threads", "--max_memory_usage", "--max_execution_time", "--log-level", "--send_logs_level",
            "--server_logs_file", "--profile-events-delay-ms"),
    positional=(),
)
# cqlsh [options] [HOST [PORT]]
_CQLSH = OptionSpec(
    user=("-u", "--username"), database=("-k", "--keyspace"), sql=("-e", "--execute"),
    secret=("-p", "--password"),
    flags=("--ssl", "--no-color", "-C", "--color", "--debug", "--coverage", "-t", "--tty", "-v", "--version",
           "--no_compact", "--insecure-password-without-warning", "-h", "--help"),
    values=("-f", "--file", "--browser", "--encoding", "--cqlshrc", "--credentials", "--cqlversion",
            "--protocol-version", "--connect-timeout", "--request-timeout", "-b", "--secure-connect-bundle"),
    positional=("host", "port"),
)
# influx 2.x (--host, --org, -t TOKEN) and 1.x, whose options have one dash (-password SECRET).
# Positionals are a command (`influx query ...`), or the output of `influx backup DIR`.
_INFLUX = OptionSpec(
    host=("--host", "-host"), port=("-port",), user=("--org", "-o", "-username"),
    database=("--bucket", "-b", "--database", "-database"), sql=("--execute", "-e", "-execute"),
    secret=("-t", "--token", "--password", "-p", "-password", "-token"),
    flags=("--skip-verify", "-ssl", "-pretty", "-unsafeSsl", "-compressed", "--http-debug", "--raw", "--hide-headers",
           "--json", "-version"),
    values=("-format", "-precision", "--format", "-socket", "-type", "-consistency", "-import", "-path", "-pps",
            "-path-prefix", "--org-id", "--bucket-id", "-c", "--active-config", "--configs-path", "-f", "--file",
            "--compression", "--profilers"),
    positional=(), dump_positional=("output",),
)
# cockroach sql|dump: --format, --certs-dir, --set, --watch and -f take values.
_COCKROACH = OptionSpec(
    host=("--host",), port=("--port", "-p"), user=("--user", "-u"), database=("--database", "-d"),
    sql=("--execute", "-e"), uri=("--url",),
    flags=("--insecure", "--echo-sql", "--safe-updates", "--read-only", "--embedded", "--debug-sql-cli",
           "--no-line-editor"),
    values=("--format", "--certs-dir", "--set", "--watch", "-f", "--file", "--cluster-name", "--dump-mode", "--as-of",
            "--log",
            "--log-dir", "--log-config-file"),
)
# sqlite3 [OPTIONS] FILENAME [SQL...] (sqlite3 -help, 3.40, checked by running it; -escape, -sorterref
# and -threadsafe from newer or other builds): options may follow the file; -lookaside and -pagecache
# take two values (-heap takes one or two, by build: left out).
_SQLITE_DATABASE_FILES = (".db", ".sqlite", ".sqlite3", ".db3", ".s3db", ".sl3", ".sdb")
_SQLITE = OptionSpec(
    sql=_both_dashes("-cmd"),
    flags=_both_dashes(
        "-append", "-ascii", "-bail", "-batch", "-box", "-column", "-csv", "-deserialize", "-echo", "-header",
        "-noheader", "-help", "-html", "-interactive", "-json", "-line", "-list", "-markdown", "-memtrace",
        "-nofollow", "-no-rowid-in-view", "-pcachetrace", "-quote", "-readonly", "-safe", "-stats", "-table", "-tabs",
        "-unsafe-testing", "-version", "-zip", "-vfstrace", "-multiplex", "-utf8", "-no-utf8"),
    values=_both_dashes("-init", "-maxsize", "-mmap", "-newline", "-nonce", "-nullvalue", "-separator", "-vfs",
                        "-sorterref", "-threadsafe", "-escape"),
    value_counts=tuple((option, 2) for option in _both_dashes("-lookaside", "-pagecache")),
    positional=("database", "sql*"),
    database_suffixes=_SQLITE_DATABASE_FILES,
)
# litecli [OPTIONS] [DATABASE]
_LITECLI = OptionSpec(
    database=("-D", "--database"), sql=("-e", "--execute"),
    flags=("-V", "--version", "--auto-vertical-output", "-t", "--table", "--csv", "--warn", "--no-warn", "--help"),
    values=("-R", "--prompt", "-l", "--logfile", "--liteclirc"),
    spaced_values=("-R", "--prompt"),
    positional=("database",),
)
# duckdb [OPTIONS] FILENAME [SQL...] (duckdb.org's CLI arguments page, 1.x to 2.0): -c runs and exits,
# -cmd runs first, -s is -c's older name; -f, -init and -format-file read files.
_DUCKDB = OptionSpec(
    sql=_both_dashes("-c", "-cmd", "-s"),
    flags=_both_dashes(
        "-append", "-ascii", "-bail", "-batch", "-box", "-column", "-csv", "-echo", "-header", "-html", "-interactive",
        "-json", "-jsonlines", "-line", "-list", "-markdown", "-no-stdin", "-noheader", "-nofollow", "-quote",
        "-readonly", "-stats", "-table", "-unsigned", "-unredacted", "-safe", "-ui", "-version", "-help", "-h",
        "-dark-mode", "-light-mode", "-agent", "-format", "-connect"),
    values=_both_dashes("-f", "-init", "-newline", "-nullvalue", "-separator", "-format-file"),
    positional=("database", "sql*"),
    database_suffixes=(".duckdb", ".ddb", ".db"),
)
# sqlplus [-S] [-L] [-M "HTML ON"] [-R level] [-C version] user[/password][@connect] [@script];
# exp/expdp user/password@db dumpfile=FILE
_ORACLE = OptionSpec(flags=("-S", "-s", "-L", "-l", "-F", "-V", "-v", "-H", "-NOLOGINTIME", "-AC"),
                     values=("-M", "-MARKUP", "-R", "-C"), spaced_values=("-M", "-MARKUP"), positional=("connect*",))
_GENERIC = OptionSpec(sql=("-c", "--command", "-e", "--execute"), output=("-o", "--out"))
# usql [OPTIONS] [DSN]: psql-like options, -o/--out names the output.
_USQL = replace(_GENERIC, values=("-f", "--file", "-v", "--set", "--variable", "-P", "--pset", "-F",
                                  "--field-separator", "-R", "--record-separator", "-T", "--table-attr", "--config"),
                spaced_values=("-v", "--set", "--variable", "-P", "--pset", "-T", "--table-attr"),
                flags=("-W", "--password", "-w", "--no-password", "-X", "--no-rc", "-1", "--single-transaction",
                       "-C", "--csv", "-J", "--json", "-H", "--html", "-t", "--tuples-only", "-q", "--quiet",
                       "-x", "--expanded", "-A", "--no-align", "-z", "-0", "-V", "--version", "-N", "--no-init"))
# unixODBC: isql DSN [USER [PASSWORD]] [options]; its options are single words (-b, -v, -w, -c, -e, -dX, -m10).
_ISQL = OptionSpec(flags=("-b", "-v", "-w", "-c", "-e", "-n", "-q", "-k", "-3", "--version"),
                   positional=("database", "ignore", "password"))

_DOT_OUTPUT = DumpStatement(
    ".output", ("sqlite", "duckdb"),
    # `.once --bom FILE`, `.output FILE`; `.once -x` (a spreadsheet) names no file
    re.compile(r"(?:^|\s)\.(?:output|once|backup|save)\s+(?:-{1,2}[A-Za-z]{1,16}\s+){0,4}(?!-)" + QUOTED_OR_WORD),
)
_DOT_DUMP = DumpStatement(".dump", ("sqlite", "duckdb"), re.compile(r"(?:^|\s)\.dump\b()()()"), names_file=False)

# COPY ... TO (FILE | PROGRAM | STDOUT) and psql's \copy are found by
# cmdline._copy_intent (a linear scan, not a pattern); these are its intents,
# best first, and the engines that speak it.
COPY_INTENTS: tuple[str, ...] = ("\\copy to program", "\\copy to", "COPY TO PROGRAM", "COPY TO STDOUT", "COPY TO")
COPY_ENGINES: tuple[Engine, ...] = ("postgres", "cassandra", "duckdb")

ENGINES: tuple[EngineInfo, ...] = (
    EngineInfo("postgres", _PG, conninfo=True, history=(HistorySource(".psql_history", "postgres", "psql"),)),
    EngineInfo("mysql", _MYSQL, at_is_uri=True, masks_password=True, history=(
        HistorySource(".mysql_history", "mysql", "mysql", octal=True),
        HistorySource(".mariadb_history", "mysql", "mysql", octal=True),
    )),
    EngineInfo("mongo", _MONGO, history=(
        # mongosh 0.x: ~/.mongosh/; 1.x and later: ~/.mongodb/mongosh/mongosh_repl_history
        HistorySource(".mongosh", "mongo", "mongosh", suffix="_history"),
        HistorySource(".mongodb/mongosh", "mongo", "mongosh", suffix="_history"),
        HistorySource(".dbshell", "mongo", "mongo"),  # the legacy mongo shell
    )),
    EngineInfo("redis", _REDIS, history=(HistorySource(".rediscli_history", "redis", "redis-cli"),)),
    EngineInfo("mssql", _MSSQL, host_form="host,port"),
    EngineInfo("oracle", _ORACLE, uri_fields=False, host_form="ezconnect", output_assignments=("dumpfile", "file")),
    EngineInfo("sqlite", _SQLITE, history=(HistorySource(".sqlite_history", "sqlite", "sqlite3", octal=True),)),
    EngineInfo("duckdb", _DUCKDB, history=(HistorySource(".duckdb_history", "duckdb", "duckdb"),)),
    EngineInfo("clickhouse", _CLICKHOUSE),
    EngineInfo("cassandra", _CQLSH),
    EngineInfo("influx", _INFLUX),
    EngineInfo("cockroach", _COCKROACH),
    EngineInfo("generic", _GENERIC),
)

DB_TOOLS: tuple[DbTool, ...] = (
    # PostgreSQL
    DbTool("psql", "postgres", "client", options=_PSQL),
    DbTool("pgcli", "postgres", "client", options=_PGCLI),
    DbTool("pg_dump", "postgres", "dump", options=_PG_DUMP),
    DbTool("pg_dumpall", "postgres", "dump", options=_PG_DUMPALL),
    DbTool("pg_basebackup", "postgres", "dump", options=_PG_BASEBACKUP),
    # MySQL / MariaDB
    DbTool("mysql", "mysql", "client"),
    DbTool("mariadb", "mysql", "client"),
    DbTool("mysqlsh", "mysql", "client", options=_MYSQLSH),
    DbTool("mycli", "mysql", "client", options=_MYCLI),
    DbTool("mysqldump", "mysql", "dump", options=_MYSQLDUMP),
    DbTool("mariadb-dump", "mysql", "dump", options=_MYSQLDUMP),
    DbTool("mysqlpump", "mysql", "dump", options=_MYSQLDUMP),
    DbTool("mydumper", "mysql", "dump", options=_MYDUMPER),
    DbTool("mariadb-backup", "mysql", "dump", options=_MARIABACKUP),
    DbTool("mariabackup", "mysql", "dump", options=_MARIABACKUP),
    DbTool("xtrabackup", "mysql", "dump", options=_MARIABACKUP),
    # MongoDB
    DbTool("mongo", "mongo", "client"),
    DbTool("mongosh", "mongo", "client"),
    DbTool("mongodump", "mongo", "dump", options=_MONGO_TOOLS),
    DbTool("mongoexport", "mongo", "dump", options=_MONGO_TOOLS),
    # Redis (`redis-cli --rdb FILE` is a dump: OptionSpec.output_is_dump)
    DbTool("redis-cli", "redis", "client"),
    # Microsoft SQL Server
    DbTool("sqlcmd", "mssql", "client"),
    DbTool("bcp", "mssql", "dump", options=_BCP),
    # Oracle
    DbTool("sqlplus", "oracle", "client"),
    DbTool("expdp", "oracle", "dump"),
    DbTool("exp", "oracle", "dump"),
    # SQLite
    DbTool("sqlite3", "sqlite", "client"),
    DbTool("litecli", "sqlite", "client", options=_LITECLI),
    # DuckDB
    DbTool("duckdb", "duckdb", "client"),
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
    DbTool("usql", "generic", "client", options=_USQL),
    DbTool("isql", "generic", "client", options=_ISQL),
)

# Statements and meta-commands that write results out, beyond COPY (COPY_INTENTS).
# First match wins, in this order.
DUMP_STATEMENTS: tuple[DumpStatement, ...] = (
    DumpStatement("INTO OUTFILE", ("mysql", "clickhouse"), re.compile(r"\binto\s+outfile\s+" + QUOTED_OR_WORD, re.IGNORECASE)),
    DumpStatement("INTO DUMPFILE", ("mysql",), re.compile(r"\binto\s+dumpfile\s+" + QUOTED_OR_WORD, re.IGNORECASE)),
    # psql `\o |cmd` / `\g |cmd`: query output piped to a program
    DumpStatement("\\o program", ("postgres",), re.compile(r"(?:^|\s)\\o\s*\|()()()"), names_file=False),
    DumpStatement("\\g program", ("postgres",), re.compile(r"(?:^|\s)\\gx?\s*\|()()()"), names_file=False),
    DumpStatement("\\o", ("postgres",), re.compile(r"(?:^|\s)\\o\s+" + QUOTED_OR_WORD)),
    # psql 16: `\g (format=csv) FILE`
    DumpStatement("\\g", ("postgres",), re.compile(r"(?:^|\s)\\gx?\s+(?:\([^)\n]{0,512}\)\s*)?(?![|(])" + QUOTED_OR_WORD)),
    DumpStatement("tee", ("mysql",), re.compile(r"(?:^|;)\s*(?:tee|\\T)\s+" + QUOTED_OR_WORD, re.IGNORECASE)),
    # mysql `pager cat > FILE`
    DumpStatement("pager", ("mysql",), re.compile(r"(?:^|;)\s*(?:pager|\\P)\s[^\n;>]{0,512}>\s*" + QUOTED_OR_WORD, re.IGNORECASE)),
    _DOT_OUTPUT,
    # CockroachDB EXPORT INTO CSV 'nodelocal://1/x' FROM ...; sqlcmd's `:out FILE`
    DumpStatement("EXPORT INTO", ("cockroach",), re.compile(r"\bexport\s+into\s+(?:csv|parquet)\s+" + QUOTED_OR_WORD, re.IGNORECASE)),
    DumpStatement(":out", ("mssql",), re.compile(r"(?:^|\s):out\s+(?!stdout\b|stderr\b)" + QUOTED_OR_WORD, re.IGNORECASE)),
    # PostgreSQL server-side large-object export
    DumpStatement("lo_export", ("postgres",), re.compile(r"\blo_export\s*\(\s*[^,()\n]{1,64},\s*" + QUOTED_OR_WORD, re.IGNORECASE)),
    _DOT_DUMP,
    DumpStatement("writeFile", ("mongo",), re.compile(r"\bwriteFile(?:Sync)?\s*\(\s*" + QUOTED_OR_WORD)),
    DumpStatement("CONFIG SET dir", ("redis",), re.compile(r"\bconfig\s+set\s+(?:dir|dbfilename)\s+" + QUOTED_OR_WORD, re.IGNORECASE)),
    DumpStatement("SAVE", ("redis",), re.compile(r"^\s*(?:bg)?save\s*$()()()", re.IGNORECASE), names_file=False),
)

# ---------------------------------------------------------------------------
# Transfer and staging tools

_CURL = TransferSpec(
    values=("-u", "--user", "-H", "--header", "-X", "--request", "-o", "--output", "-A", "--user-agent", "-e",
            "--referer", "-x", "--proxy", "-m", "--max-time", "--connect-timeout", "-b", "--cookie", "-c",
            "--cookie-jar", "-w", "--write-out", "--resolve", "-U", "--proxy-user", "--retry", "-E", "--cert",
            "--key", "--cacert"),
    upload_files=("-T", "--upload-file"),
    upload_data=("-F", "--form", "-d", "--data", "--data-binary", "--data-raw", "--data-urlencode", "--json"),
    attached=("-T", "-F", "-d"),
    secret=("--oauth2-bearer", "--pass", "-b", "--cookie"),
    user_options=("-u", "--user", "-U", "--proxy-user"),
)
_WGET = TransferSpec(
    values=("-O", "-o", "-U", "--user-agent", "--header", "-P", "--user", "--password", "-t", "-T"),
    upload_files=("--post-file", "--body-file"), upload_flags=("--post-data", "--body-data"),
    secret=("--password", "--http-password", "--ftp-password", "--proxy-password"),
)
_SSH_LIKE = ("-i", "-o", "-F", "-l", "-c", "-J")
_NC = TransferSpec(values=("-p", "-w", "-s", "-q", "-i", "-X", "-x"), numeric_ports=True, first_word_is_host=True)
_CLOUD = TransferSpec(subcommand_words=1, cloud_copy=True)

TRANSFER_TOOLS: tuple[TransferTool, ...] = (
    TransferTool("curl", "transfer", _CURL, web=True),
    TransferTool("wget", "transfer", _WGET, web=True),
    TransferTool("scp", "transfer", TransferSpec(values=("-P", *_SSH_LIKE, "-S"), remote_paths=True)),
    TransferTool("sftp", "transfer", TransferSpec(values=("-P", *_SSH_LIKE, "-b", "-S"), remote_paths=True,
                                                  first_word_is_host=True)),
    TransferTool("rsync", "transfer", TransferSpec(values=("-e", "--rsh", "--exclude", "--include", "--port",
                                                           "--password-file"), remote_paths=True)),
    TransferTool("rclone", "transfer", TransferSpec(values=("--config", "--transfers", "--bwlimit"), subcommand_words=1,
                                                    cloud_copy=True, remote_paths=True, secret=("--pass", "--password")),
                 web=True),
    TransferTool("nc", "transfer", _NC, stream=True),
    TransferTool("ncat", "transfer", TransferSpec(values=("-p", "-w", "-s", "-i", "--proxy"), numeric_ports=True,
                                                  first_word_is_host=True), stream=True),
    TransferTool("netcat", "transfer", TransferSpec(values=("-p", "-w", "-s", "-q", "-i"), numeric_ports=True,
                                                    first_word_is_host=True), stream=True),
    TransferTool("socat", "transfer", TransferSpec(addresses=True, first_word_is_host=True), stream=True),
    TransferTool("ftp", "transfer", TransferSpec(numeric_ports=True, first_word_is_host=True)),
    TransferTool("lftp", "transfer", TransferSpec(values=("-u", "--user", "-p", "-e", "-c"), first_word_is_host=True,
                                                  secret=("-u", "--user"))),
    TransferTool("tftp", "transfer", TransferSpec(numeric_ports=True, first_word_is_host=True)),
    TransferTool("smbclient", "transfer", TransferSpec(values=("-U", "--user", "-W", "-p", "-c", "-I", "-m"),
                                                       secret=("-U", "--user", "--password"))),
    TransferTool("aws", "transfer", TransferSpec(values=("--region", "--profile", "--endpoint-url", "--output", "--sse",
                                                         "--storage-class", "--acl"), subcommand_words=2,
                                                 cloud_copy=True, secret=("--secret-access-key",)), web=True),
    TransferTool("gsutil", "transfer", TransferSpec(values=("-h", "-o"), subcommand_words=1, cloud_copy=True), web=True),
    TransferTool("az", "transfer", TransferSpec(secret=("-p", "--password", "--account-key", "--sas-token")), web=True),
    TransferTool("s3cmd", "transfer", _CLOUD, web=True),
    TransferTool("azcopy", "transfer", _CLOUD, web=True),
    TransferTool("gcloud", "transfer", TransferSpec(subcommand_words=2, cloud_copy=True), web=True),
    TransferTool("mc", "transfer", _CLOUD, web=True),
    TransferTool("ssh", "transfer", TransferSpec(values=("-p", "-i", "-o", "-l", "-L", "-R", "-D", "-F", "-J", "-W", "-c",
                                                         "-m", "-b"), first_word_is_host=True)),
    # staging
    TransferTool("openssl", "staging", TransferSpec(
        values=("-out", "-k", "-pass", "-passin", "-passout", "-md", "-connect", "-servername", "-kfile"),
        input_files=("-in",), destinations=("-connect",), subcommand_words=1,
        secret=("-pass", "-passin", "-passout", "-k", "-kfile"))),
    TransferTool("split", "staging", TransferSpec(values=("-b", "-l", "-n", "-a", "-C"), output_prefix_last=True)),
    TransferTool("base64", "staging"),
    TransferTool("tar", "staging", TransferSpec(values=("-f", "-C", "--exclude", "-T"), option_bundle=True)),
    TransferTool("zip", "staging", TransferSpec(values=("-P", "--password", "-x", "-i"), secret=("-P", "--password"),
                                                attached_secret=("-P",))),
    TransferTool("gzip", "staging", compress_suffix=".gz"),
    TransferTool("pigz", "staging", compress_suffix=".gz"),
    TransferTool("bzip2", "staging", compress_suffix=".bz2"),
    TransferTool("xz", "staging", compress_suffix=".xz"),
    TransferTool("7z", "staging", TransferSpec(attached_secret=("-p",))),
    TransferTool("7za", "staging", TransferSpec(attached_secret=("-p",))),
    TransferTool("zstd", "staging", compress_suffix=".zst"),
    TransferTool("gpg", "staging", TransferSpec(values=("-r", "--recipient", "-o", "--output", "-u", "--local-user",
                                                        "--passphrase"), secret=("--passphrase",))),
)

# ---------------------------------------------------------------------------
# Wrappers: programs whose first non-option argument is the real program


@dataclass(frozen=True)
class Wrapper:
    """An interpreter or wrapper a DB or transfer tool runs under (`sudo -u postgres psql`)."""

    name: str  # a versioned name matches too (python3.11, perl5.36)
    value_options: tuple[str, ...] = ()  # its options that take a value (per wrapper: `sudo -E` is a flag, `flock -E 1` not)


WRAPPERS: tuple[Wrapper, ...] = (
    # Debian's psql is a Perl wrapper; mongosh is a Node script (`node /usr/bin/mongosh ...`)
    Wrapper("perl", ("-I", "-M", "-m")),
    Wrapper("python", ("-W", "-X")),
    Wrapper("python3"),
    Wrapper("node"),
    Wrapper("nodejs"),
    Wrapper("env", ("-u", "-C", "--unset", "--chdir")),
    Wrapper("sudo", ("-u", "-g", "-C", "-h", "-p", "-r", "-t", "-U", "-D", "-R", "-T", "--user", "--group", "--host",
                     "--prompt", "--chdir", "--chroot", "--role", "--type", "--other-user", "--close-from",
                     "--command-timeout")),
    Wrapper("doas", ("-u", "-C")),
    Wrapper("runuser", ("-u", "-g", "-G", "--user", "--group", "--supp-group", "-w", "--whitelist-environment")),
    Wrapper("nice", ("-n", "--adjustment")),
    Wrapper("ionice", ("-c", "-n", "--class", "--classdata")),
    Wrapper("nohup"),
    Wrapper("timeout", ("-s", "-k", "--signal", "--kill-after")),
    Wrapper("stdbuf", ("-i", "-o", "-e", "--input", "--output", "--error")),
    Wrapper("chrt", ("-T", "-P", "-D")),
    Wrapper("taskset", ("-c", "--cpu-list")),
    Wrapper("setsid"),
    Wrapper("time", ("-f", "-o", "--format", "--output")),
    Wrapper("pg_wrapper"),
    Wrapper("flock", ("-E", "-w", "--conflict-exit-code", "--timeout")),
)

# ---------------------------------------------------------------------------
# Passwords on command lines (cmdline.redact_cmdline reads these with the specs above)

PASSWORD_TOOLS: tuple[PasswordTool, ...] = (
    PasswordTool("sshpass", secret=("-p",), attached_secret=("-p",)),
    # mysqladmin [-p] password NEW_PASSWORD
    PasswordTool("mysqladmin", like="mysql", secret_words=(("password", 1),)),
    PasswordTool("mariadb-admin", like="mysql", secret_words=(("password", 1),)),
)
# Admin and import tools outside the lists share their family's password options:
# mysqlbinlog -pX, mongorestore -p X, redis-benchmark -a X.
PASSWORD_FAMILY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("mysql", "mysql"), ("mariadb", "mysql"), ("mongo", "mongosh"), ("redis-", "redis-cli"),
    ("clickhouse", "clickhouse-client"),
)
# Options whose value is a secret for any program, even one we do not know
# (`docker login --password X`), unless the program declares the option a flag.
SECRET_OPTIONS: tuple[str, ...] = (
    "--password", "--passwd", "--pass", "--passphrase", "--token", "--secret", "--api-key", "--apikey",
    "--access-key", "--secret-key", "--secret-access-key", "--auth-token", "--client-secret",
    "--requirepass", "--masterauth",  # redis-server --requirepass X
)
# ... and long options ending in one of these (`--db-password X`, `rclone --ftp-pass X`).
SECRET_OPTION_ENDINGS: tuple[str, ...] = (
    "-password", "-passwd", "-pass", "-passphrase", "-secret", "-token", "-apikey", "-api-key",
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
# Where database servers listen: the db_connect query watches connects to these
# TCP ports and Unix sockets (a renamed client or a script is seen by what it
# talks to, not by its name). 9000 is ClickHouse's native port and also
# php-fpm's default: web servers have no login session, which db_connect needs.
DB_PORTS: tuple[tuple[int, Engine], ...] = (
    (5432, "postgres"), (6432, "postgres"), (3306, "mysql"), (33060, "mysql"), (27017, "mongo"),
    (27018, "mongo"), (27019, "mongo"), (6379, "redis"), (6380, "redis"), (26379, "redis"), (1433, "mssql"),
    (1521, "oracle"), (1522, "oracle"), (9042, "cassandra"), (8123, "clickhouse"), (9000, "clickhouse"),
    (9440, "clickhouse"), (26257, "cockroach"), (8086, "influx"),
)
# Unix socket names of database servers: (basename glob, engine). PostgreSQL's
# is `.s.PGSQL.<port>` in its socket directory.
DB_SOCKETS: tuple[tuple[str, Engine], ...] = (
    (".s.PGSQL.*", "postgres"), ("mysqld.sock", "mysql"), ("mysql.sock", "mysql"), ("mariadb.sock", "mysql"),
    ("redis.sock", "redis"), ("redis-server.sock", "redis"), ("mongodb-*.sock", "mongo"),
)
# Groups whose members administer hosts or databases on common distributions.
# The shipped admin_accounts query reports memberships of all of them (plus the
# config's admins.groups): the correlator decides with its own admins.groups,
# so a pack rendered from defaults works with any site config.
DEFAULT_ADMIN_GROUPS: tuple[str, ...] = (
    "sudo", "wheel", "admin", "adm", "root", "dba", "dbadmin", "dbadmins", "postgres", "mysql", "mongodb",
    "redis", "oinstall", "osdba", "sysadmin", "sysadmins", "ops", "operator",
)
# systemd unit names of web and database servers that their process names do not
# match (`apache2.service`, `php8.2-fpm.service`, `postgresql@15-main.service`).
SERVER_UNIT_PREFIXES: tuple[str, ...] = ("apache", "php", "mysql", "mariadb", "postgresql", "mongod", "redis")
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
ENGINES_BY_NAME: dict[str, EngineInfo] = {e.engine: e for e in ENGINES}
PASSWORD_TOOLS_BY_NAME: dict[str, PasswordTool] = {t.name: t for t in PASSWORD_TOOLS}
HISTORY_SOURCES: tuple[HistorySource, ...] = tuple(h for e in ENGINES for h in e.history)
# Transfer tools whose egress is web traffic (HTTP(S) and cloud storage APIs).
WEB_TRANSFER_TOOLS: frozenset[str] = frozenset(t.name for t in TRANSFER_TOOLS if t.web)
# Compressor -> the suffix it gives the files it packs (gzip x.sql -> x.sql.gz).
COMPRESSOR_SUFFIXES: dict[str, str] = {t.name: t.compress_suffix for t in TRANSFER_TOOLS if t.compress_suffix}
# Transfer tools that send what is piped into them (nc, socat).
STREAM_TRANSFER_TOOLS: frozenset[str] = frozenset(t.name for t in TRANSFER_TOOLS if t.stream)
# Staging tools whose bundled first word's `f` names the output (tar czf OUT), and
# those whose last file argument is the prefix of the pieces written (split).
BUNDLED_OUTPUT_TOOLS: frozenset[str] = frozenset(t.name for t in TRANSFER_TOOLS if t.spec.option_bundle)
PREFIX_OUTPUT_TOOLS: frozenset[str] = frozenset(t.name for t in TRANSFER_TOOLS if t.spec.output_prefix_last)


DB_PORT_ENGINES: dict[int, Engine] = dict(DB_PORTS)


def db_port_engine(port: int | None) -> str:
    """The engine usually listening on this TCP port ("" when none is)."""
    return DB_PORT_ENGINES.get(port, "") if port is not None else ""


def db_socket_engine(path: str) -> str:
    """The engine whose Unix socket this path names ("" when none)."""
    name = path.rsplit("/", 1)[-1]
    for pattern, engine in DB_SOCKETS:
        if fnmatch.fnmatchcase(name, pattern):
            return engine
    return ""


def engine_info(engine: str) -> EngineInfo:
    """The engine's record; an engine the catalog does not know reads as generic."""
    return ENGINES_BY_NAME.get(engine) or ENGINES_BY_NAME["generic"]


def option_spec(tool: DbTool) -> OptionSpec:
    """The tool's own option spec, or its engine's."""
    return tool.options or engine_info(tool.engine).options


def history_source_for(path: str) -> HistorySource | None:
    """The history source a file path belongs to (`/home/a/.psql_history`,
    `/root/.mongodb/mongosh/mongosh_repl_history`), or None."""
    parent, _, name = path.rpartition("/")
    for source in HISTORY_SOURCES:
        if source.suffix:
            if name.endswith(source.suffix) and (parent == source.path or parent.endswith("/" + source.path)):
                return source
        elif path == source.path or path.endswith("/" + source.path):
            return source
    return None


def history_tool(engine: str) -> str:
    """The client named for a history entry of `engine` whose file is not a known source ("" for none)."""
    info = ENGINES_BY_NAME.get(engine)
    return info.history[0].tool if info is not None and info.history else ""


def dump_statement_engines(intent: str) -> tuple[Engine, ...]:
    """The engines whose clients speak a dump intent found in SQL text."""
    if intent in COPY_INTENTS:
        return COPY_ENGINES
    for statement in DUMP_STATEMENTS:
        if statement.intent == intent:
            return statement.engines
    return ()


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
