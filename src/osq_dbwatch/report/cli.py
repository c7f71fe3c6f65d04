"""`osq-dbwatch report`: findings in, one self-contained HTML page (or text) out.

    osq-dbwatch report [--output FILE] [--text] [--title TEXT]
                       [--host NAME] [--user NAME] [--min-severity LEVEL] [FINDINGS ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from ..cli import DbwatchError
from ..correlate.findings import SEVERITY_NAMES
from ..progress import Progress
from .model import Latest, display, select
from .read import ReadError, read_findings

_LEVELS = {name.lower(): sid for sid, name in SEVERITY_NAMES.items()} | {str(sid): sid for sid in SEVERITY_NAMES}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("findings", nargs="*", metavar="FINDINGS",
                        help="OCSF findings files as `correlate` writes them; none or - reads standard input")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="write the HTML report to FILE (mode 0600, replaced whole); default standard output")
    parser.add_argument("--text", action="store_true", help="print the chains' timelines as text instead of HTML")
    parser.add_argument("--title", default="osq-dbwatch report", help="the page's title")
    parser.add_argument("--host", default="", help="only chains on this host")
    parser.add_argument("--user", default="", help="only chains of this user")
    parser.add_argument("--min-severity", default="", metavar="LEVEL",
                        help="only chains at least this severe (1-5 or low, medium, high, critical)")


def _write_file(path: str, data: bytes) -> None:
    """Replace `path` whole with `data`, mode 0600; a symlink at `path` is replaced, never followed."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path) and not os.path.islink(path):
        raise DbwatchError(f"{path}: is a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".osq-dbwatch-report-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise DbwatchError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise DbwatchError(f"{path}: cannot write: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    level = args.min_severity.strip().lower()
    if level and level not in _LEVELS:
        raise DbwatchError(f"--min-severity {display(args.min_severity)!r}: use 1-5 or "
                           + ", ".join(n.lower() for n in SEVERITY_NAMES.values()))
    inputs = args.findings or ["-"]
    if inputs.count("-") > 1:
        raise DbwatchError("standard input given more than once")
    latest = Latest()
    progress = Progress("report", counter=lambda: len(latest), counter_name="chains")
    try:
        loaded = read_findings(inputs, latest, progress=progress)
    except ReadError as exc:
        raise DbwatchError(str(exc)) from None
    finally:
        progress.close()
    chains = select(latest.chains(), args.host, args.user, _LEVELS.get(level, 0))
    if args.text:
        from .text import render_text

        sys.stdout.write(render_text(chains, loaded))
        sys.stdout.flush()
        return 0
    from .html import render_html

    page = render_html(chains, loaded, title=args.title).encode("utf-8")
    if args.output and args.output != "-":
        _write_file(args.output, page)
    else:
        sys.stdout.buffer.write(page)
        sys.stdout.buffer.flush()
    return 0
