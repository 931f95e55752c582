"""Bitcoin wire serialization: transactions, block headers, blocks, merkle roots.

Only the byte formats live here (no chain rules), so the chain and mempool modules can share one parser and
the tests can check the encodings on their own. Hashes are kept in internal byte order (as on the wire);
``hash_hex`` gives the reversed "human" hex that RPC and ElectrumX use.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass, field

__all__ = [
    "Block",
    "BlockHeader",
    "DecodeError",
    "Tx",
    "TxIn",
    "TxOut",
    "hash_hex",
    "hex_hash",
    "merkle_root",
    "script_num",
    "ser_varint",
    "sha256d",
]


class DecodeError(ValueError):
    """Bytes that are not a well-formed transaction or block."""


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def hash_hex(h: bytes) -> str:
    """Internal byte order -> the reversed hex used by RPC (txids, block hashes)."""
    return h[::-1].hex()


def hex_hash(s: str) -> bytes:
    """RPC hex (txid, block hash) -> internal byte order. Raises ValueError on bad input."""
    b = bytes.fromhex(s)
    if len(b) != 32:
        raise ValueError("hash must be 32 bytes")
    return b[::-1]


def ser_varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


def ser_bytes(b: bytes) -> bytes:
    return ser_varint(len(b)) + b


def script_num(n: int) -> bytes:
    """CScriptNum encoding (little endian, sign bit in the top byte), as used for the BIP34 height."""
    if n == 0:
        return b""
    neg, n = n < 0, abs(n)
    out = bytearray()
    while n:
        out.append(n & 0xFF)
        n >>= 8
    if out[-1] & 0x80:
        out.append(0x80 if neg else 0)
    elif neg:
        out[-1] |= 0x80
    return bytes(out)


class _Reader:
    """A bounds-checked cursor: running past the end is a DecodeError, never an IndexError."""

    def __init__(self, data: bytes) -> None:
        self.buf = io.BytesIO(data)
        self.size = len(data)

    def read(self, n: int) -> bytes:
        b = self.buf.read(n)
        if len(b) != n:
            raise DecodeError("unexpected end of data")
        return b

    def u8(self) -> int:
        return self.read(1)[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.read(4))[0]

    def i32(self) -> int:
        return struct.unpack("<i", self.read(4))[0]

    def i64(self) -> int:
        return struct.unpack("<q", self.read(8))[0]

    def varint(self) -> int:
        first = self.u8()
        if first < 0xFD:
            return first
        size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
        n = int.from_bytes(self.read(size), "little")
        if n < {2: 0xFD, 4: 0x10000, 8: 0x100000000}[size]:
            raise DecodeError("non-canonical varint")
        return n

    def count(self, item_min_size: int) -> int:
        """A vector length that cannot exceed what is left (stops absurd allocations)."""
        n = self.varint()
        if n * item_min_size > self.remaining():
            raise DecodeError("vector length exceeds data")
        return n

    def var_bytes(self) -> bytes:
        return self.read(self.count(1))

    def peek(self, n: int) -> bytes:
        pos = self.buf.tell()
        b = self.buf.read(n)
        self.buf.seek(pos)
        return b

    def remaining(self) -> int:
        return self.size - self.buf.tell()


@dataclass
class TxOut:
    value: int  # satoshis
    script: bytes

    def serialize(self) -> bytes:
        return struct.pack("<q", self.value) + ser_bytes(self.script)


@dataclass
class TxIn:
    prev_hash: bytes  # internal byte order
    prev_index: int
    script_sig: bytes = b""
    sequence: int = 0xFFFFFFFF
    witness: list[bytes] = field(default_factory=list)

    @property
    def outpoint(self) -> tuple[str, int]:
        return hash_hex(self.prev_hash), self.prev_index

    def is_null(self) -> bool:
        return self.prev_hash == bytes(32) and self.prev_index == 0xFFFFFFFF

    def serialize(self) -> bytes:
        return (
            self.prev_hash
            + struct.pack("<I", self.prev_index)
            + ser_bytes(self.script_sig)
            + struct.pack("<I", self.sequence)
        )


@dataclass
class Tx:
    version: int
    inputs: list[TxIn]
    outputs: list[TxOut]
    locktime: int = 0

    @classmethod
    def from_hex(cls, s: str) -> Tx:
        try:
            data = bytes.fromhex(s)
        except (ValueError, TypeError) as e:
            raise DecodeError("not hex") from e
        return cls.from_bytes(data)

    @classmethod
    def from_bytes(cls, data: bytes) -> Tx:
        r = _Reader(data)
        tx = cls.read(r)
        if r.remaining():
            raise DecodeError("trailing bytes after transaction")
        return tx

    @classmethod
    def read(cls, r: _Reader) -> Tx:
        version = r.i32()
        segwit = r.peek(2) == b"\x00\x01"
        if segwit:
            r.read(2)
        inputs = [cls._read_input(r) for _ in range(r.count(41))]
        outputs = [TxOut(r.i64(), r.var_bytes()) for _ in range(r.count(9))]
        if segwit:
            for txin in inputs:
                txin.witness = [r.var_bytes() for _ in range(r.count(1))]
            if not any(txin.witness for txin in inputs):
                raise DecodeError("superfluous witness record")
        return cls(version, inputs, outputs, r.u32())

    @staticmethod
    def _read_input(r: _Reader) -> TxIn:
        return TxIn(r.read(32), r.u32(), r.var_bytes(), r.u32())

    def has_witness(self) -> bool:
        return any(txin.witness for txin in self.inputs)

    def serialize(self, with_witness: bool = True) -> bytes:
        segwit = with_witness and self.has_witness()
        parts = [struct.pack("<i", self.version)]
        if segwit:
            parts.append(b"\x00\x01")
        parts.append(ser_varint(len(self.inputs)))
        parts += [txin.serialize() for txin in self.inputs]
        parts.append(ser_varint(len(self.outputs)))
        parts += [txout.serialize() for txout in self.outputs]
        if segwit:
            for txin in self.inputs:
                parts.append(ser_varint(len(txin.witness)))
                parts += [ser_bytes(item) for item in txin.witness]
        parts.append(struct.pack("<I", self.locktime))
        return b"".join(parts)

    def hex(self) -> str:
        return self.serialize().hex()

    @property
    def hash(self) -> bytes:
        """txid in internal byte order (witness excluded)."""
        return sha256d(self.serialize(with_witness=False))

    @property
    def txid(self) -> str:
        return hash_hex(self.hash)

    @property
    def wtxid(self) -> str:
        return hash_hex(sha256d(self.serialize()))

    def is_coinbase(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].is_null()

    @property
    def size(self) -> int:
        return len(self.serialize())

    @property
    def weight(self) -> int:
        return len(self.serialize(with_witness=False)) * 3 + self.size

    @property
    def vsize(self) -> int:
        return (self.weight + 3) // 4


@dataclass
class BlockHeader:
    version: int
    prev_hash: bytes
    merkle_root: bytes
    time: int
    bits: int
    nonce: int

    def serialize(self) -> bytes:
        return (
            struct.pack("<i", self.version)
            + self.prev_hash
            + self.merkle_root
            + struct.pack("<III", self.time, self.bits, self.nonce)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> BlockHeader:
        if len(data) != 80:
            raise DecodeError("header must be 80 bytes")
        (version,) = struct.unpack("<i", data[:4])
        time, bits, nonce = struct.unpack("<III", data[68:80])
        return cls(version, data[4:36], data[36:68], time, bits, nonce)

    @property
    def hash(self) -> bytes:
        return sha256d(self.serialize())

    @property
    def hash_hex(self) -> str:
        return hash_hex(self.hash)


def bits_to_target(bits: int) -> int:
    exponent, mantissa = bits >> 24, bits & 0x007FFFFF
    return mantissa >> (8 * (3 - exponent)) if exponent <= 3 else mantissa << (8 * (exponent - 3))


def merkle_root(hashes: list[bytes]) -> bytes:
    """Bitcoin's merkle root over internal-order hashes (the last one is paired with itself on odd levels)."""
    if not hashes:
        raise ValueError("no hashes")
    level = list(hashes)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


@dataclass
class Block:
    header: BlockHeader
    txs: list[Tx]

    def serialize(self) -> bytes:
        return self.header.serialize() + ser_varint(len(self.txs)) + b"".join(tx.serialize() for tx in self.txs)

    @classmethod
    def from_bytes(cls, data: bytes) -> Block:
        r = _Reader(data)
        header = BlockHeader.from_bytes(r.read(80))
        txs = [Tx.read(r) for _ in range(r.count(60))]
        if r.remaining():
            raise DecodeError("trailing bytes after block")
        return cls(header, txs)

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def hash_hex(self) -> str:
        return self.header.hash_hex

    def computed_merkle_root(self) -> bytes:
        return merkle_root([tx.hash for tx in self.txs])

    @property
    def weight(self) -> int:
        return len(self.header.serialize() + ser_varint(len(self.txs))) * 4 + sum(tx.weight for tx in self.txs)
