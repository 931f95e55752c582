"""Payment requests of the BCH daemon: Electron Cash's requests by address, in the common request shape."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .bch_calls import in_thread, to_json
from .btc_amounts import format_amount
from .btc_errors import REQUEST_NOT_FOUND
from .jsonrpc import RPCError
from .payment_requests import request_fields
from .rpc import rpc


class BCHRequestsMixin:
    """Electron Cash's addrequest/getrequest plus the BTC daemon's names for them (add_request, get_request)."""

    def payment_target(self, address: str) -> Any:
        return self.parse_address(address)  # an Address: Electron Cash's outputs carry Address objects

    def value_paid_to(self, tx: Any, target: Any) -> int:
        return sum(value for _, addr, value in tx.outputs() if addr == target)

    def format_request(self, wallet: Any, request: dict[str, Any]) -> dict[str, Any]:
        """Electron Cash's request (wallet.get_payment_request: id, time, exp, memo, amount in satoshis)
        with 'amount (BCH)' (the SDK's amount field) and the fields every coin's request has."""
        data = to_json(request)
        data["amount (BCH)"] = format_amount(data.get("amount") or 0, self.COIN_DECIMALS)
        tx_hashes = list(data.get("tx_hashes", []))
        data.update(
            request_fields(
                request_id=data.get("id") or data["address"],
                address=data["address"],
                uri=data.get("URI") or "",
                message=data.get("memo") or "",
                timestamp=data.get("time") or 0,
                expiry=data.get("exp"),
                status=data["status"],
                tx_hashes=tx_hashes,
                sent_amount=self.sent_amount(wallet, data["address"], tx_hashes),
                confirmations=data.get("confirmations"),
            )
        )
        return data

    @rpc(requires_wallet=True)
    async def addrequest(
        self,
        amount: Decimal | None = None,
        memo: str = "",
        expiration: float | None = None,
        force: bool = False,
        wallet: Any = None,
    ) -> Any:
        """Electron Cash's addrequest: a request on the first unused address (a new one with force=true).

        amount in BCH (a decimal string or number), expiration in seconds (null or 0: never; a
        float is taken and its fraction cut, as the SDK sends minutes times 60). Returns the request
        with its CashAddr address, 'amount (BCH)', URI, status and sent_amount, or false when no
        unused address is left and force is false."""
        amount_given, seconds = self.request_terms(amount, expiration, "expiration")
        commands = self.electrum.commands.Commands(self.electrum_config, wallet, self.network)
        before = dict(wallet.receive_requests)
        try:
            created = await in_thread(commands.addrequest, amount_given or "0", memo, seconds, force)
        except Exception:
            # Electron Cash keeps the request in memory when saving it fails (a full disk): listed now, gone
            # after a restart. Put the requests back as they were, so a failed call leaves nothing behind.
            await in_thread(self._restore_requests, wallet, before)
            raise
        if not created:
            return False
        return await self.request_by_address(wallet, self.parse_address(created["address"]))

    @staticmethod
    def _restore_requests(wallet: Any, requests: dict[Any, Any]) -> None:
        with wallet.lock:
            wallet.receive_requests.clear()
            wallet.receive_requests.update(requests)

    @rpc(requires_wallet=True)
    async def add_request(
        self,
        amount: Decimal | None = None,
        memo: str = "",
        expiry: float | None = 3600,
        force: bool = False,
        wallet: Any = None,
    ) -> Any:
        """The BTC daemon's name for addrequest (expiry in seconds, 0 or null: never)."""
        return await self.addrequest(amount, memo, expiry, force, wallet=wallet)

    @rpc(requires_wallet=True, aliases=("getrequest",))
    async def get_request(self, key: str, wallet: Any = None) -> dict[str, Any]:
        """A payment request by its address (CashAddr or legacy) or its request_id, with its status and sent_amount."""
        found = next((a for a, r in list(wallet.receive_requests.items()) if r.get("id") == key), None)
        return await self.request_by_address(wallet, found if found is not None else self.parse_address(key))

    async def request_by_address(self, wallet: Any, address: Any) -> dict[str, Any]:
        request = await in_thread(wallet.get_payment_request, address, self.electrum_config)
        if request is None:
            raise RPCError(REQUEST_NOT_FOUND, "Request not found")
        return self.format_request(wallet, request)
