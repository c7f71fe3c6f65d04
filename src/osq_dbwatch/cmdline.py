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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from . import catalog
from .catalog import DbTool, EngineInfo, OptionSpec, TransferTool

REDACTED = "****"

# Interpreters and wrappers whose first non-option argument is the real program (catalog.WRAPPERS).
_WRAPPERS: Final = frozenset(w.name for w in catalog.WRAPPERS)
_SHELL_SEPARATORS = frozenset({";", "|", "||", "&", "&&", "(", ")", "`", "$("})


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] if path else ""


def split_cmdline(cmdline: str, logged: bool = True) -> list[str]:
    """Split an osquery cmdline (argv joined by spaces, quotes already gone) into
    whitespace tokens, in the program's own argument order where the line lets
    that be recovered (see recover_order: osquery 5.23.1 logs a0 a1 a10 a11 ... a2 ...).

    `logged=False`: the line is already in the program's order (/proc/PID/cmdline
    joined, as the db_cli_sessions table gives it): split only.
    """
    if not logged or cmdline.count(" ") < _MAX_ORDERED_ARGS:
        return cmdline.split()
    pieces = cmdline.split(" ")
    return [tok for i in recover_order(pieces) for tok in pieces[i].split()]


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
_WRAPPER_VALUE_OPTS: Final = {w.name: frozenset(w.value_options) for w in catalog.WRAPPERS if w.value_options}


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
        if tool.subcommands and (not args or args[0] not in tool.subcommands):
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
# osquery's argument order
#
# osquery's audit subscriber keeps an EXECVE record's fields in a std::map and
# joins a0, a1, ... in the map's (string) order of their names, with single
# spaces and no quoting: from the 11th argument on, a command line is logged as
# a0 a1 a10 a11 ... a19 a2 a20 ... a3 ... The permutation for a given argc is
# known, but argc is not: an argument holding spaces (SQL after -c) is several
# words of the line. recover_order tries every argc with the extra words in one
# run of consecutive arguments (two for argc 11..20), scores each candidate
# against the tool's option spec, and keeps the best; the line as logged (argc
# <= 10, its extra words in arguments with spaces) is one of the candidates.

_MAX_ORDERED_ARGS: Final = 10  # a0..a9 sort the same as names and as numbers
_MAX_RECOVER_PIECES: Final = 64  # beyond: only "no argument held a space" and the line as logged
_KEY_ORDERS: dict[int, tuple[int, ...]] = {}


def osquery_key_order(argc: int) -> tuple[int, ...]:
    """The argument indices in the order osquery 5.23.1 joins a0..a{argc-1}."""
    found = _KEY_ORDERS.get(argc)
    if found is None:
        found = tuple(sorted(range(argc), key=str))
        if argc <= 4096:
            _KEY_ORDERS[argc] = found
    return found


def osquery_join(argv: Sequence[str]) -> str:
    """argv as osquery 5.23.1's process_events logs it (the tests' model of its cmdline column)."""
    return " ".join(argv[i] for i in osquery_key_order(len(argv)))


def _key_runs(argc: int) -> list[tuple[int, int]]:
    """(first argument index, argument count) of each run of consecutive arguments, in logged order."""
    order = osquery_key_order(argc)
    runs: list[tuple[int, int]] = []
    start = 0
    for k in range(1, argc + 1):
        if k == argc or order[k] != order[k - 1] + 1:
            runs.append((order[start], k - start))
            start = k
    return runs


class _Candidate:
    """One reading of a logged line: piece indices in program order, each piece's run, args per run."""

    def __init__(self, order: list[int], run_of: list[int], required: list[int], fat: int, argc: int) -> None:
        self.order = order
        self.run_of = run_of
        self.required = required  # -1: the line as logged (at most 10 arguments)
        self.fat = fat  # runs holding arguments with spaces
        self.argc = argc


_CANDIDATES: dict[int, list[_Candidate]] = {}


def _candidates(m: int) -> list[_Candidate]:
    """The readings of a line of m pieces, best first when equally well-formed (see recover_order)."""
    found = _CANDIDATES.get(m)
    if found is not None:
        return found
    cands = [_Candidate(list(range(m)), [0] * m, [-1], 0, 0)]  # the line as logged
    top = m if m <= _MAX_RECOVER_PIECES else _MAX_ORDERED_ARGS + 1
    for argc in [*range(_MAX_ORDERED_ARGS + 1, top + 1), *([m] if top < m else [])]:
        runs = _key_runs(argc)
        extra = m - argc
        allocations: list[list[int]] = []
        if extra == 0:
            allocations.append([0] * len(runs))
        elif m <= _MAX_RECOVER_PIECES:
            for j in range(len(runs)):
                alloc = [0] * len(runs)
                alloc[j] = extra
                allocations.append(alloc)
            if len(runs) == 3:  # argc 11..20: a10.. and a2..a9 may both hold spaces
                for x in range(1, extra):
                    allocations.append([0, x, extra - x])
        for alloc in allocations:
            spans: list[tuple[int, int, int, int]] = []  # (first arg, logged start, pieces, args)
            pos = 0
            for (first, count), more in zip(runs, alloc):
                spans.append((first, pos, count + more, count))
                pos += count + more
            spans.sort()
            order: list[int] = []
            run_of: list[int] = []
            for r, (_first, start, length, _count) in enumerate(spans):
                order.extend(range(start, start + length))
                run_of.extend([r] * length)
            cands.append(_Candidate(order, run_of, [s[3] for s in spans], sum(1 for a in alloc if a), argc))
    cands[1:] = sorted(cands[1:], key=lambda c: (c.fat, -c.argc))
    if m <= _MAX_RECOVER_PIECES:
        _CANDIDATES[m] = cands
    return cands


class _ArgModel:
    """What recover_order needs of a tool's options (from its catalog spec). A plain class (see ProgramArgs)."""

    def __init__(self, single: frozenset[str], free: frozenset[str], sql: frozenset[str], flags: frozenset[str],
                 ports: frozenset[str],
                 names: frozenset[str], positionals: int, sql_positionals: bool, conninfo: bool,
                 subcommands: frozenset[str]) -> None:
        self.single = single  # options taking one word (a host, a port, a file)
        self.free = free  # options whose value may hold spaces (SQL, scripts, headers)
        self.sql = sql  # of those, the statements (their words never end the value)
        self.flags = flags
        self.known = single | free | flags
        self.ports = ports
        self.names = names  # host, user, database: names, never SQL
        self.positionals = positionals  # most plain arguments the tool takes (-1: any number)
        self.sql_positionals = sql_positionals  # plain arguments after the first are SQL (sqlite3 DB 'select ...')
        self.conninfo = conninfo  # `key=value` plain arguments are a connection string
        self.subcommands = subcommands


