"""One host's state (what the engine keeps between rows and between runs) and its stored forms.

HostState.to_row() (a list in ROW_FIELDS order) is what correlate/state.py stores per host (schema 4);
to_json() is the keyed form of schemas 2 and 3, and the one reader: a stored row is turned into it and
read back by from_json(), including states written by earlier versions (0.1.0 kept pid entries as
objects without the tool).

Empty tables are empty.EMPTY, one read-only dict shared by every host, and admin groups are shared by
the hosts that have the same ones (share_admin_groups): what engine.py adds to a table it first makes
its own (issue 12: a host with nothing pending costs little more than what it has to remember).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Final

from . import baseline as B
from .empty import EMPTY, EMPTY_LIST, Frozen
from .evidence import Evidence, egress_from_json, file_from_json, linked_from_json, upgrade_history_id
from .jsonlib import dumps

# time, user, kind, files, tool. Compiled code unpacks a fixed tuple type like this one into a C struct
# on every read and builds a new tuple to store it: compare entries by value, never with `is`.
PidEntry = tuple[int, str, str, tuple[str, ...], str]


def _pid_entry(value: Any) -> PidEntry:
    """A saved pid entry; state files of 0.1.0 kept them as objects without the tool."""
    if type(value) is dict:
        return (value["t"], value["user"], value["kind"], tuple(value["files"]), "")
    t, user, kind, files, tool = value
    return (t, user, kind, tuple(files), tool)


def _empty() -> Any:
    """The shared empty table (empty.EMPTY) as a default: compiled, so a new host state calls no Python code."""
    return EMPTY


def _empty_list() -> Any:
    return EMPTY_LIST


@dataclass
class Chain:
    uid: str
    user: str
    start: int
    last_access: int
    first_dump: int = 0
    last_dump: int = 0
    last_egress: int = 0
    tools: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    uid_users: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    server: str = ""  # ladder code of a server context, "" when none
    context: list[str] = field(default_factory=list)
    baseline: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    techniques: list[str] = field(default_factory=list)
    evidences: list[Evidence] = field(default_factory=list)  # LINKED evidence
    dirty: bool = False

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _CHAIN_FIELDS}
        data["evidences"] = [e.to_json() for e in self.evidences]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Chain:
        chain = cls(**data)
        chain.evidences = [linked_from_json(e) for e in data.get("evidences", [])]
        return chain


_CHAIN_FIELDS: Final = tuple(f.name for f in fields(Chain) if f.name != "dirty")


# A host row of schema 4 is MessagePack of HostState.to_row(): [ROW_FORM, the values of ROW_FIELDS in this
# order], the baseline as [the values of B.ROW_FIELDS]. state.decode_host() turns it into the to_json() form
# (row_json) and reads that, so every check and upgrade of a stored state applies to both forms.
ROW_FORM: Final = 4
ROW_FIELDS: Final = ("host", "host_uuid", "watermark", "admin_groups", "admin_snapshot", "chains", "files", "egress",
                     "pids", "seen", "emitted", "history", "baseline", "evictions", "last_expiry")


def row_json(row: list[Any]) -> dict[str, Any]:
    """A schema-4 row (to_row()) in the to_json() form; ValueError when it is not one."""
    if len(row) != len(ROW_FIELDS) + 1 or row[0] != ROW_FORM:
        raise ValueError(f"a list of {len(row)} items, not a host row of form {ROW_FORM}")
    data = dict(zip(ROW_FIELDS, row[1:]))
    baseline = data["baseline"]
    if type(baseline) is not list or len(baseline) != len(B.ROW_FIELDS):
        raise ValueError("baseline is not a list of its fields")
    data["baseline"] = dict(zip(B.ROW_FIELDS, baseline))
    return data


@dataclass(init=False)
class HostState:
    host: str
    host_uuid: str = ""  # osquery's host_uuid decoration, newest seen ("" when the log has none)
    watermark: int = 0
    admin_groups: dict[str, list[str]] = field(default_factory=_empty)  # user -> admin groups (from admin_accounts)
    admin_snapshot: int = 0
    chains: dict[str, Chain] = field(default_factory=_empty)
    files: list[Evidence] = field(default_factory=_empty_list)  # FILE evidence, in arrival order
    egress: list[Evidence] = field(default_factory=_empty_list)  # CONNECT and UPLOAD evidence, in arrival order
    # pid -> (time, user, kind "db" or "transfer", files it reads or writes, tool): links and de-duplicates
    pids: dict[str, PidEntry] = field(default_factory=_empty)
    seen: dict[str, int] = field(default_factory=_empty)
    emitted: dict[str, list[int]] = field(default_factory=_empty)  # uid -> [severity, last event time]
    history: dict[str, int] = field(default_factory=_empty)  # history entry identities (snapshots repeat them)
    baseline: B.Baseline = field(default_factory=B.Baseline)
    evictions: int = 0
    last_expiry: int = 0  # event time of the last full expiry sweep
    # Chains closed or evicted since the last flush whose finding is still due
    # (always empty between flushes, so never serialised).
    closing: dict[str, Chain] = field(default_factory=_empty)
    # Derived from `chains`, never serialised (rebuilt after a load; engine.py keeps them in step):
    # user -> uids of that user's pending chains in creation order, so a row finds its user's chain
    # without scanning every chain; a heap of (last activity, uid) giving the eviction victim in O(log n)
    # (entries go stale when a chain moves on or leaves: checked when popped); and a lower bound on
    # the earliest close time of any pending chain (0: unknown), so most rows skip the close scan.
    by_user: dict[str, list[str]] | None = field(default=None, compare=False, repr=False)
    evict_heap: list[tuple[int, str]] = field(default_factory=_empty_list, compare=False, repr=False)
    next_close: int = field(default=0, compare=False, repr=False)
    # The fast path's memo, never serialised: the raw decorations (msgspec.Raw) of this host's last line that
    # had them, and their host_uuid ("" when none): a host's lines repeat them, and they are decoded when
    # their bytes change (on the state, not in a table keyed by host: one lookup less per line).
    decorations: Any = field(default=None, compare=False, repr=False)
    decorations_uuid: str = field(default="", compare=False, repr=False)

    # Written out rather than generated by @dataclass (init=False): the generated __init__ is Python even in the
    # compiled build, and a new host's state cost 4 microseconds with it (0.4 s over 100,000 hosts), under 1
    # compiled. The same fields, order and defaults; None stands for the shared empty table.
    def __init__(self, host: str, host_uuid: str = "", watermark: int = 0,
                 admin_groups: dict[str, list[str]] | None = None, admin_snapshot: int = 0,
                 chains: dict[str, Chain] | None = None, files: list[Evidence] | None = None,
                 egress: list[Evidence] | None = None, pids: dict[str, PidEntry] | None = None,
                 seen: dict[str, int] | None = None, emitted: dict[str, list[int]] | None = None,
                 history: dict[str, int] | None = None, baseline: B.Baseline | None = None, evictions: int = 0,
                 last_expiry: int = 0, closing: dict[str, Chain] | None = None,
                 by_user: dict[str, list[str]] | None = None, evict_heap: list[tuple[int, str]] | None = None,
                 next_close: int = 0) -> None:
        empty = EMPTY  # one lookup of the module's global instead of ten (compiled: a dict lookup each)
        empty_list = EMPTY_LIST
        self.host = host
        self.host_uuid = host_uuid
        self.watermark = watermark
        self.admin_groups = admin_groups if admin_groups is not None else empty
        self.admin_snapshot = admin_snapshot
        self.chains = chains if chains is not None else empty
        self.files = files if files is not None else empty_list
        self.egress = egress if egress is not None else empty_list
        self.pids = pids if pids is not None else empty
        self.seen = seen if seen is not None else empty
        self.emitted = emitted if emitted is not None else empty
        self.history = history if history is not None else empty
        self.baseline = baseline if baseline is not None else B.Baseline()
        self.evictions = evictions
        self.last_expiry = last_expiry
        self.closing = closing if closing is not None else empty
        self.by_user = by_user
        self.evict_heap = evict_heap if evict_heap is not None else empty_list
        self.next_close = next_close
        self.decorations = None
        self.decorations_uuid = ""

    def to_row(self) -> list[Any]:
        """The state form as a list (ROW_FORM, then the values of ROW_FIELDS in order): what state.encode_host
        writes since schema 4. Built straight from the objects, shared empty tables included as they are
        (MessagePack writes them as empty maps and arrays), and without the field names in every row."""
        return [ROW_FORM, self.host, self.host_uuid, self.watermark, self.admin_groups, self.admin_snapshot,
                {uid: c.to_json() for uid, c in self.chains.items()} if self.chains else EMPTY,
                [f.to_json() for f in self.files] if self.files else EMPTY_LIST,
                [e.to_json() for e in self.egress] if self.egress else EMPTY_LIST,
                self.pids, self.seen, self.emitted, self.history, self.baseline.to_row(), self.evictions,
                self.last_expiry]

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "host_uuid": self.host_uuid,
            "watermark": self.watermark,
            "admin_groups": self.admin_groups or {},
            "admin_snapshot": self.admin_snapshot,
            "chains": {uid: c.to_json() for uid, c in self.chains.items()},
            "files": [f.to_json() for f in self.files],
            "egress": [e.to_json() for e in self.egress],
            "pids": self.pids or {},
            "seen": self.seen or {},
            "emitted": self.emitted or {},
            "history": self.history or {},
            "baseline": self.baseline.to_json(),
            "evictions": self.evictions,
            "last_expiry": self.last_expiry,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostState:
        return cls(
            host=data["host"],
            host_uuid=data.get("host_uuid", ""),
            watermark=data.get("watermark", 0),
            admin_groups=share_admin_groups(data.get("admin_groups") or EMPTY),
            admin_snapshot=data.get("admin_snapshot", 0),
            chains={uid: Chain.from_json(c) for uid, c in data.get("chains", {}).items()} or EMPTY,
            files=[file_from_json(f) for f in data.get("files", [])] or EMPTY_LIST,
            egress=[egress_from_json(e) for e in data.get("egress", [])] or EMPTY_LIST,
            pids={k: _pid_entry(v) for k, v in data.get("pids", {}).items()} or EMPTY,
            seen=data.get("seen") or EMPTY,
            emitted=data.get("emitted") or EMPTY,
            history={upgrade_history_id(k): v for k, v in data.get("history", {}).items()} or EMPTY,
            baseline=B.Baseline.from_json(data.get("baseline", {})),
            evictions=data.get("evictions", 0),
            last_expiry=data.get("last_expiry", 0),
        )


MAX_SHARED: Final = 4096  # distinct admin group sets shared between hosts; past that a host keeps its own
_SHARED: Final[dict[tuple[tuple[str, tuple[str, ...]], ...], dict[str, list[str]]]] = {}


def share_admin_groups(groups: dict[str, list[str]]) -> dict[str, list[str]]:
    """One shared read-only copy (empty.Frozen) of these admin groups for every host that has the same ones
    (in the same order); EMPTY when there are none. engine.py copies a shared one before changing it."""
    if not groups:
        return EMPTY
    if type(groups) is not dict:
        return groups  # shared already
    key = tuple([(user, tuple(names)) for user, names in groups.items()])
    shared = _SHARED.get(key)
    if shared is None:
        if len(_SHARED) >= MAX_SHARED:
            return groups
        shared = _SHARED[key] = Frozen({user: list(names) for user, names in key})
    return shared


def own_admin_groups(st: HostState) -> dict[str, list[str]]:
    """The host's admin groups as a dict of its own, to change (a shared one is copied first)."""
    groups = st.admin_groups
    if type(groups) is not dict:
        groups = st.admin_groups = {user: list(names) for user, names in groups.items()}
    return groups


