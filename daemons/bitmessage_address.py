"""Bitmessage addresses, checked in the daemon by the rules of the node's own address check.

PyBitmessage 0.6.3.2 checks the fromAddress of ``sendMessage`` (``_verifyAddress`` in src/api.py,
over ``decodeAddress`` in src/addresses.py) but never the toAddress: a mistyped recipient stores
nothing and the node answers ``API Error 0000: Command sendMessage takes at least 5 parameters``,
a wrong-arity message about a TypeError of its own. So the daemon checks both addresses before the
call and answers with the node's address errors (0007-0012, 0026), naming the parameter and the
address. An address is ``BM-`` (optional) + base58(varint version, varint stream, ripe, checksum)
where the checksum is the first 4 bytes of SHA-512(SHA-512(the rest)).
"""

from __future__ import annotations

import hashlib

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
VARINT_WIDTHS = {0xFD: 2, 0xFE: 4, 0xFF: 8}


class AddressError(ValueError):
    """An address the node would refuse, as its numbered error (number, text)."""

    def __init__(self, number: int, text: str) -> None:
        super().__init__(text)
        self.number = number
        self.text = text


def _base58_bytes(text: str) -> bytes | None:
    """The big-endian bytes of a base58 number; None for a character outside the alphabet or zero."""
    number = 0
    for char in text:
        digit = BASE58.find(char)
        if digit < 0:
            return None
        number = number * 58 + digit
    return number.to_bytes((number.bit_length() + 7) // 8, "big") if number else None


def _varint(data: bytes) -> tuple[int, int] | None:
    """(value, size) of a varint at the start of data; None when truncated or not minimally encoded."""
    if not data:
        return 0, 0  # the node reads nothing as zero
    width = VARINT_WIDTHS.get(data[0])
    if width is None:
        return data[0], 1
    if len(data) <= width:
        return None
    value = int.from_bytes(data[1 : 1 + width], "big")
    smallest = {2: 0xFD, 4: 1 << 16, 8: 1 << 32}[width]
    return (value, 1 + width) if value >= smallest else None


def decode(address: str) -> tuple[str, int, int]:
    """(status, version, stream) with decodeAddress's status words ('success', 'checksumfailed'...)."""
    text = str(address).strip()
    data = _base58_bytes(text[3:] if text.startswith("BM-") else text)
    if data is None:
        return "invalidcharacters", 0, 0
    body, checksum = data[:-4], data[-4:]
    if hashlib.sha512(hashlib.sha512(body).digest()).digest()[:4] != checksum:
        return "checksumfailed", 0, 0
    version = _varint(body[:9])
    if version is None:
        return "varintmalformed", 0, 0
    if not 1 <= version[0] <= 4:
        return "versiontoohigh", 0, 0
    stream = _varint(body[version[1] :])
    if stream is None:
        return "varintmalformed", 0, 0
    ripe = body[version[1] + stream[1] :]
    return _ripe_status(version[0], ripe), version[0], stream[0]


def _ripe_status(version: int, ripe: bytes) -> str:
    """v1 takes any; v2/v3 carry 18-20 ripe bytes; v4 4-20 without a leading zero byte."""
    if version == 1:
        return "success"
    if version == 4 and ripe[:1] == b"\x00":
        return "encodingproblem"
    if len(ripe) > 20:
        return "ripetoolong"
    if len(ripe) < (4 if version == 4 else 18):
        return "ripetooshort"
    return "success"


# The node's texts for each status (api.py _verifyAddress); the address and parameter go at the end.
STATUS_ERRORS = {
    "checksumfailed": (8, "Checksum failed for address"),
    "invalidcharacters": (9, "Invalid characters in address"),
    "versiontoohigh": (10, "Address version number too high (or zero) in address"),
    "varintmalformed": (26, "Malformed varint in address"),
}


def check(address: str, parameter: str) -> None:
    """Raise AddressError as the node's _verifyAddress would, naming the parameter and the address."""
    status, version, stream = decode(address)
    where = f"{parameter} {str(address).strip()!r}"
    if status in STATUS_ERRORS:
        number, text = STATUS_ERRORS[status]
        raise AddressError(number, f"{text}: {where}")
    if status != "success":
        raise AddressError(7, f"Could not decode address: {where} : {status}")
    if not 2 <= version <= 4:
        raise AddressError(11, f"The address version number currently must be 2, 3 or 4, not {version}: {where}")
    if stream != 1:
        raise AddressError(12, f"The stream number must be 1, not {stream}: {where}")