def _db_arg_model(tool: DbTool) -> _ArgModel:
    spec = catalog.option_spec(tool)
    info = catalog.engine_info(tool.engine)
    # As the parser reads them: an SQL option before a flag (psql -c), a flag before a value option.
    sql = frozenset(spec.sql)
    flags = frozenset(spec.flags) - sql
    # Most values are one word (a port, a file, a protocol); only those the spec says may hold spaces
    # (a prompt, a --where clause) and SQL may run over several words of a logged line.
    free = sql | (frozenset((*spec.spaced_values, *(option for option, _n in spec.value_counts))) - flags)
    single = frozenset((*spec.host, *spec.port, *spec.user, *spec.database, *spec.output, *spec.uri, *spec.secret,
                        *spec.values))
    roles = spec.positional + spec.dump_positional
    many = "sql*" in roles or "connect*" in roles
    return _ArgModel(single - flags - free, free, sql, flags, frozenset(spec.port),
                     frozenset((*spec.host, *spec.user, *spec.database)), -1 if many else len(spec.positional),
                     "sql*" in roles, info.conninfo, frozenset((*tool.subcommands, *tool.dump_subcommands)))


def _transfer_arg_model(tool: TransferTool) -> _ArgModel:
    spec = tool.spec
    # Any value of a transfer tool may hold spaces (curl -H 'Authorization: ...'); files and hosts do not.
    single = frozenset((*spec.upload_files, *spec.input_files, *spec.destinations))
    free = frozenset((*spec.values, *spec.upload_data, *spec.secret, *spec.user_options)) - single
    return _ArgModel(single, free, frozenset(), frozenset(), frozenset(), frozenset(), -1, False, False, frozenset())


# A shell's -c takes the whole command as one argument (`sh -c "mysql ... > /tmp/x"`).
_SHELL_MODEL: Final = _ArgModel(frozenset(), frozenset({"-c"}), frozenset({"-c"}), frozenset(), frozenset(), frozenset(),
                                -1, False, False, frozenset())
_ARG_MODELS: Final[dict[str, _ArgModel]] = {
    **{name: _SHELL_MODEL for name in catalog.SHELLS},
    **{t.name: _transfer_arg_model(t) for t in catalog.TRANSFER_TOOLS},
    **{t.name: _db_arg_model(t) for t in catalog.DB_TOOLS},
}
_GENERIC_MODEL: Final = _ArgModel(frozenset(), frozenset(), frozenset(), frozenset(), frozenset(), frozenset(), -1,
                                  False, False, frozenset())
_OPTION_LIKE = re.compile(r"--?[A-Za-z]")
_PORT_VALUE = re.compile(r"\d{1,5}")
_NOT_A_NAME = re.compile(r"[\s(),;'\"*\\]")
_STANDALONE = re.compile(r"[/~@]|[^\s]*://|[\w.-]+@[\w.-]+:|\d+$")


def _score(pieces: Sequence[str], cand: _Candidate) -> tuple[int, int]:
    """How many things are wrong with reading the line in this order (0: a well-formed command line),
    and how many runs must split a value that may hold spaces (SQL) into words to make up their count."""
    seq = [pieces[i] for i in cand.order]
    run_of = cand.run_of
    prog = real_program("", seq)
    model = _ARG_MODELS.get(prog.name)
    wrong = 0
    if model is None:
        model, wrong = _GENERIC_MODEL, 2  # a reading that names no tool we know is worse than one that does
    n_runs = len(cand.required)
    counts = [0] * n_runs
    slack = [0] * n_runs  # words that may be arguments of their own or part of one with spaces
    i = 0
    end = len(seq) - len(prog.args)
    while i < end:  # wrappers and the program: one argument each
        counts[run_of[i]] += 1
        i += 1
    if i < len(seq) and seq[i] in model.subcommands:
        counts[run_of[i]] += 1
        i += 1
    plain = 0
    while i < len(seq):
        p = seq[i]
        counts[run_of[i]] += 1
        if _OPTION_LIKE.match(p) is None:
            if not (model.conninfo and "=" in p):
                plain += 1
            i += 1
            if model.sql_positionals and plain > 1:
                # SQL given as plain arguments: one argument of up to every plain word left in its run
                j = i
                while j < len(seq) and run_of[j] == run_of[i - 1] and _OPTION_LIKE.match(seq[j]) is None:
                    j += 1
                slack[run_of[i - 1]] += j - i
                i = j
            continue
        i += 1
        if p.startswith("--") and "=" in p or p in model.flags:
            continue
        if p in model.single:
            if i >= len(seq) or _OPTION_LIKE.match(seq[i]) is not None:
                wrong += 1  # an option without its value
                continue
            value = seq[i]
            if p in model.ports and _PORT_VALUE.fullmatch(value) is None:
                wrong += 1
            elif p in model.names and (not value or _NOT_A_NAME.search(value) is not None):
                wrong += 1  # SQL words where a host, user or database belongs
            counts[run_of[i]] += 1
            i += 1
            continue
        if len(p) > 2 and p[1] != "-" and p[:2] in model.known:
            continue  # -pSECRET, -hlocalhost
        # A value that may hold spaces: one argument of up to every plain word left in its run.
        # Only SQL runs on past a word that reads as an argument of its own (a path, a URL, @script).
        j = i
        sql = p in model.sql
        while j < len(seq) and run_of[j] == run_of[i] and _OPTION_LIKE.match(seq[j]) is None and (
                sql or j == i or _STANDALONE.match(seq[j]) is None):
            j += 1
        if j == i:
            if p in model.free:
                wrong += 1
            continue
        counts[run_of[i]] += 1
        slack[run_of[i]] += j - i - 1
        i = j
    if model.positionals >= 0 and plain > model.positionals:
        wrong += plain - model.positionals
    split = 0
    for r in range(n_runs):
        need = cand.required[r]
        if need < 0:
            wrong += max(0, counts[r] - _MAX_ORDERED_ARGS)
        elif need < counts[r]:
            wrong += counts[r] - need
        elif need > counts[r] + slack[r]:
            wrong += need - counts[r] - slack[r]
        elif need > counts[r]:
            split += 1
    return wrong, split


_RECOVERED: dict[str, tuple[int, ...]] = {}
_PLAUSIBLE: dict[str, tuple[tuple[int, ...], ...]] = {}
_MAX_READINGS: Final = 32  # orders redaction reads a line in at most


def recover_order(pieces: Sequence[str]) -> tuple[int, ...]:
    """Indices of a logged line's space-separated pieces in the program's argument order.

    The best-scoring reading: fewest things wrong; then the line as logged
    (a line in the program's order, from /proc or an agent that keeps it, stays
    as it is unless another reading is better formed); then fewest SQL values
    cut into words, fewest runs holding spaces, most arguments.
    """
    m = len(pieces)
    if m <= _MAX_ORDERED_ARGS:
        return tuple(range(m))
    key = " ".join(pieces)
    found = _RECOVERED.get(key)
    if found is None:
        found = _scan(pieces, False)[0]
        _remember(_RECOVERED, key, found)
    return found


