"""`osq-dbwatch pack`: render the osquery packs, their conf.d fragments or the Fleet bundle.

    osq-dbwatch pack render [--config FILE | --defaults] [--format osquery|fleet|conf]
                            [--tier premium|free] (--output DIR | --file NAME)
    osq-dbwatch pack check  [--config FILE] [--packs DIR] [--deploy DIR]

Every format makes several files: --output writes them all under DIR, --file
prints one; with neither, `render` refuses and lists the files. `check` exits 1
when the files in packs/ (osquery packs, fleet/, fleet-free/) or
deploy/osquery.conf.d/ differ from what the renderer makes, and prints OK otherwise.
--defaults renders with the built-in config even where /etc/osq-dbwatch/config.yml
exists (what packs/ in the repository holds).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from ..cli import DbwatchError
from ..config import Config, load_config
from . import render

_FORMATS: dict[str, Callable[[Config], dict[str, str]]] = {
    "osquery": render.render_osquery,
    "fleet": render.render_fleet,
    "conf": render.render_conf_fragments,
}
# Where `make pack` writes each format (and `pack check` compares): under --packs or --deploy.
FLEET_DIRS = {"premium": "fleet", "free": "fleet-free"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="pack_command", required=True)
    rend = sub.add_parser(
        "render", help="render packs, conf.d fragments or the Fleet bundle",
        description="Render the osquery packs, their osquery.conf.d fragments or the Fleet GitOps bundle. "
                    "Every format makes several files: write them with --output DIR, or print one with --file NAME.")
    source = rend.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="FILE",
                        help="osq-dbwatch config to render with (default /etc/osq-dbwatch/config.yml when present)")
    source.add_argument("--defaults", action="store_true",
                        help="ignore config files and render with the built-in defaults (what the repository's packs/ holds)")
    rend.add_argument("--format", choices=sorted(_FORMATS), default="osquery",
                      help="osquery: packs for /etc/osquery/packs; conf: the osquery.conf.d fragments that load them; "
                           "fleet: a Fleet GitOps bundle (default: %(default)s)")
    rend.add_argument("--tier", choices=render.FLEET_TIERS, default=None,
                      help="with --format fleet: premium (label-scoped reports, critical policies; Fleet Premium) or "
                           "free (no labels: the queries guard themselves) (default: premium)")
    where = rend.add_mutually_exclusive_group()
    where.add_argument("--output", metavar="DIR", help="write every file of the format under DIR")
    where.add_argument("--file", metavar="NAME", help="print only this one file of the format on standard output")
    check = sub.add_parser("check", help="fail when rendered files on disk drift from the renderer",
                           description="Compare the rendered files on disk with what the renderer makes now; "
                                       "exit 1 and list the files that differ, else print OK.")
    check.add_argument("--config", metavar="FILE",
                       help="config the files were rendered with (default: built-in defaults)")
    check.add_argument("--packs", default="packs", metavar="DIR",
                       help="directory holding the osquery packs and the fleet/ and fleet-free/ bundles (default: %(default)s)")
    check.add_argument("--deploy", default="deploy", metavar="DIR",
                       help="directory holding osquery.conf.d/ (default: %(default)s)")


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
    for tier, directory in FLEET_DIRS.items():
        for name, text in render.render_fleet(config, tier).items():
            out[os.path.join(packs_dir, directory, name)] = text
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


def _render(args: argparse.Namespace) -> int:
    if args.tier is not None and args.format != "fleet":
        raise DbwatchError("--tier applies to --format fleet only")
    config = Config() if args.defaults else load_config(args.config)
    try:
        if args.format == "fleet":
            files = render.render_fleet(config, args.tier or "premium")
        else:
            files = _FORMATS[args.format](config)
    except render.RenderError as exc:
        raise DbwatchError(str(exc)) from None
    if args.output:
        try:
            _write_tree(files, args.output)
        except OSError as exc:
            raise DbwatchError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"wrote {len(files)} files under {args.output}", file=sys.stderr)
        return 0
    names = ", ".join(sorted(files))
    if args.file is None:
        # Several documents on one stream would be neither valid JSON nor YAML.
        raise DbwatchError(f"--format {args.format} makes {len(files)} files ({names}): write them all with "
                           f"--output DIR, or print one with --file NAME")
    if args.file not in files:
        raise DbwatchError(f"--format {args.format} makes no file {args.file!r} (it makes {names})")
    sys.stdout.write(files[args.file])
    return 0


def run(args: argparse.Namespace) -> int:
    if args.pack_command == "render":
        return _render(args)
    config = load_config(args.config) if args.config else Config()
    expected = expected_files(config, args.packs, args.deploy)
    problems = drift(config, args.packs, args.deploy)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print("re-render with `make pack`", file=sys.stderr)
        return 1
    print(f"OK: {len(expected)} rendered files under {args.packs} and {args.deploy} match the renderer")
    return 0
