"""The osquery extension process: register the tables with core, then serve them.

osqueryd execs extension/osq_dbwatch.ext with `--socket S --timeout T
--interval I [--verbose]`; other arguments are ignored rather than fatal
(osquery-python's argparse would die on them). Differences from
`osquery.start_extension`, on purpose:

- a core socket that never answers within --timeout is exit status 1 with
  one line on stderr (the SDK exits 0 silently);
- a table that raises answers core with an error status and the extension
  keeps serving (the SDK's answer is a bare Thrift internal error);
- requests are still served one at a time, but from every open connection,
  so one idle connection from core cannot starve another;
- tables reach core's `query` over their own connection, never the watcher's.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import selectors
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from osquery.extensions import Extension, ExtensionManager
from osquery.extensions.ttypes import ExtensionResponse, ExtensionStatus, InternalExtensionInfo
from thrift.protocol import TBinaryProtocol
from thrift.Thrift import TMessageType

_Protocol = TBinaryProtocol.TBinaryProtocol  # the SDK's generated specs predate thrift's C codec
from thrift.transport import TSocket, TTransport

from .. import __version__
from . import TABLES
from .base import QueryContext, Table
from .env import ConfigHolder, CoreQueryError, TableEnv, config_path_from_env

# Thrift logs every failed connect attempt; our errors are one line each.
logging.getLogger("thrift").addHandler(logging.NullHandler())
logging.getLogger("thrift").propagate = False

EXTENSION_NAME = "osq_dbwatch"
SDK_VERSION = "3.1.1"  # the osquery-python SDK whose Thrift interface we speak
MIN_SDK_VERSION = "1.8.0"
DEFAULT_SOCKET = "/var/osquery/osquery.em"
QUERY_TIMEOUT_MS = 2000  # two queries must stay well inside osquery's ~10 s patience
CLIENT_IDLE_TIMEOUT_S = 30.0  # a half-sent request cannot hold the server longer


@dataclass(frozen=True)
class Options:
    socket: str = DEFAULT_SOCKET
    timeout: float = 3.0
    interval: float = 3.0
    verbose: bool = False


def _number(text: str, default: float) -> float:
    try:
        value = float(text)
    except ValueError:
        return default
    return value if 0 < value < 86400 else default


def parse_options(argv: Sequence[str]) -> Options:
    """--socket, --timeout, --interval, --verbose (also `--opt=value`); the rest is ignored."""
    values: dict[str, str] = {}
    verbose = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, eq, inline = arg.partition("=")
        if key in ("--socket", "--timeout", "--interval"):
            if eq:
                values[key] = inline
            elif i + 1 < len(argv):
                values[key] = argv[i + 1]
                i += 1
        elif arg == "--verbose":
            verbose = True
        i += 1
    return Options(
        socket=values.get("--socket") or DEFAULT_SOCKET,
        timeout=_number(values.get("--timeout", ""), 3.0),
        interval=_number(values.get("--interval", ""), 3.0),
        verbose=verbose,
    )


class Log:
    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose

    def error(self, line: str) -> None:
        print(f"osq-dbwatch extension: {line}", file=sys.stderr, flush=True)

    def info(self, line: str) -> None:
        if self.verbose:
            self.error(line)


def _open_transport(path: str, timeout_ms: int | None) -> TTransport.TBufferedTransport:
    sock = TSocket.TSocket(unix_socket=path)
    if timeout_ms:
        sock.setTimeout(timeout_ms)
    transport = TTransport.TBufferedTransport(sock)
    transport.open()
    return transport


def connect_core(path: str, timeout: float) -> TTransport.TBufferedTransport | None:
    """Retry until core's socket accepts a connection, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _open_transport(path, QUERY_TIMEOUT_MS * 2)
        except TTransport.TTransportException:
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)


