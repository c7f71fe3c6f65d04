"""The live test bench itself: servers answer real clients run as test users on a pty.

These pin down what the table tests rely on (so a table failure is never a
bench failure in disguise): the shell owns its pty as controlling terminal,
the audit login uid is set, and each server serves the test users.
"""

from __future__ import annotations

import os
import re

import psutil
import pytest

from dbservers import (
    DB_NAME,
    MY_PASSWORDS,
    PG_PASSWORDS,
    REDIS_PASSWORD,
    ROWS,
    UNSET_LOGINUID,
    MariaServer,
    PgServer,
    RedisServer,
)

pytestmark = pytest.mark.integration


def _own_loginuid() -> int:
    try:
        with open("/proc/self/loginuid", encoding="ascii") as f:
            return int(f.read().strip())
    except FileNotFoundError:
        return UNSET_LOGINUID


def test_pty_shell_is_a_login_session(pty_shell, test_users) -> None:
    shell = pty_shell("dbw_alice", login_user="dbw_mallory")
    proc = psutil.Process(shell.pid)
    assert proc.uids().real == test_users["dbw_alice"].pw_uid
    assert re.fullmatch(r"/dev/pts/\d+", shell.tty)
    assert proc.terminal() == shell.tty
    assert os.getsid(shell.pid) == shell.pid
    # tpgid of the shell's terminal is set: it is the controlling tty.
    with open(f"/proc/{shell.pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    assert int(fields[5]) != 0 and int(fields[6]) > 0  # tty_nr, tpgid
    # pam_loginuid's effect: root writes /proc/self/loginuid before setuid. A
    # kernel without audit support (or a container without CAP_AUDIT_CONTROL)
    # refuses; then the refusal is on the pty and the login uid is unchanged.
    if shell.loginuid_refused:
        assert shell.loginuid() == _own_loginuid(), shell.loginuid_refused
    else:
        assert shell.loginuid() == test_users["dbw_mallory"].pw_uid != UNSET_LOGINUID
        assert shell.expected_login_user == "dbw_mallory"
    shell.run("tty; id -un")
    shell.expect(re.escape(shell.tty))
    shell.expect(r"dbw_alice")


def test_clients_reach_servers_as_test_users(
    pty_shell, pg_server: PgServer, mariadb_server: MariaServer, redis_server: RedisServer
) -> None:
    shell = pty_shell("dbw_mallory", env={"PGPASSWORD": PG_PASSWORDS["dbw_mallory"]})
    shell.run(f"psql -X -At -h 127.0.0.1 -p {pg_server.port} -U dbw_mallory -d {DB_NAME} "
              "-c 'SELECT count(*) FROM items'")
    shell.expect(rf"[\r\n]{ROWS}\r?\n")
    shell.expect_prompt()
    shell.run(f"mysql -h 127.0.0.1 -P {mariadb_server.port} -u dbw_mallory "
              f"-p{MY_PASSWORDS['dbw_mallory']} -N -B -e 'SELECT count(*) FROM {DB_NAME}.items'")
    shell.expect(rf"[\r\n]{ROWS}\r?\n")
    shell.expect_prompt()
    shell.run(f"redis-cli -h 127.0.0.1 -p {redis_server.port} --no-auth-warning "
              f"-a {REDIS_PASSWORD} GET customer:7")
    shell.expect(r"4000-0000-0000-0007")
    shell.expect_prompt()
