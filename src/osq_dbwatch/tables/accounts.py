"""Local users and groups from /etc/passwd and /etc/group (bounded reads).

Read once per generate: names for uids, every user's home, and a user's
groups (primary gid plus supplementary memberships) for the admin check.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

MAX_ACCOUNT_FILE = 8 << 20


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str
    shell: str


def _read_lines(path: str) -> list[str]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return []
    try:
        data = os.read(fd, MAX_ACCOUNT_FILE)
    except OSError:
        return []
    finally:
        os.close(fd)
    return data.decode("utf-8", "surrogateescape").splitlines()


@dataclass
class Accounts:
    users: list[User] = field(default_factory=list)
    by_uid: dict[int, User] = field(default_factory=dict)
    group_names: dict[int, str] = field(default_factory=dict)  # gid -> name
    members: dict[str, set[str]] = field(default_factory=dict)  # user -> supplementary group names

    @classmethod
    def load(cls, passwd: str = "/etc/passwd", group: str = "/etc/group") -> Accounts:
        out = cls()
        for line in _read_lines(passwd):
            parts = line.split(":")
            if len(parts) < 7 or line.startswith(("#", "+", "-")):
                continue
            try:
                user = User(parts[0], int(parts[2]), int(parts[3]), parts[5], parts[6])
            except ValueError:
                continue
            out.users.append(user)
            out.by_uid.setdefault(user.uid, user)  # the first entry wins, as getpwuid does
        for line in _read_lines(group):
            parts = line.split(":")
            if len(parts) < 4 or line.startswith(("#", "+", "-")):
                continue
            try:
                gid = int(parts[2])
            except ValueError:
                continue
            out.group_names.setdefault(gid, parts[0])
            for member in parts[3].split(","):
                member = member.strip()
                if member:
                    out.members.setdefault(member, set()).add(parts[0])
        return out

    def name(self, uid: int | None) -> str | None:
        if uid is None:
            return None
        user = self.by_uid.get(uid)
        return user.name if user else None

    def groups_of(self, name: str, primary_gid: int | None = None) -> set[str]:
        groups = set(self.members.get(name, ()))
        if primary_gid is None:
            for user in self.users:
                if user.name == name:
                    primary_gid = user.gid
                    break
        if primary_gid is not None and primary_gid in self.group_names:
            groups.add(self.group_names[primary_gid])
        return groups
