"""Monero's view-key arithmetic for the scanner: which outputs of a transaction a wallet owns, and their amounts.

Plain functions over bytes, the curve work done by libsodium (PyNaCl's ``crypto_scalarmult_ed25519_noclamp``,
``crypto_core_ed25519_add``/``sub``) and Keccak-256 by pycryptodomex (both native; bench/xmr_scanner_bench.py
measures them against pure-Python big-integer arithmetic). The formulas are those of Monero's wallet2:

- derivation ``D = 8·a·R`` for the wallet's private view key ``a`` and a transaction public key ``R``;
- the output ``i`` belongs to the subaddress whose spend key is ``P_i - Hs(D || varint(i))·G``;
- with a view tag (``txout_to_tagged_key``), ``keccak("view_tag" || D || varint(i))[0]`` must equal it first:
  one hash rules out almost every foreign output before any curve operation;
- subaddress ``(major, minor)``: spend key ``B + Hs("SubAddr\\0" || a || major || minor)·G``;
- RingCT amounts (compact ecdhInfo, RingCT types 4 and up): the 8 bytes XOR ``keccak("amount" || s)``, then
  checked against the output's commitment ``mask·G + amount·H``, so a sender cannot claim more than it sent.

``8·R`` is made by three doublings (point additions, which accept any curve point) before the multiplication by
``a``: libsodium's scalar multiplication refuses points outside the prime-order subgroup, and ``8·R`` always lies
in it, as wallet2's own cofactor multiplication makes it.

Modules are imported by the XMR daemon's load hook (``load_crypto``), never at import time of the daemon.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

# Monero's H, the second generator of amount commitments (rctTypes.h)
H_POINT = bytes.fromhex("8b655970153799af2aeadc9ff1add0ea6c7251d54154cfa92c173a0dd39c1f94")
RCT_COMPACT_AMOUNTS = 4  # RingCT types from Bulletproof2 on carry 8-byte amounts (ecdhInfo.amount)
SUBADDRESS_PREFIX = {"main": 42, "test": 63, "stage": 36}

_lib: SimpleNamespace | None = None


def load_crypto() -> SimpleNamespace:
    """Import libsodium's bindings and Keccak (from the daemon's load hook); ImportError if missing."""
    global _lib
    if _lib is None:
        from Cryptodome.Hash import keccak
        from nacl import bindings
        from nacl.exceptions import RuntimeError as NaclError

        _lib = SimpleNamespace(
            keccak=keccak,
            mult=bindings.crypto_scalarmult_ed25519_noclamp,
            mult_base=bindings.crypto_scalarmult_ed25519_base_noclamp,
            add=bindings.crypto_core_ed25519_add,
            sub=bindings.crypto_core_ed25519_sub,
            reduce=bindings.crypto_core_ed25519_scalar_reduce,
            error=(NaclError, ValueError, TypeError),
        )
    return _lib


def lib() -> SimpleNamespace:
    return _lib if _lib is not None else load_crypto()


def keccak256(data: bytes) -> bytes:
    return bytes(lib().keccak.new(digest_bits=256, data=data).digest())


def hash_to_scalar(data: bytes) -> bytes:
    return bytes(lib().reduce(keccak256(data) + bytes(32)))


def varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def cofactored(tx_public_key: bytes) -> bytes | None:
    """``8·R`` (once per transaction key, whatever the number of wallets), None for a point off the curve."""
    nacl = lib()
    try:
        twice = nacl.add(tx_public_key, tx_public_key)
        four = nacl.add(twice, twice)
        return bytes(nacl.add(four, four))
    except nacl.error:
        return None


def derive(view_key: bytes, eight_r: bytes | None) -> bytes | None:
    """``a·(8·R)``, or None when there is no such point (``8·R`` is the identity: R had small order)."""
    if eight_r is None:
        return None
    nacl = lib()
    try:
        return bytes(nacl.mult(view_key, eight_r))
    except nacl.error:
        return None


def derivation(view_key: bytes, tx_public_key: bytes) -> bytes | None:
    """``8·a·R``, or None for a point that is not on the curve or has small order (no output can be ours)."""
    return derive(view_key, cofactored(tx_public_key))


def view_tag(derived: bytes, index: int) -> int:
    return keccak256(b"view_tag" + derived + varint(index))[0]


def output_secret(derived: bytes, index: int) -> bytes:
    """``Hs(D || varint(i))``: the scalar that both hides the output key and encrypts its amount."""
    return hash_to_scalar(derived + varint(index))


def spend_key_of_output(output_key: bytes, secret: bytes) -> bytes | None:
    """``P - Hs(D||i)·G``: the spend key of the subaddress the output was sent to, if it was ours."""
    nacl = lib()
    try:
        return bytes(nacl.sub(output_key, nacl.mult_base(secret)))
    except nacl.error:
        return None


def subaddress_spend_key(view_key: bytes, spend_public: bytes, major: int, minor: int) -> bytes:
    if major == 0 and minor == 0:
        return spend_public
    nacl = lib()
    m = hash_to_scalar(b"SubAddr\x00" + view_key + struct.pack("<II", major, minor))
    return bytes(nacl.add(spend_public, nacl.mult_base(m)))


def subaddress(view_key: bytes, spend_public: bytes, major: int, minor: int, net: str, base58: Any) -> str:
    """The subaddress string, as wallet-rpc's ``create_address``/``get_address`` would give it."""
    spend = subaddress_spend_key(view_key, spend_public, major, minor)
    view = bytes(lib().mult(view_key, spend))
    data = bytes([SUBADDRESS_PREFIX[net]]) + spend + view
    return str(base58.encode((data + keccak256(data)[:4]).hex()))


