"""Payment requests of the BTC daemon in the bitcart SDK's shape, and payment URLs."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from .btc_amounts import amount_text, check_expiry, format_amount, parse_amount
from .btc_errors import INVOICE_NOT_FOUND, REQUEST_NOT_FOUND
from .jsonrpc import INVALID_PARAMS, RPCError
from .payment_requests import request_fields
from .rpc import rpc

PR_UNPAID, PR_UNCONFIRMED = 0, 7  # Electrum's (and Electron Cash's) request statuses
OPEN_STATUSES = (PR_UNPAID, PR_UNCONFIRMED)


class RequestsMixin:
    """add_request/get_request/get_invoice over the wallet's requests, with what was paid to each."""

    def request_tx_hashes(self, wallet: Any, request: Any) -> list[str]:
        return list(wallet._is_onchain_invoice_paid(request)[2])

    def sent_amount(self, wallet: Any, address: str | None, tx_hashes: list[str]) -> str | None:
        """What the wallet's transactions ``tx_hashes`` paid to ``address``, in coin units."""
        total = 0
        if address:
            target = self.payment_target(address)
            for tx_hash in tx_hashes:
                tx = self.wallet_transaction(wallet, tx_hash)
                if tx is not None:
                    total += self.value_paid_to(tx, target)
        return format_amount(total, self.COIN_DECIMALS)

    def payment_target(self, address: str) -> Any:
        """The address in the form ``value_paid_to`` compares outputs with (Electrum: the string itself)."""
        return address

    def value_paid_to(self, tx: Any, target: Any) -> int:
        """Satoshis a transaction's outputs pay to ``target`` (from ``payment_target``)."""
        return tx.output_value_for_address(target)

    def keeps_watching(self, key: str, wallet: Any) -> bool:
        """A wallet with a request still open (unpaid and not expired, or paid but unconfirmed) stays loaded."""
        return any(wallet.get_invoice_status(request) in OPEN_STATUSES for request in wallet.get_unpaid_requests())

    def find_request(self, wallet: Any, key: str) -> Any:
        """A request by its id, or the newest one paying to ``key`` as an address (what the SDK passes)."""
        request = wallet.get_request(key)
        if request is not None:
            return request
        matching = [r for r in wallet.get_sorted_requests() if r.get_address() == key]
        return matching[-1] if matching else None

    def format_request(self, wallet: Any, request: Any) -> dict[str, Any]:
        """Electrum's export (amount_BTC, amount_sat, ...) with the fields every coin's request has."""
        data = wallet.export_request(request)
        self.fix_amount_text(data)
        data.update(
            request_fields(
                request_id=data["request_id"],
                address=data.get("address") or "",
                uri=data.get("URI") or "",
                message=data.get("message") or "",
                timestamp=data["timestamp"],
                expiry=request.exp,
                status=data["status"],
                tx_hashes=data.get("tx_hashes", []),
                sent_amount=self.sent_amount(wallet, data.get("address"), data.get("tx_hashes", [])),
                confirmations=data.get("confirmations"),  # Electrum's: the least confirmed tx of a payment
            )
        )
        return data

    def request_terms(self, amount: Any, expiry: Any, expiry_name: str) -> tuple[str | None, int | None]:
        """A request's amount (as the library parses it) and expiry in seconds, checked: -32602 for
        a negative amount, one finer than the coin's decimals or above its supply, or an expiry out
        of bounds, before the library can store a malformed request."""
        amount_given = None
        if amount is not None:
            amount_given = amount_text(parse_amount("amount", amount, self.COIN_DECIMALS, self.COIN_SUPPLY))
        return amount_given, check_expiry(expiry_name, expiry)

    @rpc(requires_wallet=True)
    async def add_request(
        self,
        amount: Decimal | None = None,
        memo: str = "",
        expiry: float | None = 3600,
        force: bool = False,
        wallet: Any = None,
    ) -> Any:
        """Create a payment request on the first unused address (a new one with force=true).

        amount in coin units (a decimal string), expiry in seconds (0 or null: never). Returns the
        request with amount_BTC, address, URI, status and sent_amount, or false when no unused
        address is left and force is false."""
        amount_given, seconds = self.request_terms(amount, expiry, "expiry")
        before = {request.get_id() for request in wallet.get_sorted_requests()}
        try:
            created = await self.commands.add_request(
                amount_given, memo, expiration=seconds, force=force, wallet=wallet
            )
        except Exception:
            # Electrum keeps the request in memory when saving the wallet fails (a full disk): it would be
            # listed now and gone after a restart. Drop it, so a failed call leaves nothing behind.
            for request in wallet.get_sorted_requests():
                if request.get_id() not in before:
                    wallet.delete_request(request.get_id(), write_to_disk=False)
            raise
        if not created:
            return created
        return self.format_request(wallet, wallet.get_request(created["request_id"]))

    @rpc(requires_wallet=True, aliases=("getrequest",))
    async def get_request(self, key: str, wallet: Any = None) -> dict[str, Any]:
        """A payment request by its request_id or by its address, with its status and sent_amount."""
        request = self.find_request(wallet, key)
        if request is None:
            raise RPCError(REQUEST_NOT_FOUND, "Request not found")
        return self.format_request(wallet, request)

    @rpc(requires_wallet=True)
    async def get_invoice(self, key: str, wallet: Any = None) -> dict[str, Any]:
        """An invoice by its id: an incoming request (as get_request) or an outgoing invoice."""
        request = wallet.get_request(key)
        if request is not None:
            return self.format_request(wallet, request)
        invoice = wallet.get_invoice(key)
        if invoice is None:
            raise RPCError(INVOICE_NOT_FOUND, "Invoice not found")
        return wallet.export_invoice(invoice)

    @rpc
    async def modifypaymenturl(self, url: str, amount: Decimal, divisibility: int | None = None) -> str:
        """The payment URL (BIP21) with its amount replaced; divisibility fixes the decimals shown."""
        if amount < 0:
            raise RPCError(INVALID_PARAMS, "'amount' must not be negative")
        try:
            if divisibility is not None:
                amount = amount.quantize(Decimal(1).scaleb(-divisibility))
        except InvalidOperation as exc:
            raise RPCError(INVALID_PARAMS, f"Invalid divisibility {divisibility}") from exc
        text = format(amount, "f")
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "amount"]
        query.insert(0, ("amount", text))
        return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))
