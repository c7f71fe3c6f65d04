"""The policy config: strict YAML in, frozen records out.

Three steps. A strict YAML loader keeps every node's line, refuses duplicate
keys and odd tags, and bounds what YAML aliases may add. msgspec then checks
the document's shape against the `ConfigFile` structs below: they are the one
description of the keys, their types, bounds and defaults, from which the JSON
Schema for editors is generated too (`osq-dbwatch config schema`). Last, the
checks a schema cannot express (time zones, networks, day names) build the
frozen `Config`. Every error is one line naming the file and line, so a typo
never silently turns a rule off. The extension, the pack renderer and the
correlator all read the same file.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import yaml
from msgspec import UNSET, Meta, Struct, UnsetType

from . import catalog

DEFAULT_CONFIG_PATH = "/etc/osq-dbwatch/config.yml"
MAX_CONFIG_BYTES = 1 << 20
# Values YAML aliases may add to the document. An alias is a reference, so a
# few hundred bytes can stand for millions of values (a "billion laughs"), or
# an anchored window repeated 40,000 times for 40,000 windows that every
# access is checked against. Real configs reuse an anchor a few times.
MAX_ALIAS_VALUES = 2_000
MAX_DURATION = 30 * 86400

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# A host name glob of egress_allow: labels of letters, digits and -, with * and ? wildcards.
_HOST_GLOB = re.compile(r"[A-Za-z0-9*?](?:[A-Za-z0-9*?.-]{0,251}[A-Za-z0-9*?])?")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ConfigError(Exception):
    """An invalid config; str() is one line naming file and line."""


# ---------------------------------------------------------------------------
# What the rest of the program reads


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
class EgressAllowRule:
    """A known egress destination (a backup target): a linked upload or connect there does not escalate a chain."""

    destination: str  # as written: a network, an address, or a glob on a host name
    network: IPNetwork | None = None  # the destination as a network, when it is one
    port: int | None = None
    user: str | None = None
    host: str | None = None
    tool: str | None = None
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
    egress_allow: tuple[EgressAllowRule, ...] = ()
    dump_after_access_seconds: int = 900
    egress_after_dump_seconds: int = 900
    dump_roots: tuple[str, ...] = catalog.DEFAULT_DUMP_ROOTS
    extra_db_clients: tuple[tuple[str, str], ...] = ()  # (basename, engine)
    extra_dump_tools: tuple[tuple[str, str], ...] = ()
    extra_transfer_tools: tuple[str, ...] = ()
    correlator: CorrelatorSettings = field(default_factory=CorrelatorSettings)
    source: str = "<defaults>"


# ---------------------------------------------------------------------------
# The file's shape. `expect` (Meta.extra) finishes the sentence "X must be ...";
# descriptions and defaults go into the JSON Schema.


def _expect(text: str, description: str = "") -> Meta:
    return Meta(description=description, extra={"expect": text}) if description else Meta(extra={"expect": text})


Name = Annotated[str, Meta(min_length=1, max_length=256),
                 _expect("a string of 1 to 256 characters (quote names YAML reads as numbers or booleans: '007', 'yes')")]
# A list of names; one bare name and an empty key are accepted too.
Names = Annotated[Name | Annotated[list[Name], Meta(max_length=10_000)] | None,
                  _expect("a list of strings (at most 10000; quote names YAML reads as numbers or booleans)")]
Clock = Annotated[str, Meta(pattern=r"^\s*(?:[01]?[0-9]|2[0-3]):[0-5][0-9]\s*$|^\s*24:00\s*$"),
                  _expect("a time HH:MM (00:00 to 24:00)")]
Duration = Annotated[
    Annotated[int, Meta(ge=1, le=MAX_DURATION)] | Annotated[str, Meta(pattern=r"^\s*[0-9]{1,9}\s{0,8}[smhdw]?\s*$")],
    _expect("a duration such as 15m, 1h or 900 (at most 30d)",
            "seconds, or a number with a unit s, m, h, d or w (at most 30d)")]
Root = Annotated[str, Meta(pattern="^/", max_length=4096), _expect("an absolute directory path")]
Roots = Annotated[Root | Annotated[list[Root], Meta(max_length=100)] | None,
                  _expect("a list of absolute directory paths (at most 100)")]
Glob = Annotated[str, Meta(min_length=1, max_length=4096), _expect("a string")]
ToolName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.+-]{1,64}$"), _expect("a program basename (letters, digits, _ . + -)")]
EngineName = Annotated[catalog.Engine, _expect("one of the engines " + ", ".join(get_args(catalog.Engine)))]


class _Section(Struct, forbid_unknown_fields=True, kw_only=True):
    """A mapping in the file: unknown keys are errors, every key is named."""

    noun: ClassVar[str] = ""  # what an entry is called in messages ("an allow entry")


class Admins(_Section):
    """Who administers the databases: their access is expected (outside a web or database server's context)."""

    users: Annotated[Names, Meta(description="login names treated as database administrators")] = None
    groups: Annotated[Names, Meta(description="groups whose members are administrators (read from the host's admin_accounts rows)")] = None


class AutomationWindowEntry(_Section, kw_only=True):  # start and end are required
    """When scheduled database work is expected. Service work outside every window naming its user or host is unusual."""

    noun: ClassVar[str] = "an automation window"
    days: Annotated[Names, Meta(description="mon..sun (or Monday..Sunday); every day when left out")] = None
    start: Annotated[Clock, Meta(description="local start time HH:MM")]
    end: Annotated[Clock, Meta(description="local end time HH:MM; at or before start: the window crosses midnight")]
    tz: Annotated[str, Meta(description="IANA time zone of start and end"),
                  _expect("an IANA time zone name such as Europe/Berlin")] = "UTC"
    users: Annotated[Names, Meta(description="only these users (default: everyone)")] = None
    hosts: Annotated[Names, Meta(description="only hosts whose identifier matches one of these globs (default: every host)")] = None


class AllowEntry(_Section):
    """A documented workflow: an access matching every given field is expected and starts no chain."""

    noun: ClassVar[str] = "an allow entry"
    user: Annotated[Glob | UnsetType, Meta(description="glob on the login user (else the process user)")] = UNSET
    tool: Annotated[Glob | UnsetType, Meta(description="tool name, such as psql or mysqldump (exact)")] = UNSET
    parent: Annotated[Glob | UnsetType, Meta(description="glob on the parent's executable path; without a /, on its basename")] = UNSET
    host: Annotated[Glob | UnsetType, Meta(description="glob on the host identifier")] = UNSET
    cmdline: Annotated[Glob | UnsetType, Meta(
        description="whole-command-line glob; * and ? never match shell metacharacters (; | & $ ` ( ) < > newline)")] = UNSET


class EgressAllowEntry(_Section, kw_only=True):  # destination is required
    """A known egress destination, such as a backup target in cloud storage: an upload or connection there that
    every given field matches is shown in the chain but does not escalate it."""

    noun: ClassVar[str] = "an egress_allow entry"
    destination: Annotated[str, Meta(min_length=1, max_length=253, description=(
        "a network (203.0.113.0/24), an address, or a glob on the upload's destination host name "
        "(*.s3.amazonaws.com); connects carry only an address, so name globs match uploads"))]
    port: Annotated[Annotated[int, Meta(ge=1, le=65535)] | UnsetType, Meta(description="only this destination port"),
                    _expect("a port number between 1 and 65535")] = UNSET
    user: Annotated[Glob | UnsetType, Meta(description="glob on the chain's login user")] = UNSET
    host: Annotated[Glob | UnsetType, Meta(description="glob on the host identifier")] = UNSET
    tool: Annotated[Glob | UnsetType, Meta(description="the uploading or connecting program, such as rclone (exact)")] = UNSET


class Windows(_Section):
    """How close in time the stages of a chain must be."""

    dump_after_access: Annotated[Duration, Meta(description="a dump-like file counts within this time after the access")] = "15m"
    egress_after_dump: Annotated[Duration, Meta(description="an external connection or upload counts within this time after the dump")] = "15m"


class ExtraTools(_Section):
    """Site-specific tools, added to the built-in catalog."""

    db_clients: Annotated[dict[ToolName, EngineName], Meta(max_length=1000, description="database clients: basename: engine"),
                          _expect("a mapping of program basename to engine")] = {}
    dump_tools: Annotated[dict[ToolName, EngineName], Meta(max_length=1000, description="dump tools: basename: engine"),
                          _expect("a mapping of program basename to engine")] = {}
    transfer_tools: Annotated[Names, Meta(description="transfer or staging tools, by basename")] = None


class CorrelatorSection(_Section):
    """Bounds and learning of the correlator's state."""

    max_pending_per_host: Annotated[int, Meta(ge=1, le=1_000_000, description="pending chains kept per host; older ones are evicted and counted"),
                                    _expect("an integer between 1 and 1000000")] = CorrelatorSettings.max_pending_per_host
    state_expiry: Annotated[Duration, Meta(description="closed chains, emitted findings and history identities older than this are dropped")] = "7d"
    baseline_min_observations: Annotated[int, Meta(ge=1, le=100_000, description="earlier runs before a (host, user, tool, parent, hour of week) is habitual"),
                                         _expect("an integer between 1 and 100000")] = CorrelatorSettings.baseline_min_observations
    baseline_novel_after: Annotated[Duration, Meta(description="history a host needs before a user, tool, parent or hour is called novel")] = "7d"
    memory_mb: Annotated[int, Meta(ge=64, le=1_048_576, description="memory budget in MB; sizes how many host states stay in memory"),
                         _expect("an integer between 64 and 1048576")] = CorrelatorSettings.memory_mb


class ConfigFile(_Section):
    """osq-dbwatch policy config (/etc/osq-dbwatch/config.yml). Every key is optional; unknown keys are errors."""

    admins: Admins | None = None
    service_accounts: Annotated[Names, Meta(description="accounts whose database work is a known service context")] = None
    automation_windows: Annotated[Annotated[list[AutomationWindowEntry], Meta(max_length=1000)] | None,
                                  Meta(description="when scheduled database work is expected"),
                                  _expect("a list of automation windows (at most 1000)")] = None
    allow: Annotated[Annotated[list[Annotated[AllowEntry, Meta(extra_json_schema={"minProperties": 1})]], Meta(max_length=1000)] | None,
                     Meta(description="documented workflows; every given field must match"),
                     _expect("a list of allow entries (at most 1000)")] = None
    internal_networks: Annotated[Names, Meta(description="CIDR networks (or addresses) egress to which is not outbound")] = None
    egress_allow: Annotated[Annotated[list[EgressAllowEntry], Meta(max_length=1000)] | None,
                            Meta(description="known egress destinations (backup targets); every given field must match"),
                            _expect("a list of egress_allow entries (at most 1000)")] = None
    windows: Windows | None = None
    # A tuple: msgspec refuses a mutable default; it stands for the list it holds.
    dump_roots: Annotated[Roots, Meta(description="absolute directories scanned and watched for dump-like files")] = catalog.DEFAULT_DUMP_ROOTS  # type: ignore[assignment]
    extra_tools: ExtraTools | None = None
    correlator: CorrelatorSection | None = None


def key_paths(struct: type[_Section] | None = None, prefix: str = "") -> list[str]:
    """Every key the config knows, dotted (`automation_windows.tz`), in file order."""
    paths = []
    for info in msgspec.structs.fields(struct or ConfigFile):
        path = prefix + info.name
        paths.append(path)
        inner = _struct_in(info.type)
        for member in _members(info.type):
            if inner is None and get_origin(member) is list:
                inner = _struct_in(get_args(member)[0])
        if inner is not None:
            paths.extend(key_paths(inner, path + "."))
    return paths


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the config file, generated from ConfigFile."""
    schema = msgspec.json.schema(ConfigFile)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "osq-dbwatch config",
        "description": "Generated by `osq-dbwatch config schema` from src/osq_dbwatch/config.py; do not edit.",
        **schema,
    }


# ---------------------------------------------------------------------------
# Strict YAML: duplicate keys are errors, every node keeps its line, and
# aliases may add at most MAX_ALIAS_VALUES values.


@dataclass(frozen=True)
class _Node:
    value: Any  # dict[str, _Node], list[_Node] or a scalar
    line: int
    key_lines: dict[str, int] | None = None  # mappings: where each key is written


def _kind(value: Any) -> str:
    """A value as a user would name it, for messages (never a _Node repr)."""
    if isinstance(value, _Node):
        value = value.value
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if value is None:
        return "nothing"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


_Events: Any
try:  # libyaml's scanner and parser: ten times faster than PyYAML's own on a large file
    from yaml._yaml import CParser as _Events
    _PARSER: tuple[type, ...] = (_Events,)
except ImportError:  # PyYAML built without libyaml
    _Events = None
    _PARSER = (yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser)


class _StrictLoader(yaml.composer.Composer, *_PARSER, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):  # type: ignore[misc]
    """Events from libyaml when present (else PyYAML's parser), composed here, in Python, so aliases can be counted."""

    def __init__(self, stream: str) -> None:
        if _Events is not None:
            _Events.__init__(self, stream)
        else:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._alias_values = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if not self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)
        mark = self.peek_event().start_mark
        node = super().compose_node(parent, index)
        if node is None:  # PyYAML's signature allows it; an alias always resolves to a node
            return node
        self._alias_values += self._expanded_size(node, mark.line + 1)
        if self._alias_values > MAX_ALIAS_VALUES:
            raise ConfigError(
                f"line {mark.line + 1}: YAML aliases here expand to more than {MAX_ALIAS_VALUES} values; write the values out or use fewer aliases")
        return node

    def _expanded_size(self, node: yaml.Node, line: int) -> int:
        """Values `node` stands for once every alias inside it is expanded (memoised, so linear in the file)."""
        known = self._sizes.get(id(node))
        if known is not None:
            if known < 0:
                raise ConfigError(f"line {line}: a YAML alias refers to the node that contains it")
            return known
        self._sizes[id(node)] = -1  # in progress: a recursive anchor
        size = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                size += self._expanded_size(child, line)
                if size > MAX_ALIAS_VALUES:
                    break
        elif isinstance(node, yaml.MappingNode):
            for key, child in node.value:
                size += self._expanded_size(key, line) + self._expanded_size(child, line)
                if size > MAX_ALIAS_VALUES:
                    break
        self._sizes[id(node)] = size
        return size


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> _Node:
    if not isinstance(node, yaml.MappingNode):  # `!!map text`
        raise ConfigError(f"line {node.start_mark.line + 1}: a !!map tag on something that is not a mapping")
    result: dict[str, _Node] = {}
    key_lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        key = key.value if isinstance(key, _Node) else key
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            raise ConfigError(f"line {line}: keys must be strings, not {_kind(key)}")
        if key in result:
            raise ConfigError(f"line {line}: duplicate key {key!r}")
        result[key] = loader.construct_object(value_node, deep=True)
        key_lines[key] = line
    return _Node(result, node.start_mark.line + 1, key_lines)


def _construct_sequence(loader: _StrictLoader, node: yaml.SequenceNode, deep: bool = False) -> _Node:
    if not isinstance(node, yaml.SequenceNode):  # `!!seq text`
        raise ConfigError(f"line {node.start_mark.line + 1}: a !!seq tag on something that is not a list")
    return _Node([loader.construct_object(child, deep=True) for child in node.value], node.start_mark.line + 1)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _construct_plain(loader: _StrictLoader, node: yaml.ScalarNode) -> _Node:
    if node.tag == "tag:yaml.org,2002:str":
        return _Node(str(node.value), node.start_mark.line + 1)  # quoted or plain text: always a string
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


def _plain(node: _Node) -> Any:
    """The node tree as plain Python for msgspec."""
    if isinstance(node.value, dict):
        return {key: _plain(child) for key, child in node.value.items()}
    if isinstance(node.value, list):
        return [_plain(child) for child in node.value]
    return node.value


# ---------------------------------------------------------------------------
# msgspec's error, told with the file's line and the field's own words

Path = tuple[str | int, ...]
_AT = re.compile(r"^(?P<problem>.*?)(?: - at (?:`(?P<key>key)` in )?`(?P<path>\$[^`]*)`)?$", re.DOTALL)
_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+|\.\.\.)\]")