def plausible_orders(pieces: Sequence[str]) -> tuple[tuple[int, ...], ...]:
    """The orders a secret may be in: the best reading, the line as logged, and every other reading as
    well-formed as the best (fewest things wrong); at most _MAX_READINGS."""
    m = len(pieces)
    if m <= _MAX_ORDERED_ARGS:
        return (tuple(range(m)),)
    key = " ".join(pieces)
    found = _PLAUSIBLE.get(key)
    if found is None:
        found = _scan(pieces, True)
        _remember(_PLAUSIBLE, key, found)
    return found


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(key) <= 4096:
        if len(cache) >= 4096:
            cache.clear()
        cache[key] = value


def _scan(pieces: Sequence[str], ties: bool) -> tuple[tuple[int, ...], ...]:
    """The best reading first; with `ties`, then the others that are as well-formed (fewest things wrong)."""
    best: tuple[int, int, int, int, int] | None = None
    best_order: list[int] = list(range(len(pieces)))
    scored: list[tuple[int, list[int]]] = []
    for cand in _candidates(len(pieces)):
        wrong, split = _score(pieces, cand)
        rank = (wrong, 1 if cand.argc else 0, split, cand.fat, -cand.argc)
        if ties:
            scored.append((wrong, cand.order))
        if best is None or rank < best:
            best, best_order = rank, cand.order
            if not ties and wrong == 0 and split == 0:
                break  # candidates come best first: nothing after this one ranks higher
    orders = [tuple(best_order)]
    if ties and orders[0] != tuple(range(len(pieces))):
        orders.append(tuple(range(len(pieces))))  # the line as logged, whatever its score: redaction's safe side
    if best is not None:
        for wrong, order in scored:
            if wrong == best[0] and len(orders) < _MAX_READINGS:
                as_tuple = tuple(order)
                if as_tuple not in orders:
                    orders.append(as_tuple)
    return tuple(orders)


# ---------------------------------------------------------------------------
# Option parsing shared by all engines (the specs are catalog.OptionSpec)


def option_spec(tool: DbTool) -> OptionSpec:
    return catalog.option_spec(tool)


class _SpecTables:
    """Lookups derived once from one OptionSpec (read-only; a plain class, see ProgramArgs)."""

    def __init__(self, spec: OptionSpec) -> None:
        role_of: dict[str, str] = {}
        for role, opts in (("host", spec.host), ("port", spec.port), ("user", spec.user),
                           ("database", spec.database), ("output", spec.output), ("uri", spec.uri)):
            for opt in opts:
                role_of[opt] = role
        self.spec = spec
        self.role_of = role_of
        self.sql = frozenset(spec.sql)
        self.flags = frozenset(spec.flags)
        self.output = frozenset(spec.output)
        self.attached_secret = frozenset(spec.attached_secret)
        self.value_opts = frozenset(set(role_of) | set(spec.sql) | set(spec.secret) | set(spec.values)) - self.flags
        # How many arguments each value option takes (most take one; sqlite3 -lookaside SIZE N two).
        self.counts = {opt: n for opt, n in spec.value_counts}
        self.value_opts |= frozenset(self.counts)


# Keyed by id(spec); the entry keeps its spec alive, so an id is never reused for another one.
_TABLES: dict[int, _SpecTables] = {}


def _tables(spec: OptionSpec) -> _SpecTables:
    found = _TABLES.get(id(spec))
    if found is not None and found.spec is spec:
        return found
    made = _SpecTables(spec)
    if len(_TABLES) < 1024:  # catalog specs, plus a few equal copies at most
        _TABLES[id(spec)] = made
    return made


@dataclass(frozen=True)
class ParsedArgs:
    options: dict[str, str]  # canonical role -> value (first occurrence)
    positionals: tuple[str, ...]
    sql: str  # inline statement text, rest of the line when quotes are gone
    # Where to look for a dump intent: each SQL option's statement (an exact argv, see _is_exact_argv),
    # or the one that ran to the end of a logged line.
    statements: tuple[str, ...] = ()


_SPACE: Final = re.compile(r"\s")


def _is_exact_argv(args: Sequence[str]) -> bool:
    """Whether these are the program's own arguments (/proc/PID/cmdline), not words of a logged line.

    Only a real argv has an argument holding whitespace (`-c "select 1"`); osquery's
    audit cmdline, split on spaces, never does. In a real argv an SQL option takes
    exactly the next argument, and the arguments after it are read as options again.
    """
    return any(_SPACE.search(arg) is not None for arg in args)


def _parse_options(spec: OptionSpec, args: Sequence[str], argv_exact: bool | None = None) -> ParsedArgs:
    tables = _tables(spec)
    role_of = tables.role_of
    exact = bool(spec.sql) and (_is_exact_argv(args) if argv_exact is None else argv_exact)
    options: dict[str, str] = {}
    positionals: list[str] = []
    statements: list[str] = []
    sql = ""
    swallowed: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if tok in _SHELL_SEPARATORS or tok.startswith((">", "<")):
            break
        if tok in tables.sql:
            if exact:
                statements.append(args[i + 1] if i + 1 < len(args) else "")
                i += 2
                continue
            # The statement: with the shell's quotes gone it runs to the end
            # of the line (or to the next option that is clearly ours).
            swallowed = list(args[i + 1 :])
            sql = " ".join(swallowed)
            break
        if "=" in tok and tok.startswith("--"):
            opt, _, value = tok.partition("=")
            if opt in tables.sql:
                if exact:
                    statements.append(value)
                    i += 1
                    continue
                swallowed = [value, *args[i + 1 :]]
                sql = " ".join(swallowed)
                break
            if opt in role_of:
                options.setdefault(role_of[opt], value)
            i += 1
            continue
        if tok in tables.value_opts:
            value = args[i + 1] if i + 1 < len(args) else ""
            if tok in role_of:
                options.setdefault(role_of[tok], value)
            i += 1 + tables.counts.get(tok, 1)
            continue
        if tok.startswith("-") and not tok.startswith("--") and len(tok) > 2:
            short = tok[:2]
            if short in role_of and short not in tables.attached_secret:
                options.setdefault(role_of[short], tok[2:])
            elif short in tables.sql:
                if exact:
                    statements.append(tok[2:])
                    i += 1
                    continue
                swallowed = [tok[2:], *args[i + 1 :]]
                sql = " ".join(swallowed)
                break
            i += 1
            continue
        if tok.startswith("-"):
            i += 1
            continue
        positionals.append(tok)
        i += 1
    if exact:
        return ParsedArgs(options, tuple(positionals), "\n".join(statements), tuple(statements))
    if swallowed and not positionals and spec.database_suffixes:
        # `sqlite3 -cmd ".once /tmp/x.csv" app.db "select ..."` with its quotes gone: the statement
        # swallowed the database file, the first word after it named like one (not the file a
        # dump statement in it writes).
        found = sql_dump_intent(sql)
        target = found.path if found is not None else ""
        for word in swallowed[1:]:
            bare = _strip_quotes(word)
            if bare != word:
                continue  # quoted on a logged line: the SQL's own quotes (`attach 'other.db'`), not an argument
            named = any(bare.lower().endswith(sfx) and len(bare) > len(sfx) for sfx in spec.database_suffixes)
            if named and bare != target:
                positionals.append(bare)
                break
    if sql and "output" not in options:
        # `psql -c "select ..." -o /tmp/x`: an output option after the statement
        # (the statement swallowed the rest of the line above).
        rest = sql.split()
        for j, tok in enumerate(rest):
            if tok in tables.output and j + 1 < len(rest):
                options["output"] = rest[j + 1]
                break
            if tok.startswith("--") and tok.partition("=")[0] in tables.output and "=" in tok:
                options["output"] = tok.partition("=")[2]
                break
    return ParsedArgs(options, tuple(positionals), sql, (sql,) if sql else ())