def decode_amount(secret: bytes, encrypted: bytes, commitment: bytes) -> int | None:
    """The amount of a RingCT output (compact ecdhInfo), or None if it does not open its commitment."""
    nacl = lib()
    pad = keccak256(b"amount" + secret)[:8]
    amount = int.from_bytes(bytes(a ^ b for a, b in zip(encrypted, pad, strict=True)), "little")
    mask = hash_to_scalar(b"commitment_mask" + secret)
    try:
        masked = nacl.mult_base(mask)
        expected = masked if amount == 0 else nacl.add(masked, nacl.mult(amount.to_bytes(32, "little"), H_POINT))
    except nacl.error:
        return None
    return amount if bytes(expected) == commitment else None


# -- transactions as monerod's decode_as_json gives them -----------------------------------------------------


@dataclass(frozen=True)
class Output:
    index: int
    key: bytes
    view_tag: int | None
    amount: int  # the clear amount (coinbase, pre-RingCT); 0 when hidden
    encrypted: bytes | None  # compact ecdhInfo amount
    commitment: bytes | None


@dataclass(frozen=True)
class ParsedTx:
    txid: str
    public_keys: tuple[bytes, ...]
    additional_keys: tuple[bytes, ...]
    outputs: tuple[Output, ...]
    unlock_time: int
    coinbase: bool
    main_points: tuple[bytes | None, ...] = field(init=False, repr=False)  # 8·R of each key, made once
    additional_points: tuple[bytes | None, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "main_points", tuple(cofactored(k) for k in self.public_keys))
        if len(self.additional_keys) == len(self.outputs):  # wallet2 ignores a list of another length
            object.__setattr__(self, "additional_points", tuple(cofactored(k) for k in self.additional_keys))
        else:
            object.__setattr__(self, "additional_points", ())


class BadTransaction(ValueError):
    """monerod gave a transaction the scanner cannot read; the message says what."""


