"""The pack's SQL sources: one file per query and variant, each with a checked header.

A source file is `queries/<name>[.<variant>].sql` and opens with `-- key: value`
lines; its name must be a query of the contract (contract.py), which says its
kind and columns. Every key below is required, no other key is allowed, and the header
ends at the first line that is not `-- key: value` (free `--` comments may
follow, then the SQL). `{{placeholder}}` markers in the SQL are filled by
render.py from the catalog, the extension's tables and the policy config.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

from .contract import BY_NAME, Kind

Variant = Literal["audit", "bpf", "native", "extension"]

QUERIES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "queries")

HEADER_KEYS: tuple[str, ...] = (
    "name",
    "variant",
    "interval",
    "description",
    "references",
    "false_positives",
    "tags",
)
VARIANTS: tuple[str, ...] = ("audit", "bpf", "native", "extension")
MIN_INTERVAL, MAX_INTERVAL = 1, 604800  # osquery's accepted range

_HEADER_LINE = re.compile(r"^--\s*([a-z_]+):\s*(.*?)\s*$")
# osquery silently drops these names (osquery-notes "Packs").
_BAD_NAME_SUFFIXES = ("epoch", "counter")
_BAD_NAME_PREFIXES = ("query.", "cache.", "config_views.")


class SourceError(Exception):
    """A malformed query source; str() names file and line."""


@dataclass(frozen=True)
class QuerySource:
    name: str
    variant: Variant
    kind: Kind
    interval: int
    description: str
    references: tuple[str, ...]
    false_positives: str
    tags: tuple[str, ...]
    sql: str  # template, comments stripped
    path: str


def check_query_name(name: str) -> str | None:
    """Why osquery would refuse or drop this scheduled query name, or None."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", name):
        return f"query name {name!r} must be lower-case letters, digits and '_'"
    if name.endswith(_BAD_NAME_SUFFIXES):
        return f"query name {name!r} ends in epoch/counter: osquery drops it"
    if name.startswith(_BAD_NAME_PREFIXES):
        return f"query name {name!r} has a prefix osquery reserves"
    return None


def _strip_sql(lines: list[str]) -> str:
    """SQL without `--` comment lines, whitespace collapsed (osquery wants one string)."""
    body = [line.split("--", 1)[0] if line.lstrip().startswith("--") else line for line in lines]
    text = " ".join(part.strip() for part in body if part.strip())
    return re.sub(r"\s+", " ", text).strip()


def parse_source(text: str, path: str) -> QuerySource:
    lines = text.splitlines()
    header: dict[str, str] = {}
    index = 0
    for index, line in enumerate(lines):
        m = _HEADER_LINE.match(line)
        if not m:
            break
        key, value = m.group(1), m.group(2)
        where = f"{path}:{index + 1}"
        if key not in HEADER_KEYS:
            raise SourceError(f"{where}: unknown header key {key!r} (allowed: {', '.join(HEADER_KEYS)})")
        if key in header:
            raise SourceError(f"{where}: duplicate header key {key!r}")
        if not value:
            raise SourceError(f"{where}: header key {key!r} is empty")
        header[key] = value
    else:
        index = len(lines)
    missing = [k for k in HEADER_KEYS if k not in header]
    if missing:
        raise SourceError(f"{path}:1: header lacks {', '.join(missing)}")
    problem = check_query_name(header["name"])
    if problem:
        raise SourceError(f"{path}:1: {problem}")
    if header["variant"] not in VARIANTS:
        raise SourceError(f"{path}:1: variant must be one of {', '.join(VARIANTS)}")
    query = BY_NAME.get(header["name"])
    if query is None:
        raise SourceError(f"{path}:1: query {header['name']!r} is not in the query contract (pack/contract.py)")
    try:
        interval = int(header["interval"])
    except ValueError:
        raise SourceError(f"{path}:1: interval must be an integer") from None
    if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise SourceError(f"{path}:1: interval {interval} outside {MIN_INTERVAL}..{MAX_INTERVAL}")
    expected_file = header["name"] + ("" if header["variant"] in ("native", "extension") else "." + header["variant"]) + ".sql"
    if os.path.basename(path) != expected_file:
        raise SourceError(f"{path}:1: file should be named {expected_file}")
    sql = _strip_sql(lines[index:])
    if not sql.endswith(";") or sql.count(";") != 1:
        raise SourceError(f"{path}: the SQL must be one statement ending in ';'")
    return QuerySource(
        name=header["name"],
        variant=header["variant"],  # type: ignore[arg-type]
        kind=query.kind,
        interval=interval,
        description=header["description"],
        references=tuple(r.strip() for r in header["references"].split(",") if r.strip()),
        false_positives=header["false_positives"],
        tags=tuple(t.strip() for t in header["tags"].split(",") if t.strip()),
        sql=sql,
        path=path,
    )


def load_sources(directory: str = QUERIES_DIR) -> tuple[QuerySource, ...]:
    """Every source in `directory`, sorted by (name, variant)."""
    sources = []
    for entry in sorted(os.listdir(directory)):
        if not entry.endswith(".sql"):
            continue
        path = os.path.join(directory, entry)
        with open(path, encoding="utf-8") as handle:
            sources.append(parse_source(handle.read(), path))
    seen: set[tuple[str, str]] = set()
    for source in sources:
        key = (source.name, source.variant)
        if key in seen:
            raise SourceError(f"{source.path}: a second {source.variant} source for {source.name}")
        seen.add(key)
    return tuple(sorted(sources, key=lambda s: (s.name, s.variant)))