# ---------------------------------------------------------------------------
# Dump intent inside SQL / client meta-commands (the statements are catalog.DUMP_STATEMENTS)

# COPY ... TO is found from its `to` target back to a `copy` word (see
# _copy_intent): a forward `copy .{0,4096}? to` regex costs 4096 steps per
# `copy` word, which a 100 KB command line of `copy copy copy` turns into seconds.
_COPY_WORD = re.compile(r"(\\?)\bcopy\b", re.IGNORECASE)
_COPY_TARGET = re.compile(
    r"\bto\s+(?:(program)\s+" + catalog.QUOTED_OR_WORD + r"|(p?stdout)\b|" + catalog.QUOTED_OR_WORD + ")", re.IGNORECASE
)
_COPY_REACH = 4096  # characters between `copy` and its `to`
_COPY_PRIORITY: Final = catalog.COPY_INTENTS
_SQL_INTENTS: Final = tuple((s.intent, s.pattern, s.names_file) for s in catalog.DUMP_STATEMENTS)


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
    for intent, pattern, names_file in _SQL_INTENTS:
        m = pattern.search(text)
        if m:
            value = next((g for g in m.groups() if g), "") if names_file else ""
            return DumpIntent(intent, value.rstrip(";"))
    return None


def _copy_word_near(positions: list[int], to: int, lowest: int) -> bool:
    """A copy word (start in sorted `positions`) after `lowest` and ending before the `to` at `to`."""
    k = bisect.bisect_left(positions, to) - 1
    return k >= 0 and positions[k] > lowest and positions[k] + 4 < to


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
        meta = _copy_word_near(meta_starts, to, lowest)
        if not meta and not _copy_word_near(starts, to, lowest):
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
    re.IGNORECASE,
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


def _normalise_target(info: EngineInfo, fields: dict[str, str]) -> None:
    """Split URIs, connection strings and host:port forms left in single fields.

    A `-d postgresql://u:pw@h/db` or a mongosh `--host mongodb://...` must not
    reach a table column as a database or host name (it carries a password).
    """
    for key in ("database", "host", "user"):
        value = fields.get(key, "")
        if "://" in value or (key != "user" and "@" in value and info.at_is_uri and "/" not in value):
            if not info.uri_fields:
                continue
            del fields[key]
            _apply_uri(fields, value)
        elif info.conninfo and key == "database" and "=" in value:
            del fields[key]
            _apply_conninfo(fields, value)
    host = fields.get("host", "")
    if info.host_form == "host,port" and host:
        # sqlcmd -S tcp:host,1433 / host,1433 / host\INSTANCE
        host = re.sub(r"^(?:tcp|np|lpc|admin):", "", host, flags=re.IGNORECASE)
        name, _, port = host.partition(",")
        fields["host"] = name
        if port.strip().isdigit() and not fields.get("port"):
            fields["port"] = port.strip()
    elif info.host_form == "ezconnect" and host:
        # EZConnect: [//]host[:port][/service]; a bare name stays (a TNS alias)
        m = re.fullmatch(r"(?://)?([^:/\s]+)(?::(\d{1,5}))?(?:/([^:\s]*))?(?::\S*)?", host)
        if m and ("/" in host or ":" in host):
            fields["host"] = m.group(1)
            if m.group(2) and not fields.get("port"):
                fields["port"] = m.group(2)
            if m.group(3) and not fields.get("database"):
                fields["database"] = m.group(3)
    elif info.host_form == "host:port":
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


_ORACLE_CONNECT = re.compile(r"^([^/@=\s]+)(?:/[^@\s]*)?(?:@(\S+))?$")


class _Positionals:
    """What the positional arguments said (see catalog.PositionalRole). A plain class (see ProgramArgs)."""

    def __init__(self) -> None:
        self.direction = ""  # bcp's out/queryout
        self.output = ""
        self.sql = ""


def _read_positionals(roles: Sequence[str], spec: OptionSpec, plain: Sequence[str],
                      fields: dict[str, str]) -> _Positionals:
    """Apply positional roles in order; a field an option already set is kept."""
    found = _Positionals()
    # One plain argument per role; "password" and "ignore" read past theirs, never copied.
    for i, role in enumerate(roles):
        if i >= len(plain):
            break
        value = plain[i]
        if role == "connect*":
            for pos in plain[i:]:
                m = _ORACLE_CONNECT.match(pos)
                if m and not fields.get("user"):
                    fields["user"] = m.group(1)
                    if m.group(2):
                        fields["host"] = m.group(2)
            break
        if role == "sql*":
            found.sql = " ".join(plain[i:])
            break
        if role == "host/database":
            # mongosh's rule: HOST[:PORT]/DB; HOST:PORT; a word with a dot is a host; another word a database
            if "/" in value:
                host, _, db = value.partition("/")
                if not fields.get("database"):
                    fields.setdefault("host", host)
                    fields["database"] = db
            elif _HOST_PORT.fullmatch(value) is not None or "." in value:
                fields.setdefault("host", value)
            else:
                fields.setdefault("database", value)
        elif role == "direction":
            if value.lower() in spec.dump_directions and i + 1 < len(plain):
                found.direction, found.output = value.lower(), plain[i + 1]
            break
        elif role == "output":
            found.output = found.output or value
        elif role in ("database", "user", "host", "port"):
            fields.setdefault(role, value)
    return found


def _names_sql(spec: OptionSpec, args: Sequence[str]) -> bool:
    """An SQL option (-c, -e, --query=...) is among the arguments, wherever it is."""
    for arg in args:
        if arg in spec.sql or (arg.startswith("--") and arg.partition("=")[0] in spec.sql):
            return True
    return False


