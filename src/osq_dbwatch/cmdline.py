"""Understanding database and transfer command lines: pure functions, no I/O.

Inputs come from two places with different fidelity:
- /proc/PID/cmdline gives the real argv (arguments may contain spaces);
- osquery's audit-based process_events give argv joined by single spaces with
  the shell's quotes gone (`psql -c \\copy t to '/tmp/x.csv' csv`).
Both are handled by working on whitespace tokens and, for SQL given with
-c/-e/--eval/--query, on the rest of the line.

Every command line or history entry the project emits goes through
`redact_cmdline` or `redact_text` first.
"""

from __future__ import annotations

import bisect
import posixpath
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from . import catalog
from .catalog import DbTool, TransferTool

REDACTED = "****"

# Interpreters and wrappers whose first non-option argument is the real program
# (Debian's psql is a Perl wrapper; `env`, `sudo`, `nice` prefix commands).
_WRAPPERS = frozenset(
    {"perl", "python", "python3", "env", "sudo", "nice", "ionice", "nohup", "timeout", "stdbuf",
     "chrt", "taskset", "runuser", "setsid", "time", "pg_wrapper", "doas", "flock",
     # mongosh is a Node script: a running one is `node /usr/bin/mongosh ...`
     "node", "nodejs"}
)
_SHELL_SEPARATORS = frozenset({";", "|", "||", "&", "&&", "(", ")", "`", "$("})


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] if path else ""


def split_cmdline(cmdline: str) -> list[str]:
    """Split an osquery cmdline (argv joined by spaces, quotes already gone)."""
    return cmdline.split()


def _strip_quotes(token: str) -> str:
    return token.strip("\"'`()")


# ---------------------------------------------------------------------------
# Which tool is this?


class ProgramArgs:
    """The program a command line really runs, and the arguments after it (read-only).

    A plain class, not a dataclass: compiled, its constructor is native code,
    where a dataclass's generated __init__ would run interpreted.
    """

    def __init__(self, name: str, args: tuple[str, ...]) -> None:
        self.name = name
        self.args = args


def real_program(path: str, argv: Sequence[str]) -> ProgramArgs:
    """Skip interpreters and wrappers: `perl /usr/bin/psql -h x` runs psql.

    `path` is the executable (osquery's `path`, /proc/PID/exe); `argv` the
    arguments. When both name a known tool, argv[0] wins, because Debian's
    symlinks make `mysql` exec `/usr/bin/mariadb`.
    """
    if argv and (any(c.isspace() for c in basename(argv[0])) or (
        any(c.isspace() for c in argv[0]) and not any(argv[1:])
    )):
        # A process that rewrote its title (mongosh: "mongosh " + padding,
        # Node/Python setproctitle) has its whole command line in argv[0].
        argv = [*argv[0].split(), *(a for a in argv[1:] if a)]
    index = 0
    for _ in range(4):  # wrappers nest at most a few times (sudo env nice psql)
        name = basename(argv[index]) if index < len(argv) else basename(path)
        if _base_name_for_wrapper(name) not in _WRAPPERS:
            break
        nxt = _first_program_arg(argv, index + 1)
        if nxt is None:
            break
        index = nxt
    if index < len(argv):
        return ProgramArgs(basename(argv[index]), tuple(argv[index + 1 :]))
    return ProgramArgs(basename(path), ())


def _base_name_for_wrapper(name: str) -> str:
    # python3.11 -> python3, perl5.36 -> perl
    # rstrip, not re.sub(r"[\d.]+$"): that regex is quadratic on a 100 KB argv[0] of digits
    return name.rstrip("0123456789.") or name


# Options of wrappers that take a value (`sudo -u postgres psql`, `timeout -s KILL 5 psql`).
# Per wrapper, because the same letter differs: `sudo -E` is a flag, `flock -E 1` is not.
_WRAPPER_VALUE_OPTS: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-C", "-h", "-p", "-r", "-t", "-U", "-D", "-R", "-T", "--user", "--group",
                       "--host", "--prompt", "--chdir", "--chroot", "--role", "--type", "--other-user",
                       "--close-from", "--command-timeout"}),
    "doas": frozenset({"-u", "-C"}),
    "runuser": frozenset({"-u", "-g", "-G", "--user", "--group", "--supp-group", "-w", "--whitelist-environment"}),
    "env": frozenset({"-u", "-C", "--unset", "--chdir"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "-n", "--class", "--classdata"}),
    "timeout": frozenset({"-s", "-k", "--signal", "--kill-after"}),
    "stdbuf": frozenset({"-i", "-o", "-e", "--input", "--output", "--error"}),
    "taskset": frozenset({"-c", "--cpu-list"}),
    "chrt": frozenset({"-T", "-P", "-D"}),
    "flock": frozenset({"-E", "-w", "--conflict-exit-code", "--timeout"}),
    "time": frozenset({"-f", "-o", "--format", "--output"}),
    "perl": frozenset({"-I", "-M", "-m"}),
    "python": frozenset({"-W", "-X"}),
}


def _first_program_arg(argv: Sequence[str], start: int) -> int | None:
    wrapper = _base_name_for_wrapper(basename(argv[start - 1])) if 0 < start <= len(argv) else ""
    value_opts = _WRAPPER_VALUE_OPTS.get(wrapper, frozenset())
    i = start
    while i < len(argv):
        tok = argv[i]
        if tok.startswith("-"):
            if tok in value_opts and i + 1 < len(argv):
                i += 2
                continue
            i += 1
            continue
        if "=" in tok and not tok.startswith("/"):  # env VAR=x
            i += 1
            continue
        if re.fullmatch(r"\d+(\.\d+)?[smhd]?", tok):  # timeout 30 / nice 10
            i += 1
            continue
        return i
    return None


def identify_db_tool(
    path: str, argv: Sequence[str], db_tools: Mapping[str, DbTool] = catalog.DB_TOOLS_BY_NAME
) -> tuple[DbTool, tuple[str, ...]] | None:
    """The DB client or dump tool this process runs, with its arguments.

    `db_tools` is the catalog's table, or `catalog.db_tools_with_extras(config)`.
    """
    prog = real_program(path, argv)
    candidates = [prog.name]
    exe = basename(path)
    if exe and exe != prog.name:
        candidates.append(exe)
    for name in candidates:
        tool = db_tools.get(name)
        if tool is None:
            continue
        args = prog.args if name == prog.name else tuple(argv[1:])
        if tool.subcommands:
            if not args or args[0] not in tool.subcommands:
                continue
        return tool, args
    return None


def identify_transfer_tool(
    path: str, argv: Sequence[str], transfer_tools: Mapping[str, TransferTool] = catalog.TRANSFER_TOOLS_BY_NAME
) -> tuple[TransferTool, tuple[str, ...]] | None:
    prog = real_program(path, argv)
    for name, args in ((prog.name, prog.args), (basename(path), tuple(argv[1:]))):
        tool = transfer_tools.get(name)
        if tool is not None:
            return tool, args
    return None


