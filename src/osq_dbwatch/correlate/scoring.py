"""Scoring: a chain's severity ladder, reasons, ATT&CK techniques, title and sentence, as one Finding.

reasons.py holds every reason's code and delta; this module applies them
(the ladder sets the band, context moves inside it, baselines may cross it)
and writes the English a finding shows.
"""

from __future__ import annotations

from typing import Any, Final

from ..cmdline import redact_text
from . import reasons as R
from .evidence import ms
from .findings import Finding
from .hoststate import Chain, HostState

SLACK: Final = 5  # seconds: audit and inotify clocks and osquery's batching disagree a little

# ATT&CK techniques a chain can name (findings.TECHNIQUES has their names and tactics), in the order a finding lists them.
T_WEB_SHELL: Final = "T1505.003"  # a server context that looks like a web shell
T_REPOSITORY: Final = "T1213"  # every access
T_LOCAL_DATA: Final = "T1005"  # a dump file
T_STAGED: Final = "T1074"  # a dump file
T_ARCHIVE: Final = "T1560"  # a dump archived, compressed, split or encoded
T_OTHER_PROTOCOL: Final = "T1048"  # egress
T_WEB_SERVICE: Final = "T1567"  # egress by a web transfer tool or to a web port
TECHNIQUE_ORDER: Final = (T_WEB_SHELL, T_REPOSITORY, T_LOCAL_DATA, T_STAGED, T_ARCHIVE, T_OTHER_PROTOCOL, T_WEB_SERVICE)
WEB_SHELL_SERVERS: Final = (R.WEB_SERVER_PARENT.code, R.WEB_ACCOUNT_NO_SESSION.code)
_STAGE_ORDER: Final = ("access", "dump", "egress")


def score(chain: Chain) -> tuple[int, list[str]]:
    """Score and reason labels of a chain (see reasons.py for the bands)."""
    labels = [R.label(R.UNUSUAL_ACCESS.code)]
    # A dump streamed into a transfer tool is a dump with no file (engine._streamed).
    has_dump = "dump" in chain.stages or R.STREAMED_DUMP.code in chain.context
    has_egress = "egress" in chain.stages
    severity = 2
    if has_dump:
        labels.append(R.label(R.DUMP_AFTER_ACCESS.code))
        severity = 3
    if has_egress:
        if has_dump and chain.last_egress >= chain.first_dump - SLACK:
            labels.append(R.label(R.EGRESS_AFTER_DUMP.code))
            severity = 4
        elif not has_dump:
            labels.append(R.label(R.EGRESS_AFTER_ACCESS.code))
            severity = 3
    if chain.server:
        if severity < 4:
            labels.append(R.label(chain.server, R.BAND_BASE[4] - R.BAND_BASE[severity]))
            severity = 4
        else:
            labels.append(R.label(chain.server, 0))
        if has_dump and has_egress and severity == 4:
            labels.append(R.label(R.SERVER_CHAIN_EGRESS.code))
            severity = 5
    base = R.BAND_BASE[severity]
    low, high = base - 10, base + 9
    value = base
    for code in chain.context:
        value += R.REASONS[code].delta
        labels.append(R.label(code))
    value = max(low, min(high, value))
    # The contract's floors hold whatever the baseline says: a server context or a full chain stays
    # at least high (a server's full chain critical). A lowering is shown as the part that applied.
    floor = low if severity >= 4 else 0
    for code in chain.baseline:
        delta = R.REASONS[code].delta
        if delta < 0 and value + delta < floor:
            delta = min(0, floor - value)
        value += delta
        labels.append(R.label(code, delta))
    for code in chain.links:
        labels.append(R.label(code))
    return max(0, min(100, value)), labels