class CoreConnection:
    """ExtensionManager.query over a dedicated connection, opened on first use."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._transport: TTransport.TBufferedTransport | None = None
        self._client: ExtensionManager.Client | None = None

    def query(self, sql: str) -> list[dict[str, str]]:
        with self._lock:
            while True:
                reused = self._client is not None
                try:
                    if self._client is None:
                        self._transport = _open_transport(self.path, QUERY_TIMEOUT_MS)
                        self._client = ExtensionManager.Client(TBinaryProtocol.TBinaryProtocol(self._transport))
                    response = self._client.query(sql)
                    break
                except (TTransport.TTransportException, OSError, EOFError) as exc:
                    self._reset()
                    if not reused:  # a kept connection may have gone stale: one fresh try, no more
                        raise CoreQueryError(f"core did not answer: {exc}") from None
                except Exception as exc:  # noqa: BLE001 - Thrift application errors, malformed replies: any, never a crash
                    self._reset()
                    raise CoreQueryError(f"core query failed: {type(exc).__name__}: {exc}") from None
            status = response.status
            if status is not None and status.code not in (0, None):
                raise CoreQueryError(f"core refused the query: {status.message}")
            return [dict(row) for row in (response.response or [])]

    def _reset(self) -> None:
        if self._transport is not None:
            with contextlib.suppress(OSError, TTransport.TTransportException):  # socket.close() raises OSError only
                self._transport.close()
        self._transport, self._client = None, None


def routes(table: type[Table]) -> list[dict[str, str]]:
    return [{"id": "column", "name": name, "type": kind, "op": "0"} for name, kind in table.columns()]


class Handler(Extension.Iface):
    """Answers core's ping/call/shutdown for our tables."""

    def __init__(self, tables: dict[str, Table], log: Log, on_shutdown: Callable[[], None]) -> None:
        self.tables = tables
        self.log = log
        self.on_shutdown = on_shutdown

    def ping(self) -> ExtensionStatus:
        return ExtensionStatus(code=0, message="OK")

    def shutdown(self) -> None:
        self.on_shutdown()

    def call(self, registry: str, item: str, request: dict[str, str]) -> ExtensionResponse:
        def error(message: str) -> ExtensionResponse:
            return ExtensionResponse(status=ExtensionStatus(code=1, message=message), response=[])

        if registry != "table":
            return error(f"unknown registry: {registry}")
        table = self.tables.get(item)
        if table is None:
            return error(f"no such table in {EXTENSION_NAME}: {item}")
        action = (request or {}).get("action")
        if action == "columns":
            return ExtensionResponse(status=ExtensionStatus(code=0, message="OK"), response=routes(type(table)))
        if action != "generate":
            return error(f"unknown action: {action}")
        try:
            rows = table.rows(QueryContext.from_json(request.get("context")))
        except Exception as exc:  # noqa: BLE001 - one table's bug (any type) must not take the extension down
            line = f"{item}: {type(exc).__name__}: {exc}".splitlines()[0][:500]
            self.log.error(f"generate failed: {line}")
            return error(line)
        return ExtensionResponse(status=ExtensionStatus(code=0, message="OK"), response=rows)


# -- the reply to `call`, encoded by hand and streamed ------------------------
#
# The SDK's generated writer makes ~6 Python calls per cell; a 2,000-row
# answer spent more time there than in the scan. This writes the same bytes
# (TBinaryProtocol, strict: call_result{0: ExtensionResponse{1: status,
# 2: list<map<string,string>>}}); tests decode it with the generated reader.
# The reply goes out in chunks of REPLY_CHUNK bytes as it is encoded: 5,000
# rows of 2.7 KB paths are a 15 MB reply, and holding it whole (parts, the
# joined bytes, Thrift's write buffer and TSocket.write's slices) took the
# extension from 23 MB to 105 MB resident.

REPLY_CHUNK = 256 * 1024
_I32 = struct.Struct(">i")
_MAP_HEADER = struct.Struct(">bbi")
_FIELD_STRUCT = 12
_FIELD_LIST = 15
_FIELD_I32 = 8
_FIELD_I64 = 10
_FIELD_STRING = 11
_FIELD_MAP = 13
_STOP = b"\x00"


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return _I32.pack(len(data)) + data


def _field(kind: int, field_id: int) -> bytes:
    return struct.pack(">bh", kind, field_id)


