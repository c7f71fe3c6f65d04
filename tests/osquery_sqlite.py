"""osquery's Linux SQL surface in SQLite, for validating pack and cookbook queries.

osquery runs queries in SQLite over virtual tables. No osqueryd can be
installed here, so tests build ordinary SQLite tables with exactly the Linux
tables and columns of osquery's published schema (../shared/osquery/
schema-5.23.1.json, located like tests/conftest.py does), add the extension's
tables from osq_dbwatch.tables.TABLES, and register the osquery SQL functions
the pack uses with osquery's semantics (NULL on no match, an error where
osquery raises one). A query naming an unknown table or column fails to
prepare, as it would in osquery.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import sqlite3
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

from osq_dbwatch.tables import TABLES

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("OSQ_DBWATCH_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
SCHEMA_PATH = os.path.join(SHARED, "osquery", "schema-5.23.1.json")

_SQL_TYPES = {"text": "TEXT", "integer": "INTEGER", "bigint": "BIGINT", "unsigned_bigint": "UNSIGNED BIGINT", "double": "DOUBLE"}


@lru_cache(maxsize=1)
def linux_schema() -> dict[str, tuple[tuple[str, str], ...]]:
    """table -> ((column, type), ...) of every table osquery 5.23.1 has on Linux."""
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        data = json.load(handle)
    tables: dict[str, tuple[tuple[str, str], ...]] = {}
    for table in data:
        if "linux" not in table.get("platforms", ()):
            continue
        columns = tuple(
            (c["name"], _SQL_TYPES.get(c["type"], "TEXT"))
            for c in table["columns"]
            if not c.get("platforms") or "linux" in c["platforms"]
        )
        tables[table["name"]] = columns
    return tables


def extension_schema() -> dict[str, tuple[tuple[str, str], ...]]:
    return {name: tuple((col, typ) for col, typ in cls.columns()) for name, cls in TABLES.items()}


# ---------------------------------------------------------------------------
# osquery SQL functions (osquery/sql/sqlite_string.cpp, sqlite_network.cpp)


def regex_match(value: Any, pattern: Any, index: Any) -> str | None:
    if value is None or pattern is None or index is None:
        return None
    try:
        m = re.search(str(pattern), str(value))
    except re.error as exc:
        raise ValueError(f"Invalid regex: {exc}") from None
    if not m or int(index) > (m.re.groups):
        return None
    return m.group(int(index))


def split(value: Any, tokens: Any, index: Any) -> str | None:
    """osquery's split(): any character of tokens separates, empty pieces dropped, pieces trimmed."""
    if value is None or tokens is None or index is None:
        return None
    tokens = str(tokens)
    if not tokens:
        raise ValueError("Invalid input to split function")
    pieces = [p.strip() for p in re.split("[" + re.escape(tokens) + "]", str(value)) if p]
    i = int(index)
    return pieces[i] if 0 <= i < len(pieces) else None


def in_cidr_block(cidr: Any, address: Any) -> int:
    """osquery's in_cidr_block(): boost's network.hosts(), errors on bad input."""
    if not isinstance(cidr, str):
        raise ValueError("CIDR must be a string")
    if not isinstance(address, str):
        raise ValueError("IP address must be a string")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError("IP address cannot be parsed") from None
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise ValueError("CIDR cannot be parsed") from None
    if net.version != ip.version:
        raise ValueError(f"CIDR for IP address v{ip.version} cannot be parsed")
    if ip not in net:
        return 0
    if net.version == 4 and net.prefixlen <= 30 and ip in (net.network_address, net.broadcast_address):
        return 0  # boost's hosts() leaves out the network and broadcast addresses
    return 1


OSQUERY_FUNCTIONS: dict[str, tuple[int, Any]] = {
    "regex_match": (3, regex_match),
    "split": (3, split),
    "in_cidr_block": (2, in_cidr_block),
}


class OsqueryDB:
    """An in-memory SQLite with osquery's Linux tables, the extension's, and osquery's functions."""

    def __init__(self, with_extension: bool = True) -> None:
        self.conn = sqlite3.connect(":memory:")
        self.conn.row_factory = sqlite3.Row
        self.schema = dict(linux_schema())
        if with_extension:
            for name, cols in extension_schema().items():
                if name in self.schema:
                    raise AssertionError(f"extension table {name} clashes with a built-in table")
                self.schema[name] = cols
        for name, cols in self.schema.items():
            body = ", ".join(f'"{col}" {typ}' for col, typ in cols)
            self.conn.execute(f'CREATE TABLE "{name}" ({body})')
        for fname, (nargs, fn) in OSQUERY_FUNCTIONS.items():
            self.conn.create_function(fname, nargs, fn, deterministic=True)

    def insert(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        columns = {c for c, _ in self.schema[table]}
        for row in rows:
            unknown = set(row) - columns
            if unknown:
                raise KeyError(f"{table} has no column(s) {sorted(unknown)}")
            keys = list(row)
            self.conn.execute(
                f'INSERT INTO "{table}" ({", ".join(chr(34) + k + chr(34) for k in keys)}) VALUES ({", ".join("?" for _ in keys)})',
                [row[k] for k in keys],
            )

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def columns_of(self, sql: str) -> list[str]:
        cursor = self.conn.execute(sql)
        return [d[0] for d in cursor.description or ()]

    def close(self) -> None:
        self.conn.close()
