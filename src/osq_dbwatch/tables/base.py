"""What every extension table shares: column types, the query context osquery
sends, and the one place that turns Python values into osquery cells.

A table module defines one `Table` subclass with `name`, `COLUMNS` and
`generate(ctx)`; `rows(ctx)` wraps it so every value reaches osquery as text
and a missing value is an omitted key (osquery's NULL), never the text "None".
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .env import TableEnv

TEXT = "TEXT"
INTEGER = "INTEGER"
BIGINT = "BIGINT"

# SQLite/osquery constraint operators (osquery's ConstraintOperator values).
OP_EQ = 2
OP_GT = 4
OP_LE = 8
OP_LT = 16
OP_GE = 32
OP_LIKE = 65
OP_GLOB = 66
OP_REGEXP = 67

Row = dict[str, Any]
Cells = dict[str, str]


@dataclass(frozen=True)
class Constraint:
    op: int
    expr: str


@dataclass
class QueryContext:
    """The part of osquery's generate context we use: constraints per column.

    Constraints are hints (SQLite re-filters the rows), so a table may ignore
    any of them; it must never return fewer rows than match.
    """

    constraints: dict[str, list[Constraint]] = field(default_factory=dict)
    cols_used: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, text: str | None) -> QueryContext:
        """Parse osquery's context JSON; anything malformed means "no constraints"."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return cls()
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> QueryContext:
        if not isinstance(data, dict):
            return cls()
        out: dict[str, list[Constraint]] = {}
        entries = data.get("constraints")
        if isinstance(entries, list):
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    continue
                items = entry.get("list")
                if not isinstance(items, list):
                    continue
                for item in items:
                    if not isinstance(item, dict):
                        continue
                    try:
                        op = int(item.get("op", 0))
                    except (TypeError, ValueError):
                        continue
                    expr = item.get("expr")
                    if isinstance(expr, (int, float)):
                        expr = str(expr)
                    if isinstance(expr, str):
                        out.setdefault(entry["name"], []).append(Constraint(op, expr))
        used = data.get("colsUsed")
        cols = tuple(c for c in used if isinstance(c, str)) if isinstance(used, list) else ()
        return cls(out, cols)

    def values(self, column: str, *ops: int) -> list[str]:
        return [c.expr for c in self.constraints.get(column, ()) if c.op in ops]

    def equals(self, column: str) -> list[str]:
        return self.values(column, OP_EQ)

    def int_equals(self, column: str) -> list[int] | None:
        """Integer `=` values, or None when the column has no usable `=` constraint."""
        found: list[int] = []
        for expr in self.equals(column):
            try:
                found.append(int(expr.strip(), 10))
            except ValueError:
                return None  # something we cannot narrow by: scan everything
        return found or None

    def lower_bound(self, column: str) -> float | None:
        """The strongest `>`/`>=` bound on a numeric column (inclusive), or None."""
        best: float | None = None
        for c in self.constraints.get(column, ()):
            if c.op not in (OP_GT, OP_GE, OP_EQ):
                continue
            try:
                value = float(c.expr)
            except ValueError:
                continue
            if best is None or value > best:
                best = value
        return best


def _text(text: str) -> str:
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # surrogateescape'd bytes from /proc or file names: Thrift can only
        # send UTF-8, so show the raw bytes as \xNN.
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def to_cell(value: Any) -> str | None:
    """One value as osquery text; None means "omit the key" (NULL)."""
    kind = type(value)
    if kind is str:
        return _text(value)
    if value is None:
        return None
    if kind is bool:
        return "1" if value else "0"
    if kind is int:
        return str(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return _text(value if isinstance(value, str) else str(value))


def to_cells(row: Mapping[str, Any], columns: Iterable[str]) -> Cells:
    """A row as osquery cells: declared columns only, text values, no "None"."""
    out: Cells = {}
    for name in columns:
        value = row.get(name)
        if value is None:
            continue
        kind = type(value)
        # the common cases inline (a big generate converts tens of thousands of cells)
        if kind is str and value.isascii():
            out[name] = value
        elif kind is int:
            out[name] = str(value)
        else:
            cell = to_cell(value)
            if cell is not None:
                out[name] = cell
    return out


class Table(ABC):
    """One extension table. Subclasses set `name`, `COLUMNS`, `description`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    COLUMNS: ClassVar[tuple[tuple[str, str, str], ...]]  # (name, type, meaning)

    def __init__(self, env: TableEnv) -> None:
        self.env = env

    @classmethod
    def columns(cls) -> list[tuple[str, str]]:
        """Ordered (column name, osquery type) pairs."""
        return [(name, kind) for name, kind, _ in cls.COLUMNS]

    @classmethod
    def column_names(cls) -> list[str]:
        return [name for name, _, _ in cls.COLUMNS]

    @abstractmethod
    def generate(self, ctx: QueryContext) -> Iterable[Row]:
        """Rows as dicts of Python values (None or absent = NULL)."""

    def rows(self, ctx: QueryContext | None = None) -> list[Cells]:
        """generate's rows as cells, converted in place: one list, each row dict
        freed as its cells are made (a 5,000-row answer never exists twice)."""
        names = self.column_names()
        generated = self.generate(ctx or QueryContext())
        rows: list[Any] = generated if type(generated) is list else list(generated)
        for index, row in enumerate(rows):
            rows[index] = to_cells(row, names)
        return rows


class Deadline:
    """A time budget for one generate; tables stop early and say so."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() >= self.end