def _split_path(text: str) -> list[str | int]:
    parts: list[str | int] = []
    for name, index in _PART.findall(text[1:]):
        parts.append(name if name else (int(index) if index.isdigit() else "..."))
    return parts


def _node_at(root: _Node, path: Path) -> _Node:
    node = root
    for part in path:
        if isinstance(node.value, dict) and isinstance(part, str) and part in node.value:
            node = node.value[part]
            continue
        if isinstance(node.value, list) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            continue
        break
    return node


def _key_line(root: _Node, path: Path, key: str) -> int:
    node = _node_at(root, path)
    return (node.key_lines or {}).get(key, node.line)


def _where(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "the config"


def _strip(tp: Any) -> tuple[Any, list[Meta]]:
    """A type without its Annotated layers, and their Meta objects."""
    metas: list[Meta] = []
    while get_origin(tp) is Annotated:
        tp, *extras = get_args(tp)
        metas.extend(m for m in extras if isinstance(m, Meta))
    return tp, metas


def _members(tp: Any) -> list[Any]:
    tp, _ = _strip(tp)
    if get_origin(tp) is Union or type(tp).__name__ == "UnionType":
        return [m for arg in get_args(tp) for m in _members(arg)]
    return [tp]


def _struct_in(tp: Any) -> type[_Section] | None:
    return next((m for m in _members(tp) if isinstance(m, type) and issubclass(m, _Section)), None)


def _container_in(tp: Any, kind: type) -> Any:
    return next((m for m in _members(tp) if get_origin(m) is kind), None)


def _type_at(path: Path, key: bool = False) -> tuple[Any, list[Meta]]:
    """The declared type at a path through ConfigFile, with the Meta of its last step."""
    tp: Any = ConfigFile
    metas: list[Meta] = []
    for part in path:
        struct = _struct_in(tp)
        info = None
        if struct is not None and isinstance(part, str):
            info = next((f for f in msgspec.structs.fields(struct) if f.name == part), None)
        if info is not None:
            tp, metas = _strip(info.type)
            continue
        container = _container_in(tp, list if isinstance(part, int) else dict)
        if container is None:
            break
        tp, metas = _strip(get_args(container)[-1])
    if key:
        container = _container_in(tp, dict)
        if container is not None:
            return _strip(get_args(container)[0])
    return tp, metas


def _expectation(path: Path, key: bool = False) -> str:
    """What the value at `path` must be, in words: the field's `expect`, else the mapping its struct describes."""
    tp, metas = _type_at(path, key)
    for meta in reversed(metas):
        if meta.extra and "expect" in meta.extra:
            return str(meta.extra["expect"])
    for member in get_args(tp):  # `Glob | UnsetType`: the member's own words
        for meta in _strip(member)[1]:
            if meta.extra and "expect" in meta.extra:
                return str(meta.extra["expect"])
    struct = _struct_in(tp)
    if struct is not None:
        noun = f" ({struct.noun})" if struct.noun else ""
        return f"a mapping{noun} of {', '.join(struct.__struct_fields__)}"
    return "valid"


def _first_failing_key(data: Any, path: Path, problem: str) -> str | None:
    """msgspec names no key for a bad dict entry: find the first entry that alone has the same problem."""
    container = data
    for part in path:
        container = container[part]
    dict_type = _container_in(_type_at(path)[0], dict)
    if not isinstance(container, dict) or dict_type is None:
        return None
    entries: dict[str, Any] = container  # the loader accepts string keys only (_construct_mapping)
    for candidate, value in entries.items():
        try:
            msgspec.convert({candidate: value}, dict_type, strict=True)
        except msgspec.ValidationError as exc:
            match = _AT.match(str(exc))
            if match is not None and match["problem"] == problem:
                return candidate
    return None


def _translate(error: msgspec.ValidationError, root: _Node, data: Any) -> ConfigError:
    match = _AT.match(str(error))
    assert match is not None  # the pattern matches any text
    problem, on_key = match["problem"], bool(match["key"])
    parts = _split_path(match["path"] or "$")  # no path: the document itself

    if "..." in parts or on_key:
        # A dict's value (`[...]`) or key: msgspec does not say which entry.
        cut = parts.index("...") if "..." in parts else len(parts)
        key_name = _first_failing_key(data, tuple(parts[:cut]), problem)
        if key_name is not None:
            dict_path = tuple(parts[:cut])
            if on_key:
                return ConfigError(f"line {_key_line(root, dict_path, key_name)}: {_where(dict_path)}: "
                                   f"key {key_name!r} must be {_expectation(dict_path, key=True)}")
            parts = [*parts[:cut], key_name, *parts[cut + 1:]]
        else:
            parts = parts[:cut]
    path = tuple(parts)
    where = _where(path)
    node = _node_at(root, path)

    unknown = re.match(r"Object contains unknown field `(.*)`$", problem, re.DOTALL)
    if unknown:
        struct = _struct_in(_type_at(path)[0]) or ConfigFile
        allowed = ", ".join(struct.__struct_fields__)
        name = unknown.group(1)
        return ConfigError(f"line {_key_line(root, path, name)}: unknown key {name!r} in {where} (allowed: {allowed})")
    missing = re.match(r"Object missing required field `(.*)`$", problem, re.DOTALL)
    if missing:
        return ConfigError(f"line {node.line}: {where} needs {missing.group(1)!r}")
    return ConfigError(f"line {node.line}: {where} must be {_expectation(path)}, got {_kind(node)}")


# ---------------------------------------------------------------------------
# What the schema cannot say


_DURATION = re.compile(r"(\d{1,9})\s{0,8}([smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int | None:
    """'15m' -> 900; None when the text is not a duration."""
    m = _DURATION.fullmatch(text.strip())  # strip first: `\s*...\s*$` backtracks quadratically
    if not m:
        return None
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def _names(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


class _Builder:
    """Turns a ConfigFile the schema accepted into a Config, with line numbers for the remaining checks."""

    def __init__(self, root: _Node) -> None:
        self.root = root

    def fail(self, path: Path, message: str) -> ConfigError:
        return ConfigError(f"line {_node_at(self.root, path).line}: {message}")

    def item(self, path: Path, value: Any, index: int) -> Path:
        """Path of one name in a Names field (a bare string is its own item)."""
        return (*path, index) if isinstance(value, list) else path

    def duration(self, value: int | str, path: Path) -> int:
        seconds = value if isinstance(value, int) else parse_duration(value)
        if seconds is None or not 0 < seconds <= MAX_DURATION:
            raise self.fail(path, f"{_where(path)} must be {_expectation(path)}, got {_kind(value)}")
        return seconds

    def clock(self, text: str) -> int:
        hours, minutes = text.strip().split(":")
        return int(hours) * 60 + int(minutes)

    def window(self, entry: AutomationWindowEntry, path: Path) -> AutomationWindow:
        written = _node_at(self.root, path).key_lines or {}
        days: set[int] = set() if "days" in written else set(range(7))  # `days:` with no value: no day
        for index, day in enumerate(_names(entry.days)):
            if day.lower()[:3] not in DAYS:
                raise self.fail(self.item((*path, "days"), entry.days, index), f"days: unknown day {day!r} (use mon..sun)")
            days.add(DAYS.index(day.lower()[:3]))
        try:
            ZoneInfo(entry.tz)
        except (ZoneInfoNotFoundError, ValueError):
            at = (*path, "tz") if "tz" in written else path
            raise self.fail(at, f"tz: unknown time zone {entry.tz!r} (use an IANA name such as Europe/Berlin)") from None
        return AutomationWindow(
            days=frozenset(days),
            start_minute=self.clock(entry.start),
            end_minute=self.clock(entry.end),
            tz=entry.tz,
            users=_names(entry.users),
            hosts=_names(entry.hosts),
            line=_node_at(self.root, path).line,
        )

    def allow(self, entry: AllowEntry, path: Path) -> AllowRule:
        given = {name: getattr(entry, name) for name in entry.__struct_fields__ if getattr(entry, name) is not UNSET}
        if not given:
            raise self.fail(path, "an allow entry needs at least one of " + ", ".join(entry.__struct_fields__))
        return AllowRule(**given, line=_node_at(self.root, path).line)

    def egress_allow(self, entry: EgressAllowEntry, path: Path) -> EgressAllowRule:
        at = (*path, "destination")
        text = entry.destination.strip()
        network: IPNetwork | None = None
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            if not _HOST_GLOB.fullmatch(text) or re.fullmatch(r"[0-9.]+", text):
                raise self.fail(at, f"egress_allow: destination {text!r} is not a network such as 203.0.113.0/24, "
                                    "an address, or a host name glob such as *.s3.amazonaws.com") from None
            if not any(c.isalnum() for c in text):
                raise self.fail(at, f"egress_allow: destination {text!r} would allow every host")
            text = text.lower()
        if network is not None and network.prefixlen == 0:
            raise self.fail(at, f"egress_allow: destination {text!r} would allow every address")
        if network is None and entry.port is not UNSET:
            # Name globs match uploads' destinations, which carry no port; connects carry only an address.
            raise self.fail((*path, "port"), f"egress_allow: a port needs a network or address destination, "
                                             f"not the host name glob {text!r}")
        given = {name: getattr(entry, name) for name in ("port", "user", "host", "tool")
                 if getattr(entry, name) is not UNSET}
        return EgressAllowRule(destination=text, network=network, **given, line=_node_at(self.root, path).line)

    def networks(self, value: str | list[str] | None) -> tuple[IPNetwork, ...]:
        result = []
        for index, text in enumerate(_names(value)):
            try:
                result.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise self.fail(self.item(("internal_networks",), value, index),
                                f"internal_networks: {text!r} is not a network such as 10.0.0.0/8") from None
        return tuple(result)

    def roots(self, value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
        roots = _names(value)
        for index, root in enumerate(roots):
            if not root.startswith("/") or "%" in root or "\n" in root:
                raise self.fail(self.item(("dump_roots",), value, index), f"dump_roots: {root!r} must be an absolute directory path")
        return tuple(root.rstrip("/") or "/" for root in roots)

    def build(self, doc: ConfigFile, source: str) -> Config:
        values: dict[str, Any] = {"source": source}
        if doc.admins is not None:
            values["admin_users"] = _names(doc.admins.users)
            values["admin_groups"] = _names(doc.admins.groups)
        values["service_accounts"] = _names(doc.service_accounts)
        values["automation_windows"] = tuple(
            self.window(entry, ("automation_windows", i)) for i, entry in enumerate(doc.automation_windows or ()))
        values["allow"] = tuple(self.allow(entry, ("allow", i)) for i, entry in enumerate(doc.allow or ()))
        values["internal_networks"] = self.networks(doc.internal_networks)
        values["egress_allow"] = tuple(
            self.egress_allow(entry, ("egress_allow", i)) for i, entry in enumerate(doc.egress_allow or ()))
        windows = doc.windows or Windows()
        values["dump_after_access_seconds"] = self.duration(windows.dump_after_access, ("windows", "dump_after_access"))
        values["egress_after_dump_seconds"] = self.duration(windows.egress_after_dump, ("windows", "egress_after_dump"))
        values["dump_roots"] = self.roots(doc.dump_roots) if doc.dump_roots is not None else catalog.DEFAULT_DUMP_ROOTS
        if doc.extra_tools is not None:
            values["extra_db_clients"] = tuple(doc.extra_tools.db_clients.items())
            values["extra_dump_tools"] = tuple(doc.extra_tools.dump_tools.items())
            values["extra_transfer_tools"] = _names(doc.extra_tools.transfer_tools)
        section = doc.correlator or CorrelatorSection()
        values["correlator"] = CorrelatorSettings(
            max_pending_per_host=section.max_pending_per_host,
            state_expiry_seconds=self.duration(section.state_expiry, ("correlator", "state_expiry")),
            baseline_min_observations=section.baseline_min_observations,
            baseline_novel_after_seconds=self.duration(section.baseline_novel_after, ("correlator", "baseline_novel_after")),
            memory_mb=section.memory_mb,
        )
        return Config(**values)


def parse_config(text: str, source: str = "<config>") -> Config:
    """Parse config text; raises ConfigError with 'source: line N: reason'."""
    try:
        try:
            root = yaml.load(text, Loader=_StrictLoader)  # safe: a SafeLoader subclass
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark else ""
            position = getattr(exc, "position", None)  # reader errors (control characters) carry an offset
            if not mark and isinstance(position, int):
                where = f"line {text.count(chr(10), 0, position) + 1}: "
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{where}not valid YAML: {problem}") from None
        if root is None or root.value is None:
            root = _Node({}, 1, {})
        data = _plain(root)
        if isinstance(data, dict):
            # A top-level key with no value is the same as no key.
            data = {key: value for key, value in data.items() if value is not None or key not in ConfigFile.__struct_fields__}
        try:
            doc = msgspec.convert(data, ConfigFile, strict=True)
        except msgspec.ValidationError as exc:
            raise _translate(exc, root, data) from None
        return _Builder(root).build(doc, source)
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
    return parse_config_bytes(data, path)


def parse_config_bytes(data: bytes, source: str) -> Config:
    """Parse a config file's bytes (at most MAX_CONFIG_BYTES, UTF-8)."""
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: config larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{source}: line {line}: config is not UTF-8 (byte {exc.start})") from None
    return parse_config(text, source)


def example_text() -> str:
    """The commented example config with every key (data/config.example.yml)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "config.example.yml")
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def schema_text() -> str:
    """json_schema() as the committed docs/config.schema.json holds it."""
    return json.dumps(json_schema(), indent=2) + "\n"
