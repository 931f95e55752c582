"""Lightning requests and events of the BTC daemon: BOLT11 requests beside on-chain ones, their payments
as ``new_payment``, and ``channel_opened`` / ``channel_closed``.

A Lightning request (``add_request(..., lightning=true)``, the SDK's ``add_invoice``) is a BOLT11
invoice of the wallet's node with no on-chain fallback; its id is the payment hash (``rhash``), which is
also the ``address`` of its ``new_payment`` events (what bitcart's daemon reports, and the
``request_id`` a processor looks it up by). Paid, it has ``tx_hashes`` ``[rhash]`` and the requested
amount as ``sent_amount``. An on-chain request of a Lightning wallet stays on-chain only: Electrum 4.3.4
would put a Lightning invoice in every request of such a wallet.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

from .btc_amounts import format_amount
from .payment_requests import request_fields, status_str
from .rpc import rpc

logger = logging.getLogger(__name__)
PR_PAID = 3
CHANNEL_OPEN, CHANNEL_CLOSED, CHANNEL_REDEEMED = 3, 9, 10  # Electrum's ChannelState values


class LightningRequestsMixin:
    """add_request with lightning=true, Lightning requests' fields, and the channel events."""

    # -- requests -----------------------------------------------------------------------------------

    def apply_lightning_setting(self, wallet: Any) -> None:
        super().apply_lightning_setting(wallet)
        if getattr(wallet, "lnworker", None) is not None:
            wallet.create_request = lambda amount_sat, message, exp_delay, address: self.new_request(
                wallet, amount_sat, message, exp_delay, address, None
            )

    def new_request(
        self, wallet: Any, amount_sat: int | None, message: str, expiry: int | None, address: str | None, bolt11: Any
    ) -> str:
        """Store a request: on-chain to ``address``, or Lightning with the BOLT11 invoice ``bolt11``.

        Electrum's Wallet.create_request without its rule that every request of a Lightning wallet is
        also a Lightning invoice."""
        amount_sat = amount_sat or 0
        output = self.electrum.transaction.PartialTxOutput.from_address_and_value
        request = self.electrum.invoices.Invoice(
            outputs=[output(address, amount_sat)] if address else [],
            message=message or "",
            time=int(time.time()),
            amount_msat=amount_sat * 1000,
            exp=expiry or 0,
            height=wallet.adb.get_local_height(),
            bip70=None,
            lightning_invoice=bolt11,
        )
        return wallet.add_payment_request(request)

    @rpc(requires_wallet=True)
    async def add_request(
        self,
        amount: Decimal | None = None,
        memo: str = "",
        expiry: float | None = 3600,
        force: bool = False,
        lightning: bool = False,
        wallet: Any = None,
    ) -> Any:
        """Create a payment request: on-chain on the first unused address (a new one with force=true), or
        with lightning=true a BOLT11 invoice of the wallet's Lightning node (request_id = rhash).

        amount in coin units (a decimal string), expiry in seconds (0 or null: never)."""
        if not lightning:
            return await super().add_request(amount, memo, expiry, force, wallet=wallet)
        lnworker = self.check_lightning(wallet)
        amount_given, seconds = self.request_terms(amount, expiry, "expiry")
        amount_sat = self.electrum.commands.satoshis(amount_given) if amount_given is not None else None
        bolt11 = lnworker.add_request(amount_sat=amount_sat, message=memo, expiry=seconds or 0, fallback_address=None)
        request_id = self.electrum.invoices.Invoice.from_bech32(bolt11).rhash
        try:
            self.new_request(wallet, amount_sat, memo, seconds, None, bolt11)
        except Exception:
            wallet.delete_request(request_id, write_to_disk=False)  # a failed save leaves nothing behind
            raise
        return self.format_request(wallet, wallet.get_request(request_id))

    def request_tx_hashes(self, wallet: Any, request: Any) -> list[str]:
        if not request.is_lightning():
            return super().request_tx_hashes(wallet, request)
        return [request.rhash] if self.lightning_paid(wallet, request) else []

    @staticmethod
    def lightning_paid(wallet: Any, request: Any) -> bool:
        lnworker = getattr(wallet, "lnworker", None)
        return lnworker is not None and lnworker.get_payment_status(bytes.fromhex(request.rhash)) == PR_PAID

    def lightning_sent_amount(self, wallet: Any, request: Any) -> str | None:
        paid = self.lightning_paid(wallet, request)
        return format_amount(int(request.get_amount_sat() or 0) if paid else 0, self.COIN_DECIMALS)

    def format_request(self, wallet: Any, request: Any) -> dict[str, Any]:
        """Electrum's export of a Lightning request (lightning_invoice, rhash, amount_msat, ...) with the
        fields every coin's request has; it has no on-chain address or URI."""
        if not request.is_lightning():
            return super().format_request(wallet, request)
        data = wallet.export_request(request)
        self.fix_amount_text(data)
        data.update(
            request_fields(
                request_id=data["request_id"],
                address="",
                uri="",
                message=data.get("message") or "",
                timestamp=data["timestamp"],
                expiry=request.exp,
                status=data["status"],
                tx_hashes=self.request_tx_hashes(wallet, request),
                sent_amount=self.lightning_sent_amount(wallet, request),
                confirmations=None,
            )
        )
        data["is_lightning"] = True
        return data

    def payment_fields(self, wallet: Any, request: Any, status: int) -> dict[str, Any]:
        if not request.is_lightning():
            return super().payment_fields(wallet, request, status)
        return {
            "address": request.get_id(),
            "status": status,
            "status_str": status_str(status),
            "tx_hashes": self.request_tx_hashes(wallet, request),
            "sent_amount": self.lightning_sent_amount(wallet, request),
        }

    # -- channel events ------------------------------------------------------------------------------

    async def on_channel(self, wallet: Any, chan: Any) -> None:
        """Electrum's 'channel' callback (every state change of a channel; it fires only with Lightning on)."""
        key = self.key_of(wallet)
        if key is None or self.reported is None or chan.is_backup():
            return
        try:
            self.remember_node(key, wallet)
            await self.report_channel(key, chan)
        except Exception:  # Electrum drops a callback's exception without a trace
            logger.exception("could not report a change of channel %s", chan.funding_outpoint.to_str())

    async def report_channel(self, key: str, chan: Any) -> None:
        """channel_opened once the channel is usable, channel_closed once its closing transaction is mined;
        each once per channel point, also across restarts (reconciled on load)."""
        state = int(chan.get_state())
        point = chan.funding_outpoint.to_str()
        fields = {
            "channel_point": point,
            "channel_id": chan.channel_id.hex(),
            "remote_pubkey": chan.node_id.hex(),
            "capacity": format_amount(chan.get_capacity(), self.COIN_DECIMALS),
        }
        if state >= CHANNEL_OPEN and self.reported.is_new("channel_opened", key, point, "1"):
            record = self.reported.recorder("channel_opened", key, point, "1")
            await self.notify("channel_opened", fields, wallet=key, also=record)
        if state in (CHANNEL_CLOSED, CHANNEL_REDEEMED) and self.reported.is_new("channel_closed", key, point, "1"):
            closing = chan.get_closing_height()
            record = self.reported.recorder("channel_closed", key, point, "1")
            closed = {**fields, "closing_txid": closing[0] if closing else None}
            await self.notify("channel_closed", closed, wallet=key, also=record)

    async def reconcile_wallet(self, wallet: Any) -> None:
        await super().reconcile_wallet(wallet)
        key = self.key_of(wallet)
        lnworker = getattr(wallet, "lnworker", None)
        if key is None or lnworker is None or self.reported is None:
            return
        self.remember_node(key, wallet)
        for chan in list(lnworker.channels.values()):
            await self.report_channel(key, chan)