# ---------------------------------------------------------------------------
# Option parsing shared by all engines


@dataclass(frozen=True)
class OptionSpec:
    """Which options of one tool family carry which meaning."""

    host: tuple[str, ...] = ()
    port: tuple[str, ...] = ()
    user: tuple[str, ...] = ()
    database: tuple[str, ...] = ()
    output: tuple[str, ...] = ()  # output file of a dump/export
    sql: tuple[str, ...] = ()  # inline statement (-c, -e, --eval, --query)
    uri: tuple[str, ...] = ()
    secret: tuple[str, ...] = ()  # options whose next token is a secret
    flags: tuple[str, ...] = ()  # options that take no value (so the next token is positional)
    attached_secret: tuple[str, ...] = ()  # "-pSECRET" style
    values: tuple[str, ...] = ()  # options that take a value with no role here (`psql -f FILE`)


_PG = OptionSpec(
    host=("-h", "--host"), port=("-p", "--port"), user=("-U", "--username"),
    database=("-d", "--dbname"), output=("-o", "--output"), sql=("-c", "--command"),
    flags=("-w", "-W", "-X", "-A", "-t", "-x", "-q", "-a", "-e", "-E", "-n", "-s", "-S", "-1",
           "--csv", "--no-password", "--password", "--no-psqlrc", "--quiet", "--echo-all",
           "--tuples-only", "--no-align", "--expanded", "-c", "-C", "--clean", "--create",
           "--schema-only", "--data-only", "-O", "--no-owner", "--verbose"),
    # psql: -f runs a script (input, not output), -v/-P/-F/-R set variables and
    # separators; their values are not the database name.
    values=("-f", "--file", "-L", "--log-file", "-v", "--set", "--variable", "-P", "--pset",
            "-F", "--field-separator", "-R", "--record-separator", "-T", "--table-attr"),
)
_PG_DUMP = OptionSpec(
    host=("-h", "--host"), port=("-p", "--port"), user=("-U", "--username"),
    database=("-d", "--dbname"), output=("-f", "--file"),
    flags=("-w", "-W", "-a", "-b", "-B", "-c", "-C", "-O", "-s", "-v", "-x", "-X",
           "--clean", "--create", "--schema-only", "--data-only", "--no-owner", "--verbose",
           "--inserts", "--column-inserts", "--if-exists", "--no-password", "--password",
           "--globals-only", "--roles-only", "-g", "-r", "-P", "--progress", "-R"),
    # pg_dump -j 4 -n public -t users -F d: these values are not the database name
    values=("-j", "--jobs", "-n", "--schema", "-N", "--exclude-schema", "-t", "--table", "-T",
            "--exclude-table", "--exclude-table-data", "-F", "--format", "-Z", "--compress", "-E",
            "--encoding", "-S", "--superuser", "--role", "-l", "--database", "--lock-wait-timeout",
            "--section", "--snapshot", "--filter", "--extra-float-digits", "--rows-per-insert"),
)
_PG_BASEBACKUP = OptionSpec(
    host=("-h", "--host"), port=("-p", "--port"), user=("-U", "--username"),
    output=("-D", "--pgdata"), flags=("-P", "--progress", "-R", "-v", "-w", "-W", "-X", "-z"),
)
# The mysql client: -r is --raw and -T --debug-info (flags); only --tee writes a file.
_MYSQL = OptionSpec(
    host=("-h", "--host"), port=("-P", "--port"), user=("-u", "--user"),
    database=("-D", "--database"), output=("--tee",),
    sql=("-e", "--execute"), attached_secret=("-p",),
    flags=("-B", "--batch", "-N", "-s", "-v", "-t", "-E", "-A", "-q", "-f", "--force", "-r", "--raw",
           "-T", "--debug-info", "-n", "--unbuffered", "-X", "--xml", "-H", "--html", "-C", "--compress",
           "--password", "-p", "--no-auto-rehash", "--skip-column-names", "--silent", "--table", "--vertical",
           "--safe-updates", "-U", "-G", "-w", "--wait"),
    values=("-S", "--socket", "--default-character-set", "--ssl-ca", "--ssl-cert", "--ssl-key",
            "--connect-timeout", "--max-allowed-packet", "--init-command", "--prompt", "--pager", "-O"),
)
# mysqldump / mariadb-dump / mysqlpump: -r/--result-file and -T/--tab name the output.
_MYSQLDUMP = OptionSpec(
    host=("-h", "--host"), port=("-P", "--port"), user=("-u", "--user"),
    output=("-r", "--result-file", "-T", "--tab"), attached_secret=("-p",),
    flags=("-B", "--databases", "-A", "--all-databases", "--single-transaction", "--routines", "-R",
           "--triggers", "--events", "-E", "--quick", "-q", "--skip-lock-tables", "--lock-tables", "-l",
           "-x", "--lock-all-tables", "-d", "--no-data", "-t", "--no-create-info", "-n", "--no-create-db",
           "-C", "--compress", "--password", "-p", "--opt", "--extended-insert", "-e", "--hex-blob",
           "-X", "--xml", "-c", "--complete-insert", "-f", "--force", "-v", "--verbose", "-K",
           "--disable-keys", "--add-drop-table", "--add-drop-database", "--no-tablespaces", "-y"),
    values=("-S", "--socket", "-w", "--where", "--ignore-table", "--default-character-set",
            "--master-data", "--set-gtid-purged", "--fields-terminated-by", "--fields-enclosed-by",
            "--lines-terminated-by", "--compatible", "--max-allowed-packet", "--parallel",
            "--default-parallelism", "--include-databases", "--exclude-databases"),
)
_MONGO = OptionSpec(
    host=("--host", "-h"), port=("--port",), user=("-u", "--username"),
    database=("-d", "--db"), output=("-o", "--out", "--archive"), sql=("--eval",),
    uri=("--uri",), secret=("-p", "--password"),
    flags=("--quiet", "--nodb", "--norc", "--ssl", "--tls", "--gzip", "--jsonArray", "--pretty", "--oplog"),
)
_REDIS = OptionSpec(
    host=("-h",), port=("-p",), user=("--user",), database=("-n",), output=("--rdb", "--functions-rdb"),
    uri=("-u",), secret=("-a", "--pass"),
    flags=("--raw", "--no-raw", "--csv", "--tls", "--no-auth-warning", "-c", "--scan", "--bigkeys",
           "--memkeys", "--stat", "--latency", "-i", "--pipe", "-e", "--askpass"),
)
_MSSQL = OptionSpec(
    host=("-S",), user=("-U",), database=("-d",), output=("-o",), sql=("-Q", "-q"),
    secret=("-P",), attached_secret=("-P",), flags=("-E", "-C", "-W", "-h", "-s", "-N", "-c", "-n", "-k", "-t", "-T"),
)
_CLICKHOUSE = OptionSpec(
    host=("--host", "-h"), port=("--port",), user=("--user", "-u"), database=("--database", "-d"),
    sql=("--query", "-q"), secret=("--password",), flags=("--multiline", "-m", "--multiquery", "-n", "--secure", "-s"),
)
_CQLSH = OptionSpec(
    user=("-u", "--username"), database=("-k", "--keyspace"), sql=("-e", "--execute"),
    secret=("-p", "--password"), flags=("--ssl", "--no-color", "--debug"),
)
# influx 2.x (--host, --org, -t TOKEN) and 1.x, whose options have one dash (-password SECRET)
_INFLUX = OptionSpec(
    host=("--host", "-host"), port=("-port",), user=("--org", "-o", "-username"),
    database=("--bucket", "-b", "--database", "-database"), sql=("--execute", "-e", "-execute"),
    secret=("-t", "--token", "--password", "-p", "-password", "-token"), flags=("--skip-verify", "-ssl", "-pretty"),
    values=("-format", "-precision", "--format"),
)
_COCKROACH = OptionSpec(
    host=("--host",), port=("--port",), user=("--user", "-u"), database=("--database", "-d"),
    sql=("--execute", "-e"), uri=("--url",), flags=("--insecure", "--echo-sql", "--format"),
)
_SQLITE = OptionSpec(sql=("-cmd",), flags=("-csv", "-json", "-line", "-list", "-header", "-readonly", "-batch", "-bail", "-echo"))
_GENERIC = OptionSpec(sql=("-c", "--command", "-e", "--execute"), output=("-o", "--out"))
_ORACLE = OptionSpec(secret=())
_BCP = OptionSpec(host=("-S",), user=("-U",), database=("-d",), secret=("-P",), attached_secret=("-P",),
                  flags=("-c", "-n", "-w", "-T", "-k", "-E"))