def parse_db_command(
    path: str, argv: Sequence[str], db_tools: Mapping[str, DbTool] = catalog.DB_TOOLS_BY_NAME,
    argv_exact: bool | None = None,
) -> DbCommand | None:
    """Engine, target and dump intent of a DB client or dump tool, or None.

    Everything tool-specific comes from the catalog: the tool's option spec
    (catalog.OptionSpec) and its engine's record (catalog.EngineInfo).
    `argv_exact`: True, `argv` is the program's own (/proc/PID/cmdline), so an
    SQL option takes exactly the next argument; False, words of a logged line
    whose quotes are gone, so a statement runs to the end of the line; None,
    decided by the arguments (only a real argv has one holding whitespace).
    """
    found = identify_db_tool(path, argv, db_tools)
    if found is None:
        return None
    tool, args = found
    info = catalog.engine_info(tool.engine)
    spec = catalog.option_spec(tool)
    kind = tool.kind
    sub = ""
    if tool.subcommands or tool.dump_subcommands:
        if args and (args[0] in tool.subcommands or args[0] in tool.dump_subcommands):
            sub, args = args[0], args[1:]
        if sub in tool.dump_subcommands:
            kind = "dump"
    if info.masks_password:
        args = _unmask_mysql_password(args)
    parsed = _parse_options(spec, args, argv_exact)
    fields = {k: v for k, v in parsed.options.items() if k in ("host", "port", "user", "database")}
    if "uri" in parsed.options:
        _apply_uri(fields, parsed.options["uri"])
    positionals = list(parsed.positionals)
    if any(arg in spec.no_target for arg in args):
        positionals = []  # mongosh --nodb: its plain arguments are scripts, no server is named
    if spec.script_suffixes:
        # mongosh [DB ADDRESS] [FILE.js ...]: a script is never the target
        positionals = [p for p in positionals if "://" in p or not p.lower().endswith(spec.script_suffixes)]
    for pos in positionals:
        if "://" in pos:
            _apply_uri(fields, pos)
    plain = [p for p in positionals if "://" not in p]
    if info.conninfo:
        # psql "host=h dbname=x" (one argument) or, quotes gone, psql host=h dbname=x
        conninfo = [p for p in plain if "=" in p]
        if conninfo:
            _apply_conninfo(fields, " ".join(conninfo))
            plain = [p for p in plain if "=" not in p]
    if spec.schemeless_uri:
        for pos in [p for p in plain if "@" in p]:
            _apply_uri(fields, pos)
            plain.remove(pos)

    output = parsed.options.get("output", "")
    for pos in positionals:
        key, eq, value = pos.partition("=")
        if eq and key.lower() in info.output_assignments:
            output = value  # expdp dumpfile=FILE
    roles = spec.dump_positional if sub in tool.dump_subcommands and spec.dump_positional else spec.positional
    read = _read_positionals(roles, spec, plain, fields)
    intent = ""
    if read.direction:
        kind, intent, output = "dump", f"{tool.name} {read.direction}", read.output
    elif read.output:
        output = read.output
    if read.sql:
        found_intent = sql_dump_intent(read.sql + " " + parsed.sql)
        if found_intent:
            intent, output = found_intent.intent, output or found_intent.path
    for statement in parsed.statements:
        found_intent = sql_dump_intent(statement)
        if found_intent:
            intent, output = found_intent.intent, output or found_intent.path
            break
    if not intent and not read.sql and _names_sql(spec, args):
        # The statement's words stay together in any order osquery logs them in (one argument),
        # but the option that introduces it may be logged apart from it: read the whole line.
        found_intent = sql_dump_intent(" ".join(args))
        if found_intent:
            intent, output = found_intent.intent, output or found_intent.path
    if spec.output_is_dump and "output" in parsed.options:
        kind, intent = "dump", spec.output_is_dump
    if kind == "dump" and not intent:
        intent = tool.name + (" " + sub if sub else "")
    if not intent and output:
        intent = "output file"
    for flag, flag_intent in spec.flag_intents:
        if not intent and flag in args:
            intent = flag_intent
    _normalise_target(info, fields)
    return DbCommand(
        tool=tool.name if not sub else f"{tool.name} {sub}",
        engine=tool.engine,
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


_URL = re.compile(r"^[a-z][a-z0-9+.-]*://([^/\s?#]*)", re.IGNORECASE)
_SCP_REMOTE = re.compile(r"^(?:[^@/\s]+@)?([^:/\s]+):")
_PORT_WORD = re.compile(r"\d{1,5}(?:-\d{1,5})?")
_OPTION_BUNDLE = re.compile(r"[A-Za-z]{1,16}")
_SOCAT_REMOTE: Final = frozenset({"TCP", "TCP4", "TCP6", "SSL", "OPENSSL", "UDP"})
_SOCAT_FILE: Final = frozenset({"OPEN", "FILE", "GOPEN", "CREATE"})


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
    """Local files, destinations and upload of a transfer or staging command (catalog.TransferSpec says how)."""
    found = identify_transfer_tool(path, argv, transfer_tools)
    if found is None:
        return None
    tool, args = found
    spec = tool.spec
    files: list[str] = []
    dests: list[str] = []
    upload = False
    words_to_skip = spec.subcommand_words
    i = 0
    while i < len(args):
        tok = args[i]
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if tok in _SHELL_SEPARATORS:
            break
        value_step = 2  # an option and its value are two arguments...
        if len(tok) > 2 and tok[1] != "-" and tok[:2] in spec.attached:
            # ...or one: -T/tmp/x.sql, -d@/tmp/x.sql, -Ff=@/tmp/x.sql
            tok, nxt, value_step = tok[:2], tok[2:], 1
        if spec.option_bundle and i == 0 and _OPTION_BUNDLE.fullmatch(tok) is not None and not _url_host(tok):
            # the traditional option bundle (`tar czf OUT.tgz IN`): letters, not a file
            i += 1
            continue
        if words_to_skip and not tok.startswith("-"):
            words_to_skip -= 1  # a sub-command (`openssl enc`, `rclone copy`, `aws s3 cp`), not a file
            i += 1
            continue
        if tok.startswith("-"):
            if tok in spec.upload_files:
                files.append(nxt)
                upload = True
                i += value_step
                continue
            if tok in spec.upload_data:
                if "@" in nxt:
                    files.append(nxt.split("@", 1)[1].split(";", 1)[0])
                upload = True
                i += value_step
                continue
            opt, eq, value = tok.partition("=")
            if eq and opt in spec.upload_files:
                files.append(value)
                upload = True
            elif tok.startswith(spec.upload_flags):
                upload = True
            elif tok in spec.input_files:
                files.append(nxt)
                i += 2
                continue
            elif tok in spec.destinations:
                dests.append(nxt.rsplit(":", 1)[0])
                i += 2
                continue
            elif tok in spec.values:
                i += 2
                continue
            i += 1
            continue
        if spec.addresses and ":" in tok:
            # socat OPEN:/tmp/x.sql TCP:host:port
            kind, _, rest = tok.partition(":")
            if kind.upper() in _SOCAT_REMOTE:
                dests.append(rest.split(":", 1)[0])
            elif kind.upper() in _SOCAT_FILE:
                files.append(rest.split(",", 1)[0])
            i += 1
            continue
        host = _url_host(tok)
        if host:
            dests.append(host)
            if files and spec.cloud_copy:
                upload = True  # `aws s3 cp FILE s3://bucket`: a local file before a remote target
        elif spec.remote_paths and _SCP_REMOTE.match(tok):
            dests.append(_SCP_REMOTE.match(tok).group(1))  # type: ignore[union-attr]
            if files:
                upload = True
        elif spec.numeric_ports and _PORT_WORD.fullmatch(tok):
            pass  # `nc HOST PORT`, `nc -l 4444`: a port, not a file
        elif spec.first_word_is_host and not files and not dests:
            dests.append(tok.rsplit("@", 1)[-1])
        else:
            files.append(tok)
        i += 1
    if spec.addresses and files and dests:
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
#
# Which options and words of which program carry secrets is catalog data: the
# DB tools' option specs, the transfer tools' specs, catalog.PASSWORD_TOOLS and
# the generic catalog.SECRET_OPTIONS / SECRET_OPTION_ENDINGS. The free-text
# rules below cover what no option spec can: SQL, URIs, environment variables.


class _SecretRules:
    """One program's secret-bearing options and words (read-only; a plain class, see ProgramArgs)."""

    def __init__(self, secret: frozenset[str], attached: tuple[str, ...], user_options: frozenset[str],
                 words: dict[str, int], flags: frozenset[str], schemeless_uri: bool, connect_positional: bool,
                 password_positional: int) -> None:
        self.secret = secret  # the next token is a secret
        self.attached = attached  # -pSECRET
        self.user_options = user_options  # USER[:PASSWORD]: the password part is a secret
        self.words = words  # upper-cased word -> how many words after it are secrets (AUTH [user] pass)
        self.flags = flags  # options that take no value (a generic secret option among them is not one here)
        self.schemeless_uri = schemeless_uri  # user:pass@host arguments (mysqlsh)
        self.connect_positional = connect_positional  # user/pass@db arguments (Oracle)
        self.password_positional = password_positional  # the Nth plain argument is a password (-1: none)


def _rules_of_spec(spec: OptionSpec) -> _SecretRules:
    return _SecretRules(
        frozenset(spec.secret), spec.attached_secret, frozenset(), {w.upper(): n for w, n in spec.secret_words},
        frozenset(spec.flags), spec.schemeless_uri, "connect*" in spec.positional,
        spec.positional.index("password") if "password" in spec.positional else -1,
    )


def _build_secret_rules() -> dict[str, _SecretRules]:
    rules: dict[str, _SecretRules] = {}
    for tool in catalog.DB_TOOLS:
        rules[tool.name] = _rules_of_spec(catalog.option_spec(tool))
    for transfer in catalog.TRANSFER_TOOLS:
        spec = transfer.spec
        rules[transfer.name] = _SecretRules(frozenset(spec.secret), spec.attached_secret, frozenset(spec.user_options),
                                            {}, frozenset(), False, False, -1)
    for other in catalog.PASSWORD_TOOLS:
        base = rules.get(other.like)
        words = dict(base.words) if base else {}
        words.update({w.upper(): n for w, n in other.secret_words})
        rules[other.name] = _SecretRules(
            (base.secret if base else frozenset()) | frozenset(other.secret),
            (base.attached if base else ()) + other.attached_secret,
            base.user_options if base else frozenset(), words, base.flags if base else frozenset(),
            base.schemeless_uri if base else False, base.connect_positional if base else False,
            base.password_positional if base else -1,
        )
    return rules


_SECRET_RULES: Final = _build_secret_rules()
# Every option (any program's) whose next argument is a secret or USER:PASSWORD, and words followed by secrets.
_SECRET_NEXT: Final = frozenset(o for r in _SECRET_RULES.values() for o in (*r.secret, *r.user_options))
_SECRET_WORDS: Final = frozenset(w for r in _SECRET_RULES.values() for w in r.words)
_FAMILY_NAME = re.compile(r"[a-z0-9_.-]{1,40}")
_GENERIC_SECRET_OPTIONS: Final = frozenset(catalog.SECRET_OPTIONS)
_SECRET_OPTION_ENDINGS: Final = catalog.SECRET_OPTION_ENDINGS


def _secret_rules(name: str) -> _SecretRules | None:
    """The secret rules of a program name: its own, its family's, or None (not a program we know)."""
    found = _SECRET_RULES.get(name)
    if found is not None:
        return found
    for prefix, family in catalog.PASSWORD_FAMILY_PREFIXES:
        if name.startswith(prefix) and _FAMILY_NAME.fullmatch(name):
            return _SECRET_RULES.get(family)
    return None


def _is_secret_option(option: str) -> bool:
    """A long option that carries a secret in any program (--password, --db-password, --ftp-pass)."""
    option = option.lower()
    if option.startswith(("--no-", "--skip-")):
        return False  # psql --no-password, mysql --skip-password: flags
    return option in _GENERIC_SECRET_OPTIONS or (
        option.startswith("--") and option.endswith(_SECRET_OPTION_ENDINGS) and len(option) <= 64
    )


# Each rule: (pattern, replacement, words one of which its match contains, lower-cased).
# The words let an ordinary line skip the patterns; they are exact for ASCII
# text only (IGNORECASE also matches U+017F as s), so other text runs them all.
_TEXT_RULES: Final[tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...]] = (
    # PGPASSWORD=x, MYSQL_PWD=x, REDISCLI_AUTH=x, --password=x, api_key=x
    # The unquoted value runs to the next space (a password may hold `;` or `&`);
    # only separators glued to its end are kept, so `X=pw; curl` keeps its `;`.
    (re.compile(r"(?i)((?:^|[\s\"'`;(?&])-{0,2}[a-z0-9_.-]{0,64}?(?:password|passwd|pass|pwd|secret|token|auth|api[_-]?key|access[_-]?key|requirepass|masterauth)[a-z0-9_-]{0,32}\s*=\s*)(?!\s)(\"[^\"]*\"|'[^']*'|[^\s]*[^\s;&|)])"), r"\1" + REDACTED, ("pass", "pwd", "secret", "token", "auth", "key")),
    # scheme://user:pass@host; the password may hold `/` or `@` (unescaped, as people type
    # them): it runs to the last `@` of the word
    (re.compile(r"(?i)([a-z][a-z0-9+.-]{0,31}://[^:/@\s]{0,256}):([^\s]{0,1024}[^\s/])@(?=[^@\s]*(?:\s|$))"), r"\1:" + REDACTED + "@", ("://",)),
    (re.compile(r"(?i)([a-z][a-z0-9+.-]{0,31}://[^:/@\s]{0,256}):([^@\s/]{1,1024})@"), r"\1:" + REDACTED + "@", ("://",)),
    # CREATE/ALTER USER ... IDENTIFIED [WITH plugin] BY [PASSWORD] 'x'
    (re.compile(r"(?i)(\bidentified\s+(?:with\s+\S{1,64}\s+)?(?:by|as)\s+(?:password\s+)?)('[^']*'|\"[^\"]*\"|\S+)"), r"\1" + REDACTED, ("identified",)),
    # [ENCRYPTED] PASSWORD 'x', SET PASSWORD = PASSWORD('x'), PASSWORD("x")
    # (every optional part starts with its own character: adjacent `\s*` runs made
    # "password" + 100 KB of spaces take most of a minute)
    (re.compile(r"(?i)(\bpassword(?:\s{0,64}=)?(?:\s{0,64}password)?(?:\s{0,64}\()?\s{0,64})('[^']*'|\"[^\"]*\")"), r"\1" + REDACTED, ("password",)),
    # SET PASSWORD [FOR user] = 'x' (quoted, or bare once the shell's quotes are gone)
    (re.compile(r"(?i)(\bset\s{1,64}password\b[^=\n]{0,256}=\s{0,64})(?!password\b|\*\*\*\*)('[^']*'|\"[^\"]*\"|[^\s;'\"(]+)"), r"\1" + REDACTED, ("password",)),
    # MySQL 8: SET PASSWORD ... = 'new' REPLACE 'old', ALTER USER ... IDENTIFIED BY 'new' REPLACE 'old'
    (re.compile(r"(?i)(\b(?:set\s{1,64}password|identified)\b[^\n]{0,512}?\breplace\s{1,64})('[^']*'|\"[^\"]*\")"), r"\1" + REDACTED, ("replace",)),
    # mongosh: db.auth("u", "p"), db.getSiblingDB(x).auth(...), db.changeUserPassword("u", "p"), { pwd: "p" }
    (re.compile(r"(?i)(\.(?:auth|changeUserPassword)\(\s*(?:'[^']*'|\"[^\"]*\")\s*,\s*)('[^']*'|\"[^\"]*\")"), r"\1" + REDACTED, ("auth", "password")),
    # Oracle: CONNECT user/password[@db]
    (re.compile(r"(?i)(\bconn(?:ect)?\s+[^/\s@'\":]{1,128}/)([^@\s]+)"), r"\1" + REDACTED, ("conn",)),
    # aws configure set aws_secret_access_key VALUE
    (re.compile(r"(?i)(\b(?:aws_secret_access_key|aws_session_token)\s+)(\S+)"), r"\1" + REDACTED, ("aws_",)),
    (re.compile(r"(?i)(\b(?:pwd|password)\s*:\s*)('[^']*'|\"[^\"]*\"|[^\s,}]+)"), r"\1" + REDACTED, ("pwd", "password")),
    # redis: AUTH [user] pass at the start of a history entry or after -a-less redis-cli
    (re.compile(r"(?i)(^\s*auth\s+)(\S+(?:\s+\S+)?)\s*$"), r"\1" + REDACTED, ("auth",)),
    # redis: HELLO 3 AUTH user pass; MIGRATE ... AUTH pass / AUTH2 user pass
    (re.compile(r"(?i)(^\s*hello\s+\d{1,2}\s+auth\s+)(\S+\s+\S+)"), r"\1" + REDACTED, ("auth",)),
    (re.compile(r"(?i)(^\s*migrate\s[^\n]{0,1024}?\bauth2?\s+)(\S+(?:\s+\S+)?)"), r"\1" + REDACTED, ("auth",)),
    # redis: CONFIG SET requirepass|masterauth VALUE
    (re.compile(r"(?i)(\bconfig\s+set\s+(?:requirepass|masterauth|masteruser)\s+)(\S+)"), r"\1" + REDACTED, ("config",)),
    # HTTP Authorization headers
    (re.compile(r"(?i)((?:proxy-)?authorization:\s{0,64}(?:(?:bearer|basic|token|digest|negotiate)\s{1,64})?)([^\s\"']+)"), r"\1" + REDACTED, ("authorization",)),
    (re.compile(r"(?i)(\b(?:x-api-key|api-key|x-auth-token|private-token|x-vault-token|cookie):\s*)([^\s\"']+)"), r"\1" + REDACTED, ("key", "token", "cookie")),
)


