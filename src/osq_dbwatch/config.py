"""The policy config (contract section 3): strict YAML in, frozen records out.

Unknown keys, duplicate keys and wrong types are errors that name the file and
line, so a typo never silently turns a rule off. The extension, the pack
renderer and the correlator all read the same file.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from . import catalog

DEFAULT_CONFIG_PATH = "/etc/osq-dbwatch/config.yml"
MAX_CONFIG_BYTES = 1 << 20

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ConfigError(Exception):
    """An invalid config; str() is one line naming file and line."""


@dataclass(frozen=True)
class AutomationWindow:
    days: frozenset[int]  # 0 = Monday
    start_minute: int  # minutes after local midnight
    end_minute: int  # may be <= start: the window crosses midnight
    tz: str
    users: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()  # globs on the host identifier
    line: int = 0


@dataclass(frozen=True)
class AllowRule:
    user: str | None = None
    tool: str | None = None
    parent: str | None = None
    host: str | None = None
    cmdline: str | None = None
    line: int = 0


@dataclass(frozen=True)
class CorrelatorSettings:
    max_pending_per_host: int = 1000
    state_expiry_seconds: int = 7 * 86400
    baseline_min_observations: int = 5  # runs before a (user, tool, parent, hour) is habitual
    baseline_novel_after_seconds: int = 7 * 86400  # history needed before "novel" is claimed
    memory_mb: int = 256  # the correlator's memory budget: sizes how many host states stay resident


@dataclass(frozen=True)
class Config:
    admin_users: tuple[str, ...] = ()
    admin_groups: tuple[str, ...] = ()
    service_accounts: tuple[str, ...] = ()
    automation_windows: tuple[AutomationWindow, ...] = ()
    allow: tuple[AllowRule, ...] = ()
    internal_networks: tuple[IPNetwork, ...] = ()
    dump_after_access_seconds: int = 900
    egress_after_dump_seconds: int = 900
    dump_roots: tuple[str, ...] = catalog.DEFAULT_DUMP_ROOTS
    extra_db_clients: tuple[tuple[str, str], ...] = ()  # (basename, engine)
    extra_dump_tools: tuple[tuple[str, str], ...] = ()
    extra_transfer_tools: tuple[str, ...] = ()
    correlator: CorrelatorSettings = field(default_factory=CorrelatorSettings)
    source: str = "<defaults>"


# ---------------------------------------------------------------------------
# Strict YAML: duplicate keys are errors, and every node keeps its line.


@dataclass(frozen=True)
class _Node:
    value: Any
    line: int


class _StrictLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> _Node:
    if not isinstance(node, yaml.MappingNode):  # `!!map text`
        raise ConfigError(f"line {node.start_mark.line + 1}: a !!map tag on something that is not a mapping")
    result: dict[str, _Node] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        key = key.value if isinstance(key, _Node) else key
        if not isinstance(key, str):
            raise ConfigError(f"line {key_node.start_mark.line + 1}: keys must be strings, not {key!r}")
        if key in result:
            raise ConfigError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        result[key] = loader.construct_object(value_node, deep=True)
    return _Node(result, node.start_mark.line + 1)


def _construct_sequence(loader: _StrictLoader, node: yaml.SequenceNode, deep: bool = False) -> _Node:
    if not isinstance(node, yaml.SequenceNode):  # `!!seq text`
        raise ConfigError(f"line {node.start_mark.line + 1}: a !!seq tag on something that is not a list")
    return _Node([loader.construct_object(child, deep=True) for child in node.value], node.start_mark.line + 1)


def _construct_scalar(loader: _StrictLoader, node: yaml.ScalarNode) -> _Node:
    tag = loader.resolve(yaml.ScalarNode, node.value, (True, False))
    if node.tag != tag and node.style:  # quoted: always a string
        return _Node(str(node.value), node.start_mark.line + 1)
    constructor = loader.yaml_constructors.get(node.tag)
    value = constructor(loader, node) if constructor else node.value
    return _Node(value, node.start_mark.line + 1)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
def _construct_plain(loader: _StrictLoader, node: yaml.ScalarNode) -> _Node:
    base = yaml.SafeLoader.yaml_constructors[node.tag]
    try:
        value = base(loader, node)
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, AttributeError):
        # an explicit tag on text it cannot hold: `!!int abc`, `!!timestamp x`
        raise ConfigError(f"line {node.start_mark.line + 1}: {node.value!r} is not a valid {node.tag.rsplit(':', 1)[-1]}") from None
    return _Node(value, node.start_mark.line + 1)


for _tag in ("str", "bool", "null", "timestamp"):
    _StrictLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _construct_plain)


def _construct_number(loader: _StrictLoader, node: yaml.ScalarNode) -> _Node:
    # YAML 1.1 reads an unquoted 01:00 as the base-60 integer 60 and 99:00 as
    # 5940; keep such scalars as the text the user wrote, so a time is read as
    # a time and `start: 100` is not silently 01:40.
    if isinstance(node.value, str) and ":" in node.value:
        return _Node(str(node.value), node.start_mark.line + 1)
    return _construct_plain(loader, node)


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_number)
_StrictLoader.add_constructor("tag:yaml.org,2002:float", _construct_number)


def _reject_tag(loader: _StrictLoader, node: yaml.Node) -> _Node:
    # SafeLoader builds bytes, sets and pair lists for these: none is a config value.
    raise ConfigError(f"line {node.start_mark.line + 1}: YAML tag {node.tag} is not allowed in the config")


for _tag in ("binary", "set", "omap", "pairs"):
    _StrictLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _reject_tag)


# ---------------------------------------------------------------------------
# Field parsers


def _fail(node: _Node, message: str) -> ConfigError:
    return ConfigError(f"line {node.line}: {message}")


def _mapping(node: _Node, where: str, allowed: tuple[str, ...]) -> dict[str, _Node]:
    if not isinstance(node.value, dict):
        raise _fail(node, f"{where} must be a mapping")
    for key, child in node.value.items():
        if key not in allowed:
            raise _fail(child, f"unknown key {key!r} in {where} (allowed: {', '.join(allowed)})")
    return node.value


def _string(node: _Node, where: str) -> str:
    if isinstance(node.value, bool) or node.value is None or isinstance(node.value, (dict, list)):
        raise _fail(node, f"{where} must be a string")
    return str(node.value)


def _strings(node: _Node, where: str) -> tuple[str, ...]:
    if node.value is None:
        return ()
    if isinstance(node.value, str):
        return (node.value,)
    if not isinstance(node.value, list):
        raise _fail(node, f"{where} must be a list of strings")
    return tuple(_string(item, where) for item in node.value)


def _string_nodes(node: _Node, where: str) -> tuple[tuple[str, _Node], ...]:
    """Like _strings, with each item's node, so an error names the item's own line."""
    values = _strings(node, where)
    items = node.value if isinstance(node.value, list) else [node]
    return tuple(zip(values, items))


def _int(node: _Node, where: str, low: int, high: int) -> int:
    if isinstance(node.value, bool) or not isinstance(node.value, int):
        raise _fail(node, f"{where} must be an integer")
    if not low <= node.value <= high:
        raise _fail(node, f"{where} must be between {low} and {high}")
    return node.value


_DURATION = re.compile(r"(\d{1,9})\s{0,8}([smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int | None:
    """'15m' -> 900; None when the text is not a duration."""
    m = _DURATION.fullmatch(text.strip())  # strip first: `\s*...\s*$` backtracks quadratically
    if not m:
        return None
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def _duration(node: _Node, where: str) -> int:
    if isinstance(node.value, int) and not isinstance(node.value, bool):
        seconds: int | None = node.value
    else:
        seconds = parse_duration(_string(node, where))
    if seconds is None or not 0 < seconds <= 30 * 86400:
        raise _fail(node, f"{where} must be a duration such as 15m, 1h or 900 (at most 30d)")
    return seconds


def _clock(node: _Node, where: str) -> int:
    # An unquoted 01:00 arrives as the text "01:00" (see _construct_number);
    # a bare number is not a time.
    text = _string(node, where)
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not m or int(m.group(1)) > 24 or int(m.group(2)) > 59 or (int(m.group(1)) == 24 and int(m.group(2))):
        raise _fail(node, f"{where} must be a time HH:MM, got {text!r}")
    return int(m.group(1)) * 60 + int(m.group(2))


def _window(node: _Node) -> AutomationWindow:
    fields = _mapping(node, "automation_windows entry", ("days", "start", "end", "tz", "users", "hosts"))
    for required in ("start", "end"):
        if required not in fields:
            raise _fail(node, f"automation_windows entry needs {required!r}")
    days: set[int] = set()
    if "days" in fields:
        for day, item in _string_nodes(fields["days"], "days"):
            if day.lower()[:3] not in DAYS:
                raise _fail(item, f"days: unknown day {day!r} (use mon..sun)")
            days.add(DAYS.index(day.lower()[:3]))
    else:
        days = set(range(7))
    tz = _string(fields["tz"], "tz") if "tz" in fields else "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(fields.get("tz", node), f"tz: unknown time zone {tz!r} (use an IANA name such as Europe/Berlin)") from None
    return AutomationWindow(
        days=frozenset(days),
        start_minute=_clock(fields["start"], "start"),
        end_minute=_clock(fields["end"], "end"),
        tz=tz,
        users=_strings(fields["users"], "users") if "users" in fields else (),
        hosts=_strings(fields["hosts"], "hosts") if "hosts" in fields else (),
        line=node.line,
    )


def _allow(node: _Node) -> AllowRule:
    keys = ("user", "tool", "parent", "host", "cmdline")
    fields = _mapping(node, "allow entry", keys)
    if not fields:
        raise _fail(node, "an allow entry needs at least one of " + ", ".join(keys))
    return AllowRule(**{k: _string(v, k) for k, v in fields.items()}, line=node.line)


def _networks(node: _Node) -> tuple[IPNetwork, ...]:
    result = []
    for text, item in _string_nodes(node, "internal_networks"):
        try:
            result.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise _fail(item, f"internal_networks: {text!r} is not a network such as 10.0.0.0/8") from None
    return tuple(result)


def _tools_with_engine(node: _Node, where: str) -> tuple[tuple[str, str], ...]:
    engines = set(catalog.Engine.__args__)  # type: ignore[attr-defined]
    mapping = _mapping(node, where, tuple(node.value) if isinstance(node.value, dict) else ())
    result = []
    for name, engine_node in mapping.items():
        engine = _string(engine_node, f"{where}.{name}")
        if engine not in engines:
            raise _fail(engine_node, f"{where}.{name}: unknown engine {engine!r} ({', '.join(sorted(engines))})")
        if not re.fullmatch(r"[A-Za-z0-9_.+-]{1,64}", name):
            raise _fail(engine_node, f"{where}: {name!r} is not a program basename")
        result.append((name, engine))
    return tuple(result)


def _roots(node: _Node) -> tuple[str, ...]:
    roots = _strings(node, "dump_roots")
    for root, item in _string_nodes(node, "dump_roots"):
        if not root.startswith("/") or "%" in root or "\n" in root:
            raise _fail(item, f"dump_roots: {root!r} must be an absolute directory path")
    return tuple(root.rstrip("/") or "/" for root in roots)


def _correlator(node: _Node) -> CorrelatorSettings:
    fields = _mapping(node, "correlator", ("max_pending_per_host", "state_expiry", "baseline_min_observations", "baseline_novel_after",
                                                "memory_mb"))
    settings = CorrelatorSettings()
    values: dict[str, int] = {}
    if "max_pending_per_host" in fields:
        values["max_pending_per_host"] = _int(fields["max_pending_per_host"], "max_pending_per_host", 1, 1_000_000)
    if "state_expiry" in fields:
        values["state_expiry_seconds"] = _duration(fields["state_expiry"], "state_expiry")
    if "baseline_min_observations" in fields:
        values["baseline_min_observations"] = _int(fields["baseline_min_observations"], "baseline_min_observations", 1, 100_000)
    if "baseline_novel_after" in fields:
        values["baseline_novel_after_seconds"] = _duration(fields["baseline_novel_after"], "baseline_novel_after")
    if "memory_mb" in fields:
        values["memory_mb"] = _int(fields["memory_mb"], "memory_mb", 64, 1_048_576)
    return CorrelatorSettings(**{**settings.__dict__, **values})


_TOP_LEVEL: dict[str, Callable[[_Node, dict[str, Any]], None]] = {}


def _key(name: str) -> Callable[[Callable[[_Node, dict[str, Any]], None]], Callable[[_Node, dict[str, Any]], None]]:
    def register(fn: Callable[[_Node, dict[str, Any]], None]) -> Callable[[_Node, dict[str, Any]], None]:
        _TOP_LEVEL[name] = fn
        return fn

    return register


@_key("admins")
def _set_admins(node: _Node, out: dict[str, Any]) -> None:
    fields = _mapping(node, "admins", ("users", "groups"))
    if "users" in fields:
        out["admin_users"] = _strings(fields["users"], "admins.users")
    if "groups" in fields:
        out["admin_groups"] = _strings(fields["groups"], "admins.groups")


@_key("service_accounts")
def _set_service_accounts(node: _Node, out: dict[str, Any]) -> None:
    out["service_accounts"] = _strings(node, "service_accounts")


@_key("automation_windows")
def _set_windows(node: _Node, out: dict[str, Any]) -> None:
    if not isinstance(node.value, list):
        raise _fail(node, "automation_windows must be a list")
    out["automation_windows"] = tuple(_window(item) for item in node.value)


@_key("allow")
def _set_allow(node: _Node, out: dict[str, Any]) -> None:
    if not isinstance(node.value, list):
        raise _fail(node, "allow must be a list")
    out["allow"] = tuple(_allow(item) for item in node.value)


@_key("internal_networks")
def _set_networks(node: _Node, out: dict[str, Any]) -> None:
    out["internal_networks"] = _networks(node)


@_key("windows")
def _set_durations(node: _Node, out: dict[str, Any]) -> None:
    fields = _mapping(node, "windows", ("dump_after_access", "egress_after_dump"))
    if "dump_after_access" in fields:
        out["dump_after_access_seconds"] = _duration(fields["dump_after_access"], "dump_after_access")
    if "egress_after_dump" in fields:
        out["egress_after_dump_seconds"] = _duration(fields["egress_after_dump"], "egress_after_dump")


@_key("dump_roots")
def _set_roots(node: _Node, out: dict[str, Any]) -> None:
    out["dump_roots"] = _roots(node)


@_key("extra_tools")
def _set_extra_tools(node: _Node, out: dict[str, Any]) -> None:
    fields = _mapping(node, "extra_tools", ("db_clients", "dump_tools", "transfer_tools"))
    if "db_clients" in fields:
        out["extra_db_clients"] = _tools_with_engine(fields["db_clients"], "extra_tools.db_clients")
    if "dump_tools" in fields:
        out["extra_dump_tools"] = _tools_with_engine(fields["dump_tools"], "extra_tools.dump_tools")
    if "transfer_tools" in fields:
        out["extra_transfer_tools"] = _strings(fields["transfer_tools"], "extra_tools.transfer_tools")


@_key("correlator")
def _set_correlator(node: _Node, out: dict[str, Any]) -> None:
    out["correlator"] = _correlator(node)


def parse_config(text: str, source: str = "<config>") -> Config:
    """Parse config text; raises ConfigError with 'source: line N: reason'."""
    try:
        try:
            root = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark else ""
            position = getattr(exc, "position", None)  # reader errors (control characters) carry an offset
            if not mark and isinstance(position, int):
                where = f"line {text.count(chr(10), 0, position) + 1}: "
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{where}not valid YAML: {problem}") from None
        values: dict[str, Any] = {"source": source}
        if root is not None and root.value is not None:
            top = _mapping(root, "the config", tuple(_TOP_LEVEL))
            for key, node in top.items():
                if node.value is not None:
                    _TOP_LEVEL[key](node, values)
        return Config(**values)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nesting too deep") from None


def load_config(path: str | None) -> Config:
    """Read the config at `path`; defaults when path is None and the default file is absent."""
    if path is None:
        if not os.path.exists(DEFAULT_CONFIG_PATH):
            return Config()
        path = DEFAULT_CONFIG_PATH
    try:
        # O_NONBLOCK and the regular-file check: a FIFO or device named as
        # the config must give an error, not hang the extension.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ConfigError(f"{path}: cannot read config: not a regular file")
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: line {line}: config is not UTF-8 (byte {exc.start})") from None
    return parse_config(text, path)
