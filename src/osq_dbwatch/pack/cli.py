"""`osq-dbwatch pack`: render the osquery packs, their conf.d fragments or the Fleet bundle.

    osq-dbwatch pack render [--config FILE | --defaults] [--format osquery|fleet|conf] [--output DIR]
    osq-dbwatch pack check  [--config FILE] [--packs DIR] [--deploy DIR]

Without --output, `render` prints the main document (osquery: packs/dbwatch.conf;
fleet: lib/dbwatch.reports.yml; conf: osquery.conf.d/dbwatch.conf). With
--output it writes every file of that format under DIR. `check` exits 1 when
the files in packs/ or deploy/osquery.conf.d/ differ from what the renderer makes.
--defaults renders with the built-in config even where /etc/osq-dbwatch/config.yml
exists (what packs/ in the repository holds).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from ..cli import DbwatchError
from ..config import Config, load_config
from . import render

_FORMATS: dict[str, tuple[Callable[[Config], dict[str, str]], str]] = {
    "osquery": (render.render_osquery, "dbwatch.conf"),
    "fleet": (render.render_fleet, "lib/dbwatch.reports.yml"),
    "conf": (render.render_conf_fragments, "dbwatch.conf"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="pack_command", required=True)
    rend = sub.add_parser("render", help="render packs, conf.d fragments or the Fleet bundle")
    source = rend.add_mutually_exclusive_group()
    source.add_argument("--config", help="osq-dbwatch config (default /etc/osq-dbwatch/config.yml when present)")
    source.add_argument("--defaults", action="store_true", help="ignore config files: built-in defaults")
    rend.add_argument("--format", choices=sorted(_FORMATS), default="osquery")
    rend.add_argument("--output", metavar="DIR", help="write every file of the format under DIR")
    check = sub.add_parser("check", help="fail when rendered files on disk drift from the renderer")
    check.add_argument("--config", help="config the files were rendered with (default: built-in defaults)")
    check.add_argument("--packs", default="packs", metavar="DIR")
    check.add_argument("--deploy", default="deploy", metavar="DIR")


def _write_tree(files: dict[str, str], directory: str) -> None:
    for relative, text in sorted(files.items()):
        path = os.path.join(directory, relative)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)


def expected_files(config: Config, packs_dir: str, deploy_dir: str) -> dict[str, str]:
    """Path on disk -> the text the renderer makes for it."""
    out: dict[str, str] = {}
    for name, text in render.render_osquery(config).items():
        out[os.path.join(packs_dir, name)] = text
    for name, text in render.render_fleet(config).items():
        out[os.path.join(packs_dir, "fleet", name)] = text
    for name, text in render.render_conf_fragments(config).items():
        out[os.path.join(deploy_dir, "osquery.conf.d", name)] = text
    return out


def drift(config: Config, packs_dir: str, deploy_dir: str) -> list[str]:
    """Paths whose content differs from the renderer's (or that are missing)."""
    problems = []
    for path, text in sorted(expected_files(config, packs_dir, deploy_dir).items()):
        try:
            with open(path, encoding="utf-8") as handle:
                current = handle.read()
        except OSError:
            problems.append(f"{path}: missing")
            continue
        if current != text:
            problems.append(f"{path}: differs from the renderer")
    return problems


def run(args: argparse.Namespace) -> int:
    if args.pack_command == "render":
        config = Config() if args.defaults else load_config(args.config)
        builder, main_file = _FORMATS[args.format]
        try:
            files = builder(config)
        except render.RenderError as exc:
            raise DbwatchError(str(exc)) from None
        if args.output:
            try:
                _write_tree(files, args.output)
            except OSError as exc:
                raise DbwatchError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        else:
            sys.stdout.write(files[main_file])
        return 0
    config = load_config(args.config) if args.config else Config()
    problems = drift(config, args.packs, args.deploy)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print("re-render with `make pack`", file=sys.stderr)
        return 1
    return 0
