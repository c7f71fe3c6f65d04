"""db_client_history: entries of database client history files of local users."""

from __future__ import annotations

from typing import Iterable

from .base import BIGINT, INTEGER, TEXT, QueryContext, Row, Table


class DbClientHistory(Table):
    name = "db_client_history"
    description = "Database client history entries (psql, mysql, mongosh, redis-cli, sqlite3) of every local user."
    COLUMNS = (
        ("uid", BIGINT, "uid of the home's user"),
        ("user", TEXT, "user name"),
        ("file", TEXT, "history file"),
        ("file_mtime", BIGINT, "history file's last modification, seconds since the epoch"),
        ("line", BIGINT, "line number (from the start of the read tail when from_tail = 1)"),
        ("from_tail", INTEGER, "1 when the file exceeded the read bound and only its tail was read"),
        ("command", TEXT, "history entry, secrets redacted, at most 4 KiB"),
        ("engine", TEXT, "engine of the client that wrote the file"),
        ("dump_like", INTEGER, "1 when the entry writes data out (\\copy to, INTO OUTFILE, mongoexport-like, SAVE ...)"),
        ("intent", TEXT, "the dump intent found"),
        ("output_path", TEXT, "output file the entry names"),
    )

    def generate(self, ctx: QueryContext) -> Iterable[Row]:
        raise NotImplementedError("db_client_history: in progress")
