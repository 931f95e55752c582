"""What a payment request looks like to clients, the same on every coin daemon (BTC, BCH, XMR).

A payment processor writes its code once for all coins (bitcart's merchant server reads
``status``, ``tx_hashes``, ``sent_amount`` and ``confirmations`` of any coin's request), so the
status table and the request's common fields live here once; each coin adds its own extras
(``amount_sat``, ``subaddress_index``, ...) beside them. Status codes are Electrum's.
"""

from __future__ import annotations

from typing import Any

PR_UNPAID, PR_EXPIRED, PR_UNKNOWN, PR_PAID, PR_UNCONFIRMED = 0, 1, 2, 3, 7
# One text per code: the text never says more than the code (an underpaid request is "Unpaid" with a
# non-zero sent_amount, an unpaid one that will expire is "Unpaid" with its expiration).
STATUS_STR = {
    PR_UNPAID: "Unpaid",
    PR_EXPIRED: "Expired",
    PR_UNKNOWN: "Unknown",
    PR_PAID: "Paid",
    4: "In progress",  # Lightning only (BTC with lightning on)
    5: "Failed",  # Lightning only
    6: "Computing route...",  # Lightning only
    PR_UNCONFIRMED: "Unconfirmed",
}
# The fields every coin's request object carries, with the same meaning (README, "Payment requests").
REQUEST_FIELDS = (
    "request_id",
    "address",
    "URI",
    "message",
    "timestamp",
    "expiry",
    "expiration",
    "status",
    "status_str",
    "tx_hashes",
    "sent_amount",
    "confirmations",
    "is_lightning",
)


def status_str(status: int) -> str:
    return STATUS_STR.get(status, STATUS_STR[PR_UNKNOWN])


def request_fields(
    *,
    request_id: str,
    address: str,
    uri: str,
    message: str,
    timestamp: int,
    expiry: int | None,
    status: int,
    tx_hashes: list[str],
    sent_amount: str | None,
    confirmations: int | None,
) -> dict[str, Any]:
    """The common fields of a request; ``expiry`` in seconds (0 or None: never).

    ``expiration`` is the unix time it expires (0: never); ``confirmations`` those of the payment,
    counted on its least confirmed transaction (0 while nothing is paid or a part is unconfirmed).
    """
    seconds = int(expiry or 0)
    return {
        "request_id": request_id,
        "address": address,
        "URI": uri,
        "message": message,
        "timestamp": int(timestamp),
        "expiry": seconds,
        "expiration": int(timestamp) + seconds if seconds else 0,
        "status": int(status),
        "status_str": status_str(int(status)),
        "tx_hashes": list(tx_hashes),
        "sent_amount": sent_amount,
        "confirmations": max(int(confirmations or 0), 0),
        "is_lightning": False,
    }
