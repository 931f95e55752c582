"""Payment requests of XMR wallets: amounts, statuses and their durable table. No I/O but SQLite.

Each request owns one subaddress, so every transfer wallet-rpc reports on that subaddress belongs to it.
The status is a pure function of the request and those transfers (``evaluate``), so the poller can
recompute it after a restart and report only real changes. Status numbers are Electrum's, which the
bitcart SDK and payment processors already understand.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .payment_requests import PR_EXPIRED, PR_PAID, PR_UNCONFIRMED, PR_UNPAID, request_fields, status_str

PICONERO = Decimal(10) ** 12

SCHEMA = """
CREATE TABLE IF NOT EXISTS xmr_requests (
    wallet TEXT NOT NULL,
    id TEXT NOT NULL,
    address TEXT NOT NULL,
    major INTEGER NOT NULL,
    minor INTEGER NOT NULL,
    amount INTEGER,
    memo TEXT NOT NULL,
    created INTEGER NOT NULL,
    expiration INTEGER,
    height INTEGER NOT NULL,
    status INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    tx_hashes TEXT NOT NULL,
    mined_height INTEGER,
    PRIMARY KEY (wallet, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS xmr_requests_address ON xmr_requests (wallet, address);
"""


def to_atomic(amount: Any) -> int:
    """A coin amount (decimal string or number) in piconero; ValueError says why it is refused."""
    if isinstance(amount, bool) or not isinstance(amount, str | int | float | Decimal):
        raise ValueError(f"Invalid amount: {amount!r}")
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise ValueError(f"Invalid amount: {amount!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"Invalid amount: {amount!r}")
    atomic = value * PICONERO
    if atomic != atomic.to_integral_value():
        raise ValueError(f"Invalid amount: {amount!r} has more than 12 decimals")
    return int(atomic)


def from_atomic(atomic: int) -> str:
    """Piconero as a decimal string with exactly 12 decimals."""
    return f"{Decimal(atomic) / PICONERO:.12f}"


@dataclass(frozen=True)
class Transfer:
    """One incoming transfer as wallet-rpc's get_transfers reports it."""

    txid: str
    amount: int
    minor: int
    major: int
    confirmations: int
    in_pool: bool
    height: int

    @classmethod
    def from_rpc(cls, entry: dict[str, Any]) -> Transfer:
        index = entry.get("subaddr_index") or {}
        return cls(
            txid=str(entry["txid"]),
            amount=int(entry["amount"]),
            minor=int(index.get("minor", 0)),
            major=int(index.get("major", 0)),
            confirmations=int(entry.get("confirmations", 0)),
            in_pool=entry.get("type") == "pool",
            height=int(entry.get("height", 0)),
        )


def transfer_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A wallet-rpc transfer as ``history`` and ``get_transaction`` show it (12-decimal amounts)."""
    index = entry.get("subaddr_index") or {}
    return {
        "tx_hash": entry.get("txid"),
        "type": entry.get("type"),
        "amount": from_atomic(int(entry.get("amount", 0))),
        "fee": from_atomic(int(entry.get("fee", 0))),
        "height": entry.get("height", 0),
        "confirmations": entry.get("confirmations", 0),
        "timestamp": entry.get("timestamp"),
        "address": entry.get("address"),
        "subaddress_index": [index.get("major", 0), index.get("minor", 0)],
        "payment_id": entry.get("payment_id"),
    }


def monerod_transaction(item: dict[str, Any], chain_height: int) -> dict[str, Any]:
    """A transaction as ``get_transaction`` without a wallet shows it, from monerod's get_transactions entry.

    Its confirmations are monerod's own (0.18 counts them at its height): the daemon's chain height may not
    have reached the block yet, and a mined transaction would read one short (0 in its first block)."""
    height = None if item.get("in_pool") else item.get("block_height")
    given = item.get("confirmations")
    if height is None:
        confirmations = 0
    elif isinstance(given, int) and not isinstance(given, bool):
        confirmations = given
    else:  # a monerod without the field
        confirmations = max(0, chain_height - height)
    return {
        "tx_hash": item.get("tx_hash"),
        "height": height,
        "in_pool": item.get("in_pool"),
        "confirmations": confirmations,
    }


@dataclass
class PaymentRequest:
    wallet: str
    id: str
    address: str
    major: int
    minor: int
    amount: int | None
    memo: str
    created: int
    expiration: int | None
    height: int
    status: int = PR_UNPAID
    sent: int = 0
    tx_hashes: list[str] = field(default_factory=list)
    mined_height: int | None = None  # the newest block of its transfers once none is in the pool

    def expired_at(self, now: float) -> bool:
        return bool(self.expiration) and now >= self.created + (self.expiration or 0)

    def confirmations(self, chain_height: int) -> int:
        """Those of the least confirmed transfer (wallet-rpc counts a tx in the newest block as 1)."""
        return max(chain_height - self.mined_height, 0) if self.mined_height else 0

    def export(self, chain_height: int, uri_scheme: str = "monero") -> dict[str, Any]:
        """The request as clients see it: every coin's request fields plus Monero's own (12-decimal amounts)."""
        amount = from_atomic(self.amount) if self.amount is not None else "0"
        uri = f"{uri_scheme}:{self.address}" + (f"?tx_amount={amount}" if self.amount else "")
        return {
            **request_fields(
                request_id=self.id,
                address=self.address,
                uri=uri,
                message=self.memo,
                timestamp=self.created,
                expiry=self.expiration,
                status=self.status,
                tx_hashes=self.tx_hashes,
                sent_amount=from_atomic(self.sent),
                confirmations=self.confirmations(chain_height),
            ),
            "id": self.id,
            "subaddress_index": [self.major, self.minor],
            "amount_XMR": amount,
            "amount_atomic": self.amount or 0,
            "memo": self.memo,
            "time": self.created,
            "height": self.height,
        }

    def payment_event(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "request_id": self.id,
            "status": self.status,
            "status_str": status_str(self.status),
            "tx_hashes": list(self.tx_hashes),
            "sent_amount": from_atomic(self.sent),
        }


def evaluate(
    request: PaymentRequest, transfers: list[Transfer], confirmations: int, now: float
) -> tuple[int, int, list[str]]:
    """(status, sent, tx hashes) of a request given the incoming transfers on its subaddress.

    Seen money counts from the pool on; it is "paid" once the confirmed part covers the amount. A request
    without an amount is covered by any payment. Paid is not final here: a reorganisation that takes the
    payment away makes it unpaid (or unconfirmed, or expired) again; the callers stop re-evaluating a paid
    request once its block is deeper than any reorganisation they follow (``RequestStore.pending``). A request
    still short when its expiry passes is expired, yet a payment that arrives later is still reported and can
    still settle it.
    """
    mine = [t for t in transfers if t.major == request.major and t.minor == request.minor]
    sent = sum(t.amount for t in mine)
    confirmed = sum(t.amount for t in mine if not t.in_pool and t.confirmations >= confirmations)
    # Sorted, not in wallet-rpc's order: its pool list has no stable order, and a tx moving from the
    # pool to a block would otherwise reorder the list and report an unchanged payment twice.
    hashes = sorted({t.txid for t in mine})
    target = request.amount if request.amount else 1
    if confirmed >= target:
        status = PR_PAID
    elif sent >= target:
        status = PR_UNCONFIRMED
    elif request.expired_at(now):
        status = PR_EXPIRED
    else:
        status = PR_UNPAID
    return status, sent, hashes


def mined_height(request: PaymentRequest, transfers: list[Transfer]) -> int | None:
    """The newest block holding a transfer to the request, or None while one is in the pool (or none came)."""
    mine = [t for t in transfers if t.major == request.major and t.minor == request.minor]
    if not mine or any(t.in_pool or t.height <= 0 for t in mine):
        return None
    return max(t.height for t in mine)


# A paid request stays watched while its newest transfer is shallow, or while one is in the pool (an extra
# payment after it was paid) for as long as an unpaid one would be: its transfers are read again like an unpaid
# one's. Others are settled, also a paid row without mined_height from a table older than that column.
WATCHED = (
    "((status != ? AND (expiration IS NULL OR expiration = 0 OR created + expiration > ?))"
    " OR (status = ? AND (mined_height >= ? OR (mined_height IS NULL AND created > ?))))"
)


def watched_args(reorg_floor: int, grace: int) -> tuple[int, int, int, int, int]:
    since = now() - grace
    return PR_PAID, since, PR_PAID, reorg_floor, since


class RequestStore:
    """The ``xmr_requests`` table of the daemon's state database."""

    COLUMNS = tuple(PaymentRequest.__dataclass_fields__)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.executescript(SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(xmr_requests)")}
        if "mined_height" not in columns:  # a table made before requests carried confirmations
            db.execute("ALTER TABLE xmr_requests ADD COLUMN mined_height INTEGER")

    def _row(self, row: tuple[Any, ...]) -> PaymentRequest:
        values = dict(zip(self.COLUMNS, row, strict=True))
        values["tx_hashes"] = json.loads(values["tx_hashes"])
        return PaymentRequest(**values)

    def _select(self, where: str, args: tuple[Any, ...]) -> list[PaymentRequest]:
        columns = ", ".join(self.COLUMNS)
        rows = self.db.execute(f"SELECT {columns} FROM xmr_requests WHERE {where} ORDER BY created, id", args)
        return [self._row(row) for row in rows]

    def add(self, request: PaymentRequest) -> None:
        values = asdict(request)
        values["tx_hashes"] = json.dumps(values["tx_hashes"])
        marks = ", ".join("?" * len(self.COLUMNS))
        self.db.execute(
            f"INSERT INTO xmr_requests ({', '.join(self.COLUMNS)}) VALUES ({marks})", tuple(values.values())
        )

    def get(self, wallet: str, key: str) -> PaymentRequest | None:
        found = self._select("wallet = ? AND (id = ? OR address = ?)", (wallet, key, key))
        return found[0] if found else None

    def list(self, wallet: str) -> list[PaymentRequest]:
        return self._select("wallet = ?", (wallet,))

    def pending(self, wallet: str, reorg_floor: int, grace: int = 86400) -> list[PaymentRequest]:
        """Requests still watched: not paid and not expired for more than ``grace`` seconds, or paid with a
        transfer mined at ``reorg_floor`` or above (or, within ``grace``, one in the pool), which a reorganisation
        may still take away."""
        return self._select(f"wallet = ? AND {WATCHED}", (wallet, *watched_args(reorg_floor, grace)))

    def pending_all(self, reorg_floor: int, grace: int = 86400) -> list[PaymentRequest]:
        """``pending`` for every wallet at once (the scanner watches them all in one round)."""
        return self._select(WATCHED, watched_args(reorg_floor, grace))

    def update(self, request: PaymentRequest) -> None:
        self.db.execute(
            "UPDATE xmr_requests SET status = ?, sent = ?, tx_hashes = ?, mined_height = ? WHERE wallet = ? AND id = ?",
            (*(request.status, request.sent, json.dumps(request.tx_hashes)), request.mined_height, *self.key(request)),
        )

    @staticmethod
    def key(request: PaymentRequest) -> tuple[str, str]:
        return request.wallet, request.id

    def clear(self, wallet: str) -> int:
        return self.db.execute("DELETE FROM xmr_requests WHERE wallet = ?", (wallet,)).rowcount


def now() -> int:
    return int(time.time())
