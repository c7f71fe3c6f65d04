"""`osq-dbwatch` command line: one sub-command per part, each in its own module.

Only this module parses arguments. Each sub-command module exposes
`add_arguments(parser)` and `run(args) -> int`; errors derived from
`DbwatchError` (or ConfigError) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .config import ConfigError

# name -> (module, help). A new sub-command is one line here plus its module.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "tables": ("osq_dbwatch.tables.cli", "print the extension's tables on this host, without osquery"),
    "extension": ("osq_dbwatch.tables.server", "run as an osquery extension (what extension/osq_dbwatch.ext execs)"),
    "pack": ("osq_dbwatch.pack.cli", "render the osquery pack or the Fleet bundle"),
    "correlate": ("osq_dbwatch.correlate.cli", "read osquery results logs and write findings"),
    "baseline": ("osq_dbwatch.correlate.baseline_cli", "show the baseline the correlator learned"),
    "report": ("osq_dbwatch.report.cli", "render findings as one self-contained HTML page (or --text)"),
    "config": ("osq_dbwatch.config_cli", "write an example config, validate one, or print its JSON Schema"),
    "spark": ("osq_dbwatch.spark.cli", "run the correlator as a Spark Structured Streaming job (extra [spark])"),
}


class DbwatchError(Exception):
    """A user-facing error: the message is printed as one line."""


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `chosen`, only that sub-command's module is imported (the others' arguments are not needed)."""
    parser = argparse.ArgumentParser(prog="osq-dbwatch", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"osq-dbwatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if chosen is not None and name != chosen:
            sub.add_parser(name, help=help_text, description=help_text)  # listed, never imported
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("osq_dbwatch"):
                continue  # sub-command not built into this distribution
            raise
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


def _chosen(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line (the first word that is not an option), if any."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in SUBCOMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(_chosen(sys.argv[1:] if argv is None else argv))
    # Sub-commands that must tolerate unknown arguments (the osquery extension:
    # osqueryd may pass flags we do not know) set `_accepts_extra`.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "_accepts_extra", False):
        parser.error("unrecognized arguments: " + " ".join(extra))
    try:
        return int(args._run(args) or 0)
    except (DbwatchError, ConfigError) as exc:
        print(f"osq-dbwatch {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    finally:
        if argv is None:
            # The program ends next and its objects go with it: without this the
            # interpreter's exit walks all of them once more in a last collection
            # (a large correlator state: 7% of a run).
            gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
