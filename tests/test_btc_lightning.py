"""Lightning end to end on the regtest stack: two BTC daemons, each an Electrum 4.3.4 Lightning node.

Two daemons, not one daemon with two seed wallets: Electrum runs several Lightning wallets in one process,
but its LNWorker binds the process-wide `lightning_listen` only for the wallet that loads first ("only one
LNWorker can listen at a time", lnworker.py), so which node accepts channels would depend on load order. The merchant
runs as a subprocess (so it can be restarted), the payer in the test's process; both use the stack's
ElectrumX. The payer opens a channel to the merchant, so the merchant has inbound liquidity.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from decimal import Decimal
from typing import Any

import pytest

from tests.btc_lightning_support import (
    CHANNEL,
    MERCHANT_SEED,
    PR_EXPIRED,
    PR_PAID,
    PRICE,
    TO_SELF_DELAY,
    Merchant,
    channel_of,
    fund,
    mine,
    open_channel,
    payer_daemon,
    usable,
)
from tests.btc_payment_support import (
    PAYER_SEED,
    EventFeed,
    eventually,
    online_daemon,
    open_feed,
    payment_for,
    wait_synchronized,
)
from tests.btc_support import call_error
from tests.support import LOGIN, PASSWORD, DaemonClient, free_port


def sdk_for(d: DaemonClient, seed: str) -> Any:
    from bitcart import BTC

    return BTC(rpc_url=d.url, rpc_user=LOGIN, rpc_pass=PASSWORD, xpub=seed)


def paid_once(feed: EventFeed, rhash: str) -> list[dict]:
    return [e for e in feed.events if e["event"] == "new_payment" and e["address"] == rhash and e["status"] == PR_PAID]


async def balance(d: DaemonClient, seed: str) -> Decimal:
    data = await d.call("getbalance", xpub=seed)
    return Decimal(data["confirmed"]) + Decimal(data.get("unconfirmed", "0"))


async def test_channel_payments_errors_restart_and_cooperative_close(regtest_stack, tmp_path):
    from bitcart import errors

    stack = regtest_stack
    merchant_daemon = Merchant(stack, tmp_path)
    async with payer_daemon(stack) as payer:
        await fund(payer, stack, 4242)
        customer = sdk_for(payer, PAYER_SEED)  # every Lightning call goes through the bitcart SDK, unchanged
        async with merchant_daemon.running() as merchant:
            feed = await open_feed(merchant, {"xpub": MERCHANT_SEED, "since": 0})
            shop = sdk_for(merchant, MERCHANT_SEED)
            handled: list[tuple] = []

            @shop.on("new_payment")
            async def on_payment(event, address, status, status_str, tx_hashes, sent_amount):
                handled.append((address, status, tuple(tx_hashes), sent_amount))

            listener = asyncio.create_task(shop.start_websocket(force_connect=True))
            try:
                node = await shop.node_id
                pubkey = node.split("@")[0]
                with pytest.raises(errors.PeerUnreachableError):  # nothing listens there
                    await customer.connect(f"{pubkey}@127.0.0.1:{free_port()}")
                early = await shop.add_invoice(PRICE, "before any channel", expire=10)
                with pytest.raises(errors.NoPathFoundError):
                    await customer.lnpay(early["lightning_invoice"])
                # a client's mistakes are -32602 or named, never an internal error
                assert (await call_error(payer, "open_channel", node, "0.0001", xpub=PAYER_SEED))[0] == -32602
                assert (await call_error(payer, "open_channel", node, "0.01", "0.02", xpub=PAYER_SEED))[0] == -32602
                assert (await call_error(payer, "add_peer", "00@127.0.0.1:1", xpub=PAYER_SEED))[0] == -32007
                assert (await call_error(payer, "lnpay", "lnbcrt1nonsense", xpub=PAYER_SEED))[0] == -32009
                assert (await call_error(payer, "close_channel", "nope:0", xpub=PAYER_SEED))[0] == -32602
                assert await customer.connect(node) is True
                assert [peer["node_id"] for peer in await customer.list_peers()] == [pubkey]
                point = await customer.open_channel(node, CHANNEL)
                await mine(stack, 3)  # Electrum's minimum_depth
                await eventually(lambda: usable(payer, point))
                opened = await feed.wait_for(lambda e: e["event"] == "channel_opened")
                assert opened["channel_point"] == point and Decimal(opened["capacity"]) == CHANNEL
                assert opened["remote_pubkey"] == await customer.node_id
                assert [c["channel_point"] for c in await customer.list_channels()] == [point]
                # a node with a channel is never unloaded (idle timeout, MAX_WALLETS): its peer pays it
                payer_key = "sha256:" + hashlib.sha256(PAYER_SEED.encode()).hexdigest()
                assert payer_key in payer.daemon.watched_wallets()

                invoice = await shop.add_invoice(PRICE, "order 1", expire=10)
                rhash = invoice["rhash"]
                result = await customer.lnpay(invoice["lightning_invoice"])
                assert result["success"] is True and result["payment_hash"] == rhash
                paid = await feed.wait_for(payment_for(rhash, PR_PAID))
                assert paid["tx_hashes"] == [rhash] and Decimal(paid["sent_amount"]) == PRICE
                request = await shop.get_request(rhash)
                assert request["status"] == PR_PAID and Decimal(request["sent_amount"]) == PRICE
                assert (await shop.get_invoice(rhash))["status"] == PR_PAID
                await eventually(lambda: (rhash, PR_PAID, (rhash,), format(PRICE, "f")) in handled)  # SDK handler

                # paying it again, an expired invoice, more than the channel holds: each its named error
                with pytest.raises(errors.InvoiceAlreadyPaidError):
                    await customer.lnpay(invoice["lightning_invoice"])
                short = await shop.add_invoice(PRICE, "too late", expire=1 / 60)
                await asyncio.sleep(2)
                with pytest.raises(errors.InvoiceExpiredError):
                    await customer.lnpay(short["lightning_invoice"])
                assert (await shop.get_request(short["rhash"]))["status"] == PR_EXPIRED
                big = await shop.add_invoice(CHANNEL, "too much", expire=10)
                with pytest.raises(errors.InsufficientChannelBalanceError):
                    await customer.lnpay(big["lightning_invoice"])
                restart_invoice = await shop.add_invoice(PRICE, "across a restart", expire=10)
            finally:
                listener.cancel()
                await shop.server._close()
            cursor = max(e["id"] for e in feed.events)
            await feed.close()
        assert len(paid_once(feed, rhash)) == 1

        # the merchant restarts between the invoice and its payment; the payer's node reconnects to it
        async with merchant_daemon.running() as merchant:
            # nobody names the merchant's wallet: the daemon starts the node of a wallet with a channel itself
            await eventually(lambda: usable(payer, point))
            feed = await open_feed(merchant, {"xpub": MERCHANT_SEED, "since": cursor})
            assert (await customer.lnpay(restart_invoice["lightning_invoice"]))["success"] is True
            await feed.wait_for(payment_for(restart_invoice["rhash"], PR_PAID))
            assert (await merchant.call("get_request", restart_invoice["rhash"], xpub=MERCHANT_SEED))["status"] == 3

            # cooperative close: both sides get their channel balance back on chain
            merchant_before = await balance(merchant, MERCHANT_SEED)
            closing_txid = await customer.close_channel(point)
            await customer.server._close()
            await mine(stack, 1)
            closed = await feed.wait_for(lambda e: e["event"] == "channel_closed" and e["channel_point"] == point)
            assert closed["closing_txid"] == closing_txid
            received = 2 * PRICE
            await eventually(lambda: merchant_balance_is(merchant, merchant_before + received))
            await assert_split(payer, merchant, closing_txid, CHANNEL - received, received)
            await asyncio.sleep(1)
            assert len(paid_once(feed, restart_invoice["rhash"])) == 1 and not paid_once(feed, rhash)
            assert len(feed.of("channel_closed")) == 1
            await feed.close()
            # stored like every event: a listener replaying from the start sees each payment and channel once
            replay = await open_feed(merchant, {"xpub": MERCHANT_SEED, "since": 0})
            await replay.wait_for(lambda e: e["event"] == "channel_closed")
            assert len(paid_once(replay, rhash)) == 1 and len(paid_once(replay, restart_invoice["rhash"])) == 1
            assert [e["channel_point"] for e in replay.of("channel_opened")] == [point]
            await replay.close()


async def assert_split(
    payer: DaemonClient, merchant: DaemonClient, txid: str, payer_share: Decimal, merchant_share: Decimal
):
    """The closing transaction pays the merchant its share exactly and the payer its own less the fee
    (the funder pays it), each to an address of its own wallet."""
    outputs = (await payer.call("get_transaction", txid, xpub=PAYER_SEED))["outputs"]
    shares = {}
    for output in outputs:
        for who, d, seed in (("payer", payer, PAYER_SEED), ("merchant", merchant, MERCHANT_SEED)):
            if await d.call("ismine", output["address"], xpub=seed):
                shares[who] = Decimal(output["value_sats"]) / 100_000_000
    assert shares["merchant"] == merchant_share
    assert payer_share - Decimal("0.001") < shares["payer"] < payer_share


async def merchant_balance_is(merchant: DaemonClient, expected: Decimal) -> bool:
    return await balance(merchant, MERCHANT_SEED) == expected


async def test_crash_before_the_payment_event_then_force_close(regtest_stack, tmp_path):
    stack = regtest_stack
    merchant_daemon = Merchant(stack, tmp_path)
    async with payer_daemon(stack) as payer:
        await fund(payer, stack, 4243)
        # the merchant's daemon dies right after Electrum saved the payment, before its event was stored
        async with merchant_daemon.running(crash_before="new_payment") as merchant:
            feed = await open_feed(merchant, {"xpub": MERCHANT_SEED, "since": 0})
            point = await open_channel(stack, payer, merchant, feed)
            invoice = await merchant.call("add_request", str(PRICE), "forced", lightning=True, xpub=MERCHANT_SEED)
            paying = asyncio.ensure_future(payer.call("lnpay", invoice["lightning_invoice"], xpub=PAYER_SEED))
            await eventually(lambda: merchant_daemon.process.poll() is not None)
            cursor = max(e["id"] for e in feed.events)
            await feed.close()
        assert not feed.of("new_payment")
        async with merchant_daemon.running() as merchant:
            feed = await open_feed(merchant, {"xpub": MERCHANT_SEED, "since": cursor})
            payer_feed = await open_feed(payer, {"xpub": PAYER_SEED})
            await feed.wait_for(payment_for(invoice["rhash"], PR_PAID))  # reconciled from the wallet file
            assert (await asyncio.wait_for(paying, 150))["success"] is True  # the HTLC settles on reconnection
            await eventually(lambda: usable(payer, point))
            merchant_before = await balance(merchant, MERCHANT_SEED)

            closing_txid = await payer.call("close_channel", point, True, xpub=PAYER_SEED)
            await mine(stack, 1)
            for listener in (feed, payer_feed):
                closed = await listener.wait_for(lambda e: e["event"] == "channel_closed")
                assert closed["channel_point"] == point and closed["closing_txid"] == closing_txid
            # the merchant's output pays its own wallet address (static_remotekey): spendable at once
            await eventually(lambda: merchant_balance_is(merchant, merchant_before + PRICE))
            outputs = (await payer.call("get_transaction", closing_txid, xpub=PAYER_SEED))["outputs"]
            mine_ = [await merchant.call("ismine", o["address"], xpub=MERCHANT_SEED) for o in outputs]
            to_local = mine_.index(False)  # the payer's output, locked by the merchant's to_self_delay
            assert CHANNEL - PRICE - Decimal("0.001") < Decimal(outputs[to_local]["value_sats"]) / 10**8

            # the payer's node sweeps its output only once the CSV delay has passed in mined blocks
            async def unspent() -> bool:
                return await stack.arpc("gettxout", closing_txid, to_local) is not None

            for _ in range(TO_SELF_DELAY - 2):  # the closing block is the first confirmation
                await mine(stack, 1)
                await wait_synchronized(payer)
                assert await unspent(), "swept before the CSV delay"
            for _ in range(4):  # the earliest block it may be mined in, and a few more for a loaded machine
                await mine(stack, 1)
                with contextlib.suppress(AssertionError):
                    await eventually(lambda: not_(unspent()), timeout=20)
                    break
            else:
                raise AssertionError("the payer never swept its to_local output")
            sweep = await spender_in_mempool(stack, closing_txid, to_local)
            await mine(stack, 1)

            async def confirmed() -> dict | None:
                tx = await payer.call("get_transaction", sweep, xpub=PAYER_SEED)
                return tx if tx["confirmations"] >= 1 else None

            swept = await eventually(confirmed)
            assert len(swept["outputs"]) == 1
            assert await payer.call("ismine", swept["outputs"][0]["address"], xpub=PAYER_SEED)
            swept_value = Decimal(swept["outputs"][0]["value_sats"]) / 10**8
            assert CHANNEL - PRICE - Decimal("0.002") < swept_value < CHANNEL - PRICE
            assert (await channel_of(payer, point))["state"] in ("CLOSED", "REDEEMED")
            await feed.close()
            await payer_feed.close()
        assert len(feed.of("channel_closed")) == 1 and len(payer_feed.of("channel_closed")) == 1
        assert len(paid_once(feed, invoice["rhash"])) == 1


async def not_(check: Any) -> bool:
    return not await check


async def spender_in_mempool(stack: Any, txid: str, index: int) -> str:
    for candidate in await stack.arpc("getrawmempool"):
        tx = await stack.arpc("getrawtransaction", candidate, True)
        if any(i.get("txid") == txid and i.get("vout") == index for i in tx["vin"]):
            return candidate
    raise AssertionError(f"nothing in the mempool spends {txid}:{index}")


async def test_a_listen_address_in_use_leaves_nodes_without_an_address(regtest_stack):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        async with online_daemon(regtest_stack, LIGHTNING="true", LIGHTNING_LISTEN=listen) as d:
            for seed in (PAYER_SEED, MERCHANT_SEED):  # only the first load waits for the port
                node = await d.call("nodeid", xpub=seed)
                assert "@" not in node and len(bytes.fromhex(node)) == 33
            assert d.daemon.listen_tried and d.daemon.listening_node is None
