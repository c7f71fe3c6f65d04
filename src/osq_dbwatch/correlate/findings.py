"""One Finding record, rendered as an OCSF Detection Finding or an ECS alert.

Everything that reaches a renderer has already been redacted by the engine
(command lines through redact_cmdline, SQL/history and the message through
redact_text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .. import __version__

OCSF_VERSION = "1.5.0"
ANALYTIC_UID = "AN0676"
ANALYTIC_NAME = "Unusual database CLI access, dump and egress"
SEVERITY_NAMES = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
ECS_SEVERITY = {1: 21, 2: 21, 3: 47, 4: 73, 5: 99}

# ATT&CK techniques the correlator reports: uid -> (name, tactic uid, tactic name)
TECHNIQUES: dict[str, tuple[str, str, str]] = {
    "T1213": ("Data from Information Repositories", "TA0009", "Collection"),
    "T1005": ("Data from Local System", "TA0009", "Collection"),
    "T1074": ("Data Staged", "TA0009", "Collection"),
    "T1560": ("Archive Collected Data", "TA0009", "Collection"),
    "T1048": ("Exfiltration Over Alternative Protocol", "TA0010", "Exfiltration"),
    "T1567": ("Exfiltration Over Web Service", "TA0010", "Exfiltration"),
    "T1505.003": ("Server Software Component: Web Shell", "TA0003", "Persistence"),
}


@dataclass
class Finding:
    uid: str
    host: str
    user: str
    severity_id: int
    score: int
    update: bool  # False: new (200401); True: raised severity (200402)
    time_ms: int
    first_seen_ms: int
    last_seen_ms: int
    title: str
    message: str
    stages: list[str]
    reasons: list[str]
    techniques: list[str]
    evidences: list[dict[str, Any]] = field(default_factory=list)


def _attack(uid: str) -> dict[str, Any]:
    name, tactic_uid, tactic_name = TECHNIQUES[uid]
    base = uid.split(".", 1)[0]
    attack: dict[str, Any] = {
        "technique": {"uid": base if "." in uid else uid, "name": name.split(":", 1)[0]},
        "tactic": {"uid": tactic_uid, "name": tactic_name},
        "version": "17",
    }
    if "." in uid:
        attack["sub_technique"] = {"uid": uid, "name": name.split(": ", 1)[-1]}
        attack["technique"] = {"uid": uid, "name": name}
    return attack


def to_ocsf(f: Finding) -> dict[str, Any]:
    activity_id = 2 if f.update else 1
    message = f.message
    return {
        "activity_id": activity_id,
        "activity_name": "Update" if f.update else "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "type_uid": 200400 + activity_id,
        "type_name": "Detection Finding: " + ("Update" if f.update else "Create"),
        "severity_id": f.severity_id,
        "severity": SEVERITY_NAMES[f.severity_id],
        "status_id": 1,
        "status": "New",
        "time": f.time_ms,
        "message": message,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": f"{f.uid}:{f.severity_id}",
            "product": {"name": "osq-dbwatch", "vendor_name": "osq-dbwatch", "version": __version__},
            "log_name": "osquery results",
            "profiles": ["host"],
        },
        "finding_info": {
            "uid": f.uid,
            "title": f.title,
            "desc": message,
            "analytic": {"uid": ANALYTIC_UID, "name": ANALYTIC_NAME, "type_id": 1, "type": "Rule"},
            "attacks": [_attack(t) for t in f.techniques],
            "first_seen_time": f.first_seen_ms,
            "last_seen_time": f.last_seen_ms,
            "types": ["Data Exfiltration" if "egress" in f.stages else "Data Collection"],
        },
        "device": {"hostname": f.host, "name": f.host, "type_id": 0, "type": "Unknown"},
        "actor": {"user": {"name": f.user}},
        "evidences": f.evidences,
        "risk_score": f.score,
        "unmapped": {"reasons": f.reasons, "stages": f.stages, "score": f.score},
    }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def to_ecs(f: Finding) -> dict[str, Any]:
    ips: list[str] = []
    for e in f.evidences:
        ip = e.get("dst_endpoint", {}).get("ip")
        if ip and ip not in ips:
            ips.append(ip)
    techniques = []
    tactics: dict[str, str] = {}
    for t in f.techniques:
        name, tactic_uid, tactic_name = TECHNIQUES[t]
        techniques.append({"id": t, "name": name, "reference": f"https://attack.mitre.org/techniques/{t.replace('.', '/')}/"})
        tactics[tactic_uid] = tactic_name
    return {
        "@timestamp": _iso(f.time_ms),
        "message": f.message,
        "event": {
            "kind": "alert",
            "category": ["intrusion_detection"],
            "type": ["indicator"],
            "action": "update" if f.update else "new",
            "id": f"{f.uid}:{f.severity_id}",
            "severity": ECS_SEVERITY[f.severity_id],
            "risk_score": float(f.score),
            "start": _iso(f.first_seen_ms),
            "end": _iso(f.last_seen_ms),
            "dataset": "osq_dbwatch.findings",
            "module": "osq_dbwatch",
            "provider": "osq-dbwatch",
        },
        "rule": {
            "id": ANALYTIC_UID,
            "uuid": f.uid,
            "name": f.title,
            "description": ANALYTIC_NAME,
            "ruleset": "osq-dbwatch",
            "version": __version__,
        },
        "threat": {
            "framework": "MITRE ATT&CK",
            "technique": techniques,
            "tactic": {"id": sorted(tactics), "name": [tactics[k] for k in sorted(tactics)]},
        },
        "host": {"hostname": f.host, "name": f.host},
        "user": {"name": f.user},
        "related": {"user": [f.user], "hosts": [f.host], **({"ip": ips} if ips else {})},
        "tags": ["osq-dbwatch", *f.stages],
        "osq_dbwatch": {"reasons": f.reasons, "stages": f.stages, "score": f.score, "evidences": f.evidences,
                        "severity_id": f.severity_id},
    }
