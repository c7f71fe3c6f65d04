"""Render the query pack, its osquery config fragments and the Fleet bundle.

One source for everything: the SQL files under queries/ (see sources.py), the
tool lists of osq_dbwatch.catalog, the extension's tables (osq_dbwatch.tables)
and the policy config (admin groups, dump roots, internal networks, extra
tools). Every function here is pure: config in, text out; cli.py writes files.

Why three packs that are all named `dbwatch`: osquery's `discovery` gates a
whole pack, and the contract wants every result logged as
`pack_dbwatch_<query>`. osquery keys a pack by (name, config source)
(Schedule::add in osquery/config/config.cpp removes only a pack with the same
name *and* source), so three fragments in /etc/osquery/osquery.conf.d/ can
each load a pack named `dbwatch`:

- dbwatch.conf: audit + native queries, discovery "BPF events are off";
- dbwatch-bpf.conf: BPF + native queries, discovery "BPF events are on";
- dbwatch-extension.conf: the four extension queries, discovery "the
  extension's tables are registered".

Exactly one of the first two runs on a host, so native queries run everywhere
and each name is scheduled once; the extension pack comes and goes with the
extension. A SQL-level switch (UNION of audit and BPF guarded by
osquery_flags) was rejected: a query naming bpf_process_events fails as a
whole on osquery builds without the BPF tables (removed on master in 2026-04).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from .. import catalog
from ..config import Config
from ..tables import TABLES
from . import contract
from .sources import QuerySource, load_sources

PACK_NAME = "dbwatch"
PLATFORM = "linux"
FILE_CATEGORY = "dbwatch_dumps"
PACK_DIR = "/etc/osquery/packs"

# The query contract (contract.py): native queries and their exact output columns, in order
# (contract section 1), and the extension queries, each selecting the table of its own name.
CONTRACT_COLUMNS: dict[str, tuple[str, ...]] = contract.native_columns()
EXTENSION_QUERIES: tuple[str, ...] = contract.extension_queries()
QUERY_NAMES: tuple[str, ...] = contract.NAMES
# Columns older agents' rows lack (osquery before 5.x logs no socket status): readers take rows without them.
NEWER_AGENT_COLUMNS: dict[str, set[str]] = contract.newer_agent_columns()

# Discovery queries (osquery runs a pack only when each returns a row).
DISCOVERY_AUDIT = (
    "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM osquery_flags "
    "WHERE name = 'enable_bpf_events' AND value = 'true');"
)
DISCOVERY_BPF = "SELECT 1 FROM osquery_flags WHERE name = 'enable_bpf_events' AND value = 'true';"


def discovery_extension() -> str:
    names = ", ".join(sql_str(n) for n in EXTENSION_QUERIES)
    return (
        "SELECT 1 WHERE (SELECT COUNT(DISTINCT name) FROM osquery_registry "
        f"WHERE registry = 'table' AND name IN ({names})) = {len(EXTENSION_QUERIES)};"
    )


@dataclass(frozen=True)
class PackFile:
    """One rendered osquery pack and the conf.d fragment that loads it."""

    filename: str  # packs/<filename>
    variants: tuple[str, ...]
    discovery: tuple[str, ...]
    fragment: str  # /etc/osquery/osquery.conf.d/<fragment>


PACK_FILES: tuple[PackFile, ...] = (
    PackFile("dbwatch.conf", ("audit", "native"), (DISCOVERY_AUDIT,), "dbwatch.conf"),
    PackFile("dbwatch-bpf.conf", ("bpf", "native"), (DISCOVERY_BPF,), "dbwatch-bpf.conf"),
    PackFile("dbwatch-extension.conf", ("extension",), (), "dbwatch-extension.conf"),
)


# ---------------------------------------------------------------------------
# SQL building blocks


def sql_str(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: Iterable[str]) -> str:
    return ", ".join(sql_str(v) for v in sorted(set(values)))


def _ecma_escape(text: str) -> str:
    """Escape for a regex that both std::regex (ECMAScript) and Python read alike."""
    return re.sub(r"([.^$|?*+()\[\]{}\\/-])", r"\\\1", text)


def tool_filter(tools: dict[str, Any], wrappers: Iterable[str]) -> str:
    """Boolean SQL over the CTE columns base, base_nover, arg0, arg1.

    A run matches when the executable's basename or argv[0]'s basename is a
    tool, or an interpreter/shell runs the tool as its script (Debian's Perl
    pg_wrapper, Python console scripts such as pgcli or aws). Tools that are a
    DB client only with a sub-command (`clickhouse client`) need it as arg1.
    """
    plain = sorted(name for name, tool in tools.items() if not getattr(tool, "subcommands", ()))
    parts = [
        f"base IN ({sql_list(plain)})",
        f"arg0 IN ({sql_list(plain)})",
        f"(base_nover IN ({sql_list(wrappers)}) AND arg1 IN ({sql_list(plain)}))",
    ]
    for name in sorted(tools):
        subs = getattr(tools[name], "subcommands", ())
        if subs:
            parts.append(f"((base = {sql_str(name)} OR arg0 = {sql_str(name)}) AND arg1 IN ({sql_list(subs)}))")
    return "(" + " OR ".join(parts) + ")"


def basename_sql(expr: str) -> str:
    """The part after the last '/', with SQLite built-ins (no regex per row)."""
    return f"substr({expr}, length(rtrim({expr}, replace({expr}, '/', ''))) + 1)"


# argv[1]'s basename, skipping options: `perl /usr/bin/psql`, `python3 -s /usr/bin/pgcli`,
# `clickhouse client`, `bash -c pg_dump`.
ARG1_REGEX = r"^[^ ]+(?: +-[^ ]*)* +(?:[^ ]*/)?([^/ ]+)"


def exec_name_columns(tools_with_subcommands: Iterable[str], wrappers: Iterable[str]) -> str:
    """CTE columns base, base_nover, arg0, arg1 over `path` and `cmdline`.

    arg1 needs a regex: it is computed only for an interpreter, a shell or a
    sub-command tool, so ordinary execs cost no regex compile.
    """
    base = basename_sql("path")
    base_nover = f"rtrim({base}, '0123456789.')"  # python3.11 -> python
    tok0 = "(CASE WHEN instr(cmdline, ' ') > 0 THEN substr(cmdline, 1, instr(cmdline, ' ') - 1) ELSE cmdline END)"
    arg0 = basename_sql(tok0)
    subs = sql_list(tools_with_subcommands)
    arg1 = (
        f"CASE WHEN {base_nover} IN ({sql_list(wrappers)}) OR {base} IN ({subs}) OR {arg0} IN ({subs}) "
        f"THEN regex_match(cmdline, {sql_str(ARG1_REGEX)}, 1) END"
    )
    return f"{base} AS base, {base_nover} AS base_nover, {arg0} AS arg0, {arg1} AS arg1"


def conn_name_columns() -> str:
    base = basename_sql("path")
    return f"{base} AS base, rtrim({base}, '0123456789.') AS base_nover"


def dump_name_prefilter(column: str) -> str:
    """Cheap test before the suffix regex: the name holds a strong suffix somewhere."""
    parts = [f"instr(lower({column}), {sql_str(s)}) > 0" for s in catalog.DUMP_SUFFIXES_STRONG]
    return "(" + " OR ".join(parts) + ")"


def prefix_filter(column: str, prefixes: Iterable[str]) -> str:
    """column starts with one of prefixes (substr, so no LIKE/GLOB wildcards)."""
    parts = [f"substr({column}, 1, {len(p)}) = {sql_str(p)}" for p in prefixes]
    return "(" + " OR ".join(parts) + ")" if parts else "0"


def local_address_filter(column: str) -> str:
    """Not a routable address, exactly as policy.is_external_address sees it.

    IPv4: loopback, link-local, 0.0.0.0, multicast and reserved (224/4, 240/4).
    IPv6: only global unicast (2000::/3), unique-local (fc00::/7) and the old
    site-local fec0::/10 count as routable (Python's ipaddress flags the rest
    reserved, loopback, link-local or multicast). `column` is lower-case with
    IPv4-mapped addresses already unwrapped.
    """
    c = column
    v6_routable = (
        f"{c} GLOB '[23][0-9a-f][0-9a-f][0-9a-f]:*' OR {c} GLOB 'f[cd][0-9a-f][0-9a-f]:*'"
        f" OR {c} GLOB 'fe[c-f][0-9a-f]:*'"
    )
    v4_local = (
        f"{c} GLOB '127.*' OR {c} GLOB '169.254.*' OR {c} = '0.0.0.0'"
        f" OR {c} GLOB '22[4-9].*' OR {c} GLOB '2[3-4][0-9].*' OR {c} GLOB '25[0-5].*'"
    )
    return f"(CASE WHEN instr({c}, ':') > 0 THEN NOT ({v6_routable}) ELSE ({v4_local}) END)"


def internal_network_filter(column: str, networks: Iterable[Any]) -> str:
    """addr in one of the config's internal_networks.

    in_cidr_block() raises on an address it cannot parse or of the other
    family, which would fail the whole query: CASE evaluates it only on a
    well-formed address of the network's family.
    """
    parts = []
    for net in networks:
        net = ipaddress.ip_network(str(net), strict=False)
        if net.version == 4:
            guard = f"{column} GLOB '[0-9]*.[0-9]*.[0-9]*.[0-9]*' AND {column} NOT GLOB '*[^0-9.]*'"
        else:
            guard = f"instr({column}, ':') > 0 AND {column} NOT GLOB '*[^0-9a-f:.]*'"
        parts.append(f"(CASE WHEN {guard} THEN in_cidr_block({sql_str(str(net))}, {column}) ELSE 0 END)")
    return "(" + " OR ".join(parts) + ")" if parts else "0"


def dump_name_regex() -> str:
    """Strong dump suffix, then any compression suffixes (catalog.dump_suffix_strength == 'strong')."""
    strong = "|".join(_ecma_escape(s.lstrip(".")) for s in catalog.DUMP_SUFFIXES_STRONG)
    packed = "|".join(_ecma_escape(s.lstrip(".")) for s in catalog.COMPRESSION_SUFFIXES)
    return rf"\.({strong})(\.({packed}))*$"


def _root_prefixes(roots: Iterable[str]) -> list[str]:
    return sorted({root.rstrip("/") + "/" for root in roots})


def render_context(config: Config) -> dict[str, str]:
    """Placeholder -> SQL text. `name:COL` placeholders are filled per column."""
    db_tools = catalog.db_tools_with_extras(config.extra_db_clients, config.extra_dump_tools)
    transfer = catalog.transfer_tools_with_extras(config.extra_transfer_tools)
    wrappers = tuple(catalog.INTERPRETERS) + tuple(catalog.SHELLS)
    egress_names = set(db_tools) | set(transfer)
    with_subcommands = [n for n, t in {**transfer, **db_tools}.items() if getattr(t, "subcommands", ())]
    return {
        "exec_name_columns": exec_name_columns(with_subcommands, wrappers),
        "conn_name_columns": conn_name_columns(),
        "db_tool_filter": tool_filter(db_tools, wrappers),
        "transfer_tool_filter": tool_filter(transfer, wrappers),
        "web_accounts": sql_list(catalog.WEB_ACCOUNTS),
        "egress_process_filter": (
            f"(conn.base IN ({sql_list(egress_names)}) OR conn.base_nover IN ({sql_list(wrappers)}))"
        ),
        "dump_name_regex": dump_name_regex().replace("'", "''"),
        "admin_groups": sql_list(admin_groups_reported(config)),
        "db_ports": ", ".join(str(port) for port in sorted({port for port, _ in catalog.DB_PORTS})),
        "db_connect_known_filter": db_connect_known_filter(db_tools),
    }


def admin_groups_reported(config: Config) -> tuple[str, ...]:
    """The groups admin_accounts lists: the catalog's broad default set and the config's own.

    The correlator decides with its admins.groups; a pack rendered from defaults then works with any site config.
    """
    return tuple(sorted(set(catalog.DEFAULT_ADMIN_GROUPS) | set(config.admin_groups)))


def db_socket_filter(column: str) -> str:
    """column (a Unix socket path) names a database server's socket (catalog.DB_SOCKETS, basename globs)."""
    parts = [f"{column} GLOB {sql_str('*/' + pattern)}" for pattern, _ in catalog.DB_SOCKETS]
    return "(" + " OR ".join(parts) + ")"