def _encoder() -> tuple[Any, tuple[type[Exception], ...]]:
    """msgspec's MessagePack encoder and what it raises; (None, ()) without msgspec (a core dependency, but
    the correlator still runs on the stdlib alone, with JSON host rows, which every reader reads too)."""
    try:
        import msgspec
    except ImportError:
        return None, ()
    return msgspec.msgpack.Encoder(), (msgspec.EncodeError, UnicodeEncodeError, OverflowError)


_ENCODER, _PACK_ERRORS = _encoder()


def encode_host(state: HostState) -> bytes:
    """A host's state in its binary form (what the hosts table and the runner's packed hosts hold).

    MessagePack of to_row(): a third of the bytes of the JSON and several times faster both ways. A state
    MessagePack cannot carry (text with lone surrogates from a hostile log) is kept as JSON, which
    state.decode_host() reads too.
    """
    return bytes(encode_host_row(state))  # a packed host's bytes are kept: one copy of a few hundred bytes


def encode_host_row(state: HostState) -> bytes | bytearray:
    """encode_host() for a row the state file is about to store: the same bytes, in a bytearray (JSON: bytes).

    sqlite3 binds a bytearray as a BLOB directly; for bytes it first looks for an adapter, which costs a
    third as much as SQLite's own insert (bench/bench_correlate.py --sweep writes 100,000 host rows a commit).
    """
    if _ENCODER is None:
        return dumps(state.to_json())
    buffer = bytearray()
    try:
        _ENCODER.encode_into(state.to_row(), buffer)
    except _PACK_ERRORS:
        return dumps(state.to_json())
    return buffer