def redact_text(text: str) -> str:
    """Secrets in free text: SQL, history entries, URIs, env assignments."""
    lowered = text.lower() if text.isascii() else ""
    for pattern, replacement, words in _TEXT_RULES:
        if lowered and not any(word in lowered for word in words):
            continue
        text = pattern.sub(replacement, text)
    return text


def _ends_command(token: str) -> bool:
    return token.endswith((";", "|", "&"))


def redact_cmdline(cmdline: str, logged: bool = True) -> str:
    """A command line with every secret replaced, spacing kept.

    A line of more than ten words may be in osquery's argument order (a0 a1
    a10 ... a2 ...), where a secret option and its value are apart (`mongosh
    S3CRET ... -p`). Such a line is redacted as read in each plausible order
    (the best reading, the line as logged, and every reading as well-formed as
    the best: plausible_orders), and a word secret in any of them is replaced
    where the line has it. The price of never leaking is an occasional word
    redacted that was not a secret.
    `logged=False`: the line is in the program's order (/proc): read as it is.

    Tool-specific rules follow the most recent program named on the line, so a
    shell's `sh -c mysqldump -u root -pX db` and `sudo -u postgres env
    PGPASSWORD=x psql` are covered as well as a bare client. A shell separator
    (`;`, `|`, `&`, alone or glued to a word) does not end a tool's rules:
    osquery joins argv with spaces, so `mysql -e use shop; select 1 -pX` is one
    mysql whose SQL holds a `;`. After one, the generic secret options apply
    as well, for a program we do not know (`...; docker login --password X`).
    """
    if not logged or cmdline.count(" ") < _MAX_ORDERED_ARGS:
        return _redact_in_order(cmdline)
    pieces = cmdline.split(" ")
    m = len(pieces)
    if m > 4 * _MAX_RECOVER_PIECES and _has_secret_option(pieces):
        return REDACTED  # too long to read in every order, and a secret option somewhere in it
    identity = tuple(range(m))
    if _order_sensitive(pieces):
        orders = plausible_orders(pieces)
    else:
        # No secret here depends on which argument follows which (attached -pX, key=value, URIs, SQL):
        # the recovered order (the program's rules reach words a wrapper's order put before it) and the line as logged.
        best = recover_order(pieces)
        orders = (best, identity) if best != identity else (identity,)
    if orders == (identity,):
        return _redact_in_order(cmdline)
    offsets: list[int] = []
    pos = 0
    for piece in pieces:
        offsets.append(pos)
        pos += len(piece) + 1
    mask = bytearray(len(cmdline))
    for order in orders:
        _mark_secrets(pieces, order, offsets, mask)
    out: list[str] = []
    i = 0
    while i < len(cmdline):
        if mask[i]:
            while i < len(cmdline) and mask[i]:
                i += 1
            out.append(REDACTED)
        else:
            out.append(cmdline[i])
            i += 1
    return "".join(out)