def encode_call_reply_chunks(seqid: int, response: ExtensionResponse, chunk: int = REPLY_CHUNK) -> Iterator[bytes]:
    """The reply to `call`, as consecutive pieces of about `chunk` bytes."""
    buf = bytearray()
    buf += _I32.pack(TBinaryProtocol.TBinaryProtocol.VERSION_1 | TMessageType.REPLY)
    buf += _string("call")
    buf += _I32.pack(seqid)
    buf += _field(_FIELD_STRUCT, 0)  # call_result.success
    status = response.status
    if status is not None:
        buf += _field(_FIELD_STRUCT, 1)
        if status.code is not None:
            buf += _field(_FIELD_I32, 1) + _I32.pack(status.code)
        if status.message is not None:
            buf += _field(_FIELD_STRING, 2) + _string(status.message)
        if status.uuid is not None:
            buf += _field(_FIELD_I64, 3) + struct.pack(">q", status.uuid)
        buf += _STOP
    rows = response.response
    if rows is not None:
        buf += _field(_FIELD_LIST, 2) + struct.pack(">bi", _FIELD_MAP, len(rows))
        pack_len = _I32.pack
        map_header = _MAP_HEADER.pack
        keys: dict[str, bytes] = {}  # column name -> its encoded length and bytes, made once
        for row in rows:
            buf += map_header(_FIELD_STRING, _FIELD_STRING, len(row))
            for key, value in row.items():
                encoded_key = keys.get(key)
                if encoded_key is None:
                    encoded_key = keys[key] = _string(key)
                buf += encoded_key
                v = value.encode("utf-8")
                buf += pack_len(len(v))
                buf += v
            if len(buf) >= chunk:
                yield bytes(buf)
                buf.clear()
    buf += _STOP  # ExtensionResponse
    buf += _STOP  # call_result
    yield bytes(buf)


def encode_call_reply(seqid: int, response: ExtensionResponse) -> bytes:
    """The whole reply as one bytes object (tests; the server streams the chunks)."""
    return b"".join(encode_call_reply_chunks(seqid, response))


class Connection(TTransport.TBufferedTransport):
    """One accepted connection: Thrift's buffered transport, plus a way to send a
    long reply piece by piece straight to the socket (TBufferedTransport would
    gather it whole, and TSocket.write copies the rest of it after every send)."""

    def __init__(self, conn: socket.socket) -> None:
        sock = TSocket.TSocket()
        sock.handle = conn
        super().__init__(sock)
        self.conn = conn

    def send_chunks(self, chunks: Iterable[bytes]) -> float:
        """sendall each piece; returns the seconds spent waiting on the reader."""
        self.flush()
        waited = 0.0
        for piece in chunks:
            started = time.monotonic()
            self.conn.sendall(piece)
            waited += time.monotonic() - started
        return waited


class Processor(Extension.Processor):
    """The generated processor, with `call` answered through encode_call_reply_chunks."""

    def __init__(self, handler: Handler, log: Log) -> None:
        super().__init__(handler)
        self._log = log
        self._processMap["call"] = Processor.process_call

    def process_call(self, seqid: int, iprot: Any, oprot: Any) -> None:
        args = Extension.call_args()
        args.read(iprot)
        iprot.readMessageEnd()
        started = time.monotonic()
        try:
            response = self._handler.call(args.registry, args.item, args.request)
        except Exception as exc:  # noqa: BLE001 - Handler.call catches table errors; this is the last net
            response = ExtensionResponse(status=ExtensionStatus(code=1, message=f"{type(exc).__name__}: {exc}"),
                                         response=[])
        generated = time.monotonic()
        chunks = encode_call_reply_chunks(seqid, response)
        transport = oprot.trans
        if isinstance(transport, Connection):
            waited = transport.send_chunks(chunks)
        else:  # any other transport (tests): the generated processor's way
            sent = time.monotonic()
            for piece in chunks:
                transport.write(piece)
            transport.flush()
            waited = time.monotonic() - sent
        if (args.request or {}).get("action") == "generate":
            rows = len(response.response or ())
            done = time.monotonic()
            # "built" is our own work (generate, cells, encoding); "sent" the time core took to read.
            self._log.info(f"{args.item}: {rows} rows, reply built in {(done - started - waited) * 1000:.1f} ms "
                           f"(generate {(generated - started) * 1000:.1f} ms), sent in {waited * 1000:.1f} ms")


def registry() -> dict[str, dict[str, list[dict[str, str]]]]:
    return {"table": {name: routes(cls) for name, cls in TABLES.items()}}


def _watch(client: ExtensionManager.Client, interval: float, log: Log) -> None:
    """Ping core every interval; when core is gone, so are we (as the SDK does)."""
    while True:
        time.sleep(interval)
        try:
            status = client.ping()
            if status.code not in (0, None):
                raise RuntimeError(f"status {status.code}: {status.message}")
        except Exception as exc:  # noqa: BLE001 - any failure to ping (transport, Thrift, status) means core is gone
            log.error(f"osquery core stopped answering pings ({type(exc).__name__}: {exc}); exiting")
            os._exit(1)


