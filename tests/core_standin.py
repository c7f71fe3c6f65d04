"""A stand-in for osquery core, for tests: the real Thrift interface, a real exec.

No osqueryd can be installed here, so tests talk to the extension the way core
does: `CoreStandin` serves the `ExtensionManager` interface generated into the
`osquery` PyPI package on a Unix socket, execs the extension exactly as
osqueryd's launchExtension does (argv[0] "osquery extension: PATH", then
`--socket S --timeout T --interval I [--verbose]`, env OSQUERY_EXTENSION=<pid>),
accepts its registration (refusing what core refuses: duplicate names, tables
clashing with built-in ones, SDK below 1.7.7) and calls tables over Thrift.

`ExtensionManager.query(sql)` is answered from an in-memory SQLite holding the
osquery_flags / osquery_events / osquery_extensions rows a test gives, so a
table can be tested against a core that allows the query and one that refuses it.

Loaded as a pytest plugin by tests/conftest.py: the `osquery_core` fixture
yields a started stand-in with the real extension registered.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Iterator

import pytest
from osquery.extensions import Extension, ExtensionManager
from osquery.extensions.ttypes import (
    ExtensionResponse,
    ExtensionStatus,
    InternalExtensionInfo,
    InternalOptionInfo,
)
from thrift.protocol import TBinaryProtocol
from thrift.transport import TSocket, TTransport

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LAUNCHER = os.path.join(REPO, "extension", "osq_dbwatch.ext")
SHARED = os.environ.get("OSQ_DBWATCH_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
SCHEMA = os.path.join(SHARED, "osquery", "schema-5.23.1.json")

# SQLite affinity osquery reports per column type in the generate context.
_AFFINITY = {"TEXT": "TEXT", "INTEGER": "INTEGER", "BIGINT": "BIGINT", "UNSIGNED_BIGINT": "UNSIGNED_BIGINT",
             "DOUBLE": "DOUBLE", "BLOB": "BLOB"}

# Op codes osquery sends (ConstraintOperator).
EQUALS, GREATER_THAN, LESS_THAN_OR_EQUALS, LESS_THAN, GREATER_THAN_OR_EQUALS = 2, 4, 8, 16, 32
LIKE, GLOB, REGEXP = 65, 66, 67


logging.getLogger("thrift").addHandler(logging.NullHandler())
logging.getLogger("thrift").propagate = False


class CoreStandinError(Exception):
    pass


def _builtin_tables() -> frozenset[str]:
    try:
        with open(SCHEMA, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return frozenset({"processes", "users", "file", "osquery_flags", "osquery_events", "osquery_extensions"})
    return frozenset(t["name"] for t in data if isinstance(t, dict) and "name" in t)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in (text or "0").split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


class _Core(ExtensionManager.Iface):
    """The ExtensionManager handler: registration plus `query` over SQLite."""

    def __init__(self, standin: "CoreStandin") -> None:
        self.s = standin

    # Extension interface (core answers pings too)
    def ping(self) -> ExtensionStatus:
        return ExtensionStatus(code=0, message="OK")

    def call(self, registry: str, item: str, request: dict[str, str]) -> ExtensionResponse:
        return ExtensionResponse(status=ExtensionStatus(code=1, message="stand-in core has no plugins"), response=[])

    def shutdown(self) -> None:
        return None

    # ExtensionManager interface
    def extensions(self) -> dict[int, InternalExtensionInfo]:
        return {uuid: info for uuid, (info, _) in self.s.registered.items()}

    def options(self) -> dict[str, InternalOptionInfo]:
        return {k: InternalOptionInfo(value=v, default_value="", type="string") for k, v in self.s.flags.items()}

    def registerExtension(self, info: InternalExtensionInfo, registry: dict[str, dict[str, list[dict[str, str]]]]) -> ExtensionStatus:
        with self.s._lock:
            if any(i.name == info.name for i, _ in self.s.registered.values()):
                return ExtensionStatus(code=1, message="Duplicate extension registered")
            if _version_tuple(info.sdk_version) < (1, 7, 7):
                return ExtensionStatus(code=1, message="Incompatible extension SDK")
            clash = sorted(set((registry or {}).get("table", {})) & self.s.builtin_tables)
            if clash:
                return ExtensionStatus(code=1, message=f"Extension table {clash[0]} clashes with a built-in table")
            self.s._next_uuid += 1
            uuid = self.s._next_uuid
            self.s.registered[uuid] = (info, registry)
            self.s._db_add_extension(uuid, info)
            self.s.uuid = uuid
            self.s.registry = registry
            self.s._registered.set()
            return ExtensionStatus(code=0, message="OK", uuid=uuid)

    def deregisterExtension(self, uuid: int) -> ExtensionStatus:
        with self.s._lock:
            self.s.registered.pop(uuid, None)
        return ExtensionStatus(code=0, message="OK")

    def query(self, sql: str) -> ExtensionResponse:
        self.s.queries.append(sql)
        if self.s.refuse_queries:
            return ExtensionResponse(status=ExtensionStatus(code=1, message="query refused by stand-in core"), response=[])
        try:
            with self.s._lock:
                cursor = self.s.db.execute(sql)
                names = [d[0] for d in cursor.description or ()]
                rows = [{n: "" if v is None else str(v) for n, v in zip(names, r)} for r in cursor.fetchall()]
        except sqlite3.Error as exc:
            return ExtensionResponse(status=ExtensionStatus(code=1, message=str(exc)), response=[])
        return ExtensionResponse(status=ExtensionStatus(code=0, message="OK"), response=rows)

    def getQueryColumns(self, sql: str) -> ExtensionResponse:
        try:
            with self.s._lock:
                cursor = self.s.db.execute(f"SELECT * FROM ({sql}) LIMIT 0")
        except sqlite3.Error as exc:
            return ExtensionResponse(status=ExtensionStatus(code=1, message=str(exc)), response=[])
        return ExtensionResponse(status=ExtensionStatus(code=0, message="OK"),
                                 response=[{d[0]: "TEXT"} for d in cursor.description or ()])


class CoreStandin:
    """Serve ExtensionManager on a Unix socket, exec the extension, call its tables.

    ext_argv: the executable and any extra arguments (default: the real
    launcher); env: variables added to this process's environment for the
    extension (osqueryd passes its own environment, plus OSQUERY_EXTENSION);
    flags / events: rows of osquery_flags (name -> value) and osquery_events
    (dicts with name, publisher, type, subscriptions, events, refreshes,
    active) that ExtensionManager.query answers from; refuse_queries: answer
    every query with an error status instead.
    """

    def __init__(
        self,
        ext_argv: list[str] | None = None,
        env: dict[str, str] | None = None,
        flags: dict[str, str] | None = None,
        events: list[dict[str, Any]] | None = None,
        *,
        refuse_queries: bool = False,
        timeout: int = 3,
        interval: int = 3,
        verbose: bool = False,
        call_timeout: float = 60.0,
    ) -> None:
        self.ext_argv = list(ext_argv) if ext_argv else [LAUNCHER]
        self.env_overrides = dict(env or {})
        self.flags = dict(flags or {})
        self.events = list(events or [])
        self.refuse_queries = refuse_queries
        self.timeout, self.interval, self.verbose = timeout, interval, verbose
        self.call_timeout = call_timeout
        self.builtin_tables = _builtin_tables()
        self.registered: dict[int, tuple[InternalExtensionInfo, dict]] = {}
        self.registry: dict[str, Any] = {}
        self.uuid: int | None = None
        self.queries: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()  # registry and SQLite (core side)
        self._call_lock = threading.Lock()  # our client connection to the extension
        self._registered = threading.Event()
        self._next_uuid = 0
        self._stopping = False
        self._conns: list[socket.socket] = []
        self._dir = tempfile.mkdtemp(prefix="osqcore-")
        self.socket_path = os.path.join(self._dir, "osquery.em")
        self._stderr_path = os.path.join(self._dir, "ext.stderr")
        self._client: Extension.Client | None = None
        self._client_transport: TTransport.TTransportBase | None = None
        self._columns: dict[str, list[tuple[str, str]]] = {}
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db_init()

    # -- SQLite behind ExtensionManager.query

    def _db_init(self) -> None:
        self.db.executescript(
            """
            CREATE TABLE osquery_flags (name TEXT, type TEXT, description TEXT, default_value TEXT,
                                        value TEXT, shell_only INTEGER);
            CREATE TABLE osquery_events (name TEXT, publisher TEXT, type TEXT, subscriptions INTEGER,
                                         events INTEGER, refreshes INTEGER, active INTEGER);
            CREATE TABLE osquery_extensions (uuid INTEGER, name TEXT, version TEXT, sdk_version TEXT,
                                             path TEXT, type TEXT);
            INSERT INTO osquery_extensions VALUES (0, 'core', '5.23.1', '0.0.0', 'core', 'core');
            """
        )
        for name, value in self.flags.items():
            self.db.execute("INSERT INTO osquery_flags VALUES (?, 'string', '', '', ?, 0)", (name, str(value)))
        for event in self.events:
            self.db.execute(
                "INSERT INTO osquery_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    event.get("name", ""), event.get("publisher", ""), event.get("type", "subscriber"),
                    int(event.get("subscriptions", 1)), int(event.get("events", 0)),
                    int(event.get("refreshes", 0)), int(event.get("active", 1)),
                ),
            )
        self.db.commit()

    def _db_add_extension(self, uuid: int, info: InternalExtensionInfo) -> None:
        self.db.execute(
            "INSERT INTO osquery_extensions VALUES (?, ?, ?, ?, ?, 'extension')",
            (uuid, info.name, info.version, info.sdk_version, self.socket_path + "." + str(uuid)),
        )

    # -- serving

    def _serve(self) -> None:
        processor = ExtensionManager.Processor(_Core(self))
        while not self._stopping:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                if self._stopping:
                    return
                continue
            if self._stopping:
                conn.close()
                return
            self._conns.append(conn)
            threading.Thread(target=self._handle, args=(processor, conn), daemon=True).start()

    @staticmethod
    def _handle(processor: ExtensionManager.Processor, conn: socket.socket) -> None:
        sock = TSocket.TSocket()
        sock.handle = conn
        transport = TTransport.TBufferedTransport(sock)
        protocol = TBinaryProtocol.TBinaryProtocol(transport)
        try:
            while True:
                processor.process(protocol, protocol)
        except (TTransport.TTransportException, OSError, EOFError):
            pass
        finally:
            transport.close()

    def start(self, wait: bool = True) -> "CoreStandin":
        """Listen, exec the extension; with `wait`, return once it registered."""
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.socket_path)
        self._listener.listen(16)
        self._server_thread = threading.Thread(target=self._serve, daemon=True)
        self._server_thread.start()
        self.proc = self.spawn(self.socket_path)
        if wait:
            self.wait_registered()
        return self

    def spawn(self, socket_path: str) -> subprocess.Popen[bytes]:
        """Exec the extension the way osqueryd's launchExtension does."""
        env = dict(os.environ)
        env.update(self.env_overrides)
        env["OSQUERY_EXTENSION"] = str(os.getpid())
        path = self.ext_argv[0]
        argv = [f"osquery extension: {path}", *self.ext_argv[1:], "--socket", socket_path,
                "--timeout", str(self.timeout), "--interval", str(self.interval)]
        if self.verbose:
            argv.append("--verbose")
        stderr = open(self._stderr_path, "ab")
        try:
            return subprocess.Popen(argv, executable=path, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=stderr, close_fds=True)
        finally:
            stderr.close()

    def stderr_text(self) -> str:
        try:
            with open(self._stderr_path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return ""

    def wait_registered(self, timeout: float = 15) -> dict[str, Any]:
        """The registry the extension sent with registerExtension."""
        deadline = time.monotonic() + timeout
        while not self._registered.wait(0.05):
            if self.proc is not None and self.proc.poll() is not None:
                raise CoreStandinError(
                    f"extension exited with {self.proc.returncode} before registering: {self.stderr_text().strip()}"
                )
            if time.monotonic() > deadline:
                raise CoreStandinError(f"extension did not register within {timeout}s: {self.stderr_text().strip()}")
        # Registered is not yet serving: wait until the extension answers a ping.
        self.ping()
        return self.registry

    # -- calling the extension

    def _ext_client(self) -> Extension.Client:
        if self._client is not None:
            return self._client
        if self.uuid is None:
            raise CoreStandinError("no extension registered")
        path = f"{self.socket_path}.{self.uuid}"
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)  # registered, not yet listening
        while True:
            sock = TSocket.TSocket(unix_socket=path)
            sock.setTimeout(int(self.call_timeout * 1000))
            transport = TTransport.TBufferedTransport(sock)
            try:
                transport.open()
                break
            except TTransport.TTransportException:
                if time.monotonic() > deadline or (self.proc is not None and self.proc.poll() is not None):
                    raise CoreStandinError(f"cannot connect to extension socket {path}: {self.stderr_text().strip()}")
                time.sleep(0.02)
        self._client_transport = transport
        self._client = Extension.Client(TBinaryProtocol.TBinaryProtocol(transport))
        return self._client

    def call(self, table: str, request: dict[str, str]) -> ExtensionResponse:
        """The raw Thrift `call` core makes for a table."""
        with self._call_lock:
            return self._ext_client().call("table", table, request)

    def ping(self) -> ExtensionStatus:
        with self._call_lock:
            return self._ext_client().ping()

    def columns(self, table: str) -> list[tuple[str, str]]:
        response = self.call(table, {"action": "columns"})
        if response.status.code != 0:
            raise CoreStandinError(f"columns {table}: {response.status.message}")
        cols = [(r["name"], r["type"]) for r in response.response if r.get("id", "column") == "column"]
        self._columns[table] = cols
        return cols

    def context(self, table: str, constraints: dict[str, list[tuple[int, str]]] | None = None) -> str:
        """A generate context shaped like osquery's: every column, sorted, with its constraints."""
        cols = self._columns.get(table) or self.columns(table)
        types = dict(cols)
        constraints = constraints or {}
        unknown = set(constraints) - set(types)
        if unknown:
            raise CoreStandinError(f"no such column in {table}: {sorted(unknown)}")
        entries = [
            {
                "name": name,
                "list": [{"op": int(op), "expr": str(expr)} for op, expr in constraints.get(name, [])],
                "affinity": _AFFINITY.get(types[name], "TEXT"),
            }
            for name in sorted(types)
        ]
        names = [name for name, _ in cols]
        return json.dumps({"constraints": entries, "colsUsed": sorted(names), "colsUsedBitset": (1 << len(names)) - 1})

    def generate_raw(self, table: str, constraints: dict[str, list[tuple[int, str]]] | None = None) -> ExtensionResponse:
        return self.call(table, {"action": "generate", "context": self.context(table, constraints)})

    def generate(self, table: str, constraints: dict[str, list[tuple[int, str]]] | None = None) -> list[dict[str, str]]:
        response = self.generate_raw(table, constraints)
        if response.status.code != 0:
            raise CoreStandinError(f"generate {table}: {response.status.message}")
        return list(response.response)

    def core_query(self, sql: str) -> list[dict[str, str]]:
        """What ExtensionManager.query answers (for assertions on the stand-in itself)."""
        response = _Core(self).query(sql)
        if response.status.code != 0:
            raise CoreStandinError(response.status.message)
        return list(response.response)

    # -- lifecycle

    def vanish(self) -> None:
        """Core dies: stop listening and drop every connection (the extension's pings fail)."""
        self._stopping = True
        listener = getattr(self, "_listener", None)
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
            self._listener = None
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self._conns.clear()

    def stop(self) -> None:
        self._stopping = True
        if self._client_transport is not None:
            try:
                self._client_transport.close()
            except Exception:
                pass
            self._client, self._client_transport = None, None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        listener = getattr(self, "_listener", None)
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            except OSError:
                pass
            listener.close()
        self.db.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "CoreStandin":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def osquery_core() -> Iterator[CoreStandin]:
    """A stand-in core with the real extension (extension/osq_dbwatch.ext) registered."""
    with CoreStandin(env={"OSQ_DBWATCH_PYTHON": sys.executable}) as core:
        yield core