def db_connect_known_filter(db_tools: dict[str, Any]) -> str:
    """The connecting program is a known client (its exec is the access), a server or an automation agent."""
    names = set(db_tools) | set(catalog.DB_SERVERS) | set(catalog.WAL_ARCHIVERS)
    names |= {n for n in catalog.AUTOMATION_AGENTS if "*" not in n}
    return f"(conn.base IN ({sql_list(names)}))"


# db_cli_exec and transfer_exec return the same contract columns from the
# same event table; they differ only in their WHERE. One projection per
# variant keeps the two queries from drifting apart.
_EXEC_ROWS: dict[str, str] = {
    "audit": """WITH ev AS (
  SELECT time, pid, parent, path, cmdline, cwd, uid, euid, auid,
    {{exec_name_columns}}
  FROM process_events
)
SELECT ev.time, ev.pid, ev.parent, ev.path, ev.cmdline, ev.cwd, ev.uid, ev.euid, ev.auid,
  COALESCE(u.username, '') AS username,
  CASE WHEN ev.auid IN (4294967295, -1) THEN '' ELSE COALESCE(lu.username, '') END AS login_user,
  COALESCE(pp.path, '') AS parent_path,
  COALESCE(pp.cmdline, '') AS parent_cmdline
FROM ev
LEFT JOIN users AS u ON u.uid = ev.uid
LEFT JOIN users AS lu ON lu.uid = ev.auid
LEFT JOIN processes AS pp ON pp.pid = ev.parent AND pp.start_time <= ev.time""",
    # bpf_process_events has no euid or auid: NULL, and no login user.
    "bpf": """WITH ev AS (
  SELECT time, pid, parent, path, cmdline, cwd, uid,
    {{exec_name_columns}}
  FROM bpf_process_events
  WHERE exit_code IS NULL OR exit_code = '0'
)
SELECT ev.time, ev.pid, ev.parent, ev.path, ev.cmdline, ev.cwd, ev.uid,
  NULL AS euid, NULL AS auid,
  COALESCE(u.username, '') AS username,
  '' AS login_user,
  COALESCE(pp.path, '') AS parent_path,
  COALESCE(pp.cmdline, '') AS parent_cmdline
FROM ev
LEFT JOIN users AS u ON u.uid = ev.uid
LEFT JOIN processes AS pp ON pp.pid = ev.parent AND pp.start_time <= ev.time""",
}


