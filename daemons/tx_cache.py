"""Decoded transactions remembered by txid, and where a confirmed one sits in the chain (bounded LRU).

Decoding a transaction is a pure function of its bytes: an entry is used only for the same bytes
(the raw text compared whole), so it can never answer for another version of a transaction. A
transaction fetched from the server is answered from its block position only after a merkle proof
ties it to the header the local chain holds at that height; the position is used only while the
local chain still holds that very header, so a reorganisation that orphans the block makes the
position unusable at once (the next call asks the server again).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

MAX_ENTRIES = 2048
MAX_RAW_CHARS = 8_000_000  # hex characters of all remembered transactions together (4 MB of transactions)


@dataclass
class Decoded:
    raw: str  # the transaction's network serialization, as hex text
    data: dict[str, Any]  # what get_transaction answers for it, without confirmations
    height: int = 0  # the block holding it, as the server said last (0: unconfirmed, or not from the server)
    header: dict[str, Any] | None = None  # the local chain's header at ``height`` once proven there
    tried: int = 0  # the height a proof was last tried at (not tried again there after a failure)


class DecodedTransactions:
    """txid -> Decoded, least recently used first; bounded by count and by the raw text kept."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_raw_chars: int = MAX_RAW_CHARS) -> None:
        self.max_entries = max_entries
        self.max_raw_chars = max_raw_chars
        self.entries: OrderedDict[str, Decoded] = OrderedDict()
        self.raw_chars = 0

    def get(self, tx_hash: str) -> Decoded | None:
        entry = self.entries.get(tx_hash)
        if entry is not None:
            self.entries.move_to_end(tx_hash)
        return entry

    def decoded(self, tx_hash: str, raw: str) -> Decoded | None:
        """The entry of exactly these bytes, or None."""
        entry = self.get(tx_hash)
        return entry if entry is not None and entry.raw == raw else None

    def put(self, tx_hash: str, entry: Decoded) -> None:
        if len(entry.raw) > self.max_raw_chars:
            return
        self.forget(tx_hash)
        self.entries[tx_hash] = entry
        self.raw_chars += len(entry.raw)
        while len(self.entries) > self.max_entries or self.raw_chars > self.max_raw_chars:
            _, oldest = self.entries.popitem(last=False)
            self.raw_chars -= len(oldest.raw)

    def forget(self, tx_hash: str) -> None:
        entry = self.entries.pop(tx_hash, None)
        if entry is not None:
            self.raw_chars -= len(entry.raw)

    def __len__(self) -> int:
        return len(self.entries)
