"""`osq-dbwatch config example|validate|schema`: write, check and describe the policy config.

    osq-dbwatch config example            the commented config with every key
    osq-dbwatch config validate FILE ...  "FILE: OK", or one line naming file and line (exit 2); - reads stdin
    osq-dbwatch config schema             the JSON Schema for editors (docs/config.schema.json)
"""

from __future__ import annotations

import argparse
import sys

from .config import MAX_CONFIG_BYTES, ConfigError, example_text, load_config, parse_config_bytes, schema_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("example", help="print a commented config with every key",
                       description="Print a commented config with every key (valid as it is).")
    validate = actions.add_parser("validate", help="check config files: FILE: OK, or one file:line error and exit 2",
                                  description="Check config files as the extension, pack renderer and correlator read them.")
    validate.add_argument("files", nargs="+", metavar="FILE", help="config file; - reads standard input")
    actions.add_parser("schema", help="print the config's JSON Schema (for editors)",
                       description="Print the config's JSON Schema (draft 2020-12), generated from the code.")


def _validate(path: str) -> None:
    if path == "-":
        parse_config_bytes(sys.stdin.buffer.read(MAX_CONFIG_BYTES + 1), "<stdin>")
    else:
        load_config(path)


def run(args: argparse.Namespace) -> int:
    if args.action == "example":
        sys.stdout.write(example_text())
    elif args.action == "schema":
        sys.stdout.write(schema_text())
    else:
        failed = False
        for path in args.files:
            try:
                _validate(path)
            except ConfigError as exc:
                print(exc, file=sys.stderr)
                failed = True
            else:
                print(f"{'<stdin>' if path == '-' else path}: OK")
        return 2 if failed else 0
    return 0