_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)(?::([a-z_.]+))?\}\}")


class RenderError(Exception):
    pass


def render_sql(source: QuerySource, config: Config, context: dict[str, str] | None = None) -> str:
    ctx = context if context is not None else render_context(config)

    def fill(m: re.Match[str]) -> str:
        key, column = m.group(1), m.group(2)
        if key == "columns" and column is None:
            table = TABLES.get(source.name)
            if table is None:
                raise RenderError(f"{source.path}: no extension table named {source.name}")
            return ", ".join(name for name, _type in table.columns())
        if column is not None:
            if key == "exec_rows" and column in _EXEC_ROWS:
                return _PLACEHOLDER.sub(fill, " ".join(_EXEC_ROWS[column].split()))
            if key == "staging_path_filter":
                return prefix_filter(column, catalog.STAGING_DIRS)
            if key == "dump_root_filter":
                return prefix_filter(column, _root_prefixes(config.dump_roots))
            if key == "dump_name_prefilter":
                return dump_name_prefilter(column)
            if key == "db_socket_filter":
                return db_socket_filter(column)
            if key == "local_address_filter":
                return local_address_filter(column)
            if key == "internal_network_filter":
                return internal_network_filter(column, config.internal_networks)
        elif key in ctx:
            return ctx[key]
        raise RenderError(f"{source.path}: unknown placeholder {m.group(0)}")

    return _PLACEHOLDER.sub(fill, source.sql)


