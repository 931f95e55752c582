"""BIP86 taproot key-path spends for the regtest tests: Electrum 4.3.4 makes no p2tr outputs or signatures.

Keys, tweaks and BIP340 signatures come from Debian's libsecp256k1 (the library python3-electrum loads, built
with its schnorrsig and extrakeys modules) through ctypes; the BIP341 signature message is computed here. Only
SIGHASH_DEFAULT key-path spends of v1 outputs, which is what a wallet paying to a bech32m address makes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import struct
from dataclasses import dataclass
from functools import cache

from regtest.address import segwit_encode
from regtest.serialize import Tx, ser_bytes


@cache
def _lib() -> tuple[ctypes.CDLL, int]:
    lib = ctypes.CDLL(ctypes.util.find_library("secp256k1") or "libsecp256k1.so.1")
    lib.secp256k1_context_create.restype = ctypes.c_void_p
    lib.secp256k1_context_create.argtypes = [ctypes.c_uint]
    for name in ("keypair_create", "keypair_xonly_tweak_add", "xonly_pubkey_serialize"):
        getattr(lib, "secp256k1_" + name).argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    lib.secp256k1_keypair_xonly_pub.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_char_p]
    lib.secp256k1_schnorrsig_sign32.argtypes = [ctypes.c_void_p] + [ctypes.c_char_p] * 4
    return lib, lib.secp256k1_context_create(0x0301)  # SIGN | VERIFY (ignored by newer versions)


def tagged_hash(tag: str, data: bytes) -> bytes:
    tag_hash = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(tag_hash + tag_hash + data).digest()


def _check(ok: int, what: str) -> None:
    if ok != 1:
        raise ValueError(f"libsecp256k1 {what} failed")


@dataclass(frozen=True)
class TaprootKey:
    """A BIP86 output key: internal key from `secret`, tweaked by the hash of itself (no script tree)."""

    keypair: bytes  # libsecp256k1's 96-byte tweaked keypair
    output_key: bytes  # x-only, 32 bytes

    @classmethod
    def from_int(cls, n: int) -> TaprootKey:
        lib, ctx = _lib()
        keypair = ctypes.create_string_buffer(96)
        _check(lib.secp256k1_keypair_create(ctx, keypair, n.to_bytes(32, "big")), "keypair_create")
        internal = cls._xonly(keypair)
        _check(lib.secp256k1_keypair_xonly_tweak_add(ctx, keypair, tagged_hash("TapTweak", internal)), "tweak")
        return cls(keypair.raw, cls._xonly(keypair))

    @staticmethod
    def _xonly(keypair: ctypes.Array) -> bytes:
        lib, ctx = _lib()
        pubkey, out = ctypes.create_string_buffer(64), ctypes.create_string_buffer(32)
        _check(lib.secp256k1_keypair_xonly_pub(ctx, pubkey, None, keypair), "keypair_xonly_pub")
        _check(lib.secp256k1_xonly_pubkey_serialize(ctx, out, pubkey), "xonly_pubkey_serialize")
        return out.raw

    @property
    def script(self) -> bytes:
        return b"\x51\x20" + self.output_key

    @property
    def address(self) -> str:
        return segwit_encode(1, self.output_key)

    def sign(self, message: bytes) -> bytes:
        lib, ctx = _lib()
        sig = ctypes.create_string_buffer(64)
        keypair = ctypes.create_string_buffer(self.keypair, 96)
        _check(lib.secp256k1_schnorrsig_sign32(ctx, sig, message, keypair, bytes(32)), "schnorrsig_sign32")
        return sig.raw


def taproot_sighash(tx: Tx, index: int, spent: list[tuple[int, bytes]]) -> bytes:
    """BIP341's signature message hash for input `index`, SIGHASH_DEFAULT, key path, no annex.

    `spent`: (amount, scriptPubKey) of every input: all of them are committed to, which is why a verifier
    needs the whole spent-outputs set."""
    sha = lambda data: hashlib.sha256(data).digest()  # noqa: E731
    message = b"\x00\x00" + struct.pack("<iI", tx.version, tx.locktime)  # epoch, hash type, version, locktime
    message += sha(b"".join(txin.prev_hash + struct.pack("<I", txin.prev_index) for txin in tx.inputs))
    message += sha(b"".join(struct.pack("<q", amount) for amount, _ in spent))
    message += sha(b"".join(ser_bytes(script) for _, script in spent))
    message += sha(b"".join(struct.pack("<I", txin.sequence) for txin in tx.inputs))
    message += sha(b"".join(out.serialize() for out in tx.outputs))
    message += b"\x00" + struct.pack("<I", index)  # spend type: key path, no annex
    return tagged_hash("TapSighash", message)


def sign_taproot_input(tx: Tx, index: int, key: TaprootKey, spent: list[tuple[int, bytes]]) -> None:
    tx.inputs[index].witness = [key.sign(taproot_sighash(tx, index, spent))]