def finding(st: HostState, chain: Chain, update: bool) -> Finding:
    value, labels = score(chain)
    severity = R.severity_of(value)
    evidences = sorted(chain.evidences, key=lambda e: (e.t, e.id))
    times = [e.t for e in evidences]
    shown = [dict(e.ocsf or {}) for e in evidences]
    title, message = sentences(st.host, chain, shown)
    # Stages in the order their first events happened (rows of different
    # queries reach the log in any order); a chain always opens with its
    # access (a history entry's time is only when the file was written).
    first: dict[str, int] = {}
    for e, obj in zip(evidences, shown):
        stage = obj["data"]["stage"]
        if stage in chain.stages and stage not in first:
            first[stage] = e.t
    stages = sorted(chain.stages, key=lambda s: (s != "access", first.get(s, 0), _STAGE_ORDER.index(s)))
    return Finding(
        uid=chain.uid,
        host=st.host,
        host_uuid=st.host_uuid,
        user=chain.user,
        severity_id=severity,
        score=value,
        update=update,
        time_ms=ms(max(times)),
        first_seen_ms=ms(min(times)),
        last_seen_ms=ms(max(times)),
        title=title,
        message=message,
        stages=stages,
        reasons=labels,
        techniques=sorted(chain.techniques, key=TECHNIQUE_ORDER.index),
        evidences=shown,
    )


def sentences(host: str, chain: Chain, evidences: list[dict[str, Any]]) -> tuple[str, str]:
    """A finding's title and message (redacted)."""
    tools = ", ".join(chain.tools)
    where = {
        R.WEB_SERVER_PARENT.code: " under a web server",
        R.DB_SERVER_PARENT.code: " under a database server",
        R.WEB_ACCOUNT_NO_SESSION.code: " as a web server account with no login session",
        R.SERVER_EXFIL.code: ", making the database server send data out itself",
    }.get(chain.server, "")
    dumps = [e["file"]["path"] for e in evidences if "file" in e]
    dests = [e["dst_endpoint"].get("ip") or e["dst_endpoint"].get("hostname") for e in evidences if "dst_endpoint" in e]
    if "egress" in chain.stages and R.STREAMED_DUMP.code in chain.context:
        title = f"Database dump streamed off {host} by {chain.user}"
    elif "egress" in chain.stages and dumps:
        title = f"Database dump sent off {host} by {chain.user}"
    elif "egress" in chain.stages:
        title = f"Unusual database access by {chain.user} on {host} followed by an outbound transfer"
    elif dumps:
        title = f"Unusual database access by {chain.user} on {host} followed by a dump"
    else:
        title = f"Unusual database access by {chain.user} on {host}"
    if chain.server in WEB_SHELL_SERVERS:
        title = "Possible web shell: " + title[0].lower() + title[1:]
    message = f"{chain.user} ran {tools} on {host}{where}"
    if R.STREAMED_DUMP.code in chain.context:
        message += ", streaming the dump through a pipe"
    if dumps:
        message += f", then {len(dumps)} dump-like file{'s' if len(dumps) > 1 else ''} appeared ({dumps[0]})"
    if dests:
        message += f", then data went out to {dests[0]}"
    return title, redact_text(message + ".")


def findings_due(st: HostState) -> list[Finding]:
    """Findings of chains created or raised since the last call (closing ones included); records what was emitted."""
    if not st.chains and not st.closing:
        return []  # most hosts at most batch ends: no list of chains to build
    out: list[Finding] = []
    chains = list(st.closing.values()) + list(st.chains.values())
    st.closing.clear()
    for chain in chains:
        if not chain.dirty:
            continue
        chain.dirty = False
        found = finding(st, chain, update=False)
        previous = st.emitted.get(chain.uid)
        if previous is None:
            out.append(found)
        elif found.severity_id > previous[0]:
            found.update = True
            out.append(found)
        else:
            previous[1] = max(previous[1], found.last_seen_ms // 1000)
            continue
        if type(st.emitted) is not dict:  # empty.EMPTY, shared by all hosts: a table of its own first
            st.emitted = {}
        st.emitted[chain.uid] = [found.severity_id, found.last_seen_ms // 1000]
    return out