# ---------------------------------------------------------------------------
# osquery packs and conf.d fragments


def _query_entry(source: QuerySource, sql: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"query": sql, "interval": source.interval, "platform": PLATFORM}
    if source.kind == "snapshot":
        entry["snapshot"] = True
    else:
        entry["removed"] = False  # event and state rows: only additions are news
    entry["description"] = source.description
    entry["value"] = (
        f"False positives: {source.false_positives} "
        f"References: {', '.join(source.references)} Tags: {', '.join(source.tags)}"
    )
    return entry


def build_pack(pack: PackFile, config: Config, sources: tuple[QuerySource, ...] | None = None) -> dict[str, Any]:
    sources = sources if sources is not None else load_sources()
    ctx = render_context(config)
    discovery = pack.discovery or (discovery_extension(),)
    queries = {
        s.name: _query_entry(s, render_sql(s, config, ctx))
        for s in sources
        if s.variant in pack.variants
    }
    return {"platform": PLATFORM, "discovery": list(discovery), "queries": queries}


def dumps_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def file_paths(config: Config) -> dict[str, list[str]]:
    """FIM paths for the dump roots (`%%`: recursive)."""
    return {FILE_CATEGORY: [root.rstrip("/") + "/%%" for root in config.dump_roots]}


def build_fragment(pack: PackFile, config: Config, pack_dir: str = PACK_DIR) -> dict[str, Any]:
    """The /etc/osquery/osquery.conf.d/ file loading one pack (a config source of its own)."""
    fragment: dict[str, Any] = {"packs": {PACK_NAME: f"{pack_dir}/{pack.filename}"}}
    if pack.filename == "dbwatch.conf":
        # Top-level, not inside a pack: applied whichever event pack is active.
        fragment["file_paths"] = file_paths(config)
    return fragment


