"""The host states a correlator run holds in memory, and which of them changed (issue 12).

Live states are the engine's objects, least recently used first; packed states are hosts with nothing
pending in their binary form (hoststate.encode_host). `memory_mb` sets the budget for both (cli.py:
resident_budget). Over it the least recently used idle live host is packed (down to a quarter of the live
maximum), then the oldest packed hosts leave memory: `spill` writes them first when they changed since the
last commit. A host the state file holds is read with `load` when it is next seen; any other host starts
afresh without a read.

At fleet scale every call here runs once per host and batch (100,000 hosts: 100,000 times a batch), so the
module is compiled with mypyc (setup.py) and holds no I/O: cli.py's Runner reads and writes the state file
and prints, through the callables it passes in.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Final

from .engine import Engine
from .findings import Finding
from .hoststate import HostState, encode_host, encode_host_row

# A packed host's cost besides its bytes: its dict entry, key, bytes header, tuple, and set entries.
PACKED_ENTRY: Final = 280
# Event time a host's rows may span without an admin_accounts row, while admins.groups is set, before the
# runner warns (issue 13):
ADMIN_GRACE: Final = 2 * 3600  # two runs of the hourly admin_accounts snapshot

Row = tuple[str, int, int, bytes | bytearray]  # host, watermark, pending chains, binary state


class Residents:
    """Live and packed host states within a byte budget, the batch's touched hosts and the unsaved ones."""

    def __init__(self, resident: int, host_bytes: int, known: set[str],
                 load: Callable[[str], HostState | None], decode: Callable[[bytes], HostState],
                 spill: Callable[[str, int, bytes], None]) -> None:
        self.resident = resident  # live host states that fit with nothing packed
        self.host_bytes = host_bytes  # what one live state counts against the budget
        self.budget_bytes = resident * host_bytes  # live states and packed bytes together
        self.min_live = max(1, resident // 4)
        self.cache: OrderedDict[str, HostState] = OrderedDict()  # live states, least recently used first
        self.packed: OrderedDict[str, tuple[bytes, int]] = OrderedDict()  # host -> (binary state, watermark)
        self.packed_bytes = 0
        self.known = known  # hosts the state file holds that are not in memory
        self.load = load  # a known host's stored state (None: none after all)
        self.decode = decode  # a blob this run packed, back to a state (no shape check)
        self.spill = spill  # writes a packed host that leaves memory: (host, watermark, blob)
        self.unsaved: set[str] = set()  # hosts changed since the last commit (live or packed)
        self.dirty: dict[str, HostState] = {}  # hosts touched in this batch (the fast path reads it too)
        self.watermark = 0  # the newest event time of the hosts flushed or packed so far
        self.spilled = 0  # packed hosts written to the state file to free memory (this run)
        self.most_live = 0  # the most live states at a batch's end or commit (tests and the bench)
        # Admin warnings (issue 13): hosts whose rows span ADMIN_GRACE of event time in this run without an
        # admin_accounts row, while admins.groups is set: when each was first seen, and those warned about.
        self.check_admins = False
        self.first_seen: dict[str, int] = {}
        self.no_admin_rows: set[str] = set()

    def host(self, host: str) -> HostState:
        """The host's state: live, unpacked, loaded from the state file or new."""
        cache = self.cache
        state = cache.get(host)
        if state is not None:
            cache.move_to_end(host)
            return state
        packed = self.packed.pop(host, None)
        if packed is not None:
            self.packed_bytes -= len(packed[0]) + PACKED_ENTRY
            state = self.decode(packed[0])
        elif host in self.known:
            state = self.load(host) or HostState(host)
        else:
            state = HostState(host)
        cache[host] = state
        if len(cache) * self.host_bytes + self.packed_bytes > self.budget_bytes:
            self._over_budget(host)
        return state

    def open(self, host: str) -> HostState:
        """The host's state, entered in this batch's touched hosts and the unsaved ones."""
        state = self.host(host)
        self.dirty[host] = state
        self.unsaved.add(host)
        if self.check_admins and state.watermark and host not in self.first_seen:
            self.first_seen[host] = state.watermark
        return state

    def _over_budget(self, keep: str) -> None:
        """The live states are over budget: pack the least recently used hosts that have nothing pending.

        A packed host left the batch's touched hosts too: its flush would do nothing (no chain, nothing
        closing; its expiry sweep ran after its last row), so findings and state are the same as had it
        stayed. Hosts with pending chains stay live; when they alone fill the budget the live states grow past
        it until the batch ends, and the runner's commit then stops the run with one line.
        """
        cache = self.cache
        dirty = self.dirty
        host_bytes = self.host_bytes
        budget = self.budget_bytes
        checked = 0
        while (len(cache) * host_bytes + self.packed_bytes > budget and len(cache) > self.min_live
               and checked < len(cache)):
            host, state = next(iter(cache.items()))
            checked += 1
            if state.chains or state.closing or host == keep:
                cache.move_to_end(host)
                continue
            del cache[host]
            if dirty.pop(host, None) is not None:
                self.watermark = max(self.watermark, state.watermark)
            blob = encode_host(state)
            self.packed[host] = (blob, state.watermark)
            self.packed_bytes += len(blob) + PACKED_ENTRY
        while len(cache) * host_bytes + self.packed_bytes > budget and self.packed:
            host, (blob, watermark) = self.packed.popitem(last=False)
            self.packed_bytes -= len(blob) + PACKED_ENTRY
            if host in self.unsaved:
                # Written now, inside the transaction the next commit ends: memory is freed, nothing is lost.
                self.unsaved.discard(host)
                self.spill(host, watermark, blob)
                self.spilled += 1
            self.known.add(host)  # in the state file, and no longer in memory

    def end_batch(self, engine: Engine, write: Callable[[list[Finding]], int],
                  warn: Callable[[str], None]) -> int:
        """Flush each host the batch touched (its findings to `write`, which returns how many it wrote) and
        check its admin rows (`warn` once per host and run). Returns the findings written."""
        written = 0
        watermark = self.watermark
        check_admins = self.check_admins
        missing = engine.admin_rows_missing
        no_admin_rows = self.no_admin_rows
        first_seen = self.first_seen
        for host, state in self.dirty.items():
            found = engine.flush(state)
            if found:
                written += write(found)
            if state.watermark > watermark:  # noqa: PLR1730 - once per host and batch: max() is a call interpreted
                watermark = state.watermark
            if check_admins and host not in no_admin_rows:
                if missing(state):
                    self._admin_rows(host, state, warn)
                elif first_seen:
                    first_seen.pop(host, None)
        self.watermark = watermark
        self.most_live = max(self.most_live, len(self.cache))
        return written

    def _admin_rows(self, host: str, state: HostState, warn: Callable[[str], None]) -> None:
        """A host without admin_accounts rows: warned about once its rows span ADMIN_GRACE of event time."""
        # The host's first row time in this run: its stored watermark, or for a new host the time of its first
        # expiry sweep, which its first row runs.
        first = self.first_seen.get(host) or state.last_expiry or state.watermark
        self.first_seen[host] = first
        if state.watermark - first < ADMIN_GRACE:
            return
        self.no_admin_rows.add(host)
        del self.first_seen[host]
        warn(host)

    def unsaved_rows(self) -> Iterator[Row]:
        """The rows of the hosts changed since the last commit, one at a time (100,000 encoded rows at once
        would be 40 MB), in key order (SQLite then fills its table's pages one after the other instead of all
        over the file); none are unsaved once the last is taken."""
        cache = self.cache
        packed = self.packed
        for host in sorted(self.unsaved):
            state = cache.get(host)
            if state is not None:
                yield host, state.watermark, len(state.chains), encode_host_row(state)
                continue
            blob = packed.get(host)
            if blob is not None:
                yield host, blob[1], 0, blob[0]
        self.unsaved.clear()
        self.most_live = max(self.most_live, len(cache))

    def pending_hosts(self) -> int:
        """Live hosts with pending chains."""
        return sum(1 for state in self.cache.values() if state.chains)
