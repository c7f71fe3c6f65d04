"""dump_like_files: recently modified dump-like files under the dump roots."""

from __future__ import annotations

from typing import Iterable

from .base import BIGINT, INTEGER, TEXT, QueryContext, Row, Table


class DumpLikeFiles(Table):
    name = "dump_like_files"
    description = "Recently modified files that look like database dumps, by name or by content."
    COLUMNS = (
        ("path", TEXT, "file path (for the truncation marker row: the root being scanned)"),
        ("root", TEXT, "dump root the file was found under"),
        ("size", BIGINT, "bytes"),
        ("mtime", BIGINT, "last modification, seconds since the epoch"),
        ("ctime", BIGINT, "last status change, seconds since the epoch"),
        ("inode", BIGINT, "inode number"),
        ("uid", BIGINT, "owner uid"),
        ("owner", TEXT, "owner name"),
        ("mode", TEXT, "permission bits, octal"),
        ("kind_by_name", TEXT, "strong or weak dump-like suffix (after compression suffixes)"),
        ("kind_by_content", TEXT, "signature in the first 4 KiB (pg_dump_custom, mysqldump, csv, gzip, ...)"),
        ("writer_pid", BIGINT, "a process holding the file open for writing"),
        ("writer_name", TEXT, "that process's name"),
        ("truncated", INTEGER, "1 on the marker row when the scan stopped at a bound"),
        ("note", TEXT, "marker row: which bound stopped the scan"),
    )

    def generate(self, ctx: QueryContext) -> Iterable[Row]:
        raise NotImplementedError("dump_like_files: in progress")
