"""The scanner's durable state in the daemon's SQLite database: watched wallets, their outputs, recent blocks.

Everything a block changes (the outputs found in it, the wallets' scan heights, the block's hash) is written in
one transaction, so after a crash the scanner resumes at the first block whose results are not stored: no block
is skipped, none counted twice. Outputs seen only in the pool have no height; a block that mines them gives
them one, a transaction that leaves the pool unmined takes them away. The hashes of the last blocks tell a
reorganisation: everything above the fork point is dropped and scanned again.

Private view keys are stored sealed (XSalsa20-Poly1305, PyNaCl's SecretBox) under a key derived from the
random secret in DATA_PATH that also derives the wallet files' passwords (daemons/xmr_wallet.py), never in
clear; the wallet key (a hash) names a wallet everywhere else.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .xmr_scan_crypto import Found

KEPT_BLOCK_HASHES = 200  # deeper reorganisations than this are not followed (monerod's own limit is far lower)

SCHEMA = """
CREATE TABLE IF NOT EXISTS xmr_scan_wallets (
    key TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    sealed_view_key BLOB NOT NULL,
    next_minor INTEGER NOT NULL,
    scanned INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS xmr_scan_outputs (
    wallet TEXT NOT NULL,
    output_key TEXT NOT NULL,
    txid TEXT NOT NULL,
    out_index INTEGER NOT NULL,
    minor INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    height INTEGER,
    unlock_time INTEGER NOT NULL,
    PRIMARY KEY (wallet, output_key)
);
CREATE INDEX IF NOT EXISTS xmr_scan_outputs_minor ON xmr_scan_outputs (wallet, minor);
CREATE INDEX IF NOT EXISTS xmr_scan_outputs_txid ON xmr_scan_outputs (txid);
CREATE TABLE IF NOT EXISTS xmr_scan_blocks (
    height INTEGER PRIMARY KEY,
    hash TEXT NOT NULL
);
"""


@dataclass
class ScanWallet:
    """A wallet the scanner watches; ``scanned`` is the next block height to scan for it."""

    key: str
    address: str
    view_key: bytes
    spend_public: bytes
    next_minor: int
    scanned: int

    def __repr__(self) -> str:  # the view key stays out of logs
        return f"ScanWallet(key={self.key!r}, scanned={self.scanned})"


@dataclass(frozen=True)
class StoredOutput:
    wallet: str
    txid: str
    minor: int
    amount: int
    height: int | None
    unlock_time: int


class Sealer:
    """Seals view keys under a key derived from DATA_PATH's random secret."""

    def __init__(self, secret_path: Path) -> None:
        from nacl.secret import SecretBox

        if not secret_path.exists():  # the same file the wallet files' passwords come from
            from .xmr_wallet import file_password

            file_password(secret_path, "")
        secret = secret_path.read_text().strip().encode()
        self.box = SecretBox(hmac.new(secret, b"xmr-scanner-view-keys", hashlib.sha256).digest())

    def seal(self, view_key: bytes) -> bytes:
        return bytes(self.box.encrypt(view_key))

    def open(self, sealed: bytes) -> bytes:
        return bytes(self.box.decrypt(sealed))


class ScanStore:
    def __init__(self, db: sqlite3.Connection, sealer: Sealer) -> None:
        self.db = db
        self.sealer = sealer
        db.executescript(SCHEMA)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- wallets ----------------------------------------------------------------------------------

    def wallets(self) -> list[tuple[str, str, bytes, int, int]]:
        """(key, address, view key, next minor, scanned) of every watched wallet."""
        rows = self.db.execute("SELECT key, address, sealed_view_key, next_minor, scanned FROM xmr_scan_wallets")
        return [(k, a, self.sealer.open(s), n, h) for k, a, s, n, h in rows]

    def wallet(self, key: str) -> tuple[int, int] | None:
        """(next minor, scanned) of a stored wallet."""
        row = self.db.execute("SELECT next_minor, scanned FROM xmr_scan_wallets WHERE key = ?", (key,)).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def add_wallet(self, wallet: ScanWallet) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO xmr_scan_wallets (key, address, sealed_view_key, next_minor, scanned)"
            " VALUES (?, ?, ?, ?, ?)",
            (wallet.key, wallet.address, self.sealer.seal(wallet.view_key), wallet.next_minor, wallet.scanned),
        )

    def take_minor(self, key: str) -> int:
        """The next unused subaddress index of the wallet, counted durably before it is handed out."""
        with self.transaction():
            row = self.db.execute("SELECT next_minor FROM xmr_scan_wallets WHERE key = ?", (key,)).fetchone()
            self.db.execute("UPDATE xmr_scan_wallets SET next_minor = next_minor + 1 WHERE key = ?", (key,))
        return int(row[0])

    def remove_wallet(self, key: str) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM xmr_scan_wallets WHERE key = ?", (key,))
            self.db.execute("DELETE FROM xmr_scan_outputs WHERE wallet = ?", (key,))

    # -- blocks -----------------------------------------------------------------------------------

    def block_hash(self, height: int) -> str | None:
        row = self.db.execute("SELECT hash FROM xmr_scan_blocks WHERE height = ?", (height,)).fetchone()
        return str(row[0]) if row else None

    def top_block(self) -> tuple[int, str] | None:
        row = self.db.execute("SELECT height, hash FROM xmr_scan_blocks ORDER BY height DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def record_block(
        self, height: int, block_hash: str, wallets: Iterable[str], found: Iterable[tuple[str, Found]]
    ) -> None:
        """A block scanned for ``wallets``: its outputs (mined now, if the pool had them), its hash, their progress.

        Only the wallets it was scanned for move on: one added meanwhile at this height still needs it."""
        with self.transaction():
            for wallet, hit in found:
                self._put_output(wallet, hit, height)
            self.db.execute("INSERT OR REPLACE INTO xmr_scan_blocks (height, hash) VALUES (?, ?)", (height, block_hash))
            self.db.execute("DELETE FROM xmr_scan_blocks WHERE height <= ?", (height - KEPT_BLOCK_HASHES,))
            moved = [(height + 1, key, height) for key in wallets]
            self.db.executemany("UPDATE xmr_scan_wallets SET scanned = ? WHERE key = ? AND scanned = ?", moved)

    def rewind(self, height: int) -> None:
        """Forget blocks from ``height`` up (a reorganisation): their outputs, hashes, and the wallets' progress."""
        with self.transaction():
            self.db.execute("DELETE FROM xmr_scan_outputs WHERE height >= ?", (height,))
            self.db.execute("DELETE FROM xmr_scan_blocks WHERE height >= ?", (height,))
            self.db.execute("UPDATE xmr_scan_wallets SET scanned = ? WHERE scanned > ?", (height, height))

    # -- the pool ---------------------------------------------------------------------------------

    def record_pool(self, found: Iterable[tuple[str, Found]], gone: Iterable[str]) -> None:
        """Outputs of new pool transactions, and the pool-only outputs of transactions that left it."""
        with self.transaction():
            for wallet, hit in found:
                self._put_output(wallet, hit, None)
            for txid in gone:
                self.db.execute("DELETE FROM xmr_scan_outputs WHERE txid = ? AND height IS NULL", (txid,))

    def pool_txids(self) -> set[str]:
        rows = self.db.execute("SELECT DISTINCT txid FROM xmr_scan_outputs WHERE height IS NULL")
        return {str(row[0]) for row in rows}

    def _put_output(self, wallet: str, hit: Found, height: int | None) -> None:
        # the first output with a given key counts, as wallet2 counts it (a repeated key is the "burning bug")
        self.db.execute(
            "INSERT INTO xmr_scan_outputs (wallet, output_key, txid, out_index, minor, amount, height, unlock_time)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (wallet, output_key)"
            " DO UPDATE SET height = coalesce(excluded.height, xmr_scan_outputs.height)"
            " WHERE xmr_scan_outputs.txid = excluded.txid",
            (wallet, hit.key.hex(), hit.txid, hit.index, hit.minor, hit.amount, height, hit.unlock_time),
        )

    # -- what the daemon reports ------------------------------------------------------------------

    def outputs(self, wallet: str) -> list[StoredOutput]:
        rows = self.db.execute(
            "SELECT wallet, txid, minor, amount, height, unlock_time FROM xmr_scan_outputs WHERE wallet = ?"
            " ORDER BY height IS NULL, height, txid, out_index",
            (wallet,),
        )
        return [StoredOutput(*row) for row in rows]

    def outputs_of_subaddresses(self, subaddresses: Iterable[tuple[str, int]]) -> dict[str, list[StoredOutput]]:
        """Outputs received on the given (wallet, minor) subaddresses of account 0, whatever their requests' status.

        (Selecting only unpaid requests' outputs made a paid request that is re-evaluated while a reorganisation
        can still undo it see no money: it went back to unpaid, then to paid, every round.)"""
        pairs = sorted(set(subaddresses))
        found: dict[str, list[StoredOutput]] = {wallet: [] for wallet, _ in pairs}
        for chunk in (pairs[i : i + 400] for i in range(0, len(pairs), 400)):
            values = ", ".join(["(?, ?)"] * len(chunk))
            rows = self.db.execute(
                "SELECT wallet, txid, minor, amount, height, unlock_time FROM xmr_scan_outputs"
                f" WHERE (wallet, minor) IN (VALUES {values})",
                [item for pair in chunk for item in pair],
            )
            for row in rows:
                found[row[0]].append(StoredOutput(*row))
        return found

    def unreported_txids(self) -> list[tuple[str, str]]:
        """(wallet, txid) of found transactions not yet announced by a ``new_transaction`` event."""
        rows = self.db.execute(
            "SELECT DISTINCT o.wallet, o.txid FROM xmr_scan_outputs o"
            " LEFT JOIN xmr_seen_tx s ON s.wallet = o.wallet AND s.txid = o.txid WHERE s.txid IS NULL"
            " ORDER BY o.height IS NULL, o.height, o.txid"
        )
        return [(str(w), str(t)) for w, t in rows]
