"""Electron Cash's callbacks as contract events: described on its threads, delivered once on the loop.

Its callbacks differ from Electrum's in names and arguments (``blockchain_updated``, ``new_transaction``,
``payment_received``, ``verified2``) and fire on its own threads, so each becomes a ``bch_events.Report``
where it fires and reaches ``deliver`` through the daemon's ``ThreadBridge``.
"""

from __future__ import annotations

import logging
from typing import Any

from .bch_calls import in_thread
from .bch_events import Report
from .payment_requests import status_str

logger = logging.getLogger(__name__)


class BCHCallbacksMixin:
    """Turns Electron Cash's callbacks, and what a wallet holds when it loads, into events reported once."""

    def on_electron_callback(self, event: str, *args: Any) -> None:
        """Runs on an Electron Cash thread: describe the event now, deliver it on the loop."""
        try:
            report = getattr(self, self.CALLBACKS[event])(*args)
        except Exception:  # never let a bug here break Electron Cash's network thread
            logger.exception("Electron Cash callback %s failed", event)
            return
        reports = report if isinstance(report, list) else [report]
        for each in reports:
            if each is not None and self.bridge is not None:
                self.bridge.submit(each)

    def report_new_block(self, *args: Any) -> Report | None:
        height = self.network.get_local_height() if self.network is not None else 0
        if height <= 0:
            return None
        return Report("new_block", {"height": height}, None, "block", "height", str(height), monotonic=True)

    def report_new_transaction(self, tx: Any, wallet: Any) -> Report | None:
        key = self.key_of(wallet)
        if key is None:
            return None
        txid = tx.txid()
        return Report("new_transaction", {"tx": txid}, key, "tx", txid, "seen")

    def report_verified_tx(self, wallet: Any, tx_hash: str, height: int, *args: Any) -> Report | None:
        key = self.key_of(wallet)
        if key is None:
            return None
        return Report("verified_tx", {"tx": tx_hash, "height": int(height)}, key, "verified", tx_hash, str(height))

    def report_new_payment(self, wallet: Any, address: Any, status: int) -> Report | None:
        key = self.key_of(wallet)
        request = wallet.get_payment_request(address, self.electrum_config) if key is not None else None
        if request is None:
            return None
        text = address.to_ui_string()
        tx_hashes = list(request.get("tx_hashes", []))
        fields = {
            "address": text,
            "status": int(status),
            "status_str": status_str(int(status)),
            "tx_hashes": tx_hashes,
            "sent_amount": self.sent_amount(wallet, text, tx_hashes),
        }
        return Report("new_payment", fields, key, "request", text, str(status))

    async def deliver(self, report: Report) -> None:
        """On the loop: report each fact once, across restarts too (stored first, remembered after)."""
        assert self.reported is not None
        wallet = report.wallet or ""
        if report.monotonic:
            fresh = self.reported.is_higher(report.kind, report.item, int(report.value))
        else:
            fresh = self.reported.is_new(report.kind, wallet, report.item, report.value)
        if fresh:  # the fact is recorded in the event's own transaction: a crash cannot separate the two
            record = self.reported.recorder(report.kind, wallet, report.item, report.value)
            await self.notify(report.event, report.fields, wallet=report.wallet, also=record)

    async def reconcile_wallet(self, wallet: Any) -> None:
        """Report what the wallet holds and was never reported, when it loads (see ``reconcile_reports``)."""
        if self.key_of(wallet) is None or self.reported is None:
            return
        for report in await in_thread(self.reconcile_reports, wallet):
            await self.deliver(report)

    def reports_on_wallet_updated(self, wallet: Any) -> list[Report]:
        """Electron Cash's 'wallet_updated' (on its threads): reconcile when the wallet has just caught up."""
        up_to_date = bool(wallet.is_up_to_date())
        was_up_to_date = self._up_to_date.get(id(wallet), False)
        self._up_to_date[id(wallet)] = up_to_date
        if not up_to_date or was_up_to_date or self.key_of(wallet) is None:
            return []
        return self.reconcile_reports(wallet)

    def reconcile_reports(self, wallet: Any) -> list[Report]:
        """Every fact the wallet holds as the callbacks would report it; ``deliver`` drops those already reported.

        The window is Electrum's: Electron Cash saves a wallet on its own threads before its callbacks
        reach the loop, and fires none again for what its file holds. Requests no transaction touched
        are left out: no callback reports them (their creation is not an event). Runs on any thread."""
        with wallet.lock:
            transactions = dict(wallet.transactions)
            heights = {txid: wallet.get_tx_height(txid)[0] for txid in transactions}
            verified = {txid: info[0] for txid, info in wallet.verified_tx.items() if txid in transactions}
            addresses = list(wallet.receive_requests)
        ordered = sorted(transactions, key=lambda txid: (heights[txid] <= 0, heights[txid], txid))
        reports = [self.report_new_transaction(transactions[txid], wallet) for txid in ordered]
        reports += [self.report_verified_tx(wallet, txid, verified[txid]) for txid in ordered if txid in verified]
        for address in addresses:
            status = wallet.get_request_status(address)  # (status, conf, tx_hashes), or PR_UNKNOWN
            if isinstance(status, tuple) and status[2]:
                reports.append(self.report_new_payment(wallet, address, status[0]))
        return [report for report in reports if report is not None]
