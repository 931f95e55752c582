"""What the BTC daemon reports when the chain reorganises or a 0-conf payment is replaced (BIP125), end to end on the
regtest stack whose node validates with Bitcoin Core's kernel; and the send path proven by Core."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from regtest.serialize import Tx
from tests.btc_payment_support import (
    PAYER_SEED,
    PR_PAID,
    PR_UNCONFIRMED,
    PR_UNPAID,
    fund_payer,
    online_daemon,
    open_feed,
    payment_for,
    wait_synchronized,
)
from tests.btc_support import call_error, key_pair
from tests.regtest_fixtures import Key, Utxo, coinbase_utxo, sats, sign_tx

PRICE = Decimal("0.0015")
FEE = 20_000
RBF = 0xFFFFFFFD


async def pay_new_request(
    d: Any, stack: Any, merchant: str, payer: Key, coinbase_hash: str, memo: str, sequence: int = 0xFFFFFFFE
) -> tuple[str, Utxo, str]:
    """A request on the merchant's wallet, paid by `payer` from a block's coinbase through the node:
    (request address, the coin spent, txid)."""
    address = (await d.call("add_request", str(PRICE), memo, xpub=merchant))["address"]
    coin = coinbase_utxo(stack.rpc, coinbase_hash, payer)
    outputs = [(address, sats(PRICE)), (payer.address, coin.value - sats(PRICE) - FEE)]
    raw, txid = sign_tx([coin], outputs, sequence=sequence)
    await stack.arpc("sendrawtransaction", raw)
    return address, coin, txid


async def test_replaced_zero_conf_payment_leaves_unconfirmed(regtest_stack, electrum_regtest):
    payer = Key.from_int(301)
    hashes = await regtest_stack.amine(101, payer.address)
    async with online_daemon(regtest_stack) as d:
        merchant = key_pair(301, "p2wpkh").xpub
        feed = await open_feed(d, {"xpub": merchant})
        address, coin, paying_txid = await pay_new_request(d, regtest_stack, merchant, payer, hashes[0], "rbf", RBF)
        await feed.wait_for(payment_for(address, PR_UNCONFIRMED))
        # the payer takes it back: same coin, all to itself, a higher fee (BIP125)
        elsewhere, elsewhere_txid = sign_tx([coin], [(payer.address, coin.value - 3 * FEE)])
        assert await regtest_stack.arpc("sendrawtransaction", elsewhere) == elsewhere_txid
        assert await regtest_stack.arpc("getrawmempool") == [elsewhere_txid]

        unpaid = await feed.wait_for(payment_for(address, PR_UNPAID))
        assert unpaid["tx_hashes"] == [] and Decimal(unpaid["sent_amount"]) == 0
        request = await d.call("get_request", address, xpub=merchant)
        assert request["status"] == PR_UNPAID and request["tx_hashes"] == []
        await regtest_stack.amine(1, payer.address)
        assert (await d.call("get_request", address, xpub=merchant))["status"] == PR_UNPAID
        statuses = [e["status"] for e in feed.of("new_payment")]
        assert statuses == [PR_UNCONFIRMED, PR_UNPAID] and paying_txid not in str(feed.of("verified_tx"))
        await feed.close()


async def test_reorg_unconfirms_a_payment_then_the_new_branch_confirms_it(regtest_stack, electrum_regtest, tmp_path):
    payer = Key.from_int(311)
    hashes = await regtest_stack.amine(101, payer.address)
    merchant = key_pair(311, "p2wpkh").xpub
    data_path = tmp_path / "btc"
    async with online_daemon(regtest_stack, data_path=data_path) as d:
        feed = await open_feed(d, {"xpub": merchant}, {"since": 0})
        address, _, txid = await pay_new_request(d, regtest_stack, merchant, payer, hashes[0], "reorg")
        mined = (await regtest_stack.amine(1, payer.address))[0]
        first_height = await regtest_stack.arpc("getblockcount")
        paid_id = (await feed.wait_for(payment_for(address, PR_PAID)))["id"]
        await feed.wait_for(lambda e: e["event"] == "verified_tx" and e["height"] == first_height)

        # the block is orphaned; a longer branch without the payment wins (it waits in the mempool again)
        await regtest_stack.arpc("invalidateblock", mined)
        assert await regtest_stack.arpc("getrawmempool") == [txid]
        for _ in range(2):  # Electrum (SPV) follows a branch only once it has more work than its own
            await regtest_stack.arpc("generateblock", payer.address, [])
        await regtest_stack.amine(0, payer.address)  # until ElectrumX serves the new tip
        back = await feed.wait_for(lambda e: payment_for(address, PR_UNCONFIRMED)(e) and e["id"] > paid_id)
        assert back["tx_hashes"] == [txid]
        assert (await d.call("get_request", address, xpub=merchant))["status"] == PR_UNCONFIRMED
        await feed.wait_for(lambda e: e["event"] == "new_block" and e["height"] == first_height + 1)
        cursor = max(e["id"] for e in feed.events)
        await feed.close()

    # a restart in between, then the new branch confirms the payment
    async with online_daemon(regtest_stack, data_path=data_path) as d:
        feed = await open_feed(d, {"xpub": merchant}, {"since": 0})
        await regtest_stack.amine(1, payer.address)
        new_height = first_height + 2
        await feed.wait_for(lambda e: e["event"] == "verified_tx" and e["height"] == new_height)
        paid = await feed.wait_for(lambda e: payment_for(address, PR_PAID)(e) and e["id"] > cursor)
        assert paid["tx_hashes"] == [txid]
        request = await d.call("get_request", address, xpub=merchant)
        assert request["status"] == PR_PAID and request["confirmations"] == 1
        payments = [(e["status"]) for e in feed.of("new_payment")]
        assert payments == [PR_UNCONFIRMED, PR_PAID, PR_UNCONFIRMED, PR_PAID]  # each change once, across the restart
        blocks = [e["height"] for e in feed.of("new_block")]
        # README "new_block on a reorg": the orphaned height is not reported again, the new branch's tip is
        assert blocks == [first_height - 1, first_height, first_height + 1, first_height + 2]
        verified = [(e["tx"], e["height"]) for e in feed.of("verified_tx")]
        assert verified == [(txid, first_height), (txid, new_height)]
        await feed.close()


async def test_reorg_to_a_branch_with_a_double_spend_unpays_the_request(regtest_stack, electrum_regtest):
    payer = Key.from_int(331)
    hashes = await regtest_stack.amine(101, payer.address)
    async with online_daemon(regtest_stack) as d:
        merchant = key_pair(331, "p2wpkh").xpub
        feed = await open_feed(d, {"xpub": merchant})
        address, coin, txid = await pay_new_request(d, regtest_stack, merchant, payer, hashes[0], "double spend")
        mined = (await regtest_stack.amine(1, payer.address))[0]
        paid = await feed.wait_for(payment_for(address, PR_PAID))
        assert paid["tx_hashes"] == [txid]

        # the new branch confirms the payer's other spend of the same coin: the payment can never confirm
        double, _ = sign_tx([coin], [(payer.address, coin.value - FEE)])
        await regtest_stack.arpc("invalidateblock", mined)
        await regtest_stack.arpc("generateblock", payer.address, [double])
        await regtest_stack.arpc("generateblock", payer.address, [])
        await regtest_stack.amine(0, payer.address)
        assert await regtest_stack.arpc("getrawmempool") == []  # the payment was evicted as a conflict
        unpaid = await feed.wait_for(lambda e: payment_for(address, PR_UNPAID)(e) and e["id"] > paid["id"])
        assert unpaid["tx_hashes"] == [] and Decimal(unpaid["sent_amount"]) == 0
        assert (await d.call("get_request", address, xpub=merchant))["status"] == PR_UNPAID
        assert [e["status"] for e in feed.of("new_payment")] == [PR_UNCONFIRMED, PR_PAID, PR_UNPAID]
        await feed.close()


async def test_send_path_is_accepted_by_core_and_bad_signatures_are_refused(regtest_stack):
    async with online_daemon(regtest_stack) as d:
        await fund_payer(d, regtest_stack)
        destination = key_pair(321, "p2wpkh").first_address()
        txid = await d.call(
            "broadcast", await d.call("payto", destination, "0.5", addtransaction=True, xpub=PAYER_SEED)
        )
        many = await d.call(
            "paytomany",
            [[destination, "0.1"], [key_pair(322, "p2wpkh").first_address(), "0.2"]],
            addtransaction=True,
            xpub=PAYER_SEED,
        )
        many_txid = await d.call("broadcast", many)
        assert {txid, many_txid} <= set(await regtest_stack.arpc("getrawmempool"))

        # a watch-only wallet of the same seed builds, the seed signs (PSBT), Core accepts
        watch_only = await d.call("getmpk", xpub=PAYER_SEED)
        await d.call("getbalance", xpub=watch_only)  # loads it
        await wait_synchronized(d)
        unsigned = await d.call("payto", destination, "0.3", unsigned=True, xpub=watch_only)
        code, message = await call_error(d, "broadcast", unsigned)  # was -32603 (Electrum's assert)
        assert code == -32017 and "unsigned or partially signed" in message, message
        signed = await d.call("signtransaction", unsigned, xpub=PAYER_SEED)
        await d.call("addtransaction", signed, xpub=PAYER_SEED)
        assert await d.call("broadcast", signed) in await regtest_stack.arpc("getrawmempool")

        # a deliberately broken signature: Core refuses it, the spec names the error
        raw = await d.call("payto", destination, "0.4", xpub=PAYER_SEED)
        tx = Tx.from_hex(raw)
        signature = bytearray(tx.inputs[0].witness[0])
        signature[10] ^= 1
        tx.inputs[0].witness[0] = bytes(signature)
        code, message = await call_error(d, "broadcast", tx.hex())
        spec = await (await d.session.get(d.url + "/spec", headers=d.headers)).json()
        assert code == -32020 and spec["exceptions"][str(code)]["exc_name"] == "ScriptVerificationError", message
        # the same transaction with no witness at all (what an unsigned transaction is on the wire)
        for txin in tx.inputs:
            txin.witness = []
        code, message = await call_error(d, "broadcast", tx.hex())
        assert code == -32020, message
        await regtest_stack.amine(1, await d.call("getunusedaddress", xpub=PAYER_SEED))
        assert await regtest_stack.arpc("getrawmempool") == []  # everything accepted was mined by Core's rules
