"""dbwatch_coverage: one row per blind-spot check of this host's telemetry."""

from __future__ import annotations

from typing import Iterable

from .base import TEXT, QueryContext, Row, Table


class DbwatchCoverage(Table):
    name = "dbwatch_coverage"
    description = "What osquery and this host can and cannot see for database access, dumps and egress."
    COLUMNS = (
        ("check_name", TEXT, "which check (audit_process_events, file_events_dump_roots, ...)"),
        ("status", TEXT, "ok, degraded or blind"),
        ("detail", TEXT, "one line: what was found and how to fix it"),
        ("source", TEXT, "core (osquery answered) or host (read from the host)"),
    )

    def generate(self, ctx: QueryContext) -> Iterable[Row]:
        raise NotImplementedError("dbwatch_coverage: in progress")