def _has_secret_option(pieces: Sequence[str]) -> bool:
    """A word that may take a secret as the next argument (for lines too long to read in every order)."""
    for piece in pieces:
        if piece in _SECRET_NEXT or piece.upper() in _SECRET_WORDS or _is_secret_option(piece):
            return True
    return False


def _order_sensitive(pieces: Sequence[str]) -> bool:
    """Whether a secret on this line may depend on which argument follows which: an option or word whose next
    argument is a secret (in the rules of a program the line names, or any program's --password), or a
    program whose Nth plain argument is one (isql DSN USER PASSWORD)."""
    named: list[_SecretRules] = []
    for piece in pieces:
        rules = _secret_rules(basename(_strip_quotes(piece)))
        if rules is not None:
            if rules.password_positional >= 0 or rules.connect_positional:
                return True
            named.append(rules)
    for piece in pieces:
        bare = _strip_quotes(piece).rstrip(";|&")
        if bare.startswith("--") and _is_secret_option(bare):
            return True
        for rules in named:
            if bare in rules.secret or bare in rules.user_options or bare.upper() in rules.words:
                return True
    return False


def _mark_secrets(pieces: Sequence[str], order: Sequence[int], offsets: Sequence[int], mask: bytearray) -> None:
    """Mark in `mask` (over the logged line) the characters that are secret when the pieces are read in `order`."""
    seq = [pieces[i] for i in order]
    text = " ".join(seq)
    starts: list[int] = []
    pos = 0
    for piece in seq:
        starts.append(pos)
        pos += len(piece) + 1
    spans: list[tuple[int, int]] = []
    parts = re.split(r"(\s+)", text)
    before = list(parts)
    _redact_parts(parts)
    pos = 0
    for old, new in zip(before, parts):
        if old != new:
            pre = 0
            while pre < min(len(old), len(new)) and old[pre] == new[pre]:
                pre += 1
            suf = 0
            while suf < min(len(old), len(new)) - pre and old[-1 - suf] == new[-1 - suf]:
                suf += 1
            spans.append((pos + pre, pos + len(old) - suf))
        pos += len(old)
    lowered = text.lower() if text.isascii() else ""
    for pattern, _replacement, words in _TEXT_RULES:
        if lowered and not any(word in lowered for word in words):
            continue
        for found in pattern.finditer(text):
            spans.append(found.span(2))
    for start, end in spans:
        for c in range(start, end):
            k = bisect.bisect_right(starts, c) - 1
            local = c - starts[k]
            if local < len(seq[k]):
                mask[offsets[order[k]] + local] = 1
            elif k + 1 < len(order) and order[k + 1] == order[k] + 1:
                mask[offsets[order[k]] + local] = 1  # the space between two words the line also has together


