"""The BTC daemon's payment flow end to end on the regtest stack (regtest node + real ElectrumX + real daemon).

Requests live on watch-only wallets (a vpub); payments come from a seed wallet loaded in the same daemon and
funded by mining to it; events are read from the daemon's websocket like a payment processor would.
"""

from __future__ import annotations

import asyncio
import signal
from decimal import Decimal

from regtest.serialize import Tx
from tests.btc_payment_support import (
    PAYER_SEED,
    PR_EXPIRED,
    PR_PAID,
    PR_UNCONFIRMED,
    PR_UNPAID,
    eventually,
    fund_payer,
    online_daemon,
    online_env,
    open_feed,
    pay,
    payment_for,
)
from tests.btc_support import call_error, key_pair
from tests.regtest_fixtures import Key, coinbase_utxo, sats, sign_tx
from tests.support import LOGIN, PASSWORD, free_port, spawned_daemon

PRICE = Decimal("0.0015")
FEE = 20_000


async def test_paid_request_reaches_the_scoped_websocket_and_get_request(regtest_stack):
    async with online_daemon(regtest_stack) as d:
        merchant = key_pair(101, "p2wpkh").xpub
        feed = await open_feed(d, {"xpub": merchant})  # scoped before any wallet is loaded
        await fund_payer(d, regtest_stack)
        request = await d.call("add_request", str(PRICE), "order 1", xpub=merchant)
        address = request["address"]
        assert request["status"] == PR_UNPAID and Decimal(request["amount_BTC"]) == PRICE
        txid = await pay(d, address, PRICE)
        unconfirmed = await feed.wait_for(payment_for(address, PR_UNCONFIRMED))
        assert unconfirmed["tx_hashes"] == [txid]
        await regtest_stack.amine(1, await d.call("getunusedaddress", xpub=PAYER_SEED))
        paid = await feed.wait_for(payment_for(address, PR_PAID))
        assert paid["status_str"] == "Paid" and paid["tx_hashes"] == [txid]
        assert Decimal(paid["sent_amount"]) == PRICE
        assert {e["wallet"] for e in feed.messages if e["updates"][0]["event"] == "new_payment"} == {merchant}
        stored = await d.call("get_request", address, xpub=merchant)
        assert stored["status"] == PR_PAID and stored["tx_hashes"] == [txid]
        assert Decimal(stored["sent_amount"]) == PRICE
        await feed.close()


async def test_underpaid_then_topped_up_and_expired_requests(regtest_stack):
    async with online_daemon(regtest_stack) as d:
        merchant = key_pair(102, "p2wpkh").xpub
        feed = await open_feed(d, {"xpub": merchant})
        payer = await fund_payer(d, regtest_stack)
        address = (await d.call("add_request", str(PRICE), "split", xpub=merchant))["address"]
        half = PRICE / 2
        first = await pay(d, address, half)
        underpaid = await feed.wait_for(payment_for(address, PR_UNPAID))
        assert underpaid["tx_hashes"] == [first] and Decimal(underpaid["sent_amount"]) == half
        await regtest_stack.amine(1, payer)
        await feed.wait_for(lambda e: e["event"] == "verified_tx" and e["tx"] == first)
        request = await d.call("get_request", address, xpub=merchant)
        assert request["status"] == PR_UNPAID and Decimal(request["sent_amount"]) == half
        second = await pay(d, address, PRICE - half)
        await feed.wait_for(payment_for(address, PR_UNCONFIRMED))
        await regtest_stack.amine(1, payer)
        paid = await feed.wait_for(payment_for(address, PR_PAID))
        assert sorted(paid["tx_hashes"]) == sorted([first, second]) and Decimal(paid["sent_amount"]) == PRICE

        expiring = (await d.call("add_request", str(PRICE), "too late", 1, xpub=merchant))["address"]

        async def expired() -> bool:
            request = await d.call("get_request", expiring, xpub=merchant)
            return request["status"] == PR_EXPIRED and request["status_str"] == "Expired"

        await eventually(expired)
        await feed.close()