def render_osquery(config: Config) -> dict[str, str]:
    """packs/ file name -> text for the three packs."""
    sources = load_sources()
    return {p.filename: dumps_json(build_pack(p, config, sources)) for p in PACK_FILES}


def render_conf_fragments(config: Config) -> dict[str, str]:
    return {p.fragment: dumps_json(build_fragment(p, config)) for p in PACK_FILES}


# ---------------------------------------------------------------------------
# Fleet GitOps bundle

LABEL_DB_HOSTS = "dbwatch - database hosts"
LABEL_AUDIT = "dbwatch - database hosts, audit events"
LABEL_BPF = "dbwatch - database hosts, BPF events"
LABEL_EXTENSION = "dbwatch - extension registered"


def fleet_report_name(source: QuerySource) -> str:
    """Fleet names must be unique: the BPF variant gets `dbwatch_bpf_<query>`
    (its last segment still ends in the query name, as the correlator matches)."""
    return f"{PACK_NAME}_bpf_{source.name}" if source.variant == "bpf" else f"{PACK_NAME}_{source.name}"


def db_hosts_sql() -> str:
    """A database server listening, or database server/client packages installed."""
    # processes.name is the kernel's comm: at most 15 characters.
    exact = sorted({n[:15] for n in catalog.DB_SERVERS if not n.endswith("*")})
    prefixes = sorted(n[:-1] for n in catalog.DB_SERVERS if n.endswith("*"))
    name_parts = [f"p.name IN ({sql_list(exact)})"] + [f"p.name LIKE {sql_str(p + '%')}" for p in prefixes]
    pkg = " OR ".join(f"name LIKE {sql_str(p + '%')}" for p in catalog.DB_PACKAGE_PREFIXES)
    return (
        "SELECT 1 WHERE EXISTS (SELECT 1 FROM listening_ports AS lp JOIN processes AS p ON p.pid = lp.pid "
        f"WHERE lp.port > 0 AND ({' OR '.join(name_parts)}))"
        f" OR EXISTS (SELECT 1 FROM deb_packages WHERE status LIKE '% installed' AND ({pkg}))"
        f" OR EXISTS (SELECT 1 FROM rpm_packages WHERE ({pkg}));"
    )