def _redact_in_order(cmdline: str) -> str:
    parts = re.split(r"(\s+)", cmdline)
    _redact_parts(parts)
    return redact_text("".join(parts))


def _redact_parts(parts: list[str]) -> None:
    """Replace the secrets in `parts` (words and the whitespace between them) in place, by the tool rules."""
    rules: _SecretRules | None = None
    after_separator = False
    redact_words = 0  # redis-cli ... AUTH [user] pass: the words after AUTH
    redact_next = False
    user_value = False  # the value to redact is USER[:PASSWORD]
    positional = 0
    for index in range(0, len(parts), 2):
        token = parts[index]
        if not token:
            continue
        if redact_words:
            redact_words -= 1
            if token in _SHELL_SEPARATORS:
                redact_words = 0
                after_separator = True
                continue
            parts[index] = REDACTED + token[len(token.rstrip(";|&")) :]
            if _ends_command(token):
                redact_words = 0
                after_separator = True
            continue
        if redact_next:
            redact_next = False
            if user_value:
                if ":" in token:
                    user, _, _ = token.partition(":")
                    parts[index] = user + ":" + REDACTED
                # else: a user name alone (curl -u bob prompts for the password)
            else:
                parts[index] = REDACTED + token[len(token.rstrip(";|&")) :]
            if _ends_command(token):
                after_separator = True
            continue
        bare = _strip_quotes(token)
        if bare in _SHELL_SEPARATORS:
            after_separator = True
            continue
        found = _secret_rules(basename(bare))
        if found is not None:
            rules, after_separator, positional = found, False, 0
            continue
        # A token glued to a separator (`-pX;`) is still this tool's.
        ends_command = _ends_command(token)
        if ends_command:
            bare = bare.rstrip(";|&")
        if rules is not None:
            _redact_token(parts, index, token, bare, rules, positional)
        option = bare.partition("=")[0] if bare.startswith("--") else bare
        if rules is not None and not ends_command and bare.upper() in rules.words:
            redact_words = rules.words[bare.upper()]
        elif rules is not None and bare in rules.secret:
            redact_next, user_value = True, False
        elif rules is not None and bare in rules.user_options:
            redact_next, user_value = True, True
        elif option == bare and _is_secret_option(bare) and (rules is None or after_separator or bare not in rules.flags):
            redact_next, user_value = True, False
        elif not bare.startswith("-"):
            positional += 1
        if ends_command:
            after_separator = True


# mysqlsh and --uri values may carry credentials without a scheme: user:pass@host
_SCHEMELESS_CREDS = re.compile(r"^((?:--[a-z-]{1,32}=)?['\"]?[^:/@\s'\"]{1,256}):([^@\s]{1,1024})@")
_URI_OPTIONS = frozenset({"--uri", "--url", "--connection", "-u"})
_CONNECT_ARG = re.compile(r"^([^/@=\s]+)/([^@\s]+)(@.*)?$")


def _redact_token(parts: list[str], index: int, token: str, bare: str, rules: _SecretRules, positional: int) -> None:
    """Redact one argument of a program with `rules` in place (attached secrets, user/pass forms)."""
    if positional == rules.password_positional and not bare.startswith("-"):
        parts[index] = REDACTED  # unixODBC: isql DSN [USER [PASSWORD]]
        return
    if bare.startswith("--") and bare.partition("=")[0] in rules.secret and "=" in bare:
        # --jwt=X, --encrypt-key=X: the tool's secret option with its value glued on
        start = token.find("=") + 1
        end = len(token.rstrip("\"'`);|&"))
        if end > start:
            parts[index] = token[:start] + REDACTED + token[end:]
        return
    previous = parts[index - 2] if index >= 2 else ""
    if rules.schemeless_uri or _strip_quotes(previous) in _URI_OPTIONS or bare.startswith(("--uri=", "--url=")):
        m = _SCHEMELESS_CREDS.match(token)
        if m and "://" not in token:
            parts[index] = m.group(1) + ":" + REDACTED + "@" + token[m.end() :]
            return
    for prefix in rules.attached:
        if bare.startswith(prefix) and len(bare) > len(prefix) and not bare.startswith("--"):
            start = token.find(prefix) + len(prefix)
            end = len(token.rstrip("\"'`);|&"))
            parts[index] = token[:start] + REDACTED + token[end:]
            return
    if rules.connect_positional and not bare.startswith("-"):
        m = _CONNECT_ARG.match(bare)
        if m:
            parts[index] = token.replace(bare, m.group(1) + "/" + REDACTED + (m.group(3) or ""), 1)
