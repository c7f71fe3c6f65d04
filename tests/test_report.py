"""`osq-dbwatch report` without a browser: reading findings, the chain model, text output, the page's markup.

The page's behaviour in a real browser is tests/test_report_browser.py.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import html
import json
import os
import re
import stat
import subprocess
import sys
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from report_helpers import XSS_CMD, XSS_HOST, XSS_PARENT, hostile_findings, many_chains, scenario_findings, write_jsonl

from osq_dbwatch import cli
from osq_dbwatch.report import model
from osq_dbwatch.report.html import render_html
from osq_dbwatch.report.text import render_text


@pytest.fixture(scope="module")
def findings(tmp_path_factory) -> list[dict[str, Any]]:
    return scenario_findings(str(tmp_path_factory.mktemp("scenarios")))


def _report(args: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _chains(objs: list[dict[str, Any]]) -> list[model.Chain]:
    latest = model.Latest()
    for obj in objs:
        latest.add(obj)
    return latest.chains()


# -- the model ----------------------------------------------------------------------------------


def test_latest_version_of_each_chain_is_kept_whatever_the_order(findings) -> None:
    full = next(f for f in findings if len(f["unmapped"]["stages"]) == 3)
    older = copy.deepcopy(full)
    older["evidences"] = older["evidences"][:1]
    older["severity_id"] = 2
    older["time"] = older["finding_info"]["last_seen_time"] = older["finding_info"]["first_seen_time"]
    for order in ([older, full], [full, older]):
        (chain,) = _chains(copy.deepcopy(order))
        assert chain.severity_id == full["severity_id"]
        assert [e.stage for e in chain.events] == [e["data"]["stage"] for e in full["evidences"]]
        assert chain.versions == 2


def test_every_scenario_chain_becomes_one_record(findings) -> None:
    uids = {f["finding_info"]["uid"] for f in findings}
    chains = _chains(findings)
    assert {c.uid for c in chains} == uids
    # Most severe first.
    assert [c.severity_id for c in chains] == sorted((c.severity_id for c in chains), reverse=True)
    for c in chains:
        assert c.events and "access" in [e.stage for e in c.events]
        assert all(e.lo_ms <= e.hi_ms for e in c.events)
        assert [e.lo_ms for e in c.events] == sorted(e.lo_ms for e in c.events)
        assert c.first_ms == c.events[0].lo_ms and c.last_ms == c.events[-1].hi_ms
        assert all(r.delta is not None and r.why for r in c.reasons)


def test_evidence_fields_reach_the_model(findings) -> None:
    chains = {c.uid: c for c in _chains(findings)}
    egress = [e for c in chains.values() for e in c.events if e.stage == "egress"]
    dumps = [e for c in chains.values() for e in c.events if e.stage == "dump"]
    assert egress and all(e.dst_address for e in egress)
    assert any(e.dst_port == 443 for e in egress)
    assert dumps and all(e.file_path and e.file_kind for e in dumps)
    assert any(e.file_size and e.file_owner for e in dumps)
    assert any(e.parent_cmdline and e.cmdline for c in chains.values() for e in c.events)


def test_connection_status_shown_where_the_data_has_it(findings) -> None:
    """The status as the engine writes it (evidence.linked_egress), not a field name of the report's own."""
    from osq_dbwatch.correlate import evidence as E

    f = copy.deepcopy(next(f for f in findings if "egress" in f["unmapped"]["stages"]))
    index, ev = next((i, e) for i, e in enumerate(f["evidences"]) if "dst_endpoint" in e)
    made = E.linked_egress(E.Evidence(E.CONNECT, "c|1", 1, query="db_egress", tool="curl", pid=7,
                                      address="203.0.113.9", port=443, status="in_progress")).to_json()
    made.pop("_id"), made.pop("_t")
    f["evidences"][index] = ev = made
    (chain,) = _chains([f])
    assert [e.dst_status for e in chain.events if e.dst_address][0] == "in_progress"
    ev["data"].pop("connect_status")
    ev["data"]["success"] = 1
    (chain,) = _chains([f])
    assert [e.dst_status for e in chain.events if e.dst_address][0] == "succeeded"


@pytest.mark.parametrize(("raw", "shown"), [
    ("plain -c 'x'", "plain -c 'x'"),
    ("a\x1b[31mred\x1b[0m", "a\\x1b[31mred\\x1b[0m"),
    ("ok\rEVIL", "ok\\x0dEVIL"),
    ("file\u202egnp.sh", "file\\u202egnp.sh"),
    ("bad\udc80byte", "bad?byte"),
    ("caf\u00e9 \u2014 \u65e5\u672c", "caf\u00e9 \u2014 \u65e5\u672c"),
])
def test_display_escapes_what_could_steer_a_terminal(raw: str, shown: str) -> None:
    assert model.display(raw) == shown


