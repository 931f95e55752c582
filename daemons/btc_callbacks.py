"""Electrum's callbacks as the BTC daemon's events, each reported once (``ReportedState``)."""

from __future__ import annotations

from typing import Any


class CallbacksMixin:
    """One handler per Electrum callback (``CALLBACKS``), each emitting one contract event."""

    async def on_blockchain_updated(self, *args: Any) -> None:
        if self.network is None or self.reported is None:
            return
        height = self.network.get_local_height()
        if height > 0 and self.reported.is_higher("block", "height", height):
            await self.notify(
                "new_block", {"height": height}, also=self.reported.recorder("block", "", "height", str(height))
            )

    async def on_new_transaction(self, wallet: Any, tx: Any) -> None:
        key = self.key_of(wallet)
        txid = tx.txid()
        if key is None or self.reported is None or not self.reported.is_new("tx", key, txid, "seen"):
            return
        await self.notify(
            "new_transaction", {"tx": txid}, wallet=key, also=self.reported.recorder("tx", key, txid, "seen")
        )

    async def on_verified(self, wallet: Any, tx_hash: str, tx_mined_status: Any) -> None:
        key = self.key_of(wallet)
        height = int(tx_mined_status.height)
        if key is None or self.reported is None or not self.reported.is_new("verified", key, tx_hash, str(height)):
            return
        record = self.reported.recorder("verified", key, tx_hash, str(height))
        await self.notify("verified_tx", {"tx": tx_hash, "height": height}, wallet=key, also=record)

    async def on_request_status(self, wallet: Any, request_id: str, status: int) -> None:
        key = self.key_of(wallet)
        request = wallet.get_request(request_id) if key is not None else None
        if key is None or request is None or self.reported is None:
            return
        if not self.reported.is_new("request", key, request_id, str(status)):
            return
        record = self.reported.recorder("request", key, request_id, str(status))
        await self.notify("new_payment", self.payment_fields(wallet, request, status), wallet=key, also=record)

    def payment_fields(self, wallet: Any, request: Any, status: int) -> dict[str, Any]:
        address = request.get_address()
        tx_hashes = self.request_tx_hashes(wallet, request)
        return {
            "address": address,
            "status": status,
            "status_str": request.get_status_str(status),
            "tx_hashes": tx_hashes,
            "sent_amount": self.sent_amount(wallet, address, tx_hashes),
        }
