"""Wallets of the BCH daemon: Electron Cash's restore and open, their threads, and CashAddr addresses."""

from __future__ import annotations

from typing import Any

from .bch_calls import electron_errors, in_thread
from .btc_errors import ADDRESS_INVALID
from .btc_requests import OPEN_STATUSES
from .jsonrpc import RPCError


class BCHWalletsMixin:
    """Electron Cash's side of the BTC daemon's wallet hooks (restore, open, start, stop, addresses)."""

    def is_public_key(self, key: str) -> bool:
        return bool(self.electrum.bitcoin.is_xpub(key) or self.electrum.keystore.is_old_mpk(key))

    def keeps_watching(self, key: str, wallet: Any) -> bool:
        """Electron Cash's requests by address: open while unpaid and unexpired, or unconfirmed."""
        for address in list(wallet.receive_requests):
            status = wallet.get_request_status(address)  # (status, conf, tx_hashes), or PR_UNKNOWN
            if isinstance(status, tuple) and status[0] in OPEN_STATUSES:
                return True
        return False

    def restore_wallet(self, key: str, path: Any) -> Any:
        """A wallet from an xpub, a seed, or lists of addresses or private keys; path None: diskless."""
        with electron_errors():
            result = self.electrum.wallet.restore_wallet_from_text(
                key, path=str(path) if path else None, config=self.electrum_config, encrypt_file=False
            )
        return result["wallet"]

    def open_wallet(self, path: Any) -> Any:
        with electron_errors():
            storage = self.electrum.storage.WalletStorage(str(path), manual_upgrades=False)
            return self.electrum.wallet.Wallet(storage)

    def start_wallet(self, key: str, wallet: Any) -> None:
        self._keys_by_wallet[id(wallet)] = key
        if self.network is not None:
            wallet.start_threads(self.network)

    async def stop_wallet(self, wallet: Any) -> None:
        await in_thread(wallet.stop_threads)  # saves its state; joins a helper thread

    def normalize_address(self, address: str) -> str:
        """CashAddr, whichever form (legacy, with or without prefix) the address came in."""
        return self.parse_address(address).to_ui_string()

    def parse_address(self, text: str) -> Any:
        """CashAddr (with or without prefix) or legacy; RPCError -32004 otherwise."""
        try:
            return self.electrum.address.Address.from_string(str(text).strip())
        except Exception as exc:
            raise RPCError(ADDRESS_INVALID, f"Invalid address: {text}") from exc

    def balance_address(self, address: str) -> Any:
        """Electron Cash looks balances up by ``Address`` object, so CashAddr and legacy input both work."""
        return self.parse_address(address)

    def owns_address(self, wallet: Any, address: str) -> bool:
        try:
            parsed = self.parse_address(address)
        except RPCError:
            return False
        return bool(wallet.is_mine(parsed))