def _and_db_host(condition: str) -> str:
    """db_hosts_sql() AND another condition, as one label query."""
    base = db_hosts_sql().rstrip(";")
    return f"SELECT 1 FROM ({base}) WHERE {condition};"


def fleet_labels() -> list[dict[str, Any]]:
    bpf_on = "EXISTS (SELECT 1 FROM osquery_flags WHERE name = 'enable_bpf_events' AND value = 'true')"
    return [
        {
            "name": LABEL_DB_HOSTS,
            "description": "Hosts where a database server listens or database server/client packages are installed (osq-dbwatch).",
            "query": db_hosts_sql(),
            "platform": PLATFORM,
            "label_membership_type": "dynamic",
        },
        {
            "name": LABEL_AUDIT,
            "description": "Database hosts whose osquery uses audit process/socket events (the default; osq-dbwatch).",
            "query": _and_db_host(f"NOT {bpf_on}"),
            "platform": PLATFORM,
            "label_membership_type": "dynamic",
        },
        {
            "name": LABEL_BPF,
            "description": "Database hosts whose osquery runs with --enable_bpf_events (osq-dbwatch BPF variant).",
            "query": _and_db_host(bpf_on),
            "platform": PLATFORM,
            "label_membership_type": "dynamic",
        },
        {
            "name": LABEL_EXTENSION,
            "description": "Hosts where the osq-dbwatch extension's tables are registered with osquery.",
            "query": discovery_extension(),
            "platform": PLATFORM,
            "label_membership_type": "dynamic",
        },
    ]


_FLEET_LABEL_FOR_VARIANT = {
    "audit": LABEL_AUDIT,
    "bpf": LABEL_BPF,
    "native": LABEL_DB_HOSTS,
    "extension": LABEL_EXTENSION,
}


def fleet_reports(config: Config) -> list[dict[str, Any]]:
    sources = load_sources()
    ctx = render_context(config)
    reports = []
    for s in sources:
        reports.append(
            {
                "name": fleet_report_name(s),
                "description": s.description,
                "query": render_sql(s, config, ctx),
                "interval": s.interval,
                "platform": PLATFORM,
                "logging": "snapshot" if s.kind == "snapshot" else "differential_ignore_removals",
                "automations_enabled": True,
                "observer_can_run": False,
                "discard_data": False,
                "labels_include_any": [_FLEET_LABEL_FOR_VARIANT[s.variant]],
            }
        )
    return reports


