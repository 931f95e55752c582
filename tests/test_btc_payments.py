"""The BTC daemon's payment flow end to end on the regtest stack (regtest node + real ElectrumX + real daemon).

Requests live on watch-only wallets (a vpub); payments come from a seed wallet loaded in the same daemon and
funded by mining to it; events are read from the daemon's websocket like a payment processor would.
"""

from __future__ import annotations

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
    open_feed,
    pay,
    payment_for,
)
from tests.btc_support import call_error, key_pair

PRICE = Decimal("0.0015")


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
        first = await d.call("payto", one, "1", from_coins=outpoint, xpub=PAYER_SEED)
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
