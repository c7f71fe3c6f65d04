"""The correlator's one JSON library: msgspec when installed, else the stdlib.

msgspec (the `fast` extra) reads a fleet's results log several times faster
than `json`, and its typed decoder (fastpath.py) reads only the fields the
correlator uses, without building the rest. Every reader and writer of the
correlator (rows, findings output, state) takes its JSON from here, so all of
them agree on what a valid line is.
"""

from __future__ import annotations

import json
from typing import Any, Callable

try:
    import msgspec
except ImportError:  # pragma: no cover - exercised by the fallback test in a child process
    msgspec = None  # type: ignore[assignment]

if msgspec is not None:
    _encoder = msgspec.json.Encoder()
    loads: Callable[[bytes], Any] = msgspec.json.decode
    dumps: Callable[[Any], bytes] = _encoder.encode
    # DecodeError covers malformed JSON; bad UTF-8 raises UnicodeDecodeError.
    JSONError: tuple[type[Exception], ...] = (msgspec.DecodeError, UnicodeDecodeError)
    NAME = f"msgspec {msgspec.__version__}"
else:  # pragma: no cover
    loads = json.loads

    def dumps(value: Any) -> bytes:
        # ASCII escapes: a lone surrogate the stdlib parser let through still encodes.
        return json.dumps(value, separators=(",", ":")).encode()

    JSONError = (ValueError, UnicodeDecodeError)
    NAME = "json (stdlib)"