def fleet_policies() -> list[dict[str, Any]]:
    flag = "EXISTS (SELECT 1 FROM osquery_flags WHERE name = {n} AND value = {v})"
    audit_on = " AND ".join(
        flag.format(n=sql_str(n), v=sql_str(v))
        for n, v in (("disable_audit", "false"), ("audit_allow_config", "true"), ("audit_allow_sockets", "true"))
    )
    bpf_on = flag.format(n="'enable_bpf_events'", v="'true'")
    return [
        {
            "name": "dbwatch - no blind spot in database telemetry",
            "description": "Fails when the osq-dbwatch extension's dbwatch_coverage table reports a check with status 'blind': osquery on this host cannot see database client runs, dumps or egress.",
            "resolution": "Run `SELECT * FROM dbwatch_coverage WHERE status != 'ok';` on the host; the detail column says what is missing and how to fix it (audit flags, file_paths, auditd holding the audit socket, ...).",
            "query": "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM dbwatch_coverage WHERE status = 'blind');",
            "platform": PLATFORM,
            "critical": True,
            "labels_include_any": [LABEL_EXTENSION],
        },
        {
            "name": "dbwatch - extension registered on database hosts",
            "description": "Fails on a database host where the osq-dbwatch extension is not loaded: its live-host tables and coverage checks are missing.",
            "resolution": "Install dist/osq_dbwatch.ext with deploy/install.sh (or your Fleet/config-manager package) and list it in /etc/osquery/extensions.load.",
            "query": "SELECT 1 FROM osquery_registry WHERE registry = 'table' AND name = 'dbwatch_coverage';",
            "platform": PLATFORM,
            "critical": False,
            "labels_include_any": [LABEL_DB_HOSTS],
        },
        {
            "name": "dbwatch - process and socket events enabled",
            "description": "Fails on a database host where osquery collects neither audit process/socket events nor BPF events: db_cli_exec, transfer_exec and db_egress stay empty.",
            "resolution": "Set --disable_audit=false --audit_allow_config=true --audit_allow_sockets=true (see deploy/osquery.flags), or --enable_bpf_events=true, and restart osqueryd.",
            "query": f"SELECT 1 WHERE ({audit_on}) OR {bpf_on};",
            "platform": PLATFORM,
            "critical": False,
            "labels_include_any": [LABEL_DB_HOSTS],
        },
        {
            "name": "dbwatch - file events enabled",
            "description": "Fails on a database host where osquery's file events are off: dump_file_events stays empty.",
            "resolution": "Set --enable_file_events=true and deploy the dbwatch file_paths (deploy/osquery.conf.d/dbwatch.conf or the Fleet agent options fragment).",
            "query": "SELECT 1 FROM osquery_flags WHERE name = 'enable_file_events' AND value = 'true';",
            "platform": PLATFORM,
            "critical": False,
            "labels_include_any": [LABEL_DB_HOSTS],
        },
    ]


def fleet_agent_options(config: Config) -> dict[str, Any]:
    """Fragment to merge into a team's agent_options (flags applied by fleetd)."""
    return {
        "config": {"file_paths": file_paths(config)},
        "command_line_flags": {
            "disable_events": False,
            "disable_audit": False,
            "audit_allow_config": True,
            "audit_allow_process_events": True,
            "audit_allow_sockets": True,
            "audit_persist": True,
            "enable_file_events": True,
        },
    }


def _yaml(data: Any, header: str) -> str:
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1_000_000, default_flow_style=False)
    return header + body


_FLEET_HEADER = "# Rendered by `osq-dbwatch pack render --format fleet`; do not edit by hand.\n"


# Fleet Free has no label scoping of reports or policies and no critical
# policies (both are Fleet Premium). The free tier's reports guard themselves
# in SQL instead, with the conditions the Premium labels test; the extension's
# tables cannot be guarded (SQLite refuses a query naming a missing table), so
# their reports and policy go to files of their own.
FLEET_TIERS = ("premium", "free")
_BPF_ON = "EXISTS (SELECT 1 FROM osquery_flags WHERE name = 'enable_bpf_events' AND value = 'true')"


def _db_host_condition() -> str:
    return f"EXISTS ({db_hosts_sql().rstrip(';')})"


def fleet_free_guard(variant: str) -> str | None:
    """SQL condition standing in for the Premium label of a variant (None: cannot be guarded)."""
    db_host = _db_host_condition()
    return {
        "audit": f"NOT {_BPF_ON} AND {db_host}",
        "bpf": f"{_BPF_ON} AND {db_host}",
        "native": db_host,
    }.get(variant)


def _guard_query(sql: str, condition: str) -> str:
    return f"SELECT * FROM ({sql.strip().rstrip(';')}) WHERE {condition};"


