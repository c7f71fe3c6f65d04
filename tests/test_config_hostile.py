"""Hostile configs: YAML alias bombs inside valid keys, and the messages a
broken config gives (issue 11: item 6 and "config messages").

A rejected config is one file:line error within a second; the extension keeps
serving with defaults and says so in dbwatch_coverage; the correlator exits 2.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from core_standin import CoreStandin
from correlate_scenarios.helpers import correlate_proc

from osq_dbwatch.config import MAX_ALIAS_VALUES, ConfigError, load_config, parse_config

WINDOW = "{days: [mon, tue, wed, thu, fri], start: '01:00', end: '03:30', tz: UTC, users: [backup, nagios, etl]}"


def window_bomb(path: Path, repeats: int = 40_000) -> Path:
    """Issue 11's bomb: one anchored automation window, repeated by alias (about 550 KB)."""
    lines = ["admins:", "  groups: [dba]", "automation_windows:", f"  - &backup_w {WINDOW}"]
    lines += ["  - *backup_w"] * repeats
    path.write_text("\n".join(lines) + "\n")
    return path


def rejected(path: Path) -> tuple[str, float]:
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    return str(info.value), time.monotonic() - start


def test_window_bomb_is_rejected_within_a_second_with_file_and_line(tmp_path: Path) -> None:
    path = window_bomb(tmp_path / "config.yml")
    assert 500_000 < path.stat().st_size < 1 << 20  # inside the size bound: the alias bound must catch it
    message, seconds = rejected(path)
    assert seconds < 1.0, seconds
    assert message.startswith(f"{path}: line ") and "alias" in message and "\n" not in message
    line = int(message.split(": line ", 1)[1].split(":", 1)[0])
    # the first alias past the bound, not the end of the file
    assert 5 < line < 5 + MAX_ALIAS_VALUES, message


def test_aliased_user_lists_in_valid_windows_are_bounded() -> None:
    # 300 names anchored once, then 400 windows naming them by alias: 120,000
    # names (each checked per access) from a 10 KB file of valid shape.
    names = ", ".join(f"svc{n}" for n in range(300))
    lines = ["service_accounts: &svc [" + names + "]", "automation_windows:"]
    lines += ["  - {start: '01:00', end: '02:00', users: *svc}"] * 400
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        parse_config("\n".join(lines) + "\n", "c.yml")
    assert time.monotonic() - start < 1.0
    message = str(info.value)
    assert message.startswith("c.yml: line ") and "alias" in message, message
    assert 2 < int(message.split(": line ", 1)[1].split(":", 1)[0]) < 20  # the first window past the bound


def test_a_few_aliases_are_still_fine() -> None:
    text = ("service_accounts: &svc [backup, etl]\n"
            "automation_windows:\n"
            "  - &night {start: '01:00', end: '03:30', users: *svc}\n"
            "  - {start: '13:00', end: '13:30', users: *svc, days: [sat]}\n")
    config = parse_config(text, "c.yml")
    assert [w.users for w in config.automation_windows] == [("backup", "etl"), ("backup", "etl")]


def test_a_self_referencing_alias_is_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("service_accounts: &a [x, *a]\n", "c.yml")
    assert str(info.value).startswith("c.yml: line 1: ") and "\n" not in str(info.value)


def test_the_correlator_refuses_the_bomb_with_one_line(tmp_path: Path) -> None:
    config = window_bomb(tmp_path / "config.yml")
    log = tmp_path / "empty.log"
    log.write_text("")
    start = time.monotonic()
    proc = correlate_proc(["--config", str(config), "--state", str(tmp_path / "s.sqlite"), str(log)], timeout=60)
    assert time.monotonic() - start < 10  # interpreter start-up included
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert f"{config}: line " in lines[0] and "alias" in lines[0]


def test_the_extension_keeps_serving_with_defaults_and_reports_the_bomb(tmp_path: Path) -> None:
    config = window_bomb(tmp_path / "config.yml")
    env = {"OSQ_DBWATCH_PYTHON": sys.executable, "OSQ_DBWATCH_CONFIG": str(config)}
    with CoreStandin(env=env) as core:
        start = time.monotonic()
        rows = {r["check_name"]: r for r in core.generate("dbwatch_coverage")}
        assert core.generate("db_cli_sessions") is not None
        assert time.monotonic() - start < 5
    row = rows["config_readable"]
    assert row["status"] == "blind"
    assert str(config) in row["detail"] and "line " in row["detail"] and "alias" in row["detail"]
    assert "using defaults" in row["detail"]


# ---------------------------------------------------------------------------
# Messages: the key's own line, and words a user wrote (never an internal repr)


@pytest.mark.parametrize(
    ("text", "line", "mentions"),
    [
        # the value starts on the next line: the key's line is still the one named
        ("service_acounts:\n  - backup\n", 1, ("unknown key", "'service_acounts'")),
        ("admins:\n  users: [a]\nservice_acounts:\n  - backup\n", 3, ("unknown key", "'service_acounts'")),
        ("admins:\n  users: [a]\n  groupz:\n    - x\n", 3, ("unknown key", "'groupz'", "admins")),
        ("allow:\n  - user: a\n    comand:\n      x\n", 3, ("unknown key", "'comand'", "allow")),
        ("correlator:\n  state_expiri:\n    7d\n", 2, ("unknown key", "'state_expiri'", "correlator")),
    ],
)
def test_unknown_key_names_the_keys_line(text: str, line: int, mentions: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "c.yml")
    assert str(info.value).startswith(f"c.yml: line {line}: "), str(info.value)
    for word in mentions:
        assert word in str(info.value)


