"""Findings for the report tests: the scenarios run through the real correlator, and hostile variants."""

from __future__ import annotations

import copy
import glob
import json
import os
from typing import Any

from conftest import SHARED
from correlate_scenarios.helpers import HERE as OWN, correlate, final_by_chain

SCENARIO_DIRS = (os.path.join(SHARED, "scenarios"), OWN)

# Planted in command lines, the host name and a parent's command line.
XSS_CMD = 'psql -c "<script>window.__xss=1;alert(0)</script>\\"><img src=x onerror=alert(1)>" -d customers'
XSS_PARENT = "bash -c '</script><script>alert(2)</script>'"
XSS_HOST = 'pg-prod-1"><svg onload=alert(3)>'


def scenario_findings(workdir: str) -> list[dict[str, Any]]:
    """Every finding of every scenario (shared and our own), each scenario with its own config and state."""
    out: list[dict[str, Any]] = []
    for directory in SCENARIO_DIRS:
        for spec_path in sorted(glob.glob(os.path.join(directory, "*.json"))):
            with open(spec_path) as handle:
                spec = json.load(handle)
            name = os.path.basename(spec_path)[:-5]
            out.extend(correlate(["--config", os.path.join(directory, spec["config"]), os.path.join(directory, spec["log"])],
                                 os.path.join(workdir, name + ".sqlite"), os.path.join(workdir, name + ".jsonl")))
    return out


def hostile_log(path: str) -> None:
    """The insider scenario's log with XSS payloads in the client's command line, its parent and the host name."""
    src = os.path.join(SHARED, "scenarios", "insider-csv-curl.log")
    with open(src) as handle, open(path, "w") as out:
        for line in handle:
            obj = json.loads(line)
            obj["hostIdentifier"] = XSS_HOST
            obj.get("decorations", {})["hostname"] = XSS_HOST
            cols = obj.get("columns")
            if obj["name"].endswith("db_cli_exec") and cols:
                cols["cmdline"] = XSS_CMD
                cols["parent_cmdline"] = XSS_PARENT
            out.write(json.dumps(obj) + "\n")


def hostile_findings(workdir: str) -> list[dict[str, Any]]:
    log = os.path.join(workdir, "hostile.log")
    hostile_log(log)
    config = os.path.join(SHARED, "scenarios", "config.yml")
    return correlate(["--config", config, log], os.path.join(workdir, "hostile.sqlite"), os.path.join(workdir, "hostile.jsonl"))


def many_chains(base: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """`count` distinct chains made from real findings: new uids, hosts, users and times."""
    finals = list(final_by_chain(base).values())
    out = []
    for i in range(count):
        f = copy.deepcopy(finals[i % len(finals)])
        shift = (i * 7919 % (14 * 86400)) * 1000  # spread over two weeks
        f["finding_info"]["uid"] = f"{i:08d}-0000-4000-8000-{i:012d}"
        f["device"]["hostname"] = f"host-{i % 997:04d}"
        f["actor"]["user"]["name"] = f"user{i % 311:03d}"
        f["time"] += shift
        f["finding_info"]["first_seen_time"] += shift
        f["finding_info"]["last_seen_time"] += shift
        for e in f["evidences"]:
            if "process" in e and "created_time" in e["process"]:
                e["process"]["created_time"] += shift
        out.append(f)
    return out


def write_jsonl(path: str, findings: list[dict[str, Any]]) -> str:
    with open(path, "w") as handle:
        for f in findings:
            handle.write(json.dumps(f, separators=(",", ":")) + "\n")
    return path
