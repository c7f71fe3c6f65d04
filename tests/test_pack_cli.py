"""`osq-dbwatch pack` as a user meets it: render never drops files silently,
every option explains itself, check says OK when it passes."""

from __future__ import annotations

import argparse
import json
import os

import pytest

from osq_dbwatch.cli import main
from osq_dbwatch.config import Config
from osq_dbwatch.pack import cli as pack_cli, render


@pytest.mark.parametrize("fmt", ["osquery", "conf", "fleet"])
def test_render_without_output_refuses_and_names_every_file(fmt, capsys):
    assert main(["pack", "render", "--defaults", "--format", fmt]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    files = render.render_fleet(Config()) if fmt == "fleet" else pack_cli._FORMATS[fmt](Config())
    assert len(files) > 1 and f"makes {len(files)} files" in line and "--output DIR" in line
    for name in files:
        assert name in line


def test_render_file_prints_exactly_that_file(capsys):
    assert main(["pack", "render", "--defaults", "--file", "dbwatch-bpf.conf"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == json.loads(render.render_osquery(Config())["dbwatch-bpf.conf"])
    assert main(["pack", "render", "--defaults", "--format", "fleet", "--tier", "free",
                 "--file", "lib/dbwatch.reports.yml"]) == 0
    assert capsys.readouterr().out == render.render_fleet(Config(), "free")["lib/dbwatch.reports.yml"]
    assert main(["pack", "render", "--defaults", "--file", "nope.conf"]) == 2
    assert "no file 'nope.conf'" in capsys.readouterr().err


def test_render_output_writes_every_file(tmp_path, capsys):
    out = tmp_path / "free"
    assert main(["pack", "render", "--defaults", "--format", "fleet", "--tier", "free", "--output", str(out)]) == 0
    files = render.render_fleet(Config(), "free")
    for name, text in files.items():
        assert (out / name).read_text(encoding="utf-8") == text
    assert f"wrote {len(files)} files" in capsys.readouterr().err


def test_tier_is_for_fleet_only(capsys):
    assert main(["pack", "render", "--defaults", "--tier", "free", "--file", "dbwatch.conf"]) == 2
    assert "--tier applies to --format fleet only" in capsys.readouterr().err


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_pack_option_has_help_text():
    parser = argparse.ArgumentParser()
    pack_cli.add_arguments(parser)
    commands = _subparsers(parser)
    assert set(commands) == {"render", "check"}
    for name, sub in commands.items():
        options = [a for a in sub._actions if a.option_strings and "-h" not in a.option_strings]
        assert options, name
        for action in options:
            assert action.help and len(action.help) > 15, (name, action.option_strings)


def test_check_says_ok_when_it_passes(tmp_path, capsys):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert main(["pack", "check", "--packs", os.path.join(repo, "packs"), "--deploy", os.path.join(repo, "deploy")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: ") and "match the renderer" in out
    assert main(["pack", "check", "--packs", str(tmp_path), "--deploy", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "OK" not in captured.out and "fleet-free/lib/dbwatch.reports.yml: missing" in captured.err
