"""Regtest address <-> scriptPubKey, decoded here so the node needs no coin library.

Covers what generatetoaddress and verbose RPC output need: base58check P2PKH/P2SH (regtest version bytes
0x6f/0xc4) and segwit addresses (BIP173 bech32 for v0, BIP350 bech32m for v1+, hrp "bcrt").
"""

from __future__ import annotations

import hashlib

__all__ = ["AddressError", "address_to_script", "script_to_address", "script_type"]

HRP = "bcrt"
P2PKH_VERSION = 0x6F
P2SH_VERSION = 0xC4

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_CONST, _BECH32M_CONST = 1, 0x2BC830A3


class AddressError(ValueError):
    """Not a valid regtest address."""


def _sha256d(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def b58decode_check(s: str) -> bytes:
    n = 0
    for ch in s:
        i = _B58.find(ch)
        if i < 0:
            raise AddressError("invalid base58 character")
        n = n * 58 + i
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    data = bytes(len(s) - len(s.lstrip("1"))) + body
    if len(data) < 5 or _sha256d(data[:-4])[:4] != data[-4:]:
        raise AddressError("bad base58 checksum")
    return data[:-4]


def b58encode_check(payload: bytes) -> str:
    data = payload + _sha256d(payload)[:4]
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def _polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convertbits(data: list[int] | bytes, frombits: int, tobits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad and bits:
        out.append((acc << (tobits - bits)) & maxv)
    elif not pad and (bits >= frombits or (acc << (tobits - bits)) & maxv):
        raise AddressError("invalid padding")
    return out


def segwit_decode(addr: str, hrp: str = HRP) -> tuple[int, bytes]:
    if addr.lower() != addr and addr.upper() != addr:
        raise AddressError("mixed case")
    addr = addr.lower()
    pos = addr.rfind("1")
    if addr[:pos] != hrp or pos + 7 > len(addr) or len(addr) > 90:
        raise AddressError("wrong hrp or length")
    try:
        data = [_B32.index(c) for c in addr[pos + 1 :]]
    except ValueError as e:
        raise AddressError("invalid bech32 character") from e
    const = _polymod(_hrp_expand(hrp) + data)
    if const not in (_BECH32_CONST, _BECH32M_CONST) or not data[:-6]:
        raise AddressError("bad bech32 checksum")
    version, program = data[0], bytes(_convertbits(data[1:-6], 5, 8, False))
    if version > 16 or not 2 <= len(program) <= 40:
        raise AddressError("bad witness program")
    if version == 0 and len(program) not in (20, 32):
        raise AddressError("bad v0 witness program length")
    if const != (_BECH32_CONST if version == 0 else _BECH32M_CONST):
        raise AddressError("wrong checksum variant for witness version")
    return version, program


def segwit_encode(version: int, program: bytes, hrp: str = HRP) -> str:
    data = [version, *_convertbits(program, 8, 5, True)]
    const = _BECH32_CONST if version == 0 else _BECH32M_CONST
    mod = _polymod(_hrp_expand(hrp) + data + [0] * 6) ^ const
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_B32[d] for d in data + checksum)


def address_to_script(addr: str) -> bytes:
    """scriptPubKey for a regtest address; AddressError if it is not one."""
    if not isinstance(addr, str) or not addr:
        raise AddressError("empty address")
    if addr.lower().startswith(HRP + "1"):
        version, program = segwit_decode(addr)
        opcode = 0 if version == 0 else 0x50 + version
        return bytes([opcode, len(program)]) + program
    payload = b58decode_check(addr)
    if len(payload) != 21:
        raise AddressError("bad base58 payload length")
    if payload[0] == P2PKH_VERSION:
        return b"\x76\xa9\x14" + payload[1:] + b"\x88\xac"
    if payload[0] == P2SH_VERSION:
        return b"\xa9\x14" + payload[1:] + b"\x87"
    raise AddressError("not a regtest address version")


def script_type(script: bytes) -> str:
    """Bitcoin Core's name for a standard output type (as in decoderawtransaction)."""
    n = len(script)
    if n == 25 and script[:3] == b"\x76\xa9\x14" and script[23:] == b"\x88\xac":
        return "pubkeyhash"
    if n == 23 and script[:2] == b"\xa9\x14" and script[22] == 0x87:
        return "scripthash"
    if n == 22 and script[:2] == b"\x00\x14":
        return "witness_v0_keyhash"
    if n == 34 and script[:2] == b"\x00\x20":
        return "witness_v0_scripthash"
    if n == 34 and script[:2] == b"\x51\x20":
        return "witness_v1_taproot"
    if n in (35, 67) and script[-1] == 0xAC and script[0] == n - 2:
        return "pubkey"
    if n and script[0] == 0x6A:
        return "nulldata"
    if 4 <= n <= 42 and (script[0] == 0 or 0x51 <= script[0] <= 0x60) and script[1] == n - 2:
        return "witness_unknown"
    return "nonstandard"


def script_to_address(script: bytes) -> str | None:
    kind = script_type(script)
    if kind == "pubkeyhash":
        return b58encode_check(bytes([P2PKH_VERSION]) + script[3:23])
    if kind == "scripthash":
        return b58encode_check(bytes([P2SH_VERSION]) + script[2:22])
    if kind.startswith("witness_"):
        version = 0 if script[0] == 0 else script[0] - 0x50
        return segwit_encode(version, script[2:])
    return None