class Server:
    """One request at a time, from any open connection (core may hold several)."""

    def __init__(self, path: str, processor: Extension.Processor, log: Log) -> None:
        self.path = path
        self.processor = processor
        self.log = log
        self.stopping = False
        if os.path.lexists(path):
            os.unlink(path)  # a stale socket from a previous run of ours
        old_umask = os.umask(0o077)
        try:
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(path)
        finally:
            os.umask(old_umask)
        self.listener.listen(16)

    def serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ, None)
        while not self.stopping:
            for key, _ in selector.select(timeout=1.0):
                if key.data is None:
                    try:
                        conn, _ = self.listener.accept()
                    except OSError:
                        continue
                    conn.settimeout(CLIENT_IDLE_TIMEOUT_S)
                    transport = Connection(conn)
                    selector.register(conn, selectors.EVENT_READ, transport)
                    continue
                transport = key.data
                if not self._process(transport):
                    selector.unregister(key.fileobj)
                    transport.close()

    def _process(self, transport: TTransport.TBufferedTransport) -> bool:
        """Handle every request already received on this connection; False when it closed."""
        protocol = _Protocol(transport)
        try:
            while True:
                self.processor.process(protocol, protocol)
                buffered = transport.cstringio_buf
                if buffered.tell() >= len(buffered.getbuffer()):
                    return True
        except (TTransport.TTransportException, OSError, EOFError):
            return False
        except Exception as exc:  # noqa: BLE001 - a malformed request raises any type: drop the connection, keep serving
            self.log.error(f"dropped a connection after a bad request: {type(exc).__name__}: {exc}")
            return False


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(list(sys.argv[1:] if argv is None else argv))
    log = Log(opts.verbose)
    transport = connect_core(opts.socket, opts.timeout)
    if transport is None:
        log.error(f"osquery core socket {opts.socket} did not answer within {opts.timeout:g}s")
        return 1
    client = ExtensionManager.Client(TBinaryProtocol.TBinaryProtocol(transport))
    info = InternalExtensionInfo(name=EXTENSION_NAME, version=__version__, sdk_version=SDK_VERSION,
                                 min_sdk_version=MIN_SDK_VERSION)
    try:
        status = client.registerExtension(info, registry())
    except Exception as exc:  # noqa: BLE001 - any registration failure is one error line and exit 1, no traceback
        log.error(f"registration with osquery core at {opts.socket} failed: {type(exc).__name__}: {exc}")
        return 1
    if status.code not in (0, None):
        log.error(f"osquery core refused the extension: {status.message}")
        return 1

    core = CoreConnection(opts.socket)
    env = TableEnv(ConfigHolder(config_path_from_env(), log=log.error), core_query=core.query)
    env.config_holder.get()  # report a bad config once, at start
    tables = {name: cls(env) for name, cls in TABLES.items()}
    threading.Thread(target=_watch, args=(client, opts.interval, log), daemon=True).start()

    def on_shutdown() -> None:
        # Answer core first, then go.
        threading.Timer(0.2, lambda: os._exit(0)).start()

    processor = Processor(Handler(tables, log, on_shutdown), log)
    try:
        server = Server(f"{opts.socket}.{status.uuid}", processor, log)
    except OSError as exc:
        log.error(f"cannot listen on {opts.socket}.{status.uuid}: {exc.strerror or exc}")
        return 1
    log.info(f"registered as uuid {status.uuid}, serving {', '.join(TABLES)}")
    try:
        server.serve()
    except KeyboardInterrupt:
        return 0
    return 0


# `osq-dbwatch extension ...` (cli.py) --------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--socket", help="osquery core's extension socket")
    parser.add_argument("--timeout", help="seconds to wait for the socket")
    parser.add_argument("--interval", help="seconds between pings of core")
    parser.add_argument("--verbose", action="store_true", help="log each generate to stderr")
    parser.set_defaults(_accepts_extra=True)  # osquery may pass arguments we do not know


def run(args: argparse.Namespace) -> int:
    argv: list[str] = []
    for name in ("socket", "timeout", "interval"):
        value = getattr(args, name, None)
        if value is not None:
            argv += [f"--{name}", str(value)]
    if getattr(args, "verbose", False):
        argv.append("--verbose")
    return main(argv)


if __name__ == "__main__":
    sys.exit(main())