def test_display_bounds_a_long_value() -> None:
    shown = model.display("x" * (model.MAX_TEXT + 5))
    assert shown.startswith("x" * model.MAX_TEXT) and shown.endswith("[5 more characters]")


def test_file_kind_by_name() -> None:
    assert model._kind_by_name("/tmp/out.csv.gz") == "csv+gz (by name)"
    assert model._kind_by_name("/tmp/a.sql") == "sql (by name)"
    assert model._kind_by_name("/tmp/blob") == ""


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                     max_leaves=12)
_paths = st.sampled_from([("evidences",), ("evidences", 0), ("evidences", 0, "process"), ("evidences", 0, "data"),
                          ("evidences", 0, "process", "parent_process"), ("finding_info",), ("finding_info", "attacks"),
                          ("unmapped",), ("unmapped", "reasons"), ("device",), ("actor",), ("time",), ("risk_score",),
                          ("finding_info", "first_seen_time"), ("evidences", 0, "file"), ("evidences", 0, "dst_endpoint")])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=_paths, value=_json)
def test_any_shape_reads_or_is_refused_never_raises(findings, path, value) -> None:
    f = copy.deepcopy(findings[-1])
    target: Any = f
    for key in path[:-1]:
        target = target[key] if isinstance(target, dict) or (isinstance(target, list) and len(target) > key) else None
        if target is None:
            return
    if isinstance(target, dict) or (isinstance(target, list) and len(target) > path[-1]):
        target[path[-1]] = value
    try:
        chain = model.chain_of(f)
    except model.NotAFinding:
        return
    render_text([chain], model.Loaded())
    render_html([chain], model.Loaded())


# -- the command line -----------------------------------------------------------------------------


def test_text_shows_every_chain_with_its_timeline(findings, tmp_path, capsys) -> None:
    path = write_jsonl(str(tmp_path / "f.jsonl"), findings)
    code, out, err = _report(["--text", path], capsys)
    assert code == 0 and err == ""
    chains = _chains(findings)
    assert out.startswith(f"{len(chains)} chains (")
    for c in chains:
        assert f"chain {c.uid}" in out
    assert "| " in out and "reasons: unusual-access +30" in out and "ATT&CK: T1213" in out


def test_text_escapes_control_characters_from_the_data(findings, tmp_path, capsys) -> None:
    f = copy.deepcopy(findings[0])
    f["evidences"][0]["process"]["cmd_line"] = "psql\x1b]0;owned\x07 -c '\x1b[2J'"
    f["actor"]["user"]["name"] = "eve\u202eoob"
    code, out, _ = _report(["--text", write_jsonl(str(tmp_path / "f.jsonl"), [f])], capsys)
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "psql\\x1b]0;owned\\x07 -c '\\x1b[2J'" in out and "user eve\\u202eoob" in out


def test_bad_lines_are_counted_and_named(findings, tmp_path, capsys) -> None:
    path = tmp_path / "f.jsonl"
    write_jsonl(str(path), findings[:2])
    with open(path, "a") as handle:
        handle.write('not json\n{"class_uid": 1}\n[1]\n\n{"class_uid": 2004, "finding_info": {}}\n')
    code, out, err = _report(["--text", str(path)], capsys)
    assert code == 0
    assert f"{path}:3: skipped: not JSON" in err
    assert f"{path}:4: skipped: not an OCSF Detection Finding (class_uid 2004)" in err
    assert f"{path}:5: skipped: not a JSON object" in err
    assert f"{path}:7: skipped: no finding_info.uid" in err
    assert "4 lines skipped" in out


def test_ecs_alerts_are_named_as_such(findings, tmp_path, capsys) -> None:
    path = tmp_path / "ecs.jsonl"
    path.write_text(json.dumps({"event": {"kind": "alert"}, "osq_dbwatch": {}}) + "\n")
    code, out, err = _report(["--text", str(path)], capsys)
    assert code == 0 and out.startswith("0 chains from 0 findings, 1 lines skipped")
    assert "skipped: an ECS alert: the report reads OCSF findings" in err


def test_filters_on_the_command_line(findings, tmp_path, capsys) -> None:
    path = write_jsonl(str(tmp_path / "f.jsonl"), findings)
    chains = _chains(findings)
    host = chains[0].host
    code, out, _ = _report(["--text", "--host", host, path], capsys)
    assert code == 0 and out.startswith(f"{sum(c.host == host for c in chains)} chains")
    code, out, _ = _report(["--text", "--min-severity", "high", path], capsys)
    assert out.startswith(f"{sum(c.severity_id >= 4 for c in chains)} chains")
    code, _, err = _report(["--text", "--min-severity", "severe", path], capsys)
    assert code == 2 and "--min-severity 'severe': use 1-5 or" in err