def parse_extra(extra: list[int]) -> tuple[list[bytes], list[bytes]]:
    """The transaction public keys (tag 1) and additional ones (tag 4) of tx_extra; stops at anything unreadable."""
    data, keys, additional, at = bytes(extra), [], [], 0
    while at < len(data):
        tag = data[at]
        at += 1
        if tag == 0x00:  # padding runs to the end
            break
        if tag == 0x01:
            if at + 32 > len(data):
                break
            keys.append(data[at : at + 32])
            at += 32
            continue
        length, at = read_varint(data, at)
        if length is None:
            break
        if tag == 0x04:
            block = data[at : at + 32 * length]
            if len(block) != 32 * length:
                break
            additional = [block[i : i + 32] for i in range(0, len(block), 32)]
            at += 32 * length
        elif tag in (0x02, 0x03, 0xDE):  # nonce (payment ids), merge mining, minergate: skipped
            at += length
        else:
            break
    return keys, additional


def read_varint(data: bytes, at: int) -> tuple[int | None, int]:
    value, shift = 0, 0
    while at < len(data) and shift < 64:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
    return None, at


def parse_tx(txid: str, tx: dict[str, Any]) -> ParsedTx:
    """A transaction from its decode_as_json form; BadTransaction for a shape monerod never sends."""
    try:
        keys, additional = parse_extra([int(b) for b in tx.get("extra", [])])
        rct = tx.get("rct_signatures") or {}
        rct_type = int(rct.get("type", 0))
        if 0 < rct_type < RCT_COMPACT_AMOUNTS:  # a clear 0 would be read as the amount: refuse rather than lie
            raise BadTransaction(f"transaction {txid}: RingCT type {rct_type} (before 2019) amounts are not decoded")
        ecdh = rct.get("ecdhInfo") or []
        commitments = rct.get("outPk") or []
        outputs = []
        for index, out in enumerate(tx.get("vout", [])):
            target = out["target"]
            tagged = target.get("tagged_key")
            key_hex = tagged["key"] if tagged else target["key"]
            tag = int(tagged["view_tag"], 16) if tagged else None
            hidden = rct_type >= RCT_COMPACT_AMOUNTS
            outputs.append(
                Output(
                    index,
                    bytes.fromhex(key_hex),
                    tag,
                    int(out.get("amount", 0)),
                    bytes.fromhex(ecdh[index]["amount"]) if hidden else None,
                    bytes.fromhex(commitments[index]) if hidden else None,
                )
            )
        coinbase = any("gen" in vin for vin in tx.get("vin", []))
        return ParsedTx(txid, tuple(keys), tuple(additional), tuple(outputs), int(tx.get("unlock_time", 0)), coinbase)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise BadTransaction(f"transaction {txid}: {type(exc).__name__} {exc}") from None


@dataclass(frozen=True)
class Found:
    """An output the scanner found for a wallet."""

    txid: str
    index: int
    key: bytes
    minor: int
    amount: int
    unlock_time: int


def scan_tx(tx: ParsedTx, view_key: bytes, spend_keys: dict[bytes, int]) -> list[Found]:
    """The outputs of ``tx`` sent to the wallet with this view key, given its subaddress spend keys (-> minor)."""
    if not tx.outputs:
        return []
    main = [d for d in (derive(view_key, point) for point in tx.main_points) if d is not None]
    found = []
    for output in tx.outputs:
        derivations = list(main)
        if output.index < len(tx.additional_points):
            extra = derive(view_key, tx.additional_points[output.index])
            if extra is not None:
                derivations.append(extra)
        for derived in derivations:
            hit = match_output(tx, output, derived, spend_keys)
            if hit is not None:
                found.append(hit)
                break
    return found


def match_output(tx: ParsedTx, output: Output, derived: bytes, spend_keys: dict[bytes, int]) -> Found | None:
    if output.view_tag is not None and view_tag(derived, output.index) != output.view_tag:
        return None
    secret = output_secret(derived, output.index)
    spend = spend_key_of_output(output.key, secret)
    minor = spend_keys.get(spend) if spend is not None else None
    if minor is None:
        return None
    amount: int | None = output.amount
    if output.encrypted is not None and output.commitment is not None:
        amount = decode_amount(secret, output.encrypted, output.commitment)
    if amount is None:
        return None  # an amount that does not open its commitment: wallet2 refuses such an output too
    return Found(tx.txid, output.index, output.key, minor, amount, tx.unlock_time)
