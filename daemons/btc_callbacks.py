"""Electrum's callbacks as the BTC daemon's events, each reported once (``ReportedState``).

Callbacks alone can lose an event: Electrum saves a wallet before its callbacks reach the loop, and
after a restart it never fires them again for what the file already holds. So each wallet is also
reconciled, when it loads and whenever it has caught up with its server: every transaction, its
verification and every request's status are compared with what was reported, and what never was
is reported now. The same handlers do both, so a fact is reported once whichever path sees it first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .payment_requests import status_str

TX_HEIGHT_LOCAL = -2  # Electrum's height of a transaction no server lists


class CallbacksMixin:
    """One handler per Electrum callback (``CALLBACKS``), each emitting one contract event."""

    _report_tasks: set[asyncio.Task[Any]] = set()  # report_moved's tasks, referenced until done

    async def on_wallet_updated(self, wallet: Any) -> None:
        """Electrum's 'wallet_updated' (after each sync round): reconcile when the wallet has just caught up."""
        up_to_date = bool(wallet.is_up_to_date())
        was_up_to_date = self._up_to_date.get(id(wallet), False)
        self._up_to_date[id(wallet)] = up_to_date
        if up_to_date and not was_up_to_date and self.key_of(wallet) is not None:
            await self.reconcile_wallet(wallet)

    async def reconcile_wallet(self, wallet: Any) -> None:
        """Report what the wallet holds and was never reported (a crash between its save and the event)."""
        key = self.key_of(wallet)
        if key is None or self.reported is None:
            return
        txids = sorted(self.wallet_txids(wallet), key=wallet.adb.get_txpos)
        for txid in txids:
            await self.on_new_transaction(wallet, wallet.db.get_transaction(txid))
        for txid in txids:
            mined = wallet.db.get_verified_tx(txid)
            if mined is not None:
                await self.on_verified(wallet, txid, mined)
        for request in wallet.get_sorted_requests():
            request_id = request.get_id()
            # A request no transaction touched was never reported by a callback (Electrum fires none),
            # so there is nothing to catch up on: its creation is not an event.
            if self.reported.get("request", key, request_id) is None and not self.request_tx_hashes(wallet, request):
                continue
            await self.on_request_status(wallet, request_id, wallet.get_invoice_status(request))

    def wallet_txids(self, wallet: Any) -> list[str]:
        """The stored transactions Electrum reports as the wallet's ('new_transaction' fires for these only)."""
        mine = []
        for txid in wallet.db.list_transactions():
            tx = wallet.db.get_transaction(txid)
            if tx is None:
                continue
            outputs = any(wallet.is_mine(output.address) for output in tx.outputs())
            if outputs or any(wallet.is_mine(wallet.adb.get_txin_address(txin)) for txin in tx.inputs()):
                mine.append(txid)
        return mine

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

    def watch_history_changes(self, wallet: Any) -> None:
        """Report the requests a transaction paid again whenever the server moves or drops it.

        Electrum 4.3.4 recomputes a request's status only when a transaction is added or its SPV proof
        is added or undone. When the server's history moves a transaction (a reorg sends a confirmed
        payment back to the mempool) or drops it (replaced by fee, conflicted away by a reorg), it sends
        no request_status: the request would stay "Paid" or "Unconfirmed" (Electrum's own FIXME in
        Wallet._update_invoices_and_reqs_touched_by_tx). Worse, it keeps a dropped transaction as a
        "local" one that still counts as paying; the daemon forgets it. Only transactions the server
        listed before are forgotten, never one the wallet added itself and has not broadcast yet.
        """
        adb = getattr(wallet, "adb", None)
        if adb is None:  # not Electrum's wallet layout (Electron Cash keeps its own)
            return
        receive = adb.receive_history_callback

        def receive_history(addr: str, hist: Any, tx_fees: Any) -> None:
            before = dict(adb.get_address_history(addr))
            receive(addr, hist, tx_fees)
            after = dict(hist)
            for txid, height in before.items():
                if after.get(txid) != height:
                    dropped = txid not in after and adb.get_tx_height(txid).height == TX_HEIGHT_LOCAL
                    self.report_moved(wallet, txid, dropped)

        adb.receive_history_callback = receive_history

    def report_moved(self, wallet: Any, txid: str, dropped: bool) -> None:
        tx = wallet.db.get_transaction(txid)
        if tx is None:
            return
        requests = [r for r in (wallet.get_request_by_addr(o.address) for o in tx.outputs()) if r is not None]
        if dropped:
            wallet.adb.remove_transaction(txid)
        for request in requests:
            status = wallet.get_invoice_status(request)
            task = asyncio.ensure_future(self.on_request_status(wallet, request.get_id(), status))
            self._report_tasks.add(task)
            task.add_done_callback(self._report_tasks.discard)

    def payment_fields(self, wallet: Any, request: Any, status: int) -> dict[str, Any]:
        address = request.get_address()
        tx_hashes = self.request_tx_hashes(wallet, request)
        return {
            "address": address,
            "status": status,
            "status_str": status_str(status),
            "tx_hashes": tx_hashes,
            "sent_amount": self.sent_amount(wallet, address, tx_hashes),
        }