# mydumper takes its password as the next argument and names its output directory with -o.
_MYDUMPER = OptionSpec(
    host=("-h", "--host"), port=("-P", "--port"), user=("-u", "--user"), database=("-B", "--database"),
    output=("-o", "--outputdir"), secret=("-p", "--password"), attached_secret=("-p",),
    flags=("-c", "--compress", "-e", "--build-empty-files", "-v", "--verbose", "-G", "-E", "-R", "-m", "-k",
           "--no-locks", "--less-locking", "--triggers", "--events", "--routines"),
)
_MARIABACKUP = OptionSpec(
    host=("-H", "--host"), port=("-P", "--port"), user=("-u", "--user"), output=("--target-dir", "--extract-to"),
    attached_secret=("-p",), flags=("--backup", "--prepare", "--stream", "--compress", "-p", "--password"),
)

_SPEC_BY_TOOL: dict[str, OptionSpec] = {
    "pg_dump": _PG_DUMP, "pg_dumpall": _PG_DUMP, "pg_basebackup": _PG_BASEBACKUP,
    "bcp": _BCP, "mydumper": _MYDUMPER, "mariabackup": _MARIABACKUP, "mariadb-backup": _MARIABACKUP,
    "xtrabackup": _MARIABACKUP, "mysqldump": _MYSQLDUMP, "mariadb-dump": _MYSQLDUMP, "mysqlpump": _MYSQLDUMP,
}
_SPEC_BY_ENGINE: dict[str, OptionSpec] = {
    "postgres": _PG, "mysql": _MYSQL, "mongo": _MONGO, "redis": _REDIS, "mssql": _MSSQL,
    "clickhouse": _CLICKHOUSE, "cassandra": _CQLSH, "influx": _INFLUX, "cockroach": _COCKROACH,
    "sqlite": _SQLITE, "generic": _GENERIC, "oracle": _ORACLE,
}


def option_spec(tool: DbTool) -> OptionSpec:
    return _SPEC_BY_TOOL.get(tool.name) or _SPEC_BY_ENGINE[tool.engine]


@dataclass(frozen=True)
class ParsedArgs:
    options: dict[str, str]  # canonical role -> value (first occurrence)
    positionals: tuple[str, ...]
    sql: str  # inline statement text, rest of the line when quotes are gone


_ROLES = ("host", "port", "user", "database", "output", "uri")


def _parse_options(spec: OptionSpec, args: Sequence[str]) -> ParsedArgs:
    options: dict[str, str] = {}
    positionals: list[str] = []
    sql = ""
    role_of: dict[str, str] = {}
    for role in _ROLES:
        for opt in getattr(spec, role):
            role_of[opt] = role
    value_opts = set(role_of) | set(spec.sql) | set(spec.secret) | set(spec.values)
    i = 0
    while i < len(args):
        tok = args[i]
        if tok in _SHELL_SEPARATORS or tok.startswith(">") or tok.startswith("<"):
            break
        if tok in spec.sql:
            # The statement: with the shell's quotes gone it runs to the end
            # of the line (or to the next option that is clearly ours).
            rest = list(args[i + 1 :])
            sql = " ".join(rest)
            break
        if "=" in tok and tok.startswith("--"):
            opt, _, value = tok.partition("=")
            if opt in spec.sql:
                sql = " ".join([value, *args[i + 1 :]])
                break
            if opt in role_of:
                options.setdefault(role_of[opt], value)
            i += 1
            continue
        if tok in value_opts and tok not in spec.flags:
            value = args[i + 1] if i + 1 < len(args) else ""
            if tok in role_of:
                options.setdefault(role_of[tok], value)
            i += 2
            continue
        if tok.startswith("-") and not tok.startswith("--") and len(tok) > 2:
            short = tok[:2]
            if short in role_of and short not in spec.attached_secret:
                options.setdefault(role_of[short], tok[2:])
            elif short in spec.sql:
                sql = " ".join([tok[2:], *args[i + 1 :]])
                break
            i += 1
            continue
        if tok.startswith("-"):
            i += 1
            continue
        positionals.append(tok)
        i += 1
    if sql and "output" not in options:
        # `psql -c "select ..." -o /tmp/x`: an output option after the statement
        # (the statement swallowed the rest of the line above).
        rest = sql.split()
        for j, tok in enumerate(rest):
            if tok in spec.output and j + 1 < len(rest):
                options["output"] = rest[j + 1]
                break
            if tok.startswith("--") and tok.partition("=")[0] in spec.output and "=" in tok:
                options["output"] = tok.partition("=")[2]
                break
    return ParsedArgs(options, tuple(positionals), sql)


# ---------------------------------------------------------------------------
# Dump intent inside SQL / client meta-commands

