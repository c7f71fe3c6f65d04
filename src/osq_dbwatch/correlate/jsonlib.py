"""The correlator's one JSON library: msgspec when installed, else the stdlib.

msgspec (the `fast` extra) reads a fleet's results log several times faster
than `json`, and its typed decoder (fastpath.py) reads only the fields the
correlator uses, without building the rest. Every reader and writer of the
correlator (rows, findings output, state) takes its JSON from here, so all of
them agree on what a valid line is.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Union

try:
    import msgspec
    from msgspec import UNSET as UNSET
    from msgspec import UnsetType
except ImportError:  # pragma: no cover - exercised by the fallback test in a child process
    msgspec = None  # type: ignore[assignment]
    UNSET = object()  # type: ignore[assignment,misc]

Scalar = Union[str, int, None]  # what osquery logs: text, or numbers with --logger_numerics

if msgspec is not None:
    _encoder = msgspec.json.Encoder()
    loads: Callable[[bytes | str], Any] = msgspec.json.decode
    dumps: Callable[[Any], bytes] = _encoder.encode
    # Malformed JSON. Which of these bad UTF-8 raises changed between releases (UnicodeDecodeError
    # up to 0.22, DecodeError from 0.23), so no reader may tell bad bytes from bad JSON by type:
    # they ask not_utf8() instead (loads_line below).
    JSONError: tuple[type[Exception], ...] = (msgspec.DecodeError, ValueError)
    NAME = f"msgspec {msgspec.__version__}"
else:  # pragma: no cover
    loads = json.loads

    def dumps(value: Any) -> bytes:
        # ASCII escapes: a lone surrogate the stdlib parser let through still encodes.
        return json.dumps(value, separators=(",", ":")).encode()

    JSONError = (ValueError,)  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
    NAME = "json (stdlib)"


def not_utf8(data: bytes) -> str | None:
    """`data` as text with U+FFFD for each byte sequence that is not UTF-8; None when it all is.

    osquery logs what the kernel gave it, so an attacker's command line may
    hold any bytes. Dropping such a line would hide the run, so every reader
    retries it with the bad bytes replaced (the one form the correlator uses).
    """
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")
    return None


def loads_line(data: bytes) -> Any:
    """One results line parsed, bytes that are not UTF-8 read as U+FFFD; raises JSONError."""
    try:
        return loads(data)
    except Exception:  # noqa: BLE001 - whatever the library raises, bad bytes get a second chance
        text = not_utf8(data)
        if text is None:
            raise
    return loads(text)


# The typed line the fast path decodes (fastpath.py): the fields it reads, nothing else.
EVENT_FIELDS: tuple[str, ...] = ()

if msgspec is not None:

    class EventColumns(msgspec.Struct, gc=False):
        """The columns of the four event queries that rows.py reads; the rest are skipped.

        In osquery's order (it writes a row's columns sorted by name), so the
        decoder finds each field where it looks first.
        """

        action: Scalar = None
        auid: Scalar = None
        cmdline: Scalar = None
        cwd: Scalar = None
        inode: Scalar = None
        login_user: Scalar = None
        owner: Scalar = None
        parent: Scalar = None
        parent_cmdline: Scalar = None
        parent_path: Scalar = None
        path: Scalar = None
        pid: Scalar = None
        ppid: Scalar = None
        remote_address: Scalar = None
        remote_port: Scalar = None
        sha256: Scalar = None
        size: Scalar = None
        success: Scalar = None
        target_path: Scalar = None
        time: Scalar = None
        uid: Scalar = None
        username: Scalar = None
        writer_pid: Scalar = None

    class AdminMember(msgspec.Struct, gc=False):
        groupname: Scalar = None
        username: Scalar = None

    class ResultLine(msgspec.Struct, gc=False):
        # In the order osquery writes them (see EventColumns).
        name: Scalar = None
        hostIdentifier: Scalar = None  # noqa: N815 - osquery's key
        unixTime: Scalar = None  # noqa: N815
        columns: Union[EventColumns, None, UnsetType] = UNSET
        snapshot: Union[list[AdminMember], None, UnsetType] = UNSET
        action: Scalar = None
        diffResults: Union[msgspec.Raw, UnsetType] = UNSET  # noqa: N815 - batch format: the full path's

    EVENT_FIELDS = EventColumns.__struct_fields__


def struct_values() -> Callable[[Any], tuple[Any, ...]] | None:
    """A decoded line or row -> its field values in declaration order, in one C call.

    Compiled code reads a tuple item far faster than an attribute of an object
    it knows nothing about.
    """
    return msgspec.structs.astuple if msgspec is not None else None


def line_decoder() -> Callable[[bytes | str], Any] | None:
    """Decoder of one results line into a ResultLine (fields of the wrong type fail); None without msgspec."""
    return msgspec.json.Decoder(ResultLine).decode if msgspec is not None else None
