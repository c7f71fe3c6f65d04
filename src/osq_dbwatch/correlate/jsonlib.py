"""The correlator's one JSON library: msgspec when installed, else the stdlib.

msgspec (the `fast` extra) reads a fleet's results log several times faster
than `json`, and its typed decoder (fastpath.py) reads only the fields the
correlator uses, without building the rest. Every reader and writer of the
correlator (rows, findings output, state) takes its JSON from here, so all of
them agree on what a valid line is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import GenericAlias
from typing import Any

from ..pack import contract

__all__ = ["ADMIN_FIELDS", "EVENT_FIELDS", "NAME", "TEXT_FIELDS", "UNSET", "JSONError", "decorations_decoder", "dumps", "line_decoder", "loads", "loads_line",
           "not_utf8", "struct_values"]

try:
    import msgspec
    from msgspec import UNSET, UnsetType
except ImportError:  # pragma: no cover - exercised by the fallback test in a child process
    msgspec = None  # type: ignore[assignment]
    UNSET = object()  # type: ignore[assignment,misc]

Scalar = str | int | None  # what osquery logs: text, or numbers with --logger_numerics

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
    except Exception:  # whatever the library raises, bad bytes get a second chance
        text = not_utf8(data)
        if text is None:
            raise
    return loads(text)


# The typed line the fast path decodes (fastpath.py): the fields it reads, nothing else.
# Its columns are the query contract's (pack/contract.py: what the correlator reads of the
# event queries), in osquery's order (it writes a row's columns sorted by name), so the
# decoder finds each field where it looks first.
EVENT_FIELDS: tuple[str, ...] = contract.event_reads()
ADMIN_FIELDS: tuple[str, ...] = tuple(sorted(contract.BY_NAME["admin_accounts"].reads))
# The exec rows' text columns (osquery's TEXT: text with or without --logger_numerics), decoded as str ("" when
# absent): a line where one holds anything else (null, a number) goes the general path, which reads it.
TEXT_FIELDS: frozenset[str] = frozenset({"cmdline", "cwd", "login_user", "parent_cmdline", "parent_path", "path",
                                         "username"})

if msgspec is not None:
    EventColumns: type[msgspec.Struct] = msgspec.defstruct(
        "EventColumns", [(name, str, "") if name in TEXT_FIELDS else (name, Scalar, None) for name in EVENT_FIELDS],
        gc=False)
    AdminMember: type[msgspec.Struct] = msgspec.defstruct(
        "AdminMember", [(name, Scalar, None) for name in ADMIN_FIELDS], gc=False)
    # The one decoration the correlator reads (findings' host.id / device.uid); osquery and Fleet add it.
    Decorations: type[msgspec.Struct] = msgspec.defstruct("Decorations", [("host_uuid", Scalar, None)], gc=False)
    # In the order osquery writes them; diffResults (batch format) is the full path's.
    ResultLine: type[msgspec.Struct] = msgspec.defstruct("ResultLine", [
        ("name", Scalar, None),
        ("hostIdentifier", Scalar, None),
        ("unixTime", Scalar, None),
        ("decorations", msgspec.Raw | UnsetType, UNSET),  # its bytes: read only when they change (fastpath.py)
        ("columns", EventColumns | None | UnsetType, UNSET),
        ("snapshot", GenericAlias(list, (AdminMember,)) | None | UnsetType, UNSET),  # list[AdminMember]
        ("action", Scalar, None),
        ("diffResults", msgspec.Raw | UnsetType, UNSET),
    ], gc=False)


def struct_values() -> Callable[[Any], tuple[Any, ...]] | None:
    """A decoded line or row -> its field values in declaration order, in one C call.

    Compiled code reads a tuple item far faster than an attribute of an object
    it knows nothing about.
    """
    return msgspec.structs.astuple if msgspec is not None else None


def decorations_decoder() -> Callable[[Any], Any] | None:
    """Decoder of a line's raw decorations into a Decorations (the fast path's); None without msgspec."""
    return msgspec.json.Decoder(Decorations).decode if msgspec is not None else None


def line_decoder() -> Callable[[bytes | str], Any] | None:
    """Decoder of one results line into a ResultLine (fields of the wrong type fail); None without msgspec."""
    return msgspec.json.Decoder(ResultLine).decode if msgspec is not None else None