_QUOTED_OR_WORD = r"(?:'([^'\n]{0,4096})'|\"([^\"\n]{0,4096})\"|([^\s;'\"]{1,4096}))"
# COPY ... TO is found from its `to` target back to a `copy` word (see
# _copy_intent): a forward `copy .{0,4096}? to` regex costs 4096 steps per
# `copy` word, which a 100 KB command line of `copy copy copy` turns into seconds.
_COPY_WORD = re.compile(r"(\\?)\bcopy\b", re.I)
_COPY_TARGET = re.compile(r"\bto\s+(?:(program)\s+" + _QUOTED_OR_WORD + r"|(p?stdout)\b|" + _QUOTED_OR_WORD + ")", re.I)
_COPY_REACH = 4096  # characters between `copy` and its `to`
_COPY_PRIORITY = ("\\copy to program", "\\copy to", "COPY TO PROGRAM", "COPY TO STDOUT", "COPY TO")
_SQL_INTENTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("INTO OUTFILE", re.compile(r"\binto\s+outfile\s+" + _QUOTED_OR_WORD, re.I)),
    ("INTO DUMPFILE", re.compile(r"\binto\s+dumpfile\s+" + _QUOTED_OR_WORD, re.I)),
    # psql `\o |cmd` / `\g |cmd`: query output piped to a program
    ("\\o program", re.compile(r"(?:^|\s)\\o\s*\|()()()")),
    ("\\g program", re.compile(r"(?:^|\s)\\gx?\s*\|()()()")),
    ("\\o", re.compile(r"(?:^|\s)\\o\s+" + _QUOTED_OR_WORD)),
    # psql 16: `\g (format=csv) FILE`
    ("\\g", re.compile(r"(?:^|\s)\\gx?\s+(?:\([^)\n]{0,512}\)\s*)?(?![|(])" + _QUOTED_OR_WORD)),
    ("tee", re.compile(r"(?:^|;)\s*(?:tee|\\T)\s+" + _QUOTED_OR_WORD, re.I)),
    # mysql `pager cat > FILE`
    ("pager", re.compile(r"(?:^|;)\s*(?:pager|\\P)\s[^\n;>]{0,512}>\s*" + _QUOTED_OR_WORD, re.I)),
    # sqlite `.once --bom FILE`, `.output FILE`; `.once -x` (a spreadsheet) names no file
    (".output", re.compile(r"(?:^|\s)\.(?:output|once|backup|save)\s+(?:-{1,2}[A-Za-z]{1,16}\s+){0,4}(?!-)" + _QUOTED_OR_WORD)),
    # CockroachDB EXPORT INTO CSV 'nodelocal://1/x' FROM ...; sqlcmd's `:out FILE`
    ("EXPORT INTO", re.compile(r"\bexport\s+into\s+(?:csv|parquet)\s+" + _QUOTED_OR_WORD, re.I)),
    (":out", re.compile(r"(?:^|\s):out\s+(?!stdout\b|stderr\b)" + _QUOTED_OR_WORD, re.I)),
    # PostgreSQL server-side large-object export
    ("lo_export", re.compile(r"\blo_export\s*\(\s*[^,()\n]{1,64},\s*" + _QUOTED_OR_WORD, re.I)),
    (".dump", re.compile(r"(?:^|\s)\.dump\b()()()")),
    ("writeFile", re.compile(r"\bwriteFile(?:Sync)?\s*\(\s*" + _QUOTED_OR_WORD)),
    ("CONFIG SET dir", re.compile(r"\bconfig\s+set\s+(?:dir|dbfilename)\s+" + _QUOTED_OR_WORD, re.I)),
    ("SAVE", re.compile(r"^\s*(?:bg)?save\s*$()()()", re.I)),
)


@dataclass(frozen=True)
class DumpIntent:
    intent: str
    path: str  # output file, "" when not named (stdout, a program)


def sql_dump_intent(text: str) -> DumpIntent | None:
    """A statement or meta-command that writes query results out of the database."""
    if not text:
        return None
    text = text[:65536]
    found = _copy_intent(text)
    if found is not None:
        return found
    for intent, pattern in _SQL_INTENTS:
        m = pattern.search(text)
        if m:
            value = next((g for g in m.groups() if g), "")
            if intent.endswith("PROGRAM") or intent.endswith("program") or intent == "COPY TO STDOUT":
                value = ""
            return DumpIntent(intent, value.rstrip(";"))
    return None


def _copy_intent(text: str) -> DumpIntent | None:
    """`\\copy ... to FILE`, `COPY ... TO FILE|PROGRAM|STDOUT`, linear in the text."""
    copies = [(m.start(), bool(m.group(1))) for m in _COPY_WORD.finditer(text)]
    if not copies:
        return None
    starts = [start for start, _ in copies]
    meta_starts = [start for start, meta in copies if meta]
    newlines = [m.start() for m in re.finditer("\n", text)]
    quotes = [m.start() for m in re.finditer("'", text)]  # a `to` inside '...' is data, not the target
    best: tuple[int, int, str, str] | None = None  # (priority, position, intent, path)
    for m in _COPY_TARGET.finditer(text):
        to = m.start()
        if bisect.bisect_left(quotes, to) % 2:
            continue
        line_start = newlines[bisect.bisect_left(newlines, to) - 1] if newlines and newlines[0] < to else -1
        lowest = max(line_start, to - _COPY_REACH - 6)

        def near(positions: list[int]) -> bool:
            k = bisect.bisect_left(positions, to) - 1
            return k >= 0 and positions[k] > lowest and positions[k] + 4 < to

        meta = near(meta_starts)
        if not meta and not near(starts):
            continue
        groups = m.groups()
        if groups[0]:
            intent, path = ("\\copy to program" if meta else "COPY TO PROGRAM"), ""
        elif groups[4]:
            intent, path = "COPY TO STDOUT", ""
        else:
            intent = "\\copy to" if meta else "COPY TO"
            path = next((g for g in groups[5:] if g), "").rstrip(";")
        candidate = (_COPY_PRIORITY.index(intent), to, intent, path)
        if best is None or candidate < best:
            best = candidate
    return DumpIntent(best[2], best[3]) if best else None


# ---------------------------------------------------------------------------
# A DB command as a record


@dataclass(frozen=True)
class DbCommand:
    tool: str
    engine: str
    kind: str  # "client" or "dump"
    host: str = ""
    port: str = ""
    database: str = ""
    user: str = ""
    dump_intent: str = ""  # "" when none
    output_path: str = ""


_URI = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?:(?P<user>[^:@/\s]*)(?::[^@/\s]*)?@)?"
    r"(?P<host>\[[^\]]*\]|[^:/?\s,]*)(?::(?P<port>\d+))?(?:[^/?\s]*)?(?:/(?P<db>[^?\s]*))?",
    re.I,
)


def _apply_uri(fields: dict[str, str], uri: str) -> None:
    if "://" not in uri and "@" in uri:
        uri = "x://" + uri  # mysqlsh's scheme-less `user[:pass]@host[:port][/schema]`
    m = _URI.match(uri)
    if not m:
        return
    for key, group in (("user", "user"), ("host", "host"), ("port", "port"), ("database", "db")):
        if m.group(group) == "<credentials>":
            continue  # mongosh's own title hides user:pass as <credentials>
        if m.group(group) and not fields.get(key):
            fields[key] = m.group(group)


_CONNINFO_KEYS = {"host": "host", "hostaddr": "host", "port": "port", "dbname": "database", "user": "user"}


def _apply_conninfo(fields: dict[str, str], text: str) -> None:
    """libpq `key=value` connection strings; the password key is never copied."""
    for pair in text.split():
        key, _, value = pair.partition("=")
        role = _CONNINFO_KEYS.get(key.strip("'\"").lower())
        if role and value and not fields.get(role):
            fields[role] = value.strip("'\"")