def fleet_free_reports(config: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(self-guarded reports, extension reports) without label scoping."""
    variants = {fleet_report_name(s): s.variant for s in load_sources()}
    guarded, extension = [], []
    for report in fleet_reports(config):
        report = {k: v for k, v in report.items() if not k.startswith("labels_")}
        condition = fleet_free_guard(variants[report["name"]])
        if condition is None:
            extension.append(report)
        else:
            guarded.append({**report, "query": _guard_query(report["query"], condition)})
    return guarded, extension


def fleet_free_policies() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(policies passing on hosts that are no database host, the extension's policy), none critical."""
    guarded, extension = [], []
    for policy in fleet_policies():
        scope = policy.get("labels_include_any", [])
        policy = {k: v for k, v in policy.items() if k != "critical" and not k.startswith("labels_")}
        if scope == [LABEL_EXTENSION]:
            extension.append(policy)
        else:
            query = policy["query"].strip().rstrip(";")
            guarded.append({**policy, "query": f"SELECT 1 WHERE NOT {_db_host_condition()} OR EXISTS ({query});"})
    return guarded, extension


def render_fleet(config: Config, tier: str = "premium") -> dict[str, str]:
    """packs/fleet/ (premium) or packs/fleet-free/ (free) relative path -> text."""
    if tier == "free":
        return _render_fleet_free(config)
    if tier != "premium":
        raise RenderError(f"unknown Fleet tier {tier!r} (one of {', '.join(FLEET_TIERS)})")
    example = {
        "labels": [{"path": "./lib/dbwatch.labels.yml"}],
        "reports": [{"path": "./lib/dbwatch.reports.yml"}],
        "policies": [{"path": "./lib/dbwatch.policies.yml"}],
    }
    return {
        "lib/dbwatch.reports.yml": _yaml(fleet_reports(config), _FLEET_HEADER),
        "lib/dbwatch.labels.yml": _yaml(fleet_labels(), _FLEET_HEADER),
        "lib/dbwatch.policies.yml": _yaml(fleet_policies(), _FLEET_HEADER),
        "lib/dbwatch.agent-options.yml": _yaml(
            fleet_agent_options(config),
            _FLEET_HEADER + "# Merge into your agent_options (default.yml or fleets/<fleet>.yml).\n",
        ),
        "default.example.yml": _yaml(
            example,
            _FLEET_HEADER + "# Add these entries to the labels/reports/policies lists of your default.yml\n"
            "# (or a fleets/<fleet>.yml); paths are relative to that file.\n",
        ),
    }


_FLEET_FREE_HEADER = "# Rendered by `osq-dbwatch pack render --format fleet --tier free`; do not edit by hand.\n"


def _render_fleet_free(config: Config) -> dict[str, str]:
    reports, extension_reports = fleet_free_reports(config)
    policies, extension_policies = fleet_free_policies()
    example = {
        "reports": [{"path": "./lib/dbwatch.reports.yml"}],
        "policies": [{"path": "./lib/dbwatch.policies.yml"}],
    }
    guarded = _FLEET_FREE_HEADER + ("# Fleet Free: no label scoping, so each query checks in SQL that it runs on a\n"
                                    "# database host (and on the audit or BPF event path) and returns nothing elsewhere.\n")
    needs_ext = _FLEET_FREE_HEADER + ("# Needs the osq-dbwatch extension on EVERY host of the fleet: elsewhere osquery\n"
                                      "# reports 'no such table' for these queries.\n")
    return {
        "lib/dbwatch.reports.yml": _yaml(reports, guarded),
        "lib/dbwatch.policies.yml": _yaml(policies, _FLEET_FREE_HEADER + (
            "# Fleet Free: no label scoping, so each policy checks in SQL that it runs on a\n"
            "# database host and passes elsewhere. None is critical (a Premium feature).\n")),
        "lib/dbwatch.extension.reports.yml": _yaml(extension_reports, needs_ext),
        "lib/dbwatch.extension.policies.yml": _yaml(extension_policies, needs_ext),
        "lib/dbwatch.agent-options.yml": _yaml(
            fleet_agent_options(config),
            _FLEET_FREE_HEADER + "# Merge into your agent_options (default.yml).\n",
        ),
        "default.example.yml": _yaml(
            example,
            _FLEET_FREE_HEADER + "# Add these entries to the reports/policies lists of your default.yml; paths are\n"
            "# relative to that file. Where every host loads the osq-dbwatch extension, add\n"
            "# ./lib/dbwatch.extension.reports.yml and ./lib/dbwatch.extension.policies.yml too.\n",
        ),
    }
