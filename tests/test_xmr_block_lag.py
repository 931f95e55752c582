"""A request paid in blocks that the wallet's own poll (or the scanner) saw before the XMR daemon's block watcher.

A request's ``confirmations`` count from the daemon's chain height, which only the block watcher moved (every
0.25 s, ``get_block_count``). A wallet poll or scan that got to a new block first marked the request paid while
that height lagged: for one watcher round it read paid with one confirmation fewer than its status counted, and
a merchant needing them kept the invoice unconfirmed until the next block (ci6; tests/test_sdk_xmr.py waited
around it). Now whoever sees a block first reports it (``Poller.reach``) before any event that counts from it.

The watcher is held here (tests/monero_fixtures.py ``HeldBlockCount``) instead of raced: it sees the blocks
only when the test lets it, so the wallet's side is always first. Real monerod and monero-wallet-rpc.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from daemons.xmr import XMRDaemon
from daemons.xmr_poller import Poller
from tests.monero_fixtures import Chain, HeldBlockCount, Keys
from tests.support import running_daemon
from tests.test_xmr import env_for, listening, payment

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("scanner", ["false", "true"], ids=["wallet-rpc", "scanner"])
async def test_paid_with_its_confirmations_while_the_block_watcher_lags(monero_chain: Chain, scanner: str) -> None:
    view = Keys.random()
    async with running_daemon(XMRDaemon, env=env_for(monero_chain, SCANNER=scanner)) as d:
        address = (await d.call("add_request", "0.2", "lag", 900, xpub=view.view_only))["address"]
        assert bool(d.daemon.scanner.wallets) == (scanner == "true")
        poller = d.daemon.poller
        held = poller.monerod = HeldBlockCount(poller.monerod)  # type: ignore[assignment]
        async with listening(d, view.view_only) as events:
            await held.count(0)  # the watcher is held from before the payment on
            txid = await monero_chain.pay_async(address, "0.2")
            await events.until(payment(address, 7))
            top = await monero_chain.confirm_async([txid], 2)  # CONFIRMATIONS=2: mined in block top - 1; tip top
            paid = await events.until(payment(address, 3))
            request = await d.call("get_request", address, xpub=view.view_only)
            assert (request["status"], request["confirmations"]) == (3, 2)
            blocks = [e["height"] for e in events.events[: events.events.index(paid)] if e["event"] == "new_block"]
            assert blocks[-1] == top + 1  # the block count, reported before the payment that counts from it

            # the watcher's read from before the blocks, let through now, does not take the height back; the wallet's
            # side (its poller, the scanner) is paused meanwhile, as it would put the height right again at once
            polled = list(poller.pollers)
            await asyncio.gather(d.daemon.scanner.stop(), *map(pause(poller), polled))
            held.release(0)
            await held.count(1)  # its round is over: it is reading again
            request = await d.call("get_request", address, xpub=view.view_only)
            assert request["confirmations"] == 2 and d.daemon.chain_height == top + 1
            # a block nobody in the daemon has seen yet: get_transaction without a wallet counts it (monerod's)
            await monero_chain.mine_async(1)
            assert (await d.call("get_transaction", txid))["confirmations"] == 3
            d.daemon.scanner.start()
            for key in polled:
                poller.start_wallet(d.daemon.wallets[key])

            held.open()
            await events.until(lambda e: e["event"] == "new_block" and e["height"] == top + 2)
            request = await d.call("get_request", address, xpub=view.view_only)
            assert request["confirmations"] == 3
            blocks = [e["height"] for e in events.events if e["event"] == "new_block"]
            assert blocks == list(range(blocks[0], top + 3))  # in order, none twice, none missed


def pause(poller: Poller) -> Callable[[str], Awaitable[object]]:
    """Stops a wallet's polling task and waits until it is over (``start_wallet`` starts it again)."""

    async def stop(key: str) -> object:
        task = poller.pollers[key]
        poller.stop_wallet(key)
        return await asyncio.gather(task, return_exceptions=True)

    return stop
