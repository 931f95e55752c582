"""How many wallets a daemon keeps loaded, and which it may unload.

Every distinct valid identity a client sends loads a wallet that holds memory (and for some coins a
process), so the number loaded is capped (``MAX_WALLETS``). A wallet that a payment may still reach is
*watched* and never unloaded: one with open payment requests (the daemon's ``keeps_watching`` hook) or
one a websocket is scoped to. Others may go: after ``WALLET_IDLE_TIMEOUT`` seconds unused, or, when
the cap is reached and another wallet is asked for, the least recently used one that no running call
holds. Unloading forgets nothing durable: a wallet reloads from DATA_PATH on its next use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

TOO_MANY_WALLETS = -32051  # spec/base.json: TooManyWalletsError


@dataclass(frozen=True)
class WalletLimits:
    max_wallets: int
    idle_timeout: float  # seconds; 0: wallets are never unloaded for being idle

    @property
    def sweep_interval(self) -> float:
        """How often idle wallets are looked for: often enough to unload them near their timeout."""
        return min(max(self.idle_timeout / 4, 1.0), 60.0)


class WalletUsage:
    """When each loaded wallet was last asked for, and how many running calls hold it."""

    def __init__(self) -> None:
        self.last_used: dict[str, float] = {}
        self.holders: Counter[str] = Counter()

    def touch(self, key: str, now: float) -> None:
        self.last_used[key] = now

    def hold(self, key: str) -> None:
        """A call runs with the wallet: it is not unloaded under the call (until ``release``, in a finally).

        A pair of calls rather than a context manager: it runs around every wallet call, where building
        a generator-based context manager cost more than the counting."""
        self.holders[key] += 1

    def release(self, key: str) -> None:
        left = self.holders[key] - 1
        if left <= 0:
            del self.holders[key]
        else:
            self.holders[key] = left

    def forget(self, key: str) -> None:
        self.last_used.pop(key, None)

    def unloadable(self, keys: Iterable[str], watched: set[str]) -> list[str]:
        """Loaded wallets neither watched nor held by a call, least recently used first."""
        free = [key for key in keys if key not in watched and key not in self.holders]
        return sorted(free, key=lambda key: self.last_used.get(key, 0.0))

    def idle(self, keys: Iterable[str], watched: set[str], now: float, timeout: float) -> list[str]:
        """The unloadable wallets unused for at least ``timeout`` seconds."""
        return [key for key in self.unloadable(keys, watched) if now - self.last_used.get(key, 0.0) >= timeout]


def watched_by_sockets(clients: Iterable[Any]) -> set[str]:
    """The wallets some websocket is scoped to (an unscoped socket watches no wallet in particular)."""
    return {key for client in clients if client.scope for key in client.scope}
