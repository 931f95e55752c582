"""Master keys and seeds of the BTC daemon: which strings name a wallet, and extended-key helpers."""

from __future__ import annotations

from .jsonrpc import INVALID_PARAMS, RPCError
from .rpc import rpc


class KeysMixin:
    """What a key is (public, private, seed) for the library loaded in ``self.electrum``."""

    def is_public_key(self, key: str) -> bool:
        keystore = self.electrum.keystore
        return bool(self.electrum.bip32.is_xpub(key) or keystore.is_old_mpk(key))

    @rpc
    async def validatekey(self, key: str) -> bool:
        """Whether key restores a wallet on this network: a master public or private key, or an Electrum seed."""
        keystore = self.electrum.keystore
        try:
            if keystore.is_master_key(key):
                keystore.from_master_key(key)
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
