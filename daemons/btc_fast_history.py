"""onchain_history without the work whose result Electrum throws away (issue 18).

Electrum 4.3.4's ``get_detailed_history`` (what the ``onchain_history`` command returns) ends by listing the
wallet's coins twice, as they were at the first and at the last transaction's height (``get_utxos`` over every
address of the wallet, most of the call's cost on a wallet with many addresses), for its fiat summary fields
only: without fiat (``show_fiat`` off, the only way the daemon's callers ask) nothing reads them. The daemon runs
Electrum's own command with those two lookups answered by an empty list, and so gets the command's answer
without their cost; every other ``get_utxos`` call goes to Electrum as usual. The command runs in one step (it
has no await): if it ever suspended, it is closed and Electrum's command runs again as is.

Then the command passes the history through ``json_normalize``, which encodes it to JSON and decodes it again
(``Satoshis`` and dates become strings). It encodes with ``indent=4``, which makes Python's json module take its
pure-Python encoder instead of the C one: as costly as the history itself. The indentation is whitespace that the
decoding drops, so ``faster_json_normalize`` gives the commands module the same function without it: the same
encoder class, key order and fallback (``repr`` on a TypeError), and Electrum's own ``json_decode``. Electrum's
encoder class imports two modules on each call of its ``default`` before its type tests, twice the cost of the
``Satoshis`` amounts it is called for most (every history item has two): a subclass answers those first, as
``str(amount)`` exactly as Electrum's does, and leaves every other type to Electrum's ``default``.
"""

from __future__ import annotations

import json
from collections.abc import Coroutine
from types import ModuleType
from typing import Any

# The keyword arguments get_detailed_history passes to get_utxos for its summary's coins, and nothing else does.
SUMMARY_COINS = {"confirmed_funding_only": True, "confirmed_spending_only": True, "nonlocal_only": True}
NOT_FINISHED: Any = object()


def run_in_one_step(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The result of a coroutine that finishes without suspending, else ``NOT_FINISHED`` (it is closed)."""
    try:
        coroutine.send(None)
    except StopIteration as finished:
        return finished.value
    coroutine.close()
    return NOT_FINISHED


def without_summary_coins(wallet: Any, coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` (Electrum's onchain_history on ``wallet`` without fiat) with the summary's coin lookups
    skipped; ``NOT_FINISHED`` if it did not finish in one step."""
    electrums = wallet.get_utxos

    def get_utxos(domain: Any = None, **kwargs: Any) -> Any:
        if domain is None and "block_height" in kwargs and len(kwargs) == 4 and kwargs.items() >= SUMMARY_COINS.items():
            return []  # the summary's start or end coins: read only for fiat
        return electrums(domain, **kwargs)

    wallet.get_utxos = get_utxos  # an instance attribute: this wallet only, for this synchronous step only
    try:
        return run_in_one_step(coroutine)
    finally:
        del wallet.get_utxos


def faster_json_normalize(commands: ModuleType, util: ModuleType) -> None:
    """Give Electrum's commands module (onchain_history, lightning_history) a ``json_normalize`` that encodes
    with the C encoder: Electrum's ``json_encode`` but for ``indent``, then Electrum's ``json_decode``. Once per
    process; the original stays as ``__wrapped__``."""
    original = commands.json_normalize
    if getattr(original, "__wrapped__", None) is not None:
        return
    satoshis, decode = util.Satoshis, util.json_decode

    class AmountsFirst(util.MyEncoder):  # type: ignore[name-defined,misc]
        def default(self, obj: Any) -> Any:
            if type(obj) is satoshis:  # none of the types Electrum's default tests before it is a Satoshis
                return str(obj)
            return super().default(obj)

    encoder = AmountsFirst

    def json_normalize(x: Any) -> Any:
        try:
            text = json.dumps(x, sort_keys=True, cls=encoder)
        except TypeError:
            text = repr(x)
        return decode(text)

    json_normalize.__wrapped__ = original  # type: ignore[attr-defined]
    commands.json_normalize = json_normalize