_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^:\s/\[\],]+):(\d{1,5})")


def _normalise_target(engine: str, fields: dict[str, str]) -> None:
    """Split URIs, connection strings and host:port forms left in single fields.

    A `-d postgresql://u:pw@h/db` or a mongosh `--host mongodb://...` must not
    reach a table column as a database or host name (it carries a password).
    """
    for key in ("database", "host", "user"):
        value = fields.get(key, "")
        if "://" in value or (key != "user" and "@" in value and engine in ("mysql", "oracle") and "/" not in value):
            if engine == "oracle":
                continue
            del fields[key]
            _apply_uri(fields, value)
        elif engine == "postgres" and key == "database" and "=" in value:
            del fields[key]
            _apply_conninfo(fields, value)
    host = fields.get("host", "")
    if engine == "mssql" and host:
        # sqlcmd -S tcp:host,1433 / host,1433 / host\INSTANCE
        host = re.sub(r"^(?:tcp|np|lpc|admin):", "", host, flags=re.I)
        name, _, port = host.partition(",")
        fields["host"] = name
        if port.strip().isdigit() and not fields.get("port"):
            fields["port"] = port.strip()
    elif engine == "oracle" and host:
        # EZConnect: [//]host[:port][/service]; a bare name stays (a TNS alias)
        m = re.fullmatch(r"(?://)?([^:/\s]+)(?::(\d{1,5}))?(?:/([^:\s]*))?(?::\S*)?", host)
        if m and ("/" in host or ":" in host):
            fields["host"] = m.group(1)
            if m.group(2) and not fields.get("port"):
                fields["port"] = m.group(2)
            if m.group(3) and not fields.get("database"):
                fields["database"] = m.group(3)
    else:
        m = _HOST_PORT.fullmatch(fields.get("host", ""))
        if m:
            fields["host"] = m.group(1).strip("[]")
            if not fields.get("port"):
                fields["port"] = m.group(2)


def _unmask_mysql_password(args: Sequence[str]) -> tuple[str, ...]:
    """Undo what MariaDB/MySQL clients do to their own argv in /proc.

    They overwrite a given password with "x" and cut it after the first one,
    so `-pSECRET` reads back as the two arguments `-px` and `xxxxx`: the second
    is the rest of the password, not a database name.
    """
    out: list[str] = []
    masked = False
    for tok in args:
        if masked and tok and tok.strip("x") == "":
            masked = False
            continue
        masked = tok in ("-px", "--password=x")
        out.append(tok)
    return tuple(out)


def parse_db_command(
    path: str, argv: Sequence[str], db_tools: Mapping[str, DbTool] = catalog.DB_TOOLS_BY_NAME
) -> DbCommand | None:
    """Engine, target and dump intent of a DB client or dump tool, or None."""
    found = identify_db_tool(path, argv, db_tools)
    if found is None:
        return None
    tool, args = found
    kind = tool.kind
    sub = ""
    if tool.subcommands or tool.dump_subcommands:
        if args and (args[0] in tool.subcommands or args[0] in tool.dump_subcommands):
            sub, args = args[0], args[1:]
        if sub in tool.dump_subcommands:
            kind = "dump"
    if tool.engine == "mysql":
        args = _unmask_mysql_password(args)
    parsed = _parse_options(option_spec(tool), args)
    fields = {k: v for k, v in parsed.options.items() if k in ("host", "port", "user", "database")}
    if "uri" in parsed.options:
        _apply_uri(fields, parsed.options["uri"])
    positionals = list(parsed.positionals)
    for pos in positionals:
        if "://" in pos:
            _apply_uri(fields, pos)
    plain = [p for p in positionals if "://" not in p]
    if tool.engine == "postgres":
        # psql "host=h dbname=x" (one argument) or, quotes gone, psql host=h dbname=x
        conninfo = [p for p in plain if "=" in p]
        if conninfo:
            _apply_conninfo(fields, " ".join(conninfo))
            plain = [p for p in plain if "=" not in p]
    elif tool.name == "mysqlsh":
        for pos in [p for p in plain if "@" in p]:
            _apply_uri(fields, pos)
            plain.remove(pos)

    intent = ""
    output = parsed.options.get("output", "")
    engine = tool.engine
    if tool.name == "bcp":
        # bcp TABLE out|queryout FILE
        if len(plain) >= 3 and plain[1].lower() in ("out", "queryout"):
            kind, intent, output = "dump", "bcp " + plain[1].lower(), plain[2]
        if plain:
            fields.setdefault("database", plain[0])
    elif engine == "oracle":
        for pos in plain:
            m = re.match(r"^([^/@=\s]+)(?:/[^@\s]*)?(?:@(\S+))?$", pos)
            if m and not fields.get("user"):
                fields["user"] = m.group(1)
                if m.group(2):
                    fields["host"] = m.group(2)
        for pos in positionals:
            if pos.lower().startswith(("dumpfile=", "file=")):
                output = pos.split("=", 1)[1]
    elif engine == "sqlite":
        if plain:
            fields.setdefault("database", plain[0])
        extra = " ".join(plain[1:]) + " " + parsed.sql
        found_intent = sql_dump_intent(extra)
        if found_intent:
            intent, output = found_intent.intent, output or found_intent.path
    elif engine == "influx" and sub in tool.dump_subcommands and plain:
        output = plain[0]
    elif engine == "cassandra":
        if plain:
            fields.setdefault("host", plain[0])
        if len(plain) > 1:
            fields.setdefault("port", plain[1])
    else:
        if plain and not fields.get("database") and tool.name != "pg_basebackup":
            # psql DB USER, mysql DB, mysqldump DB [TABLES], mongosh HOST/DB
            if engine == "mongo" and "/" in plain[0]:
                host, _, db = plain[0].partition("/")
                fields.setdefault("host", host)
                fields["database"] = db
            elif engine in ("redis", "influx"):
                pass  # positionals are a command (`redis-cli keys *`, `influx query ...`)
            else:
                fields["database"] = plain[0]
            if engine == "postgres" and len(plain) > 1 and not fields.get("user"):
                fields["user"] = plain[1]

    if parsed.sql:
        found_intent = sql_dump_intent(parsed.sql)
        if found_intent:
            intent, output = found_intent.intent, output or found_intent.path
    if tool.name == "redis-cli" and "output" in parsed.options:
        kind, intent = "dump", "--rdb"
    if kind == "dump" and not intent:
        intent = tool.name + (" " + sub if sub else "")
    if not intent and output:
        intent = "output file"
    if not intent and tool.name in ("psql",) and ("--csv" in args):
        intent = "--csv"
    if not intent and tool.engine == "mysql" and "--tab" in parsed.options.get("output", ""):
        intent = "--tab"
    _normalise_target(engine, fields)
    return DbCommand(
        tool=tool.name if not sub else f"{tool.name} {sub}",
        engine=engine,
        kind=kind,
        host=fields.get("host", ""),
        port=fields.get("port", ""),
        database=fields.get("database", ""),
        user=fields.get("user", ""),
        dump_intent=intent,
        output_path=output,
    )


