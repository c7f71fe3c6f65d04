"""Shared helpers for the correlator tests: run the CLI, judge scenario expectations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from osq_dbwatch import cli

HERE = os.path.dirname(os.path.abspath(__file__))


def correlate(args: list[str], state: str, output: str) -> list[dict[str, Any]]:
    """Run `osq-dbwatch correlate` in-process; return the findings it appended."""
    before = os.path.getsize(output) if os.path.exists(output) else 0
    code = cli.main(["correlate", "--state", state, "--output", output, *args])
    assert code == 0
    with open(output, "rb") as handle:
        handle.seek(before)
        return [json.loads(line) for line in handle if line.strip()]


def correlate_proc(args: list[str], env: dict[str, str] | None = None, stdin: bytes | None = None,
                   timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """Run the real command in a subprocess."""
    return subprocess.run([sys.executable, "-m", "osq_dbwatch", "correlate", *args], input=stdin, capture_output=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def final_by_chain(findings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last finding of each chain (updates replace earlier lines)."""
    out: dict[str, dict[str, Any]] = {}
    for f in findings:
        out[f["finding_info"]["uid"]] = f
    return out


def reason_codes(finding: dict[str, Any]) -> list[str]:
    return [r.split(":", 1)[0] for r in finding["unmapped"]["reasons"]]


def judge(spec: dict[str, Any], findings: list[dict[str, Any]]) -> list[str]:
    """Problems with findings against a scenario's expectations ([] when all hold)."""
    problems: list[str] = []
    finals = final_by_chain(findings)
    claimed: set[int] = set()

    def of(host: str, user: str) -> list[dict[str, Any]]:
        return [f for f in findings if f["device"]["hostname"] == host and f["actor"]["user"]["name"] == user]

    for e in spec.get("expect", []):
        mine = of(e["host"], e["user"])
        claimed.update(id(f) for f in mine)
        if not mine:
            problems.append(f"no finding for {e['host']}/{e['user']}")
            continue
        for f in mine:
            if not e["min"] <= f["severity_id"] <= e["max"]:
                problems.append(f"{e['host']}/{e['user']}: severity {f['severity_id']} outside {e['min']}..{e['max']} "
                                f"({f['unmapped']['reasons']})")
        last = finals[mine[-1]["finding_info"]["uid"]]
        for code in e.get("reasons", []):
            if code not in reason_codes(last):
                problems.append(f"{e['host']}/{e['user']}: reason {code} missing from {last['unmapped']['reasons']}")
    for c in spec.get("chains", []):
        uids: list[str] = []
        for f in of(c["host"], c["user"]):
            claimed.add(id(f))
            if f["finding_info"]["uid"] not in uids:
                uids.append(f["finding_info"]["uid"])
        ordered = sorted(uids, key=lambda u: finals[u]["finding_info"]["first_seen_time"])
        if c["nth"] >= len(ordered):
            problems.append(f"{c['host']}/{c['user']}: no chain #{c['nth']} (have {len(ordered)})")
            continue
        f = finals[ordered[c["nth"]]]
        if not c["min"] <= f["severity_id"] <= c["max"]:
            problems.append(f"{c['host']}/{c['user']} chain #{c['nth']}: severity {f['severity_id']} outside "
                            f"{c['min']}..{c['max']} ({f['unmapped']['reasons']})")
        for code in c.get("reasons", []):
            if code not in reason_codes(f):
                problems.append(f"{c['host']}/{c['user']} chain #{c['nth']}: reason {code} missing from {f['unmapped']['reasons']}")
    for fb in spec.get("forbid", []):
        for f in of(fb["host"], fb["user"]):
            claimed.add(id(f))
            if f["severity_id"] > fb["max"]:
                problems.append(f"forbidden: {fb['host']}/{fb['user']} severity {f['severity_id']} > {fb['max']}")
    for f in findings:
        if id(f) not in claimed and f["severity_id"] > spec.get("other_max", 1):
            problems.append(f"other finding {f['device']['hostname']}/{f['actor']['user']['name']} severity "
                            f"{f['severity_id']} > {spec.get('other_max', 1)}")
    return problems
