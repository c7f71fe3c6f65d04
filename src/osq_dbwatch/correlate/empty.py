"""Shared read-only tables: one empty table for every host that has nothing in it, and shared admin groups.

At 100,000 hosts most of a host's tables are empty (no pending chain, no history, nothing emitted) and
most hosts have the same admin groups; a dict of its own for each costs 64 bytes empty and about 460
with two admins (issue 12: 100,000 host states must fit correlator.memory_mb). So an empty table is
EMPTY, one object shared by all hosts, and a host's admin groups are one dict shared by every host with
the same ones (hoststate.share_admin_groups). Code that adds to a table first replaces a shared one with
a dict of its own (`if type(table) is not dict: table = {}`, or a copy): a Frozen table is never written. The same for
the lists (recent files, connections, the eviction heap) with EMPTY_LIST.
Writing one anyway raises TypeError at once instead of changing every host (a bug, never user input).

This module is not compiled (mypyc native classes cannot subclass dict); compiled code reads Frozen
tables through the generic dict paths, which is as fast for empty ones.
"""

from __future__ import annotations

from typing import Any, NoReturn


class Frozen(dict):  # type: ignore[type-arg]
    """A dict shared between hosts: reading works as for any dict, writing raises."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a shared read-only host table was written to (osq-dbwatch bug)")

    __setitem__ = _refuse
    __delitem__ = _refuse
    setdefault = _refuse
    update = _refuse
    pop = _refuse
    popitem = _refuse
    __ior__ = _refuse

    def clear(self) -> None:
        if self:
            self._refuse()

    def __reduce__(self) -> tuple[Any, ...]:
        return (Frozen, (dict(self),))


class FrozenList(list):  # type: ignore[type-arg]
    """The shared empty list. Compiled `.append` and heapq add with PyList_Append, which no subclass can
    refuse: code appends only to a list of its own (checked), and check_shared() finds a miss at the commit."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a shared read-only host table was written to (osq-dbwatch bug)")

    append = _refuse
    extend = _refuse
    insert = _refuse
    remove = _refuse
    pop = _refuse
    sort = _refuse
    reverse = _refuse
    __setitem__ = _refuse
    __delitem__ = _refuse
    __iadd__ = _refuse
    __imul__ = _refuse

    def clear(self) -> None:
        if self:
            self._refuse()

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))


EMPTY: Frozen = Frozen()
EMPTY_LIST: FrozenList = FrozenList()


def check_shared() -> None:
    """Raise when a shared empty table is not empty any more (a missed own-table check: an osq-dbwatch bug)."""
    if EMPTY or EMPTY_LIST:
        raise RuntimeError("a shared empty host table was written to (osq-dbwatch bug); nothing was saved")

