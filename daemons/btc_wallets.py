"""Wallets of the BTC daemon: their keys and files, restoring, opening, starting and stopping them."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from .btc_amounts import format_amount
from .btc_errors import ADDRESS_INVALID
from .jsonrpc import INVALID_PARAMS, RPCError, WalletIdentity
from .rpc import rpc


class WalletsMixin:
    """Electrum wallets named by their identity, kept in memory and under DATA_PATH (or diskless)."""

    def wallet_key(self, identity: WalletIdentity) -> str:
        """A master public key names its wallet; a seed or private key is never echoed: it is hashed."""
        if self.backend_loaded and self.known_public_key(identity.key):
            return identity.key
        return "sha256:" + hashlib.sha256(identity.key.encode()).hexdigest()

    def wallet_dir(self) -> Path:
        return Path(self.electrum_config.get_wallet_path()).parent

    def wallet_path(self, key: str) -> Path:
        # Hashed: a file name must not reveal a seed, and the network's folder keeps networks apart.
        return self.wallet_dir() / hashlib.sha256(key.encode()).hexdigest()

    async def load_wallet(self, identity: WalletIdentity) -> Any:
        self.check_extended_key(identity.key)
        self.wallet_loads += 1
        if identity.diskless:
            wallet = await asyncio.to_thread(self.restore_wallet, identity.key, None)
        else:
            path = self.wallet_path(identity.key)
            wallet = await asyncio.to_thread(self.open_or_restore_wallet, identity.key, path)
        self.start_wallet(self.wallet_key(identity), wallet)
        await self.reconcile_wallet(wallet)
        return wallet

    def open_or_restore_wallet(self, key: str, path: Path) -> Any:
        if path.exists():
            return self.open_wallet(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return self.restore_wallet(key, path)

    def open_wallet(self, path: Path) -> Any:
        storage = self.electrum.storage.WalletStorage(str(path))
        db = self.electrum.wallet_db.WalletDB(storage.read(), manual_upgrades=False)
        return self.electrum.wallet.Wallet(db, storage, config=self.electrum_config)

    def build_wallet_db(self, key: str) -> Any:
        """A standard wallet's db from a master key or an Electrum seed; None for anything else."""
        keystore = self.electrum.keystore
        if keystore.is_master_key(key):
            store = keystore.from_master_key(key)
        elif keystore.is_seed(key):
            store = keystore.from_seed(key, None)
        else:
            return None
        db = self.electrum.wallet_db.WalletDB("", manual_upgrades=False)
        db.put("keystore", store.dump())
        db.put("wallet_type", "standard")
        # Electrum gives every seed wallet a Lightning key; with Lightning off it gets none (no LN worker).
        if self.lightning and store.can_have_deterministic_lightning_xprv():
            db.put("lightning_xprv", store.get_lightning_xprv(None))
        return db

    def restore_wallet(self, key: str, path: Path | None) -> Any:
        """Build a wallet from its key; ``path`` None keeps it in memory only (diskless)."""
        db = self.build_wallet_db(key)
        if db is None:  # address or private-key lists, or a reason from Electrum why not
            result = self.electrum.wallet.restore_wallet_from_text(
                key, path=str(path) if path else None, config=self.electrum_config
            )
            return result["wallet"]
        storage = self.electrum.storage.WalletStorage(str(path)) if path else None
        wallet = self.electrum.wallet.Wallet(db, storage, config=self.electrum_config)
        wallet.save_db()
        return wallet

    def start_wallet(self, key: str, wallet: Any) -> None:
        assert self.router is not None
        self.router.attach(wallet)
        self.watch_history_changes(wallet)
        self._keys_by_wallet[id(wallet)] = key
        wallet.start_network(self.network)
        if wallet.storage is not None:
            self.electrum_daemon.add_wallet(wallet)

    async def stop_wallet(self, wallet: Any) -> None:
        if wallet.storage is not None:
            await self.electrum_daemon._stop_wallet(wallet.storage.path)
        else:
            await wallet.stop()

    async def unload_wallet(self, key: str, wallet: Any) -> None:
        if self.router is not None:
            self.router.detach(wallet)
        self._keys_by_wallet.pop(id(wallet), None)
        self._up_to_date.pop(id(wallet), None)
        self.balance_answers.pop(id(wallet), None)
        try:
            await self.stop_wallet(wallet)
        finally:
            self.release_key_caches()

    def release_key_caches(self) -> None:
        """Empty the library's derived-key caches, which would keep every unloaded wallet's keys for good.

        Electrum 4.3.4 caches ``derive_pubkey`` with an unbounded ``functools.lru_cache`` on the keystore
        classes: keyed by the keystore itself, it holds each keystore ever loaded (about 8 KiB per wallet).
        Loaded wallets derive again on demand, which only new addresses and signing need."""
        keystore = self.electrum.keystore
        for name in ("Xpub", "Old_KeyStore"):
            derive = getattr(getattr(keystore, name, None), "derive_pubkey", None)
            cache_clear = getattr(derive, "cache_clear", None)
            if cache_clear is not None:
                cache_clear()

    def owns_address(self, wallet: Any, address: str) -> bool:
        """Whether ``address`` is a valid address of this network that the wallet derived."""
        return bool(self.electrum.bitcoin.is_address(address) and wallet.is_mine(address))

    def check_signmessage(self, wallet: Any, arguments: dict[str, Any]) -> None:
        """signmessage(address, message): the wallet's own address and a text message."""
        address, message = arguments.get("address"), arguments.get("message")
        if not isinstance(address, str) or not self.owns_address(wallet, address):
            raise RPCError(INVALID_PARAMS, "'address' must be an address of this wallet")
        if not isinstance(message, str):
            raise RPCError(INVALID_PARAMS, "'message' must be a string")

    def key_of(self, wallet: Any) -> str | None:
        return self._keys_by_wallet.get(id(wallet))

    @rpc
    async def close_wallet(self, key: str | None = None, identity: WalletIdentity | None = None) -> bool:
        """Unload a wallet (the one given as xpub, or by its wallet key); false if it was not loaded."""
        if identity is not None:
            key = self.wallet_key(identity)
        if key is None:
            raise RPCError(INVALID_PARAMS, "close_wallet needs a wallet: pass it as 'xpub' or give its key")
        return await self.forget_wallet(key)

    @rpc(requires_wallet=True)
    async def getaddressbalance_wallet(self, address: str, wallet: Any = None) -> dict[str, str | None]:
        """Balance of one of the wallet's addresses, from the wallet's own history (no server query)."""
        confirmed, unconfirmed, unmatured = wallet.get_addr_balance(self.balance_address(address))
        return {
            "confirmed": format_amount(confirmed, self.COIN_DECIMALS),
            "unconfirmed": format_amount(unconfirmed, self.COIN_DECIMALS),
            "unmatured": format_amount(unmatured, self.COIN_DECIMALS),
        }

    def balance_address(self, address: str) -> Any:
        """The address as the library's ``get_addr_balance`` takes it (Electrum: the string), checked first
        so a malformed one is the invalid-address error, not a library exception."""
        if not self.electrum.bitcoin.is_address(address):
            raise RPCError(ADDRESS_INVALID, f"Invalid Bitcoin address: {address}")
        return address
