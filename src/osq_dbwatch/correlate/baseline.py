"""The baseline the correlator learns from the logs: pure data and functions.

Per host it counts DB tool runs by (user, tool, parent, hour of week) and
remembers which users, tools, parents and hours it has seen. A (user, tool,
parent, hour) counts days, not runs: a run counts only on a UTC day after the
last one counted, so a script that runs sqlite3 seven times in one second is
one observation. On a host observed for at least
`baseline_novel_after` (the minimum learning period), an access whose exact
(user, tool, parent, hour) was seen on `baseline_min_observations` days before
is habitual (score lowered), and a first-time user, tool, parent or hour is
novel (score raised). The engine teaches it expected runs at once and an
unusual run's chain only once that chain has closed as a bare access, so a
chain never teaches the baseline to ignore itself. Hours are UTC hours of the week, Monday 00:00 = 0; "within an
hour" wraps around the week.

Entries unseen for five times `state_expiry` are dropped (daily), and a host
keeps at most MAX_KEYS entries per table at any time (cap(): least recently
seen go first), so a flood of distinct names cannot grow the state without
bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from ..config import CorrelatorSettings
from . import reasons as R
from .empty import EMPTY

MAX_KEYS: Final = 4096
SEP: Final = "\x1f"
# A counter is one int, count << 34 | last seen (seconds; 2**34 s is past the
# year 2500): a thousand hosts' baselines stay a few tens of MB.
_SHIFT: Final = 34
_LAST: Final = (1 << 34) - 1
_COUNT: Final = ~((1 << 34) - 1)  # the count bits of a packed counter
_ONE: Final = 1 << 34  # a count of one
_HOUR_BITS: Final = tuple(1 << how for how in range(168))
DAY: Final = 86400


def count_of(packed: int) -> int:
    return packed >> _SHIFT


def last_of(packed: int) -> int:
    return packed & _LAST


def hour_of_week(epoch_seconds: int) -> int:
    # 1970-01-01 was a Thursday: shift so Monday 00:00 UTC is hour 0.
    return ((epoch_seconds // 3600) + 72) % 168


ROW_FIELDS: Final = ("first", "runs", "users", "tools", "parents", "pruned")  # to_row()'s order


def _empty() -> Any:
    """The shared empty table (empty.EMPTY) as a default, compiled."""
    return EMPTY


@dataclass(init=False)
class Baseline:
    first: int = 0  # first access seen on the host
    # Empty tables are empty.EMPTY, shared by all hosts (issue 12); what adds to one makes it its own first (_own).
    runs: dict[str, int] = field(default_factory=_empty)  # user,tool,parent,how -> packed count and last
    # user -> [count, last, hours]: `hours` is a 168-bit mask of the hours of week seen
    users: dict[str, list[int]] = field(default_factory=_empty)
    tools: dict[str, int] = field(default_factory=_empty)  # user,tool -> packed
    parents: dict[str, int] = field(default_factory=_empty)  # user,parent -> packed
    pruned: int = 0  # event time of the last prune
    # Runs counted but not yet added to the tables (defer_keys), keyed by run key: settle() adds them.
    # Always empty once settled, so never serialised.
    pending: dict[str, Deferred] = field(default_factory=_empty, compare=False, repr=False)

    # Written out, not generated (init=False): compiled, as HostState.__init__ (hoststate.py) says why.
    def __init__(self, first: int = 0, runs: dict[str, int] | None = None, users: dict[str, list[int]] | None = None,
                 tools: dict[str, int] | None = None, parents: dict[str, int] | None = None, pruned: int = 0,
                 pending: dict[str, Deferred] | None = None) -> None:
        self.first = first
        self.runs = runs if runs is not None else EMPTY
        self.users = users if users is not None else EMPTY
        self.tools = tools if tools is not None else EMPTY
        self.parents = parents if parents is not None else EMPTY
        self.pruned = pruned
        self.pending = pending if pending is not None else EMPTY

    def to_row(self) -> list[Any]:
        """to_json() as a list of the values of ROW_FIELDS (hoststate.HostState.to_row)."""
        settle(self)
        users = {u: [c, last, format(mask, "x")] for u, (c, last, mask) in self.users.items()} if self.users else EMPTY
        return [self.first, self.runs, users, self.tools, self.parents, self.pruned]

    def to_json(self) -> dict[str, Any]:
        settle(self)
        # The hour mask is wider than JSON integers are safe: written as hex.
        users = {u: [c, last, format(mask, "x")] for u, (c, last, mask) in self.users.items()}
        return {"first": self.first, "runs": self.runs or {}, "users": users, "tools": self.tools or {},
                "parents": self.parents or {}, "pruned": self.pruned}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Baseline:
        return cls(
            first=int(data.get("first", 0)),
            runs=dict(data.get("runs", {})) or EMPTY,
            users={u: [int(v[0]), int(v[1]), int(v[2], 16)] for u, v in data.get("users", {}).items()} or EMPTY,
            tools=dict(data.get("tools", {})) or EMPTY,
            parents=dict(data.get("parents", {})) or EMPTY,
            pruned=int(data.get("pruned", 0)),
        )


def parent_key(parent_path: str, parent_cmdline: str = "") -> str:
    name = parent_path.rstrip("/").rsplit("/", 1)[-1] if parent_path else ""
    if not name and parent_cmdline:
        name = parent_cmdline.split(" ", 1)[0].rsplit("/", 1)[-1]
    return name.lstrip("-")


def judge(b: Baseline, settings: CorrelatorSettings, user: str, tool: str, parent: str, t: int) -> list[str]:
    """Baseline reason codes for an access, judged before it is learned."""
    settle(b)
    how = hour_of_week(t)
    if not b.first or t - b.first < settings.baseline_novel_after_seconds:
        return []  # the minimum learning period: neither habitual nor novel before it
    run = b.runs.get(SEP.join((user, tool, parent, str(how))))
    if run is not None and count_of(run) >= settings.baseline_min_observations:
        return [R.BASELINE_HABITUAL.code]
    if user not in b.users:
        return [R.BASELINE_NOVEL_USER.code]
    found: list[str] = []
    if SEP.join((user, tool)) not in b.tools:
        found.append(R.BASELINE_NOVEL_TOOL.code)
    elif parent and SEP.join((user, parent)) not in b.parents:
        found.append(R.BASELINE_NOVEL_PARENT.code)
    entry = b.users[user]
    if entry[0] >= settings.baseline_min_observations and not entry[2] & _near(how):
        found.append(R.BASELINE_UNUSUAL_HOUR.code)
    return found


def _near(how: int) -> int:
    """Mask of the hour of week and its neighbours (wrapping around the week)."""
    return (1 << how) | (1 << ((how + 1) % 168)) | (1 << ((how - 1) % 168))


def _bump(table: dict[str, int], key: str, t: int, days: bool = False) -> None:
    """One more run; with `days`, one more only on a day after the last one seen (else only the last time moves)."""
    packed = table.get(key)
    t &= _LAST
    if packed is None:
        table[key] = (1 << _SHIFT) | t
    else:
        last = last_of(packed)
        more = 1 if not days or t // DAY > last // DAY else 0
        table[key] = ((count_of(packed) + more) << _SHIFT) | max(t, last)


def learn(b: Baseline, user: str, tool: str, parent: str, t: int, with_hour: bool = True) -> None:
    """Count one run.

    History entries (with_hour=False) have no reliable time of their own (the
    file's mtime): they teach users and tools, but neither hours nor how long
    the host has been observed.
    """
    settle(b)
    _own(b)
    if with_hour and (not b.first or t < b.first):
        b.first = t
    entry = b.users.get(user)
    if entry is None:
        b.users[user] = entry = [0, t, 0]
    entry[0] += 1
    entry[1] = max(entry[1], t)
    _bump(b.tools, SEP.join((user, tool)), t)
    if parent:
        _bump(b.parents, SEP.join((user, parent)), t)
    if with_hour:
        how = hour_of_week(t)
        entry[2] |= 1 << how
        _bump(b.runs, SEP.join((user, tool, parent, str(how))), t, days=True)


@dataclass(slots=True)
class Keys:
    """The table keys of one (user, tool, parent), built once per distinct access (see engine.AccessClass)."""

    user: str
    tool_key: str  # user, tool
    parent_key: str  # user, parent; "" when there is no parent
    run_prefix: str  # user, tool, parent and a separator: the run key without its hour
    runs: dict[int, str] = field(default_factory=dict)  # hour of week -> run key (built once, hash kept)

    def run_key(self, how: int) -> str:
        key = self.runs.get(how)
        if key is None:
            key = self.runs[how] = self.run_prefix + str(how)
        return key


def keys(user: str, tool: str, parent: str) -> Keys:
    return Keys(user, f"{user}{SEP}{tool}", f"{user}{SEP}{parent}" if parent else "", f"{user}{SEP}{tool}{SEP}{parent}{SEP}")


def observe(b: Baseline, settings: CorrelatorSettings, user: str, tool: str, parent: str, t: int) -> list[str]:
    """judge() then learn() one access, building each key once."""
    return observe_keys(b, settings, keys(user, tool, parent), t)


def observe_keys(b: Baseline, settings: CorrelatorSettings, k: Keys, t: int) -> list[str]:
    """observe() with prebuilt keys: judge() then learn()."""
    found = judge_keys(b, settings, k, t)
    learn_keys(b, k, t)
    return found


def judge_keys(b: Baseline, settings: CorrelatorSettings, k: Keys, t: int) -> list[str]:
    """judge() with prebuilt keys; learns nothing."""
    settle(b)
    found: list[str] = []
    if not b.first or t - b.first < settings.baseline_novel_after_seconds:
        return found  # the minimum learning period
    how = hour_of_week(t)
    run = b.runs.get(k.run_key(how))
    entry = b.users.get(k.user)
    if run is not None and count_of(run) >= settings.baseline_min_observations:
        found.append(R.BASELINE_HABITUAL.code)
    else:
        if entry is None:
            found.append(R.BASELINE_NOVEL_USER.code)
        else:
            if k.tool_key not in b.tools:
                found.append(R.BASELINE_NOVEL_TOOL.code)
            elif k.parent_key and k.parent_key not in b.parents:
                found.append(R.BASELINE_NOVEL_PARENT.code)
            if entry[0] >= settings.baseline_min_observations and not entry[2] & _near(how):
                found.append(R.BASELINE_UNUSUAL_HOUR.code)
    return found


def learn_keys(b: Baseline, k: Keys, t: int) -> None:
    """learn() with prebuilt keys (with hours)."""
    defer_keys(b, k, t)
    settle(b)


class Deferred:
    """Runs of one run key counted by defer_keys() and not yet settled."""

    __slots__ = ("count", "days", "first", "how", "keys", "last", "last_bits", "next_day")  # interpreted: cheaper stores

    def __init__(self, t: int, keys: Keys, how: int) -> None:
        self.count: int = 1
        day = (t & _LAST) // DAY
        # Days (of the packed time) on which a run came later than every run before it: the run key's
        # table counts those after the day it saw last (as _bump(days=True) run by run does).
        self.days: list[int] = [day]
        self.first: int = t
        self.last: int = t
        self.last_bits: int = t & _LAST  # the largest time as the packed counters keep it
        # The first time of the day after last_bits' day: a later run is on a new day when it is at or past it
        # (a comparison per run instead of two divisions: interpreted, event times are two-digit ints, whose
        # floor division is CPython's long algorithm).
        self.next_day: int = (day + 1) * DAY
        self.keys: Keys = keys
        self.how: int = how


def defer_keys(b: Baseline, k: Keys, t: int) -> None:
    """learn_keys() later: the hot path of every expected access only counts the run.

    Counts, first and last times and hour masks are sums, minimums, maximums
    and unions, so adding n runs at once (settle) gives exactly the tables n
    learn_keys() calls give; everything that reads the tables settles first.
    """
    how = ((t // 3600) + 72) % 168  # hour_of_week(t)
    run_key = k.runs.get(how) or k.run_key(how)
    entry = b.pending.get(run_key)
    if entry is None:
        if type(b.pending) is not dict:  # the shared empty table: a table of its own first
            b.pending = {}
        b.pending[run_key] = Deferred(t, k, how)
        return
    entry.count += 1
    # Comparisons, not min()/max(): each is a call when interpreted, and every expected run comes here.
    if t < entry.first:  # noqa: PLR1730
        entry.first = t
    if t > entry.last:  # noqa: PLR1730
        entry.last = t
    tl = t & _LAST
    if tl > entry.last_bits:
        if tl >= entry.next_day:  # tl // DAY > entry.last_bits // DAY
            day = tl // DAY
            entry.days.append(day)
            entry.next_day = (day + 1) * DAY
        entry.last_bits = tl


def _add_runs(table: dict[str, int], key: str, n: int, tl: int, days: list[int] | None = None) -> None:
    """n more runs; with `days` (Deferred.days), one more per day in it after the table's last day."""
    packed = table.get(key)
    if packed is None:
        table[key] = (n if days is None else len(days)) << _SHIFT | tl
    else:
        last = packed & _LAST
        if days is not None:
            last_day = last // DAY
            n = sum(1 for d in days if d > last_day)
        table[key] = (packed & _COUNT) + (n << _SHIFT) | (max(last, tl))


def settle(b: Baseline) -> None:
    """Add the deferred runs to the tables."""
    if not b.pending:
        return
    pending, b.pending = b.pending, EMPTY
    _own(b)
    for run_key, deferred in pending.items():
        n, first, last, tl, k, how = (deferred.count, deferred.first, deferred.last, deferred.last_bits, deferred.keys,
                                      deferred.how)
        if not b.first or first < b.first:
            b.first = first
        entry = b.users.get(k.user)
        if entry is None:
            b.users[k.user] = entry = [0, last, 0]
        entry[0] += n
        entry[1] = max(entry[1], last)
        entry[2] |= _HOUR_BITS[how]
        _add_runs(b.tools, k.tool_key, n, tl)
        if k.parent_key:
            _add_runs(b.parents, k.parent_key, n, tl)
        _add_runs(b.runs, run_key, n, tl, deferred.days)


def _own(b: Baseline) -> None:
    """Tables of its own for a baseline about to learn (a shared empty one is replaced)."""
    if type(b.runs) is not dict:
        b.runs = {}
    if type(b.users) is not dict:
        b.users = {}
    if type(b.tools) is not dict:
        b.tools = {}
    if type(b.parents) is not dict:
        b.parents = {}


def prune(b: Baseline, now: int, expiry_seconds: int) -> None:
    settle(b)
    if not (b.runs or b.users or b.tools or b.parents):
        return  # nothing learned (most hosts of a fleet, on their first row): 1.4 microseconds saved a host
    horizon = now - 5 * expiry_seconds
    for table in (b.runs, b.tools, b.parents):
        stale = [k for k, v in table.items() if last_of(v) < horizon]
        for k in stale:
            del table[k]
        if len(table) > MAX_KEYS:
            for k, _ in sorted(table.items(), key=lambda kv: (last_of(kv[1]), kv[0]))[: len(table) - MAX_KEYS]:
                del table[k]
    stale = [u for u, v in b.users.items() if v[1] < horizon]
    for u in stale:
        del b.users[u]
    if len(b.users) > MAX_KEYS:
        for u, _ in sorted(b.users.items(), key=lambda kv: (kv[1][1], kv[0]))[: len(b.users) - MAX_KEYS]:
            del b.users[u]


def cap(b: Baseline) -> int:
    """Hold each table to MAX_KEYS between the daily prunes: past it, the least recently seen entries go, down
    to 7/8 of it (one sort per MAX_KEYS/8 new entries); returns how many went. A flood of distinct users on one
    host (issue 11 item 8) then costs the same per run at any size."""
    settle(b)
    keep = MAX_KEYS * 7 // 8
    dropped = 0
    for table in (b.runs, b.tools, b.parents):
        if len(table) > MAX_KEYS:
            for k, _ in sorted(table.items(), key=lambda kv: (last_of(kv[1]), kv[0]))[: len(table) - keep]:
                del table[k]
                dropped += 1
    if len(b.users) > MAX_KEYS:
        for u, _ in sorted(b.users.items(), key=lambda kv: (kv[1][1], kv[0]))[: len(b.users) - keep]:
            del b.users[u]
            dropped += 1
    return dropped


def describe(b: Baseline) -> list[dict[str, Any]]:
    """Human-facing rows for `osq-dbwatch baseline`."""
    settle(b)
    out = []
    for key, packed in sorted(b.runs.items()):
        count, last = count_of(packed), last_of(packed)
        user, tool, parent, how = key.split(SEP)
        h = int(how)
        out.append({"user": user, "tool": tool, "parent": parent, "hour_of_week": h,
                    "when": f"{('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')[h // 24]} {h % 24:02d}:00 UTC",
                    "count": count, "last_seen": last})
    return out
