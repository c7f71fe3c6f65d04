"""`osq-dbwatch config example|validate|schema`, and the JSON Schema the code generates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from osq_dbwatch import catalog
from osq_dbwatch.config import example_text, json_schema, key_paths, parse_config, schema_text

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = os.path.join(REPO, "tests", "files")


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "osq_dbwatch", "config", *args], input=stdin.decode() if stdin else None,
                          capture_output=True, text=True, timeout=60)


def test_key_paths_cover_the_nested_sections() -> None:
    paths = key_paths()
    for path in ("admins.groups", "automation_windows.tz", "allow.cmdline", "windows.egress_after_dump",
                 "extra_tools.db_clients", "correlator.baseline_novel_after", "dump_roots"):
        assert path in paths, path


# ---------------------------------------------------------------------------
# example


def uncommented(text: str) -> str:
    """The example with its settings switched on ("# " lines; "## " lines are explanations)."""
    return "\n".join(line[2:] for line in text.splitlines() if line.startswith("# "))


def test_example_prints_the_packaged_file_and_it_parses_as_the_defaults() -> None:
    proc = cli("example")
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout == example_text()
    config = parse_config(proc.stdout, "example")
    assert config == parse_config("", "example")  # as shipped, every setting is commented out


def test_example_with_its_settings_on_sets_every_key_and_parses() -> None:
    text = uncommented(example_text())
    config = parse_config(text, "example")
    assert config.admin_groups == ("dba",) and config.extra_db_clients == (("vsql", "generic"),)
    assert config.allow[0].host == "etl-*"
    tree = yaml.safe_load(text)

    def has(node: Any, parts: list[str]) -> bool:
        if not parts:
            return True
        if isinstance(node, list):
            return any(has(item, parts) for item in node)
        return isinstance(node, dict) and parts[0] in node and has(node[parts[0]], parts[1:])

    missing = [path for path in key_paths() if not has(tree, path.split("."))]
    assert missing == []


def test_example_states_the_defaults_where_it_shows_them() -> None:
    config = parse_config(uncommented(example_text()), "example")
    assert config.dump_roots == catalog.DEFAULT_DUMP_ROOTS
    assert (config.dump_after_access_seconds, config.egress_after_dump_seconds) == (900, 900)
    from osq_dbwatch.config import CorrelatorSettings

    assert config.correlator == CorrelatorSettings()


def test_the_installed_example_is_the_packaged_one() -> None:
    # deploy/ is copied to hosts without the source tree: it carries a copy, kept equal here.
    with open(os.path.join(REPO, "deploy", "config.example.yml"), encoding="utf-8") as handle:
        assert handle.read() == example_text(), "cp src/osq_dbwatch/data/config.example.yml deploy/config.example.yml"


# ---------------------------------------------------------------------------
# validate


def test_validate_good_files_says_ok(tmp_path: Path) -> None:
    good = os.path.join(FILES, "good-full.yml")
    proc = cli("validate", good, os.path.join(REPO, "examples", "config.yml"))
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.splitlines() == [f"{good}: OK", f"{os.path.join(REPO, 'examples', 'config.yml')}: OK"]


def test_validate_a_bad_file_is_one_file_line_error() -> None:
    bad = os.path.join(FILES, "bad-tz.yml")
    proc = cli("validate", bad)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"{bad}: line 4: tz: unknown time zone 'CEST' (use an IANA name such as Europe/Berlin)"]


def test_validate_reports_each_file_and_fails_when_one_fails() -> None:
    good, bad = os.path.join(FILES, "good-full.yml"), os.path.join(FILES, "bad-unknown-key.yml")
    proc = cli("validate", bad, good)
    assert proc.returncode == 2
    assert proc.stdout.splitlines() == [f"{good}: OK"]
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith(f"{bad}: line 3: unknown key")


def test_validate_reads_standard_input() -> None:
    proc = cli("validate", "-", stdin=example_text().encode())
    assert (proc.returncode, proc.stdout) == (0, "<stdin>: OK\n")
    proc = cli("validate", "-", stdin=b"windows:\n  dump_after_access: soon\n")
    assert proc.returncode == 2
    assert proc.stderr.startswith("<stdin>: line 2: windows.dump_after_access must be a duration")


def test_validate_needs_a_file() -> None:
    proc = cli("validate")
    assert proc.returncode == 2 and "FILE" in proc.stderr


# ---------------------------------------------------------------------------
# schema


def test_schema_command_prints_the_committed_schema() -> None:
    proc = cli("schema")
    assert proc.returncode == 0
    with open(os.path.join(REPO, "docs", "config.schema.json"), encoding="utf-8") as handle:
        committed = handle.read()
    assert proc.stdout == schema_text()
    assert committed == schema_text(), "docs/config.schema.json is stale: osq-dbwatch config schema > docs/config.schema.json"


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json_schema())


def _yaml(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize("name", ["good-full.yml", "contract-example.yml", "empty.yml"])
def test_schema_accepts_the_good_files(name: str) -> None:
    data = _yaml(os.path.join(FILES, name)) or {}
    # YAML 1.1 reads unquoted 23:00 as base-60; the loader keeps it as text, and so must this comparison.
    for window in data.get("automation_windows") or []:
        for key in ("start", "end"):
            if isinstance(window.get(key), int):
                window[key] = f"{window[key] // 60:02d}:{window[key] % 60:02d}"
    assert list(_validator().iter_errors(data)) == []


def test_schema_accepts_the_example_and_the_examples_config() -> None:
    assert list(_validator().iter_errors(yaml.safe_load(uncommented(example_text())))) == []
    assert list(_validator().iter_errors(_yaml(os.path.join(REPO, "examples", "config.yml")))) == []


@pytest.mark.parametrize(
    "data",
    [
        {"service_acounts": ["backup"]},
        {"admins": {"groups": "dba", "users": [True]}},
        {"admins": ["alice"]},
        {"automation_windows": [{"start": "01:00"}]},
        {"automation_windows": [{"start": "25:30", "end": "01:00"}]},
        {"allow": [{}]},
        {"allow": [{"command": "x"}]},
        {"windows": {"dump_after_access": "soon"}},
        {"windows": {"dump_after_access": 0}},
        {"extra_tools": {"db_clients": {"vsql": "vertica"}}},
        {"extra_tools": {"db_clients": {"bad name": "mysql"}}},
        {"correlator": {"max_pending_per_host": 0}},
        {"dump_roots": ["exports"]},
    ],
)
def test_schema_and_loader_reject_the_same_mistakes(data: dict[str, Any]) -> None:
    assert list(_validator().iter_errors(data)), data
    from osq_dbwatch.config import ConfigError

    with pytest.raises(ConfigError):
        parse_config(json.dumps(data), "c.json")  # JSON is YAML
