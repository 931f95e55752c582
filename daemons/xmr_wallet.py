"""XMR wallet identities: checking keys with the monero library, and the durable table of known wallets.

An identity is either ``{"xpub": <secret view key>, "address": <primary address>}`` (a view-only wallet,
as the bitcart SDK's XMR class sends it) or a 25-word mnemonic (a spending wallet). wallet-rpc does not
check that a view key belongs to an address (``generate_from_keys`` accepts any 32 bytes), so the check
happens here, before anything reaches wallet-rpc. Secrets never reach the table or a log: a wallet is known
by a hash, and its secret is held in memory only until wallet-rpc has written the wallet file.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")
NETS = {"mainnet": "main", "regtest": "main", "testnet": "test", "stagenet": "stage"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS xmr_wallets (
    key TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    filename TEXT NOT NULL,
    view_only INTEGER NOT NULL,
    restore_height INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS xmr_seen_tx (
    wallet TEXT NOT NULL,
    txid TEXT NOT NULL,
    PRIMARY KEY (wallet, txid)
);
CREATE TABLE IF NOT EXISTS xmr_state (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


class InvalidIdentity(ValueError):
    """An identity that cannot be a Monero wallet; the message says why (it becomes -32005)."""


@dataclass(eq=False)
class XMRWallet:
    """A wallet the daemon knows: where its file is, and (until the file exists) the secret to make it."""

    key: str
    address: str
    filename: str
    view_only: bool
    restore_height: int
    created: bool = False
    secret: str | None = field(default=None, repr=False)
    scan_from: int = 0  # get_transfers' lower bound, moved up as blocks get deep

    def __repr__(self) -> str:
        return f"XMRWallet(key={self.key!r}, view_only={self.view_only}, created={self.created})"


def load_monero() -> SimpleNamespace:
    """Import the monero library's pieces (called from the daemon's load hook only)."""
    from monero import base58, ed25519
    from monero.address import Address, address
    from monero.backends.offline import OfflineWallet
    from monero.seed import Seed
    from monero.wallet import Wallet

    return SimpleNamespace(
        base58=base58,
        ed25519=ed25519,
        Address=Address,
        address=address,
        Seed=Seed,
        OfflineWallet=OfflineWallet,
        Wallet=Wallet,
    )


def parse_address(lib: SimpleNamespace, text: Any, network: str) -> Any:
    """A monero.address object of this network; ValueError with the reason otherwise."""
    if not isinstance(text, str):
        raise ValueError("Invalid address: not a string")
    try:
        parsed = lib.address(text.strip())
    except ValueError as exc:
        raise ValueError(f"Invalid address: {exc}") from None
    expected = NETS.get(network, "main")
    if parsed.net != expected:
        raise ValueError(f"Invalid address: it is a {parsed.net}net address, this daemon runs on {network}")
    return parsed


def normalize_mnemonic(key: str) -> str:
    return " ".join(key.lower().split())


def identity_secrets(lib: SimpleNamespace, key: str, fields: dict[str, Any], network: str) -> tuple[str, str, bool]:
    """(primary address, secret, view_only) of an identity, or InvalidIdentity with the reason."""
    given_address = fields.get("address")
    if len(key.split()) > 1:
        mnemonic = normalize_mnemonic(key)
        try:
            seed = lib.Seed(mnemonic)
        except (ValueError, KeyError, IndexError) as exc:
            raise InvalidIdentity(f"Invalid mnemonic: {exc}") from None
        address = str(seed.public_address(net=NETS.get(network, "main")))
        if given_address and given_address != address:
            raise InvalidIdentity(f"Address mismatch: the mnemonic's primary address is {address}, not {given_address}")
        return address, mnemonic, False
    if not HEX_KEY.match(key):
        raise InvalidIdentity(
            "Invalid key: expected a 64-hex-digit secret view key (with 'address') or a 25-word mnemonic"
        )
    if not given_address:
        raise InvalidIdentity("A view-only wallet needs its primary 'address' next to the view key")
    try:
        parsed = parse_address(lib, given_address, network)
    except ValueError as exc:
        raise InvalidIdentity(str(exc)) from None
    if not isinstance(parsed, lib.Address) or type(parsed) is not lib.Address:
        raise InvalidIdentity("Invalid address: a view-only wallet needs the primary address, not a subaddress")
    try:
        public_view_key = lib.ed25519.public_from_secret_hex(key.lower())
    except ValueError:
        raise InvalidIdentity("Invalid key: not a valid secret view key") from None
    if public_view_key != parsed.view_key():
        raise InvalidIdentity(f"Address mismatch: the view key does not belong to {given_address}")
    return str(parsed), key.lower(), True


def wallet_key_of(address: str, secret: str) -> str:
    """A stable, non-secret name for a wallet (the secret is a 256-bit key: its hash reveals nothing)."""
    return "xmr-" + hashlib.sha256(f"{address}:{secret}".encode()).hexdigest()[:32]


def file_password(secret_path: Path, filename: str) -> str:
    """The wallet file's password: an HMAC of its name under a random secret kept in DATA_PATH (0600)."""
    if not secret_path.exists():
        secret_path.touch(mode=0o600)
        secret_path.write_text(secrets.token_hex(32))
    return hmac.new(secret_path.read_text().strip().encode(), filename.encode(), hashlib.sha256).hexdigest()


class WalletTable:
    """The ``xmr_wallets``, ``xmr_seen_tx`` and ``xmr_state`` tables."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.executescript(SCHEMA)

    def known(self) -> list[XMRWallet]:
        rows = self.db.execute("SELECT key, address, filename, view_only, restore_height, created FROM xmr_wallets")
        return [XMRWallet(r[0], r[1], r[2], bool(r[3]), r[4], bool(r[5])) for r in rows]

    def get(self, key: str) -> XMRWallet | None:
        found = [w for w in self.known() if w.key == key]
        return found[0] if found else None

    def save(self, wallet: XMRWallet) -> None:
        self.db.execute(
            "INSERT INTO xmr_wallets (key, address, filename, view_only, restore_height, created)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET created = excluded.created, restore_height = excluded.restore_height",
            (
                wallet.key,
                wallet.address,
                wallet.filename,
                int(wallet.view_only),
                wallet.restore_height,
                int(wallet.created),
            ),
        )

    def seen(self, wallet: str, txid: str) -> bool:
        return (
            self.db.execute("SELECT 1 FROM xmr_seen_tx WHERE wallet = ? AND txid = ?", (wallet, txid)).fetchone()
            is not None
        )

    def mark_seen(self, wallet: str, txid: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO xmr_seen_tx (wallet, txid) VALUES (?, ?)", (wallet, txid))

    def state(self, name: str) -> int | None:
        row = self.db.execute("SELECT value FROM xmr_state WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else None

    def set_state(self, name: str, value: int) -> None:
        self.db.execute(
            "INSERT INTO xmr_state (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )
