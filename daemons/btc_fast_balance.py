"""getbalance given again while Electrum's own balance cache still holds the totals it was made from (issue 18).

Electrum's ``getbalance`` finds its cached totals by a key it re-derives on every call: it lists the wallet's
addresses, sorts and joins them and hashes the text (``AddressSynchronizer.get_balance``); with the command
wrapper that is most of what the call costs the coin side. Electrum itself drops those totals whenever they can
change: a transaction added or removed, a coin of the wallet spent or received (``_get_balance_cache.clear()``)
and every new block (the cache replaced by a new dict). So the daemon keeps, per wallet, its last answer with the
cache object, the key and the very totals tuple Electrum stored, and gives the answer again only while that same
cache still maps that key to that same tuple object (a recomputation always stores a new tuple) and the wallet's
address lists (the key's domain) are the same lists of the same lengths. Anything Electrum does to its cache makes
the next call Electrum's own command again. Only a deterministic wallet without Lightning is kept: an imported
wallet's addresses can be removed, and a Lightning balance changes with channels, outside this cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any


@dataclass(slots=True, eq=False)
class BalanceAnswer:
    """One wallet's last getbalance answer and the state of Electrum's balance cache it came from."""

    wallet: Any
    cache: dict[Any, Any]
    key: bytes
    totals: tuple[int, int, int]
    receiving: list[str]
    receiving_count: int
    change: list[str]
    change_count: int
    answer: dict[str, str]

    def holds(self, wallet: Any) -> bool:
        """Whether Electrum's getbalance would still answer from these same totals."""
        db = wallet.db
        cache = self.cache
        return (
            wallet is self.wallet
            and wallet.adb._get_balance_cache is cache
            and cache.get(self.key) is self.totals
            and db.receiving_addresses is self.receiving
            and len(self.receiving) == self.receiving_count
            and db.change_addresses is self.change
            and len(self.change) == self.change_count
            and wallet.lnworker is None
        )


def balance_answer(electrum: ModuleType, wallet: Any, answer: Any) -> BalanceAnswer | None:
    """What to keep of Electrum's getbalance ``answer``, made just now with nothing run since; None when this
    wallet's answer cannot be kept (not deterministic, Lightning, or no totals found under Electrum's key)."""
    if not isinstance(answer, dict) or wallet.lnworker is not None:
        return None
    if not isinstance(wallet, electrum.wallet.Deterministic_Wallet):
        return None
    try:
        db, cache = wallet.db, wallet.adb._get_balance_cache
        receiving, change = db.receiving_addresses, db.change_addresses
    except AttributeError:  # another Electrum than 4.3's: never kept
        return None
    # Electrum's own key for the whole wallet and no excluded coins (AddressSynchronizer.get_balance).
    key = electrum.crypto.sha256(",".join(sorted(set(receiving + change))) + ";")
    totals = cache.get(key)
    if not isinstance(totals, tuple):  # a key that differs from Electrum's finds nothing: the answer is not kept
        return None
    return BalanceAnswer(wallet, cache, key, totals, receiving, len(receiving), change, len(change), dict(answer))
