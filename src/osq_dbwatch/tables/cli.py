"""`osq-dbwatch tables [NAME] [--json] [--config FILE]`: the tables on this host, no osquery.

The same table code the extension serves, run in-process. dbwatch_coverage
has no core to ask here and says so in its rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from ..config import load_config
from . import TABLES
from .base import Cells, QueryContext
from .env import ConfigHolder, TableEnv, config_path_from_env

WIDE = 6  # tables with more columns print one "column value" block per row
TOP = 5  # rows shown per table without --all (a glance at a host, not an inventory)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", choices=sorted(TABLES), metavar="NAME",
                        help=f"one table ({', '.join(TABLES)}); all when omitted")
    parser.add_argument("--json", action="store_true", help="JSON: an array of rows for NAME, else {table: rows}")
    parser.add_argument("--all", action="store_true",
                        help=f"every row (default: the row count and the first {TOP} rows of each table; --json is always whole)")
    parser.add_argument("--config", metavar="FILE",
                        help="policy config (default: $OSQ_DBWATCH_CONFIG, else /etc/osq-dbwatch/config.yml)")


def _render_table(name: str, columns: list[str], rows: list[Cells], out: TextIO, limit: int | None = None) -> None:
    out.write(f"{name}: {len(rows)} row{'s' if len(rows) != 1 else ''}\n")
    if not rows:
        out.write("\n")
        return
    hidden = 0
    if limit is not None and len(rows) > limit:
        hidden = len(rows) - limit
        rows = rows[:limit]
    if len(columns) <= WIDE:
        widths = [max(len(c), *(len(r.get(c, "")) for r in rows)) for c in columns]
        out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
        out.write("  ".join("-" * w for w in widths) + "\n")
        out.writelines(
            "  ".join(_clean(row.get(c, "")).ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n" for row in rows
        )
    else:
        width = max(len(c) for c in columns)
        for index, row in enumerate(rows, start=1):
            out.write(f"-[ {name} {index} ]\n")
            for column in columns:
                if column in row and row[column] != "":
                    out.write(f"  {column.ljust(width)}  {_clean(row[column])}\n")
    if hidden:
        out.write(f"... {hidden} more row{'s' if hidden != 1 else ''} (--all shows every row)\n")
    out.write("\n")


def _clean(text: str) -> str:
    """Terminal-safe: control characters from hostile names and argv are shown escaped."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def run(args: argparse.Namespace) -> int:
    path = args.config or config_path_from_env()
    if path is not None:
        load_config(path)  # a bad config is an error here (ConfigError: one line, exit 2)
    env = TableEnv(ConfigHolder(path))
    names = [args.name] if args.name else list(TABLES)
    results: dict[str, list[Cells]] = {}
    status = 0
    for name in names:
        table = TABLES[name](env)
        try:
            results[name] = table.rows(QueryContext())
        except Exception as exc:  # noqa: BLE001 - a table's bug (any type): report it, keep going with the other tables
            print(f"osq-dbwatch tables: {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            status = 1
    if args.json:
        payload = results[args.name] if args.name and args.name in results else results
        json.dump(payload, sys.stdout, indent=1, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        for name, rows in results.items():
            _render_table(name, TABLES[name].column_names(), rows, sys.stdout, None if args.all else TOP)
    return status