@pytest.mark.parametrize("text", ["[a]: 1\n", "? {a: 1}\n: 2\n", "? [x, y]\n: 1\nadmins: {}\n", "admins:\n  ? [u]\n  : [a]\n"])
def test_a_key_that_is_not_a_string_is_described_not_dumped(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "c.yml")
    message = str(info.value)
    assert "keys must be strings" in message
    assert "_Node" not in message and "line=" not in message, message


def test_a_name_yaml_reads_as_a_number_must_be_quoted() -> None:
    # `007` is the YAML 1.1 integer 7: reading it as the name "7" would be a silent mismatch.
    with pytest.raises(ConfigError) as info:
        parse_config("admins:\n  users: [alice, 007]\n", "c.yml")
    assert str(info.value).startswith("c.yml: line 2: admins.users[1] must be a string") and "quote" in str(info.value)
    assert parse_config("admins:\n  users: [alice, '007']\n", "c.yml").admin_users == ("alice", "007")


def test_a_bad_dict_entry_is_named_by_its_key() -> None:
    text = "extra_tools:\n  db_clients:\n    vsql: generic\n    isql: sybase\n    bsql: nosuch\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "c.yml")
    assert str(info.value).startswith("c.yml: line 4: extra_tools.db_clients.isql must be one of the engines"), str(info.value)
    assert "'sybase'" in str(info.value)


def test_no_traceback_words_in_any_message(tmp_path: Path) -> None:
    for text in ("allow:\n  - user: [a]\n", "windows: 5\n", "automation_windows:\n  - end: '01:00'\n",
                 "extra_tools:\n  db_clients: {'a b': mysql}\n", "correlator:\n  max_pending_per_host: 2000000\n"):
        with pytest.raises(ConfigError) as info:
            parse_config(text, "c.yml")
        message = str(info.value)
        for leak in ("_Node", "Expected `", "$.", "Traceback", "msgspec"):
            assert leak not in message, message
        assert os.linesep not in message


# ---------------------------------------------------------------------------
# libyaml's parser (fast) and PyYAML's own (the fallback) read a config alike

_SAMPLES = [
    "admins:\n  users: [alice]\n", "admins:\n\tusers: [a]\n", "admins:\n  users: [a\0b]\n", "bad: [\n",
    "a: b: c\n", "admins:\n  users: [alice]\n  <<: {groups: [x]}\n", "admins: !custom x\n", "- a\n- b\n",
    "service_acounts:\n  - backup\n", "windows:\n  dump_after_access: 15:00\n", "admins: {users: [a], users: [b]}\n",
    "x: &a [*a]\n", "'\\x'\n", "admins:\n  users: \"\\xZZ\"\n", "%YAML 1.2\n---\nadmins: {}\n", "---\n...\n---\n",
]


def _messages() -> list[str]:
    out = []
    for text in _SAMPLES:
        try:
            out.append(repr(parse_config(text, "c.yml")))
        except ConfigError as exc:
            out.append(str(exc))
    return out


def test_the_fallback_parser_gives_the_same_results(tmp_path: Path) -> None:
    import json
    import subprocess

    code = ("import sys, json\nsys.modules['yaml._yaml'] = None\n"
            "import test_config_hostile as t\nfrom osq_dbwatch import config\n"
            "assert config._Events is None\nprint(json.dumps(t._messages()))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.abspath(__file__)))
    assert proc.returncode == 0, proc.stderr
    fallback = json.loads(proc.stdout)
    import osq_dbwatch.config as config

    if config._Events is None:
        pytest.skip("PyYAML without libyaml here: both runs used the fallback")
    ours = _messages()
    # the same outcome and line; libyaml words a YAML syntax error its own way
    assert [a.split(":", 2)[:2] for a in ours] == [b.split(":", 2)[:2] for b in fallback]
    assert [a for a in ours if "not valid YAML" not in a] == [b for b in fallback if "not valid YAML" not in b]


def test_a_config_at_the_size_bound_is_read_in_seconds(tmp_path: Path) -> None:
    # 10,000 long names (the list bound) in just under 1 MiB: valid, and read
    # without stalling the extension's table calls for long (libyaml's parser:
    # about 1.5 s here under load, against 9 s with PyYAML's own).
    path = tmp_path / "config.yml"
    names = [f"    - svc-{n:05d}-" + "x" * 86 for n in range(10_000)]
    path.write_text("admins:\n  users:\n" + "\n".join(names) + "\n")
    assert 0.9 * (1 << 20) < path.stat().st_size < 1 << 20
    start = time.monotonic()
    config = load_config(str(path))
    assert len(config.admin_users) == 10_000
    assert time.monotonic() - start < 6.0