# ---------------------------------------------------------------------------
# Transfer and staging commands


class TransferCommand:
    """A transfer or staging tool's command line, as far as it matters here.

    Read-only; a plain class for a native constructor (see ProgramArgs).
    """

    def __init__(self, tool: str, kind: str, files: tuple[str, ...], destinations: tuple[str, ...],
                 upload: bool) -> None:
        self.tool = tool
        self.kind = kind  # "transfer" or "staging"
        self.files = files  # local files the command reads or uploads
        self.destinations = destinations  # remote hosts or URLs named
        self.upload = upload  # sends local data out (curl -T/-F/-d @, wget --post-file, scp local remote)

    def __repr__(self) -> str:
        return (f"TransferCommand(tool={self.tool!r}, kind={self.kind!r}, files={self.files!r}, "
                f"destinations={self.destinations!r}, upload={self.upload!r})")


_URL = re.compile(r"^[a-z][a-z0-9+.-]*://([^/\s?#]*)", re.I)
# Options that take a value which is neither a local file nor a destination.
_TRANSFER_VALUE_OPTS: dict[str, frozenset[str]] = {
    "curl": frozenset({"-u", "--user", "-H", "--header", "-X", "--request", "-o", "--output", "-A",
                       "--user-agent", "-e", "--referer", "-x", "--proxy", "-m", "--max-time",
                       "--connect-timeout", "-b", "--cookie", "-c", "--cookie-jar", "-w", "--write-out",
                       "--resolve", "-U", "--proxy-user", "--retry", "-E", "--cert", "--key", "--cacert"}),
    "wget": frozenset({"-O", "-o", "-U", "--user-agent", "--header", "-P", "--user", "--password", "-t", "-T"}),
    "scp": frozenset({"-P", "-i", "-o", "-F", "-l", "-c", "-J", "-S"}),
    "sftp": frozenset({"-P", "-i", "-o", "-F", "-l", "-c", "-J", "-b", "-S"}),
    "ssh": frozenset({"-p", "-i", "-o", "-l", "-L", "-R", "-D", "-F", "-J", "-W", "-c", "-m", "-b"}),
    "rsync": frozenset({"-e", "--rsh", "--exclude", "--include", "--port", "--password-file"}),
    "nc": frozenset({"-p", "-w", "-s", "-q", "-i", "-X", "-x"}),
    "ncat": frozenset({"-p", "-w", "-s", "-i", "--proxy"}),
    "netcat": frozenset({"-p", "-w", "-s", "-q", "-i"}),
    "openssl": frozenset({"-out", "-k", "-pass", "-passin", "-passout", "-md", "-connect", "-servername", "-kfile"}),
    "aws": frozenset({"--region", "--profile", "--endpoint-url", "--output", "--sse", "--storage-class", "--acl"}),
    "gsutil": frozenset({"-h", "-o"}),
    "tar": frozenset({"-f", "-C", "--exclude", "-T"}),
    "split": frozenset({"-b", "-l", "-n", "-a", "-C"}),
    "zip": frozenset({"-P", "--password", "-x", "-i"}),
    "smbclient": frozenset({"-U", "--user", "-W", "-p", "-c", "-I", "-m"}),
    "lftp": frozenset({"-u", "--user", "-p", "-e", "-c"}),
    "rclone": frozenset({"--config", "--transfers", "--bwlimit"}),
    "gpg": frozenset({"-r", "--recipient", "-o", "--output", "-u", "--local-user", "--passphrase"}),
    "socat": frozenset(),
}
# Tools whose first words are a sub-command (`aws s3 cp`, `gcloud storage cp`).
_SUBCOMMAND_WORDS: dict[str, int] = {
    "openssl": 1, "rclone": 1, "s3cmd": 1, "mc": 1, "azcopy": 1, "gsutil": 1, "aws": 2, "gcloud": 2,
}
_CLOUD_COPY = frozenset({"aws", "gsutil", "gcloud", "azcopy", "rclone", "mc", "s3cmd"})
_SCP_REMOTE = re.compile(r"^(?:[^@/\s]+@)?([^:/\s]+):")


def _url_host(url: str) -> str:
    m = _URL.match(url)
    if not m:
        return ""
    host = m.group(1).rsplit("@", 1)[-1]
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.split(":", 1)[0]


def parse_transfer_command(
    path: str, argv: Sequence[str], transfer_tools: Mapping[str, TransferTool] = catalog.TRANSFER_TOOLS_BY_NAME
) -> TransferCommand | None:
    found = identify_transfer_tool(path, argv, transfer_tools)
    if found is None:
        return None
    tool, args = found
    files: list[str] = []
    dests: list[str] = []
    upload = False
    words_to_skip = _SUBCOMMAND_WORDS.get(tool.name, 0)
    i = 0
    while i < len(args):
        tok = args[i]
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if tok in _SHELL_SEPARATORS:
            break
        value_step = 2  # an option and its value are two arguments...
        if tool.name == "curl" and len(tok) > 2 and tok[:2] in ("-T", "-F", "-d") and tok[1] != "-":
            # ...or one: -T/tmp/x.sql, -d@/tmp/x.sql, -Ff=@/tmp/x.sql
            tok, nxt, value_step = tok[:2], tok[2:], 1
        if tool.name == "tar" and i == 0 and re.fullmatch(r"[A-Za-z]{1,16}", tok) and not _url_host(tok):
            # the traditional option bundle (`tar czf OUT.tgz IN`): letters, not a file
            i += 1
            continue
        if words_to_skip and not tok.startswith("-"):
            words_to_skip -= 1  # a sub-command (`openssl enc`, `rclone copy`, `aws s3 cp`), not a file
            i += 1
            continue
        if tool.name == "curl":
            if tok in ("-T", "--upload-file"):
                files.append(nxt)
                upload = True
                i += value_step
                continue
            if tok in ("-F", "--form", "-d", "--data", "--data-binary", "--data-raw", "--data-urlencode", "--json"):
                if "@" in nxt:
                    files.append(nxt.split("@", 1)[1].split(";", 1)[0])
                upload = True
                i += value_step
                continue
            if tok.startswith("--upload-file="):
                files.append(tok.split("=", 1)[1])
                upload = True
        elif tool.name == "wget":
            for opt in ("--post-file", "--body-file"):
                if tok == opt:
                    files.append(nxt)
                    upload = True
                    i += 1
                elif tok.startswith(opt + "="):
                    files.append(tok.split("=", 1)[1])
                    upload = True
            if tok.startswith("--post-data") or tok.startswith("--body-data"):
                upload = True
        elif tool.name == "openssl" and tok in ("-in",):
            files.append(nxt)
            i += 2
            continue
        if tok in _TRANSFER_VALUE_OPTS.get(tool.name, ()):
            if tool.name == "openssl" and tok == "-connect":
                dests.append(nxt.rsplit(":", 1)[0])
            i += 2
            continue
        if tool.name == "socat" and ":" in tok:
            # socat OPEN:/tmp/x.sql TCP:host:port
            kind_, _, rest = tok.partition(":")
            if kind_.upper() in ("TCP", "TCP4", "TCP6", "SSL", "OPENSSL", "UDP"):
                dests.append(rest.split(":", 1)[0])
            elif kind_.upper() in ("OPEN", "FILE", "GOPEN", "CREATE"):
                files.append(rest.split(",", 1)[0])
            i += 1
            continue
        if tok.startswith("-"):
            i += 1
            continue
        host = _url_host(tok)
        if host:
            dests.append(host)
            if files and tool.name in _CLOUD_COPY:
                upload = True  # `aws s3 cp FILE s3://bucket`: a local file before a remote target
        elif tool.name in ("scp", "rsync", "sftp", "rclone") and _SCP_REMOTE.match(tok):
            dests.append(_SCP_REMOTE.match(tok).group(1))  # type: ignore[union-attr]
            if files:
                upload = True
        elif tool.name in ("nc", "ncat", "netcat", "ftp", "tftp") and re.fullmatch(r"\d{1,5}(?:-\d{1,5})?", tok):
            pass  # `nc HOST PORT`, `nc -l 4444`: a port, not a file
        elif tool.name in ("nc", "ncat", "netcat", "socat", "ftp", "lftp", "tftp", "ssh", "sftp") and not files and not dests:
            dests.append(tok.rsplit("@", 1)[-1])
        else:
            files.append(tok)
        i += 1
    if tool.name == "socat" and files and dests:
        upload = True
    return TransferCommand(tool.name, tool.kind, tuple(f for f in files if f), tuple(dests), upload)


