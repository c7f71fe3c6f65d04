"""Every factor that can move a chain's score: a code, a delta and a sentence.

Scores run 0..100 and map to OCSF severity_id by bands of 20:
0-19 informational (1), 20-39 low (2), 40-59 medium (3), 60-79 high (4),
80-100 critical (5).

Three kinds of reason:
- ladder: the contract's severity ladder (section 4). They set the band:
  access 30, +dump 50, +egress 70, server context at least 70, a full chain
  under a server 90. Their delta is the change they made to the band's base.
- context: facts about the access and its evidence. They move the score
  inside the band the ladder chose and never out of it, so the ladder holds
  exactly "before baselines lower or raise it".
- baseline: what the learned baseline says; these may cross bands.
- link: how evidence was tied to the chain (0: explains, never scores).

A finding names each reason that applied as "code:+N" in unmapped.reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["ladder", "context", "baseline", "link"]


@dataclass(frozen=True)
class Reason:
    code: str
    delta: int
    kind: Kind
    why: str


REASONS: dict[str, Reason] = {}


def _register(code: str, delta: int, kind: Kind, why: str) -> Reason:
    if code in REASONS:
        raise ValueError(f"reason {code!r} registered twice")
    reason = Reason(code, delta, kind, why)
    REASONS[code] = reason
    return reason


BAND_BASE = {2: 30, 3: 50, 4: 70, 5: 90}

UNUSUAL_ACCESS = _register("unusual-access", 30, "ladder", "a DB client or dump tool run that no allow rule, admin or service context explains")
DUMP_AFTER_ACCESS = _register("dump-after-access", 20, "ladder", "a dump-like file by the same login user (or a path the access named) within windows.dump_after_access")
EGRESS_AFTER_DUMP = _register("egress-after-dump", 20, "ladder", "an external connection or upload within windows.egress_after_dump of the dump")
EGRESS_AFTER_ACCESS = _register("egress-after-access", 20, "ladder", "an external connection or upload soon after the access, with no dump file seen")
WEB_SERVER_PARENT = _register("web-server-parent", 40, "ladder", "the DB client's parent or grandparent is a web server: at least high")
DB_SERVER_PARENT = _register("db-server-parent", 40, "ladder", "the DB client's parent or grandparent is a database server: at least high")
WEB_ACCOUNT_NO_SESSION = _register("web-account-no-session", 40, "ladder", "runs as a web server's account with no login session and no service context: at least high")
SERVER_EXFIL = _register("server-exfil", 40, "ladder", "a database server's own process tree runs a transfer tool to an external destination (COPY ... TO PROGRAM 'curl ...', a UDF): exfiltration by the server itself, at least high")
SERVER_CHAIN_EGRESS = _register("server-chain-egress", 20, "ladder", "access, dump and egress under a web or database server context: critical")

DUMP_INTENT = _register("dump-intent", 5, "context", "the command line itself dumps or exports (dump tool, -f, \\copy to, INTO OUTFILE, ...)")
PASSWORD_ON_CMDLINE = _register("password-on-cmdline", 5, "context", "a password was given on the command line (typical of scripted abuse; redacted)")
UNUSUAL_PARENT = _register("unusual-parent", 5, "context", "the parent runs from a staging directory or is hidden")
NON_INTERACTIVE = _register("non-interactive", 5, "context", "no terminal, login shell or login daemon behind it, and no service context")
STREAMED_DUMP = _register("streamed-dump", 0, "context", "the dump went to standard output straight into a transfer tool to an external address (same pipeline: same parent, same second): the full chain with no file")
PARENT_UNKNOWN = _register("parent-unknown", 0, "context", "the parent had exited when osquery read it (parent columns empty): neither interactive nor automated is known")
NETWORK_SEEN_ACCESS = _register("network-seen-access", 5, "context", "a program that is not a known DB client talked to a database port or socket in a login session (db_connect): a renamed client, a script or an implant")
EGRESS_ALLOWED = _register("egress-allowed", 0, "context", "an upload or connection linked to the chain went to a destination an egress_allow rule names (a known backup target): shown, but it does not escalate the chain")
SERVICE_OUTSIDE_WINDOW = _register("service-outside-window", -5, "context", "a known service context, but outside every automation window that names this user or host")
DUMP_IN_WEB_ROOT = _register("dump-in-web-root", 5, "context", "the dump was written under a web root, where it can be downloaded")
DUMP_STAGED = _register("dump-staged", 5, "context", "the dump was archived, compressed, split or encoded")

BASELINE_HABITUAL = _register("baseline-habitual", -20, "baseline", "this user ran this tool from this parent at this hour of the week often before on this host")
BASELINE_NOVEL_USER = _register("baseline-novel-user", 20, "baseline", "first DB tool run by this user on a host with enough history")
BASELINE_NOVEL_TOOL = _register("baseline-novel-tool", 15, "baseline", "first run of this tool by this user on a host with enough history")
BASELINE_NOVEL_PARENT = _register("baseline-novel-parent", 10, "baseline", "first time this user's DB tool runs from this parent")
BASELINE_UNUSUAL_HOUR = _register("baseline-unusual-hour", 10, "baseline", "the user is regular on this host but never active within an hour of this time of week")

LINKED_BY_PID = _register("linked-by-pid", 0, "link", "a connection's pid is a transfer or DB client process of the chain")
LINKED_BY_PATH = _register("linked-by-path", 0, "link", "a file named on a command line of the chain (INTO OUTFILE, -f, curl -T, ...)")
LINKED_BY_PROGRAM = _register("linked-by-program", 0, "link", "a connection or upload by the transfer tool the chain's COPY ... TO PROGRAM made the server run")
LINKED_BY_RENAME = _register("linked-by-rename", 0, "link", "a chain's dump file was renamed or moved (inotify MOVED_FROM of its name, then MOVED_TO of the new name in the same second): the new name is the chain's too")
FROM_CONNECT = _register("from-connect", 0, "link", "access seen as a connection to a database (db_connect), not as a known client's run")
FROM_HISTORY = _register("from-history", 0, "link", "access seen in a DB client history file")
FROM_SESSION = _register("from-session", 0, "link", "access seen as a running session (db_cli_sessions)")


def severity_of(score: int) -> int:
    """OCSF severity_id of a score."""
    if score >= 80:
        return 5
    if score >= 60:
        return 4
    if score >= 40:
        return 3
    if score >= 20:
        return 2
    return 1


def label(code: str, delta: int | None = None) -> str:
    """The string a finding shows: "code:+N"."""
    value = REASONS[code].delta if delta is None else delta
    return f"{code}:{value:+d}"
