"""What wallet-rpc would answer to ``get_height`` and ``get_balance``, kept per wallet by its poller.

Both answers come from the wallet's in-memory state, which changes only when the wallet does. The daemon
turns wallet-rpc's own auto-refresh off (its poller refreshes every wallet on each new block and every
POLL_INTERVAL anyway), so that state changes only:

- on ``refresh``, which only the poller makes, and then reads get_height and get_balance: the snapshot;
- on a call that can change the wallet (transfer, relay_tx, rescan_blockchain, a pass-through ``refresh``,
  ...): the snapshot is void from the moment such a call starts, and nothing read before it ends is kept
  (the call kicks the poller, whose next round takes a new one);
- when the wallet is (re)opened, as after a wallet-rpc restart: every opening gets a new pool epoch, and a
  snapshot is only good for the epoch it was read in (no epoch: the wallet is not open, or its process is
  down, so the call goes to wallet-rpc and fails as it should).

So answering from the snapshot gives what a direct call would have given, minus one HTTP round trip to
wallet-rpc, which is most of what the daemon costs over calling wallet-rpc directly. A call that arrives
while the poller's refresh is under way gets the state from before it, as a direct call made a moment
earlier would.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# wallet-rpc 0.18 methods that leave the wallet's height and balances as they were: they only read, or
# touch labels, notes, attributes, the address book or the subaddress counter. Any other call voids the
# snapshot, so a method missing here costs a round trip, never a stale answer.
KEEPS_SNAPSHOT = frozenset(
    {
        "get_height",
        "get_balance",
        "get_address",
        "get_address_index",
        "create_address",
        "label_address",
        "validate_address",
        "get_accounts",
        "label_account",
        "get_account_tags",
        "tag_accounts",
        "untag_accounts",
        "set_account_tag_description",
        "store",
        "get_payments",
        "get_bulk_payments",
        "incoming_transfers",
        "query_key",
        "make_integrated_address",
        "split_integrated_address",
        "set_tx_notes",
        "get_tx_notes",
        "set_attribute",
        "get_attribute",
        "get_tx_key",
        "check_tx_key",
        "get_tx_proof",
        "check_tx_proof",
        "get_spend_proof",
        "check_spend_proof",
        "get_reserve_proof",
        "check_reserve_proof",
        "get_transfers",
        "get_transfer_by_txid",
        "describe_transfer",
        "sign",
        "verify",
        "export_outputs",
        "export_key_images",
        "make_uri",
        "parse_uri",
        "get_address_book",
        "add_address_book",
        "edit_address_book",
        "delete_address_book",
        "get_languages",
        "is_multisig",
        "get_version",
        "frozen",
        "estimate_tx_size_and_weight",
    }
)


@dataclass(frozen=True)
class Snapshot:
    """wallet-rpc's ``get_height`` and ``get_balance {"account_index": 0}`` results, read in ``epoch``."""

    epoch: int
    height: int
    balance: dict[str, Any]


class Snapshots:
    """The snapshots of all wallets, with the bookkeeping that keeps a stale one from being stored or served.

    A reader takes a ``mark`` before it refreshes and hands it back with what it read; ``store`` keeps the
    reading only if no wallet-changing call started or ended in between (each one bumps the generation).
    """

    def __init__(self) -> None:
        self._taken: dict[str, Snapshot] = {}
        self._generation: Counter[str] = Counter()
        self._changing: Counter[str] = Counter()

    def mark(self, key: str) -> int | None:
        """The generation a reading starts in (None while a wallet-changing call is under way)."""
        return None if self._changing[key] else self._generation[key]

    def store(self, key: str, mark: int | None, epoch: int | None, height: int, balance: dict[str, Any]) -> bool:
        """Keep a reading made since ``mark`` in ``epoch``, unless the wallet may have changed meanwhile."""
        if mark is None or epoch is None or mark != self._generation[key] or self._changing[key]:
            return False
        self._taken[key] = Snapshot(epoch, height, balance)
        return True

    def get(self, key: str, epoch: int | None) -> Snapshot | None:
        """The snapshot, if it still is what wallet-rpc would answer: same opening, nothing changed since."""
        snapshot = self._taken.get(key)
        if snapshot is None or epoch is None or snapshot.epoch != epoch or self._changing[key]:
            return None
        return snapshot

    @contextlib.contextmanager
    def changing(self, key: str) -> Iterator[None]:
        """Around a call that may change the wallet: void before it starts and again once it is over."""
        self._void(key)
        self._changing[key] += 1
        try:
            yield
        finally:
            self._changing[key] -= 1
            self._void(key)

    def forget(self, key: str) -> None:
        self._void(key)

    def _void(self, key: str) -> None:
        self._generation[key] += 1
        self._taken.pop(key, None)