def resolve_path(path: str, cwd: str) -> str:
    """Absolute, normalised form of a path named on a command line."""
    if not path or path == "-":
        return ""
    path = path.strip("'\"")
    if path.startswith("~"):
        return path  # home unknown here; callers compare basenames too
    if not path.startswith("/"):
        if not cwd.startswith("/"):
            return path
        path = posixpath.join(cwd, path)
    return posixpath.normpath(path)


# ---------------------------------------------------------------------------
# Redaction

_MYSQL_FAMILY = frozenset(t.name for t in catalog.DB_TOOLS if t.engine == "mysql")
# Options whose next token is a secret, by tool (value-after-space form).
_SECRET_NEXT: dict[str, frozenset[str]] = {}
for _tool in catalog.DB_TOOLS:
    _spec = option_spec(_tool)
    if _spec.secret:
        _SECRET_NEXT[_tool.name] = frozenset(_spec.secret)
_SECRET_NEXT.update(
    {
        "curl": frozenset({"-u", "--user", "--proxy-user", "-U", "--oauth2-bearer", "--pass", "-b", "--cookie"}),
        "wget": frozenset({"--password", "--http-password", "--ftp-password", "--proxy-password"}),
        "openssl": frozenset({"-pass", "-passin", "-passout", "-k", "-kfile"}),
        "sshpass": frozenset({"-p"}),
        "smbclient": frozenset({"-U", "--user", "--password"}),
        "lftp": frozenset({"-u", "--user"}),
        "rclone": frozenset({"--pass", "--password"}),
        "az": frozenset({"-p", "--password", "--account-key", "--sas-token"}),
        "aws": frozenset({"--secret-access-key"}),
        "7z": frozenset(),
        "zip": frozenset({"-P", "--password"}),
    }
)
_ATTACHED_SECRET: dict[str, tuple[str, ...]] = {name: ("-p",) for name in _MYSQL_FAMILY}
_ATTACHED_SECRET.update({"sqlcmd": ("-P",), "bcp": ("-P",), "7z": ("-p",), "7za": ("-p",), "zip": ("-P",)})
_ATTACHED_SECRET["sshpass"] = ("-p",)
_SECRET_NEXT["gpg"] = frozenset({"--passphrase"})
_USER_PASS_TOOLS = frozenset({"curl", "lftp", "smbclient"})  # -u user:pass
_GENERIC_SECRET_OPTIONS = frozenset({
    "--password", "--passwd", "--pass", "--passphrase", "--token", "--secret", "--api-key", "--apikey",
    "--access-key", "--secret-key", "--secret-access-key", "--auth-token", "--client-secret",
})
# Admin and import tools that are not catalog entries share their family's
# password options: mysqladmin -pX, mongorestore -p X, redis-benchmark -a X.
_FAMILY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("mysql", "mysql"), ("mariadb", "mysql"), ("mongo", "mongosh"), ("redis-", "redis-cli"),
    ("clickhouse", "clickhouse-client"),
)


def _secret_family(name: str) -> str:
    """The tool whose secret rules apply to a program name ("" for none)."""
    if name in catalog.DB_TOOLS_BY_NAME or name in catalog.TRANSFER_TOOLS_BY_NAME or name in _SECRET_NEXT:
        return name
    for prefix, family in _FAMILY_PREFIXES:
        if name.startswith(prefix) and re.fullmatch(r"[a-z0-9_.-]{1,40}", name):
            return family
    return ""

_ORACLE_TOOLS = frozenset(t.name for t in catalog.DB_TOOLS if t.engine == "oracle")

_TEXT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # PGPASSWORD=x, MYSQL_PWD=x, REDISCLI_AUTH=x, --password=x, api_key=x
    # The unquoted value runs to the next space (a password may hold `;` or `&`);
    # only separators glued to its end are kept, so `X=pw; curl` keeps its `;`.
    (re.compile(r"(?i)((?:^|[\s\"'`;(?&])-{0,2}[a-z0-9_.-]{0,64}?(?:password|passwd|pass|pwd|secret|token|auth|api[_-]?key|access[_-]?key|requirepass|masterauth)[a-z0-9_-]{0,32}\s*=\s*)(?!\s)(\"[^\"]*\"|'[^']*'|[^\s]*[^\s;&|)])"), r"\1" + REDACTED),
    # scheme://user:pass@host
    (re.compile(r"(?i)([a-z][a-z0-9+.-]{0,31}://[^:/@\s]{0,256}):([^@\s/]{1,1024})@"), r"\1:" + REDACTED + "@"),
    # CREATE/ALTER USER ... IDENTIFIED [WITH plugin] BY [PASSWORD] 'x'
    (re.compile(r"(?i)(\bidentified\s+(?:with\s+\S{1,64}\s+)?(?:by|as)\s+(?:password\s+)?)('[^']*'|\"[^\"]*\"|\S+)"), r"\1" + REDACTED),
    # [ENCRYPTED] PASSWORD 'x', SET PASSWORD = PASSWORD('x'), PASSWORD("x")
    # (every optional part starts with its own character: adjacent `\s*` runs made
    # "password" + 100 KB of spaces take most of a minute)
    (re.compile(r"(?i)(\bpassword(?:\s{0,64}=)?(?:\s{0,64}password)?(?:\s{0,64}\()?\s{0,64})('[^']*'|\"[^\"]*\")"), r"\1" + REDACTED),
    # mongosh: db.auth("u", "p"), db.getSiblingDB(x).auth(...), db.changeUserPassword("u", "p"), { pwd: "p" }
    (re.compile(r"(?i)(\.(?:auth|changeUserPassword)\(\s*(?:'[^']*'|\"[^\"]*\")\s*,\s*)('[^']*'|\"[^\"]*\")"), r"\1" + REDACTED),
    # Oracle: CONNECT user/password[@db]
    (re.compile(r"(?i)(\bconn(?:ect)?\s+[^/\s@'\":]{1,128}/)([^@\s]+)"), r"\1" + REDACTED),
    # aws configure set aws_secret_access_key VALUE
    (re.compile(r"(?i)(\b(?:aws_secret_access_key|aws_session_token)\s+)(\S+)"), r"\1" + REDACTED),
    (re.compile(r"(?i)(\b(?:pwd|password)\s*:\s*)('[^']*'|\"[^\"]*\"|[^\s,}]+)"), r"\1" + REDACTED),
    # redis: AUTH [user] pass at the start of a history entry or after -a-less redis-cli
    (re.compile(r"(?i)(^\s*auth\s+)(\S+(?:\s+\S+)?)\s*$"), r"\1" + REDACTED),
    # redis: HELLO 3 AUTH user pass; MIGRATE ... AUTH pass / AUTH2 user pass
    (re.compile(r"(?i)(^\s*hello\s+\d{1,2}\s+auth\s+)(\S+\s+\S+)"), r"\1" + REDACTED),
    (re.compile(r"(?i)(^\s*migrate\s[^\n]{0,1024}?\bauth2?\s+)(\S+(?:\s+\S+)?)"), r"\1" + REDACTED),
    # redis: CONFIG SET requirepass|masterauth VALUE
    (re.compile(r"(?i)(\bconfig\s+set\s+(?:requirepass|masterauth|masteruser)\s+)(\S+)"), r"\1" + REDACTED),
    # HTTP Authorization headers
    (re.compile(r"(?i)((?:proxy-)?authorization:\s{0,64}(?:(?:bearer|basic|token|digest|negotiate)\s{1,64})?)([^\s\"']+)"), r"\1" + REDACTED),
    (re.compile(r"(?i)(\b(?:x-api-key|api-key|x-auth-token|private-token|x-vault-token|cookie):\s*)([^\s\"']+)"), r"\1" + REDACTED),
)


def redact_text(text: str) -> str:
    """Secrets in free text: SQL, history entries, URIs, env assignments."""
    for pattern, replacement in _TEXT_RULES:
        text = pattern.sub(replacement, text)
    return text


def redact_cmdline(cmdline: str) -> str:
    """A command line with every secret replaced, spacing kept.

    Tool-specific rules follow the most recent program named on the line, so a
    shell's `sh -c mysqldump -u root -pX db` and `sudo -u postgres env
    PGPASSWORD=x psql` are covered as well as a bare client.
    """
    parts = re.split(r"(\s+)", cmdline)
    current = ""
    redact_next = False
    redact_words = 0  # redis-cli ... AUTH [user] pass: the words after AUTH
    positional = 0
    for index in range(0, len(parts), 2):
        token = parts[index]
        if not token:
            continue
        if redact_words:
            redact_words -= 1
            if token in _SHELL_SEPARATORS:
                redact_words = 0
                current = ""
                continue
            parts[index] = REDACTED + token[len(token.rstrip(";|&")) :]
            if token.endswith((";", "|", "&")):
                redact_words = 0
                current = ""
            continue
        if redact_next:
            redact_next = False
            if current in _USER_PASS_TOOLS and ":" in token:
                user, _, _ = token.partition(":")
                parts[index] = user + ":" + REDACTED
            elif current == "curl" and _strip_quotes(parts[index - 2]) in ("-u", "--user", "-U", "--proxy-user"):
                pass  # curl -u user (prompted password)
            else:
                parts[index] = REDACTED + token[len(token.rstrip(";|&")) :]
            if token.endswith((";", "|", "&")):
                current = ""
            continue
        bare = _strip_quotes(token)
        name = basename(bare)
        if bare in _SHELL_SEPARATORS:
            current = ""
            continue
        family = _secret_family(name)
        if family:
            current = family
            positional = 0
            continue
        if not current:
            # Programs we do not know (`docker login --password X`): their
            # password-like options are taken to carry a value.
            if bare.lower() in _GENERIC_SECRET_OPTIONS:
                redact_next = True
            continue
        # A token glued to a separator (`-pX;`) is still this tool's: redact
        # it first, then forget the tool.
        ends_command = token.endswith((";", "|", "&"))
        if ends_command:
            bare = bare.rstrip(";|&")
        _redact_token(parts, index, token, bare, current, positional)
        if current == "redis-cli" and bare.upper() in ("AUTH", "AUTH2") and not ends_command:
            redact_words = 2  # AUTH pass, AUTH user pass (a user name is lost, never a password kept)
        elif bare in _SECRET_NEXT.get(current, ()):
            redact_next = True
        elif not bare.startswith("-"):
            positional += 1
        if ends_command:
            current = ""
    return redact_text("".join(parts))


# mysqlsh and --uri values may carry credentials without a scheme: user:pass@host
_SCHEMELESS_CREDS = re.compile(r"^((?:--[a-z-]{1,32}=)?['\"]?[^:/@\s'\"]{1,256}):([^@\s]{1,1024})@")
_URI_OPTIONS = frozenset({"--uri", "--url", "--connection", "-u"})


def _redact_token(parts: list[str], index: int, token: str, bare: str, current: str, positional: int) -> None:
    """Redact one argument of `current` in place (attached secrets, user/pass forms)."""
    if current == "isql" and positional == 2 and not bare.startswith("-"):
        parts[index] = REDACTED  # unixODBC: isql DSN [USER [PASSWORD]]
        return
    previous = parts[index - 2] if index >= 2 else ""
    if current == "mysqlsh" or _strip_quotes(previous) in _URI_OPTIONS or bare.startswith(("--uri=", "--url=")):
        m = _SCHEMELESS_CREDS.match(token)
        if m and "://" not in token:
            parts[index] = m.group(1) + ":" + REDACTED + "@" + token[m.end() :]
            return
    for prefix in _ATTACHED_SECRET.get(current, ()):
        if bare.startswith(prefix) and len(bare) > len(prefix) and not bare.startswith("--"):
            start = token.find(prefix) + len(prefix)
            end = len(token.rstrip("\"'`);|&"))
            parts[index] = token[:start] + REDACTED + token[end:]
            return
    if current in _ORACLE_TOOLS and not bare.startswith("-"):
        m = re.match(r"^([^/@=\s]+)/([^@\s]+)(@.*)?$", bare)
        if m:
            parts[index] = token.replace(bare, m.group(1) + "/" + REDACTED + (m.group(3) or ""), 1)
