"""What the XMR daemon reports when monerod (regtest) pops the block holding a payment and mines another branch.

monerod's `pop_blocks` takes blocks off its chain and returns their transactions to the pool; `flush_txpool`
then drops the payment, so the blocks mined next form a branch without it: for the wallet-rpc behind the
daemon, a reorganisation that removed a confirmed payment. The payment, relayed again, is then mined on the new
branch. Only this test pops blocks of the session's chain,
and only the ones it mined itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from daemons.xmr import XMRDaemon
from tests.monero_fixtures import Chain, Keys, json_rpc
from tests.support import running_daemon
from tests.test_xmr import Listener, env_for, listening, payment

pytestmark = pytest.mark.slow


def monerod_call(chain: Chain, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return chain.monerod.post(path, body)


def pop_blocks(chain: Chain, count: int) -> int:
    """Takes the top ``count`` blocks off monerod's chain (their transactions go back to the pool): the new height."""
    return int(monerod_call(chain, "pop_blocks", {"nblocks": count})["height"])


def later(events: Listener, address: str, reported: int, status: int) -> Callable[[dict[str, Any]], bool]:
    """A new_payment of ``address`` to ``status`` after the first ``reported`` ones."""
    return lambda e: payment(address, status)(e) and any(e is p for p in events.payments(address)[reported:])


async def test_payment_popped_and_replaced_by_another_branch(monero_chain: Chain) -> None:
    """A paid request whose payment a reorganisation removes is unpaid again; mined again, it is paid again."""
    view = Keys.random()
    async with running_daemon(XMRDaemon, env=env_for(monero_chain)) as d:
        request = await d.call("add_request", "0.5", "reorg", 900, xpub=view.view_only)
        address = request["address"]
        async with listening(d, view.view_only) as events:
            txid = await monero_chain.pay_async(address, "0.5")
            await events.until(payment(address, 7))
            start = await asyncio.to_thread(monero_chain.monerod.height)
            await monero_chain.confirm_async([txid], 2)  # CONFIRMATIONS=2: paid (not a fixed count: see confirm)
            paid = await events.until(payment(address, 3))
            assert paid["tx_hashes"] == [txid]

            # the two blocks go, the payment is dropped from the pool, a longer branch is mined instead
            assert await asyncio.to_thread(pop_blocks, monero_chain, 2) == start
            found = await asyncio.to_thread(monerod_call, monero_chain, "get_transactions", {"txs_hashes": [txid]})
            blob = found["txs"][0]["as_hex"]  # kept to mine the payment again later
            await asyncio.to_thread(json_rpc, monero_chain.monerod.url, "flush_txpool", {"txids": [txid]})
            tip = await monero_chain.mine_async(3)
            unpaid = await events.until(payment(address, 0))
            assert (unpaid["tx_hashes"], unpaid["sent_amount"]) == ([], "0.000000000000")
            assert (await d.call("history", xpub=view.view_only))["transactions"] == []  # wallet-rpc agrees
            stored = await d.call("get_request", address, xpub=view.view_only)
            assert (stored["status"], stored["tx_hashes"], stored["confirmations"]) == (0, [], 0)
            await events.until(lambda e: e["event"] == "new_block" and e["height"] >= tip)

            # the same payment relayed again and mined on the new branch: paid again. (wallet-rpc does not report
            # it while it is back in the pool: a pool transaction it has seen once is not read again; seen here)
            relayed = {"tx_as_hex": blob, "do_not_relay": False}
            await asyncio.to_thread(monerod_call, monero_chain, "send_raw_transaction", relayed)
            pool = await asyncio.to_thread(monerod_call, monero_chain, "get_transaction_pool_hashes", {})
            assert txid in pool["tx_hashes"]
            await monero_chain.confirm_async([txid], 1)  # one confirmation of 2: unconfirmed
            await events.until(later(events, address, 3, 7))
            await monero_chain.confirm_async([txid], 2)
            again = await events.until(later(events, address, 4, 3))
            assert (again["tx_hashes"], again["sent_amount"]) == ([txid], "0.500000000000")
            stored = await d.call("get_request", address, xpub=view.view_only)
            assert (stored["status"], stored["tx_hashes"]) == (3, [txid])
            # each change reported once
            assert [e["status"] for e in events.payments(address)] == [7, 3, 0, 7, 3]