async def test_block_and_transaction_events_for_the_paying_transaction(regtest_stack):
    async with online_daemon(regtest_stack) as d:
        merchant = key_pair(103, "p2wpkh").xpub
        feed = await open_feed(d, {"xpub": merchant})
        payer = await fund_payer(d, regtest_stack)
        address = (await d.call("add_request", str(PRICE), "events", xpub=merchant))["address"]
        txid = await pay(d, address, PRICE)
        await feed.wait_for(lambda e: e["event"] == "new_transaction" and e["tx"] == txid)
        mined = []
        for _ in range(3):
            await regtest_stack.amine(1, payer)
            height = await regtest_stack.arpc("getblockcount")
            mined.append(height)
            await feed.wait_for(lambda e, h=height: e["event"] == "new_block" and e["height"] == h)
        verified = await feed.wait_for(lambda e: e["event"] == "verified_tx" and e["tx"] == txid)
        assert verified["height"] == mined[0]
        heights = [e["height"] for e in feed.of("new_block")]
        assert heights == sorted(set(heights)) and set(mined) <= set(heights)  # once per height, in order
        assert [e["tx"] for e in feed.of("new_transaction")] == [txid]
        assert [(e["tx"], e["height"]) for e in feed.of("verified_tx")] == [(txid, mined[0])]
        assert all(e["wallet"] in (merchant, None) for e in feed.messages)
        await feed.close()


async def test_double_spend_broadcast_gets_the_spec_error(regtest_stack):
    async with online_daemon(regtest_stack) as d:
        await fund_payer(d, regtest_stack)
        tip = await regtest_stack.arpc("getblockcount")
        coins = await d.call("listunspent", xpub=PAYER_SEED)
        coin = next(c for c in coins if 0 < c["height"] <= tip - 100 and Decimal(c["value"]) > 3)  # mature
        outpoint = coin["prevout_hash"] + ":" + str(coin["prevout_n"])
        one, other = key_pair(104, "p2wpkh").first_address(), key_pair(105, "p2wpkh").first_address()
        # not signalling BIP125: the node refuses any conflict (a signalling one could be replaced by fee)
        first = await d.call("payto", one, "1", from_coins=outpoint, rbf=False, xpub=PAYER_SEED)
        second = await d.call("payto", other, "2", from_coins=outpoint, xpub=PAYER_SEED)
        txid = await d.call("broadcast", first)
        code, message = await call_error(d, "broadcast", second)
        spec = await (await d.session.get(d.url + "/spec", headers=d.headers)).json()
        assert code == -32016 and spec["exceptions"][str(code)]["exc_name"] == "BroadcastError"
        assert "txn-mempool-conflict" in message
        assert txid in await regtest_stack.arpc("getrawmempool")
        assert Tx.from_hex(second).txid not in await regtest_stack.arpc("getrawmempool")
        code, message = await call_error(d, "broadcast", "00" * 20)
        assert code in (-32016, -32017)


def fact(event: dict) -> tuple:
    """What an event states, without its id: two events stating the same fact are a duplicate."""
    return tuple(sorted((k, str(v)) for k, v in event.items() if k != "id"))


async def test_sigkill_before_payment_then_restart_delivers_every_event_once(regtest_stack, electrum_regtest, tmp_path):
    payer = Key.from_int(71)
    hashes = await regtest_stack.amine(101, payer.address)
    data_path, port = tmp_path / "btc", free_port()
    data_path.mkdir()
    env = online_env(regtest_stack)
    merchant = key_pair(106, "p2wpkh").xpub
    async with spawned_daemon("btc", env, data_path, port) as (d, process):
        feed = await open_feed(d, {"xpub": merchant}, {"since": 0})
        address = (await d.call("add_request", str(PRICE), "restart", xpub=merchant))["address"]
        await feed.wait_for(lambda e: e["event"] == "new_block")  # something delivered before the crash
        cursor = max(e["id"] for e in feed.events)
        process.send_signal(signal.SIGKILL)
        process.wait()
        await feed.close()

    # paid and confirmed while the daemon is dead
    coin = coinbase_utxo(regtest_stack.rpc, hashes[0], payer)
    raw, txid = sign_tx([coin], [(address, sats(PRICE)), (payer.address, coin.value - sats(PRICE) - FEE)])
    await regtest_stack.arpc("sendrawtransaction", raw)
    await regtest_stack.amine(1, payer.address)

    async with spawned_daemon("btc", env, data_path, port) as (d, _):
        feed = await open_feed(d, {"xpub": merchant}, {"since": cursor})
        request = await d.call("get_request", address, xpub=merchant)  # the request survived the crash
        assert request["amount_BTC"] and Decimal(request["amount_BTC"]) == PRICE
        paid = await feed.wait_for(payment_for(address, PR_PAID))
        assert paid["tx_hashes"] == [txid] and Decimal(paid["sent_amount"]) == PRICE
        await feed.wait_for(lambda e: e["event"] == "verified_tx" and e["tx"] == txid)
        await feed.close()
        # a client reconnecting with the same cursor gets the same events again, each exactly once
        again = await open_feed(d, {"xpub": merchant}, {"since": cursor})
        await again.wait_for(payment_for(address, PR_PAID))
        await again.wait_for(lambda e: e["event"] == "verified_tx" and e["tx"] == txid)
        ids = [e["id"] for e in again.events]
        assert ids == sorted(set(ids)) and min(ids) > cursor
        assert len({fact(e) for e in again.events}) == len(again.events)
        assert [e["tx"] for e in again.of("new_transaction")] == [txid]
        assert len([e for e in again.events if e["event"] == "new_payment" and e["status"] == PR_PAID]) == 1
        await again.close()


