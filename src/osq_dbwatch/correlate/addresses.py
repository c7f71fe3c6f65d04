"""Addresses and networks: is a connection's address, or an upload's destination, outside the organisation.

One predicate, one cache: `Networks.external(address)` is what every reader of
a connection asks (the fast path and the engine alike). Plain dotted quads are
checked on integers, since connection logs are full of distinct addresses and
ipaddress objects cost microseconds each; anything else goes to
policy.is_external_address, the definition.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # fixed-width ints for mypyc; annotations only, so no runtime dependency
    from mypy_extensions import i64

from .. import policy
from ..config import Config
from .rows import COMPILED

MAX_ADDRESSES: Final = 32768  # remembered answers (then the cache starts afresh)
_INTERNAL_SUFFIXES: Final = (".localhost", ".local", ".internal", ".lan", ".localdomain", ".home.arpa", ".intranet", ".corp")
_DOTTED_QUAD: Final = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")


def ipv4_value(address: str) -> int:
    """The 32-bit value of a plain dotted quad (four decimal octets, no leading zeros), else -1.

    Compiled, a loop reads one far faster than a regular expression and
    socket.inet_aton; interpreted, those are the faster way (see rows.decimal).
    """
    size: i64 = len(address)
    if size < 7 or size > 15:
        return -1
    if not COMPILED:
        return int.from_bytes(socket.inet_aton(address), "big") if _DOTTED_QUAD.fullmatch(address) else -1
    value: i64 = 0
    octet: i64 = 0
    digits: i64 = 0
    dots: i64 = 0
    i: i64 = 0
    while i < size:
        ch: i64 = ord(address[i])
        if ch == 46:  # "."
            if digits == 0 or dots == 3:
                return -1
            value = value * 256 + octet
            dots += 1
            octet = 0
            digits = 0
        elif 48 <= ch <= 57:
            if digits > 0 and octet == 0:
                return -1  # a leading zero
            octet = octet * 10 + ch - 48
            if octet > 255:
                return -1
            digits += 1
        else:
            return -1
        i += 1
    if dots != 3 or digits == 0:
        return -1
    return value * 256 + octet


class Networks:
    """policy.is_external_address for one config, with its answers remembered."""

    def __init__(self, config: Config) -> None:
        self.config = config
        # internal_networks as (network, mask) integers for the IPv4 check
        self.internal_v4: tuple[tuple[int, int], ...] = tuple(
            (int(n.network_address), int(n.netmask)) for n in config.internal_networks if n.version == 4)
        self.answers: dict[str, bool] = {}
        self.destinations: dict[str, bool] = {}

    def external(self, address: str) -> bool:
        """A connection's address is outside loopback, link-local, reserved ranges and internal_networks."""
        answer = self.answers.get(address)
        if answer is None:
            answer = self._external(address)
            if len(self.answers) >= MAX_ADDRESSES:
                self.answers.clear()
            self.answers[address] = answer
        return answer

    def _external(self, address: str) -> bool:
        n = ipv4_value(address)
        if n < 0:
            return policy.is_external_address(self.config, address)
        # The ranges ipaddress calls unspecified, loopback, link-local, multicast and reserved.
        if n == 0 or n >> 24 == 127 or n >> 16 == 0xA9FE or n >> 28 >= 0xE:
            return False
        for network, mask in self.internal_v4:
            if n & mask == network:
                return False
        return True

    def external_destination(self, dest: str) -> bool:
        """An upload destination (host name or address) outside the organisation; see is_external_destination."""
        answer = self.destinations.get(dest)
        if answer is None:
            answer = is_external_destination(self.config, dest, self.external)
            if len(self.destinations) >= MAX_ADDRESSES:
                self.destinations.clear()
            self.destinations[dest] = answer
        return answer


def is_external_destination(config: Config, dest: str, is_external_address: Callable[[str], bool] | None = None) -> bool:
    """An upload destination outside the organisation.

    IP literals go through policy.is_external_address (internal_networks);
    a host name is external unless it is single-label or ends in a local
    suffix (.local, .internal, .lan, ...), since the correlator does no DNS.
    """
    dest = dest.strip("[]").lower()
    if not dest:
        return False
    if dest[0].isdigit() or ":" in dest:
        if is_external_address is not None and ipv4_value(dest) >= 0:
            return is_external_address(dest)  # a plain dotted quad is a valid address
        try:
            ipaddress.ip_address(dest.split("%", 1)[0])
            if is_external_address is not None:
                return is_external_address(dest)
            return policy.is_external_address(config, dest)
        except ValueError:
            pass
    return not (dest == "localhost" or "." not in dest or dest.endswith(_INTERNAL_SUFFIXES))
