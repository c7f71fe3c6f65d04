"""The extension's tables: one module per table, listed once in TABLES.

`TABLES` maps table name -> table class; each class has `name`, `columns()`
(ordered (column, osquery type) pairs) and `description`. The pack renderer
reads the columns from here, the Thrift server and `osq-dbwatch tables` serve
exactly these tables.
"""

from __future__ import annotations

from .base import Table
from .db_cli_sessions import DbCliSessions
from .db_client_history import DbClientHistory
from .dbwatch_coverage import DbwatchCoverage
from .dump_like_files import DumpLikeFiles

TABLES: dict[str, type[Table]] = {
    cls.name: cls for cls in (DbCliSessions, DumpLikeFiles, DbClientHistory, DbwatchCoverage)
}

__all__ = ["TABLES", "Table"]