async def test_electrumx_outage_fails_fast_then_recovers_without_restart(fresh_regtest_stack, electrum_regtest):
    stack = fresh_regtest_stack
    payer = Key.from_int(81)
    hashes = await stack.amine(101, payer.address)
    async with online_daemon(stack, SYNC_TIMEOUT="2") as d:
        merchant = key_pair(107, "p2wpkh").xpub
        feed = await open_feed(d, {"xpub": merchant})
        address = (await d.call("add_request", str(PRICE), "outage", xpub=merchant))["address"]
        await asyncio.to_thread(stack.electrumx.stop)

        # calls that need the server answer with the spec's error instead of hanging (bound: many sync timeouts)
        code, message = await asyncio.wait_for(call_error(d, "getaddresshistory", address), 30)
        # -32014 either way: the daemon saw the server gone, or Electrum gave up on it mid-request
        assert code == -32014 and ("Not synchronized" in message or "cannot establish a connection" in message)
        async with d.session.get(d.url + "/health") as response:
            assert response.status != 200 and (await response.json())["status"] == "backend_unavailable"
        # a request's status depends on the history the server holds: an error after the bound, never a stale status
        assert (await asyncio.wait_for(call_error(d, "get_request", address, xpub=merchant), 30))[0] == -32014

        # the payment happens while ElectrumX is down; it comes back on the same port
        coin = coinbase_utxo(stack.rpc, hashes[0], payer)
        raw, txid = sign_tx([coin], [(address, sats(PRICE)), (payer.address, coin.value - sats(PRICE) - FEE)])
        await stack.arpc("sendrawtransaction", raw)
        await stack.arpc("generatetoaddress", 1, payer.address)
        await asyncio.to_thread(stack.start_electrumx)

        paid = await feed.wait_for(payment_for(address, PR_PAID), timeout=120)
        assert paid["tx_hashes"] == [txid]
        assert await d.call("getaddresshistory", address) == [{"tx_hash": txid, "height": 102}]
        async with d.session.get(d.url + "/health") as response:
            assert response.status == 200
        await feed.close()


async def test_bitcart_sdk_websocket_handler_sees_the_payment(regtest_stack):
    from bitcart import BTC

    async with online_daemon(regtest_stack) as d:
        merchant = key_pair(108, "p2wpkh").xpub
        sdk = BTC(rpc_url=d.url, rpc_user=LOGIN, rpc_pass=PASSWORD, xpub=merchant)
        payments: list[dict] = []

        @sdk.on("new_payment")
        async def on_payment(event, address, status, status_str, tx_hashes, sent_amount):
            payments.append({"address": address, "status": status, "tx_hashes": tx_hashes, "sent": sent_amount})

        listener = asyncio.create_task(sdk.start_websocket(force_connect=True))
        try:
            payer = await fund_payer(d, regtest_stack)
            request = await sdk.add_request(PRICE, "sdk order")
            address = request["address"]
            txid = await pay(d, address, PRICE)
            await regtest_stack.amine(1, payer)
            paid = {"address": address, "status": PR_PAID, "tx_hashes": [txid], "sent": format(PRICE, "f")}
            await eventually(lambda: paid in payments)
            assert (await sdk.get_request(address))["status"] == PR_PAID
        finally:
            listener.cancel()
            await sdk.server._close()
