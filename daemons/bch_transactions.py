"""Addresses, transactions and fees of the BCH daemon, on Electron Cash's transaction and server calls."""

from __future__ import annotations

from typing import Any

from .bch_calls import electron_errors, in_thread, to_json
from .btc_errors import INVALID_TRANSACTION, TX_NOT_FOUND
from .btc_transactions import check_fee_target
from .jsonrpc import INVALID_PARAMS, RPCError
from .rpc import rpc


class BCHTransactionsMixin:
    """Electron Cash's side of the BTC daemon's transaction hooks, plus the methods that differ for BCH."""

    def parse_tx(self, raw_tx: Any) -> Any:
        try:
            with electron_errors():
                tx = self.electrum.transaction.Transaction(raw_tx)
                tx.deserialize()
        except Exception as exc:
            raise RPCError(INVALID_TRANSACTION, f"failed to recognize transaction encoding: {exc}") from exc
        return tx

    @staticmethod
    def tx_argument(raw_tx: str | dict | None, fields: dict[str, Any]) -> Any:
        """A transaction given as hex, as payto's {"hex", ...} result, or as that result's fields.

        A client passing payto's result as the only parameter sends an object, which the extended JSON-RPC
        reads as named arguments: ``hex``, ``complete`` and ``final`` arrive as keywords."""
        if raw_tx is not None:
            return raw_tx
        if "hex" not in fields:
            raise RPCError(INVALID_PARAMS, "a transaction is needed: raw hex or payto's result")
        return fields

    @rpc
    async def get_tx_size(self, raw_tx: str | dict | None = None, **tx_fields: Any) -> int:
        """Estimated size in bytes of a raw transaction (hex, or payto's {"hex": ...} result)."""
        return self.parse_tx(self.tx_argument(raw_tx, tx_fields)).estimated_size()

    @rpc
    async def get_tx_hash(self, raw_tx: str | dict | None = None, **tx_fields: Any) -> str | None:
        """The txid of a raw transaction (hex, or payto's {"hex": ...} result)."""
        return self.parse_tx(self.tx_argument(raw_tx, tx_fields)).txid()

    @rpc
    async def recommended_fee(self, target: int) -> int | None:
        """Fee rate in sat/kB: Bitcoin Cash has no fee market, so the configured rate for any target."""
        check_fee_target(target)
        return self.electrum_config.fee_per_kb()

    # Electron Cash's side of the BTC daemon's get_used_fee / get_transaction / confirmations hooks.

    def wallet_transaction(self, wallet: Any, tx_hash: str) -> Any:
        return wallet.transactions.get(tx_hash)

    def wallet_tx_confirmations(self, wallet: Any, tx_hash: str) -> int:
        return int(wallet.get_tx_height(tx_hash)[1])

    async def server_transaction(self, tx_hash: str) -> Any:
        return self.parse_tx(await self.server_request("blockchain.transaction.get", [tx_hash]))

    def tx_json(self, tx: Any, tx_hash: str) -> dict[str, Any]:
        with electron_errors():  # a fresh copy: deserialize() returns the fields only on its first call
            data = to_json(self.electrum.transaction.Transaction(str(tx)).deserialize())
        data["txid"] = tx_hash
        data["hex"] = str(tx)
        return data

    def tx_raw(self, tx: Any) -> str:
        return str(tx)

    async def proven_header(self, tx_hash: str, height: int) -> dict[str, Any] | None:
        return None  # not checked on Electron Cash: each call asks the server for the transaction's height

    def output_scripthashes(self, tx: Any) -> list[str]:
        return [address.to_scripthash_hex() for _, address, _ in tx.outputs() if hasattr(address, "to_scripthash_hex")]

    async def server_history(self, scripthash: str) -> list[dict[str, Any]]:
        return await self.server_request("blockchain.scripthash.get_history", [scripthash])

    async def server_request(self, method: str, params: list[Any]) -> Any:
        try:
            return await in_thread(self.network.synchronous_get, (method, params), 30)
        except Exception as exc:
            message = str(exc)
            if "transaction" in method and ("No such" in message or "not found" in message.lower()):
                raise RPCError(TX_NOT_FOUND, f"No such mempool or blockchain transaction: {message}") from exc
            raise

    @rpc(requires_wallet=True)
    async def addtransaction(self, tx: str | dict | None = None, wallet: Any = None, **tx_fields: Any) -> str:
        """Add a signed transaction to the wallet's history without broadcasting it (as the SDK does)."""
        parsed = self.parse_tx(self.tx_argument(tx, tx_fields))
        txid = parsed.txid()
        await in_thread(self._add_transaction, wallet, txid, parsed)
        return txid

    @staticmethod
    def _add_transaction(wallet: Any, txid: str, tx: Any) -> None:
        wallet.add_transaction(txid, tx)
        wallet.add_unverified_tx(txid, 0)
        wallet.save_transactions(write=True)

    @rpc(requires_network=True)
    async def broadcast(self, tx: str | dict | None = None, **tx_fields: Any) -> str:
        """Broadcast a signed transaction (hex, or payto's {"hex": ...} result); returns its txid."""
        parsed = self.parse_tx(self.tx_argument(tx, tx_fields))
        try:
            return await in_thread(self.network.broadcast_transaction2, parsed)
        except Exception as exc:
            raise RPCError(-32016, f"Error when broadcasting the transaction: {exc}") from exc
