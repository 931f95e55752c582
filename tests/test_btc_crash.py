"""Crash between Electrum's wallet file and the event log: a restart reports what the file holds, once.

A daemon child (``tests/btc_crash_daemon.py``) SIGKILLs itself right before storing the payment's
first event, after Electrum saved the transaction into the wallet file. Electrum fires no callback
again for what its file holds, so only the daemon's reconciliation on load can report it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import aiohttp

from tests.btc_payment_support import PR_PAID, PR_UNCONFIRMED, online_env, open_feed, payment_for
from tests.btc_support import OFFLINE_REGTEST, btc_daemon, key_pair, raw_payment
from tests.regtest_fixtures import Key, coinbase_utxo, sign_tx
from tests.support import spawned_daemon

CRASH_MODULE = "tests.btc_crash_daemon"


async def events_of(d, vpub: str) -> list[dict]:
    return [e for e in await d.call("get_updates", xpub=vpub, since=0) if e["event"] != "new_block"]


async def test_a_crash_before_the_payment_events_are_stored_is_reported_once_after_restart(tmp_path, electrum_regtest):
    data = tmp_path / "data"
    data.mkdir()
    vpub = key_pair(31, "p2wpkh").xpub
    crash = {"CRASH_BEFORE_EVENT": "new_transaction,new_payment"}  # Electrum sends new_payment's first
    async with spawned_daemon("btc", OFFLINE_REGTEST, data, module=CRASH_MODULE, extra_env=crash) as (
        client,
        process,
    ):
        request = await client.call("add_request", amount="0.25", force=True, xpub=vpub)
        raw = raw_payment(request["address"], 25_000_000)
        with contextlib.suppress(aiohttp.ClientError):  # the daemon may die before it answers
            await client.call("addtransaction", raw, xpub=vpub)
        for _ in range(600):
            if process.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert process.returncode == -signal.SIGKILL
    async with btc_daemon(data_path=data) as d:
        txid = await d.call("get_tx_hash", raw)
        events = await events_of(d, vpub)  # loading the wallet reconciles it with what was reported
        assert [(e["event"], e.get("tx") or e.get("tx_hashes")) for e in events] == [
            ("new_transaction", txid),
            ("new_payment", [txid]),
        ]
        payment = events[1]
        assert (payment["address"], payment["status"], payment["sent_amount"]) == (request["address"], 7, "0.25")
        assert await d.call("addtransaction", raw, xpub=vpub) == txid  # Electrum takes it again: no new event
        await d.call("close_wallet", vpub)
        assert await events_of(d, vpub) == events  # reloading finds everything reported
    async with btc_daemon(data_path=data) as d:
        assert await events_of(d, vpub) == events  # and so does a restart


async def wait_killed(process) -> None:
    for _ in range(1200):
        if process.poll() is not None:
            break
        await asyncio.sleep(0.05)
    assert process.returncode == -signal.SIGKILL


async def test_a_crash_before_verified_tx_is_stored_is_reported_once_after_restart(
    regtest_stack, electrum_regtest, tmp_path
):
    payer = Key.from_int(73)
    hashes = await regtest_stack.amine(101, payer.address)
    data = tmp_path / "data"
    data.mkdir()
    vpub = key_pair(32, "p2wpkh").xpub
    crash = {"CRASH_BEFORE_EVENT": "verified_tx"}
    async with spawned_daemon("btc", online_env(regtest_stack), data, module=CRASH_MODULE, extra_env=crash) as (
        client,
        process,
    ):
        feed = await open_feed(client, {"xpub": vpub}, {"since": 0})
        address = (await client.call("add_request", "0.001", force=True, xpub=vpub))["address"]
        coin = coinbase_utxo(regtest_stack.rpc, hashes[0], payer)
        raw, txid = sign_tx([coin], [(address, 100_000), (payer.address, coin.value - 100_000 - 20_000)])
        await regtest_stack.arpc("sendrawtransaction", raw)
        await feed.wait_for(payment_for(address, PR_UNCONFIRMED))
        await regtest_stack.amine(1, payer.address)  # Electrum verifies it: the daemon dies storing verified_tx
        height = await regtest_stack.arpc("getblockcount")
        await wait_killed(process)
        await feed.close()
    async with btc_daemon(data_path=data) as d:  # offline: no server could make Electrum verify it again
        events = await events_of(d, vpub)
        verified = [e for e in events if e["event"] == "verified_tx"]
        assert [(e["tx"], e["height"]) for e in verified] == [(txid, height)]
        assert len([e for e in events if e["event"] == "new_payment" and e["status"] == PR_PAID]) == 1
        assert [e["tx"] for e in events if e["event"] == "new_transaction"] == [txid]


async def test_events_lost_while_the_log_could_not_be_written_are_reported_at_the_next_resync(
    regtest_stack, electrum_regtest
):
    """No restart: the event log refuses writes (a full disk) while a payment arrives, then recovers;
    the wallet's next sync round (the payment being mined) reports what the callbacks could not store."""
    import sqlite3

    from tests.btc_payment_support import eventually, online_daemon

    payer = Key.from_int(75)
    hashes = await regtest_stack.amine(101, payer.address)
    vpub = key_pair(33, "p2wpkh").xpub
    async with online_daemon(regtest_stack) as d:
        address = (await d.call("add_request", "0.002", force=True, xpub=vpub))["address"]
        wallet = d.daemon.wallets[vpub]
        store = d.daemon.store

        def disk_full(*args, **kwargs):
            raise sqlite3.OperationalError("database or disk is full")

        store.append = disk_full  # the storage layer fails every event write from here
        coin = coinbase_utxo(regtest_stack.rpc, hashes[0], payer)
        raw, txid = sign_tx([coin], [(address, 200_000), (payer.address, coin.value - 200_000 - 20_000)])
        await regtest_stack.arpc("sendrawtransaction", raw)
        await eventually(lambda: wallet.db.get_transaction(txid) is not None and wallet.is_up_to_date())
        del store.append  # writable again
        assert await events_of(d, vpub) == []  # all lost so far

        await regtest_stack.amine(1, payer.address)  # the wallet syncs again, then is up to date

        async def reported() -> list[dict]:
            events = await events_of(d, vpub)
            return events if {e["event"] for e in events} >= {"new_transaction", "verified_tx"} else []

        events = await eventually(reported)
        assert [e["tx"] for e in events if e["event"] == "new_transaction"] == [txid]
        assert [e["tx"] for e in events if e["event"] == "verified_tx"] == [txid]
        payments = [e for e in await events_of(d, vpub) if e["event"] == "new_payment"]
        assert payments and payments[-1]["status"] == PR_PAID and payments[-1]["tx_hashes"] == [txid]
        assert len({(e["event"], e.get("tx"), e.get("status")) for e in await events_of(d, vpub)}) == len(
            await events_of(d, vpub)
        )