def test_output_file_is_0600_and_a_symlink_there_is_replaced_not_followed(findings, tmp_path, capsys) -> None:
    path = write_jsonl(str(tmp_path / "f.jsonl"), findings)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    out = tmp_path / "report.html"
    out.symlink_to(victim)
    code, _, err = _report(["-o", str(out), path], capsys)
    assert code == 0, err
    assert victim.read_text() == "keep"
    assert not out.is_symlink() and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".osq-dbwatch-report-")]


def test_inputs_that_are_symlinks_or_missing_are_one_line_errors(findings, tmp_path, capsys) -> None:
    real = write_jsonl(str(tmp_path / "f.jsonl"), findings)
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    code, _, err = _report(["--text", str(link)], capsys)
    assert code == 2 and err.strip() == f"osq-dbwatch report: {link}: is a symbolic link (not followed)"
    code, _, err = _report(["--text", str(tmp_path / "nope")], capsys)
    assert code == 2 and err.strip() == f"osq-dbwatch report: {tmp_path / 'nope'}: cannot read: No such file or directory"
    code, _, err = _report(["--text", str(tmp_path)], capsys)
    assert code == 2 and "not a regular file" in err


def test_reads_standard_input(findings) -> None:
    data = "".join(json.dumps(f) + "\n" for f in findings).encode()
    proc = subprocess.run([sys.executable, "-m", "osq_dbwatch", "report", "--text"], input=data, capture_output=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stderr == b""
    assert proc.stdout.decode().startswith(f"{len({f['finding_info']['uid'] for f in findings})} chains")


# -- the page's markup -----------------------------------------------------------------------------


def _blocks(page: str, tag: str) -> list[tuple[str, str]]:
    return re.findall(rf"<{tag}([^>]*)>(.*?)</{tag}>", page, re.S)


def _csp(page: str) -> str:
    m = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert m, "no CSP meta"
    return html.unescape(m.group(1))


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_page_csp_names_exactly_its_own_script_and_style(findings) -> None:
    page = render_html(_chains(findings), model.Loaded())
    policy = dict(p.strip().split(" ", 1) for p in _csp(page).split(";"))
    (style,) = _blocks(page, "style")
    scripts = _blocks(page, "script")
    code = [body for attrs, body in scripts if "application/json" not in attrs]
    assert len(scripts) == 2 and len(code) == 1
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == _sha(code[0])
    assert policy["style-src"] == _sha(style[1])
    assert policy["base-uri"] == "'none'" and policy["form-action"] == "'none'"
    assert policy["require-trusted-types-for"] == "'script'"
    assert "unsafe" not in _csp(page)
    # Nothing to fetch, no handler in the markup, and the script never parses data as markup.
    assert not re.search(r"\s(src|href)=", page)
    assert not re.search(r"\son[a-z]+=", page, re.I)
    assert not re.search(r"\.(innerHTML|outerHTML|insertAdjacentHTML)\b|document\.write|\beval\(|new Function", code[0])


def test_hostile_values_are_escaped_in_the_markup(tmp_path) -> None:
    found = hostile_findings(str(tmp_path))
    assert found, "the hostile log made no finding"
    f = copy.deepcopy(found[-1])
    f["actor"]["user"]["name"] = "<img src=x onerror=alert(4)>"
    f["finding_info"]["title"] = "</script><script>alert(5)</script>"
    page = render_html(_chains([found[-1], f]), model.Loaded(), title="<b>t</b>")
    for raw in (XSS_CMD, XSS_PARENT, XSS_HOST, "<img src=x", "<script>alert", "<svg", "<b>t</b>"):
        assert raw not in page
    assert "&lt;b&gt;t&lt;/b&gt;" in page  # the title, autoescaped
    assert "&lt;img src=x onerror=alert(4)&gt;" in page  # a user name in the filter's list, autoescaped
    (data,) = [body for attrs, body in _blocks(page, "script") if "application/json" in attrs]
    assert "<" not in data and ">" not in data
    strings = json.loads(data)["S"]
    assert XSS_CMD in strings and XSS_HOST in strings and "</script><script>alert(5)</script>" in strings


def test_ten_thousand_chains_stay_under_10_mb(findings, tmp_path, capsys) -> None:
    big = many_chains(findings, 10_000)
    path = write_jsonl(str(tmp_path / "big.jsonl"), big)
    start = time.perf_counter()
    code, _, err = _report(["-o", str(tmp_path / "big.html"), path], capsys)
    seconds = time.perf_counter() - start
    assert code == 0, err
    size = os.path.getsize(tmp_path / "big.html")
    print(f"10,000 chains: {size / 1e6:.2f} MB in {seconds:.2f} s (findings file {os.path.getsize(path) / 1e6:.1f} MB)")
    assert size < 10_000_000
    assert seconds < 120  # a shared 2-core machine; about 3-5 s when idle
