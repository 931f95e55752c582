"""Master keys and seeds of the BTC daemon: which strings name a wallet, and extended-key helpers."""

from __future__ import annotations

import hashlib
from typing import Any

from .btc_errors import ADDRESS_INVALID
from .jsonrpc import INVALID_PARAMS, WALLET_LOAD_FAILED, RPCError
from .rpc import rpc

# Version prefixes of BIP-32 extended keys (SLIP-132 spellings included) on Bitcoin and Bitcoin Cash networks.
EXTENDED_KEY_PREFIXES = frozenset(
    {
        *("xpub", "ypub", "zpub", "tpub", "upub", "vpub", "Ypub", "Zpub", "Upub", "Vpub"),
        *("xprv", "yprv", "zprv", "tprv", "uprv", "vprv", "Yprv", "Zprv", "Uprv", "Vprv"),
    }
)
BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BASE58_DIGITS = {char: value for value, char in enumerate(BASE58_ALPHABET)}
EXTENDED_KEY_BYTES = 78  # version, depth, parent fingerprint, child number, chain code, key
EXTENDED_KEY_CHARS = 112  # 82 bytes (with the checksum) never take more base58 digits than this


class KnownPublicKeys:
    """Strings the library has already taken as master public keys of this daemon's network, at most ``size``.

    Telling one from a seed costs Electrum a base58 decoding and a curve point check (~0.1 ms) and the
    answer for a string never changes within a process (its network is fixed), so a wallet named on every
    request by its xpub pays it once. Only public keys are kept: never a seed or a private key.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.keys: dict[str, None] = {}

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def add(self, key: str) -> None:
        if len(self.keys) >= self.size:
            del self.keys[next(iter(self.keys))]  # the oldest: insertion order
        self.keys[key] = None


def looks_like_extended_key(key: str) -> bool:
    """Whether a string starts the way an extended key does, so it must be one (never a seed)."""
    return key.strip()[:4] in EXTENDED_KEY_PREFIXES


def is_base58check_extended_key(key: str) -> bool:
    """Whether ``key`` is base58check of 78 bytes: a one-character typo breaks the checksum.

    Pure Python over at most ``EXTENDED_KEY_CHARS`` digits, so its cost is bounded whatever the input.
    """
    if not 0 < len(key) <= EXTENDED_KEY_CHARS or any(char not in BASE58_DIGITS for char in key):
        return False
    number = 0
    for char in key:
        number = number * 58 + BASE58_DIGITS[char]
    zeros = len(key) - len(key.lstrip("1"))
    data = b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")
    payload, checksum = data[:-4], data[-4:]
    if len(payload) != EXTENDED_KEY_BYTES:
        return False
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == checksum


class KeysMixin:
    """What a key is (public, private, seed) for the library loaded in ``self.electrum``."""

    public_keys: KnownPublicKeys

    def is_public_key(self, key: str) -> bool:
        keystore = self.electrum.keystore
        return bool(self.electrum.bip32.is_xpub(key) or keystore.is_old_mpk(key))

    def known_public_key(self, key: str) -> bool:
        """``is_public_key``, remembered for the keys it holds for (see ``KnownPublicKeys``)."""
        if key in self.public_keys:
            return True
        if self.is_public_key(key):
            self.public_keys.add(key)
            return True
        return False

    def is_master_key(self, key: str) -> bool:
        """Whether the library takes ``key`` as a master key of this network."""
        return bool(self.electrum.keystore.is_master_key(key))

    def malformed_extended_key(self, key: str) -> bool:
        """A string shaped like an extended key that is not a valid one for this network.

        Electrum takes any text whose HMAC has a seed version prefix as a seed (about 1 in 256
        strings), so without this check a mistyped xpub would become a spending wallet whose
        addresses nobody watches. The pure checksum test runs first: typos never reach the library.
        """
        if not looks_like_extended_key(key):
            return False
        return not (is_base58check_extended_key(key) and self.is_master_key(key))

    def check_extended_key(self, key: str) -> None:
        """Refuse (-32005) a string that starts like an extended key but is not a valid one."""
        if self.malformed_extended_key(key):
            raise RPCError(
                WALLET_LOAD_FAILED,
                "Seed or key not recognized: it starts like an extended key but is not a valid extended key "
                "for this network (a mistyped key?)",
            )

    def check_convert_xkey(self, wallet: Any, arguments: dict[str, Any]) -> None:
        """convert_xkey(xkey, xtype): an extended key of this network and a script type it knows."""
        xkey, xtype = arguments.get("xkey"), arguments.get("xtype")
        if not isinstance(xkey, str) or self.malformed_extended_key(xkey) or not self.is_master_key(xkey):
            raise RPCError(INVALID_PARAMS, "'xkey' must be an extended public or private key of this network")
        known = sorted(self.electrum.constants.net.XPUB_HEADERS)
        if xtype not in known:
            raise RPCError(INVALID_PARAMS, f"'xtype' must be one of {', '.join(known)}")

    def normalize_address(self, address: str) -> str:
        """An address of this network as is (normalizeaddress); anything else is the invalid-address error."""
        text = address.strip() if isinstance(address, str) else ""
        if not text or not self.electrum.bitcoin.is_address(text):
            raise RPCError(ADDRESS_INVALID, f"Invalid address: {address}")
        return text

    @rpc
    async def validatekey(self, key: str) -> bool:
        """Whether key restores a wallet on this network: a master public or private key, or an Electrum seed.

        A string that starts like an extended key (xpub, vpub, ...) is valid only as one, never as a seed."""
        if key in self.public_keys:  # the library already took it as a master public key: it restores a wallet
            return True
        if self.malformed_extended_key(key):
            return False
        keystore = self.electrum.keystore
        try:
            if keystore.is_master_key(key):
                keystore.from_master_key(key)
                self.known_public_key(key)
                return True
            if keystore.is_seed(key):
                keystore.from_seed(key, None)
                return True
        except Exception:
            return False
        return False

    @rpc
    async def getfingerprint(self, xpub: str) -> str | None:
        """The root fingerprint of an extended key (known only for a master key of depth 0 or 1)."""
        try:
            return self.electrum.bip32.root_fp_and_der_prefix_from_xkey(xpub)[0]
        except Exception as exc:
            raise RPCError(INVALID_PARAMS, f"Not an extended key for this network: {exc}") from exc
