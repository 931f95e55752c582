"""The XMR scanner end to end: many watch-only wallets watched by one daemon, against real monerod (regtest)
and real monero-wallet-rpc transactions (Debian's monero 0.18), with an independent wallet-rpc as the oracle.

One test, as each step builds on the chain the previous one left (the chain is tests/monero_fixtures.py's,
shared with tests/test_xmr.py; only blocks mined here are popped). The daemon gets no usable wallet-rpc
binary: everything a watch-only wallet is asked here is answered by the scanner alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import urllib.request
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from daemons.xmr import XMRDaemon
from daemons.xmr_requests import from_atomic
from daemons.xmr_wallet import wallet_key_of
from tests.monero_fixtures import Chain, Keys, WalletRPC, json_rpc
from tests.support import DaemonClient, running_daemon

pytestmark = pytest.mark.slow
WAIT = 120.0  # upper bound for any awaited event; a healthy run needs a second or two
WALLETS = 200


class Events:
    """Every event of an unscoped websocket, in order, collected in the background."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def collect(self, client: DaemonClient, since: int) -> None:
        async with client.ws_connect() as ws:
            await ws.send_json({"since": since})
            while True:
                message = await ws.receive_json()
                self.events += [{**e, "wallet": message["wallet"]} for e in message["updates"]]

    async def until(self, found: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            while True:
                for event in self.events:
                    if found(event):
                        return event
                await asyncio.sleep(0.05)

    def last_id(self) -> int:
        return max((e["id"] for e in self.events), default=0)


@contextlib.asynccontextmanager
async def daemon(chain: Chain, data_path: Path, events: Events, **extra: str) -> AsyncIterator[DaemonClient]:
    env = {
        "MONEROD_URL": chain.monerod.url,
        "NETWORK": "regtest",
        "CONFIRMATIONS": "2",
        "WALLET_RPC_BINARY": str(data_path / "no-wallet-rpc"),  # the scanner alone serves watch-only wallets
        "WALLET_IDLE_TIMEOUT": "0",  # paid wallets stay loaded: this test compares them after the fact
        **extra,
    }
    async with running_daemon(XMRDaemon, env=env, data_path=data_path) as client:
        task = asyncio.ensure_future(events.collect(client, events.last_id()))
        try:
            yield client
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def status(address: str, wanted: int) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["event"] == "new_payment" and e["address"] == address and e["status"] == wanted


async def pay(chain: Chain, *destinations: tuple[str, str]) -> str:
    return await asyncio.to_thread(chain.pay, [(address, Decimal(amount)) for address, amount in destinations])


def block_heights(chain: Chain, txids: list[str]) -> list[int]:
    found = chain.monerod.post("get_transactions", {"txs_hashes": txids})["txs"]
    assert not any(t["in_pool"] for t in found)
    return [t["block_height"] for t in found]


def pop_blocks(chain: Chain, count: int) -> None:
    payload = json.dumps({"nblocks": count}).encode()
    request = urllib.request.Request(f"{chain.monerod.url}/pop_blocks", data=payload)
    with urllib.request.urlopen(request, timeout=60) as response:
        assert json.loads(response.read())["status"] == "OK"


def scanned_payments(client: DaemonClient, key: str) -> set[tuple[str, int, int | None, int]]:
    """(txid, amount, height, minor) per transaction and subaddress, as get_transfers groups them."""
    totals: dict[tuple[str, int | None, int], int] = {}
    for output in client.daemon.scanner.store.outputs(key):
        entry = (output.txid, output.height, output.minor)
        totals[entry] = totals.get(entry, 0) + output.amount
    return {(txid, amount, height, minor) for (txid, height, minor), amount in totals.items()}


async def test_many_watch_only_wallets_one_scanner(monero_chain: Chain, tmp_path: Path) -> None:
    chain, events, rng = monero_chain, Events(), random.Random()
    keys = [Keys.random() for _ in range(WALLETS)]
    async with daemon(chain, tmp_path / "data", events) as d:
        requests: dict[int, dict[str, Any]] = {}
        for start in range(0, WALLETS, 25):
            made = [d.call("add_request", "1", f"w{i}", 3600, xpub=keys[i].view_only) for i in range(start, start + 25)]
            requests.update(zip(range(start, start + 25), await asyncio.gather(*made), strict=True))
        assert len(d.daemon.scanner.wallets) == WALLETS
        async with d.session.get(d.url + "/health") as response:
            assert (await response.json())["scanner"]["wallets"] == WALLETS
        single, split, shared, restarted, reorged, dropped, miner = rng.sample(range(WALLETS), 7)
        address = {i: requests[i]["address"] for i in requests}

        # in the pool: one payment, one split over two outputs and two transactions, one among strangers
        paid = await pay(chain, (address[single], "1"))
        split_1 = await pay(chain, (address[split], "0.3"), (address[split], "0.2"))
        strangers = Keys.random(), Keys.random()
        shared_tx = await pay(
            chain, (strangers[0].address, "0.7"), (address[shared], "1"), (strangers[1].address, "0.1")
        )
        await events.until(status(address[single], 7))
        underpaid = await events.until(status(address[split], 0))
        assert underpaid["sent_amount"] == "0.500000000000"  # short of the amount: still unpaid
        split_2 = await pay(chain, (address[split], "0.5"))
        await events.until(status(address[split], 7))
        await events.until(status(address[shared], 7))
        top = await chain.confirm_async([paid, split_1, split_2, shared_tx], 2)  # not a fixed count: see confirm
        for i in (single, split, shared):
            await events.until(status(address[i], 3))
        stored = await d.call("get_request", requests[split]["id"], xpub=keys[split].view_only)
        assert stored["status"] == 3 and stored["sent_amount"] == "1.000000000000"
        assert stored["tx_hashes"] == sorted([split_1, split_2])
        # as wallet-rpc counts them: the least confirmed transfer's, a transfer in the top block counting 1
        split_heights = await asyncio.to_thread(block_heights, chain, [split_1, split_2])
        assert stored["confirmations"] == top - max(split_heights) + 1

        # a restart between the payment and its block
        late = await pay(chain, (address[restarted], "1"))
        await events.until(status(address[restarted], 7))
    await chain.confirm_async([late], 2)
    oracle = WalletRPC(tmp_path, chain.monerod.url)  # started later, for the comparison
    try:
        async with daemon(chain, tmp_path / "data", events) as d:
            await events.until(status(address[restarted], 3))

            # a block popped, the transaction mined again on another branch
            moved = await pay(chain, (address[reorged], "1"))
            await events.until(status(address[reorged], 7))
            height = await chain.confirm_async([moved], 1)  # the block holding it, on top: one confirmation of 2

            async def balance(i: int) -> Decimal:
                got = await d.call("getbalance", xpub=keys[i].view_only)
                return Decimal(got["confirmed"]) + Decimal(got["unconfirmed"])

            await until(lambda: balance(reorged), Decimal(1))
            first_hash = d.daemon.scanner.store.block_hash(height)
            await asyncio.to_thread(pop_blocks, chain, 1)
            await until(lambda: balance(reorged), Decimal(0))  # back in the pool: received, not in a block
            assert d.daemon.scanner.store.block_hash(height) is None
            await chain.confirm_async([moved], 2)
            await events.until(status(address[reorged], 3))
            assert d.daemon.scanner.store.block_hash(height) not in (None, first_hash)
            assert await balance(reorged) == Decimal(1)

            # a block popped and a branch without the payment (dropped from the pool): the request is unpaid again
            gone = await pay(chain, (address[dropped], "1"))
            await events.until(status(address[dropped], 7))
            await chain.confirm_async([gone], 1)
            await until(lambda: balance(dropped), Decimal(1))
            await asyncio.to_thread(pop_blocks, chain, 1)
            await asyncio.to_thread(json_rpc, chain.monerod.url, "flush_txpool", {"txids": [gone]})
            await chain.mine_async(2)
            unpaid = await events.until(status(address[dropped], 0))
            assert (unpaid["sent_amount"], unpaid["tx_hashes"]) == ("0.000000000000", [])
            assert await balance(dropped) == Decimal(0)

            # a coinbase to a watched wallet's primary address (clear amount, locked for 60 blocks)
            coinbase_height = await asyncio.to_thread(chain.monerod.mine, 1, keys[miner].address)
            reward = Decimal(await asyncio.to_thread(coinbase_amount, chain, coinbase_height))
            await until(lambda: balance(miner), reward)
            miner_key = wallet_key_of(keys[miner].address, keys[miner].view_key)
            await events.until(lambda e: e["event"] == "new_transaction" and e["wallet"] == miner_key)

            # every payment reported once, to its own wallet only
            wallet_of = {wallet_key_of(keys[i].address, keys[i].view_key): i for i in range(WALLETS)}
            payments = [e for e in events.events if e["event"] == "new_payment"]
            assert {wallet_of[e["wallet"]] for e in payments} == {single, split, shared, restarted, reorged, dropped}
            statuses = {i: [e["status"] for e in payments if e["address"] == address[i]] for i in requests}
            assert statuses[split] == [0, 7, 3]
            assert all(statuses[i] == [7, 3] for i in (single, shared, restarted, reorged)), statuses
            assert statuses[dropped] == [7, 0]
            txs = [(wallet_of[e["wallet"]], e["tx"]) for e in events.events if e["event"] == "new_transaction"]
            expected = {(single, paid), (split, split_1), (split, split_2), (shared, shared_tx), (restarted, late)}
            coinbase_tx = next(t for w, t in txs if w == miner)
            assert sorted(txs) == sorted(expected | {(reorged, moved), (dropped, gone), (miner, coinbase_tx)})

            # wallet-rpc as the oracle: same payments (tx, amount, height) and balances for a sample of wallets
            await asyncio.to_thread(oracle.start)
            for i in (split, shared, reorged, dropped, miner):  # outputs and txs, strangers, reorgs, coinbase
                wallet = d.daemon.wallets[wallet_key_of(keys[i].address, keys[i].view_key)]
                seen = await asyncio.to_thread(wallet_rpc_payments, oracle, keys[i], wallet.restore_height)
                assert scanned_payments(d, wallet.key) == seen[0], i
                ours = await d.call("getbalance", xpub=keys[i].view_only)
                assert (ours["confirmed"], ours["unconfirmed"]) == seen[1], i
            split_payments = scanned_payments(d, wallet_key_of(keys[split].address, keys[split].view_key))

        # what only wallet-rpc answers (history) still works for a scanner's wallet: its file is made from the view key
        async with daemon(chain, tmp_path / "data", events, WALLET_RPC_URL=oracle.url) as d:
            history = (await d.call("history", xpub=keys[split].view_only))["transactions"]
            assert sorted((t["tx_hash"], t["amount"]) for t in history) == sorted(
                (txid, from_atomic(amount)) for txid, amount, _, _ in split_payments
            )
            assert len(d.daemon.scanner.wallets) == WALLETS  # still the scanner's

    finally:
        oracle.stop()


def coinbase_amount(chain: Chain, height: int) -> str:
    """The block reward at ``height`` in XMR, from monerod's header."""
    header = json_rpc(chain.monerod.url, "get_block_header_by_height", {"height": height})["block_header"]
    return from_atomic(int(header["reward"]))


async def until(read: Callable[[], Any], wanted: Any) -> None:
    async with asyncio.timeout(WAIT):
        while await read() != wanted:
            await asyncio.sleep(0.1)


def wallet_rpc_payments(
    oracle: WalletRPC, keys: Keys, restore_height: int
) -> tuple[set[tuple[str, int, int | None, int]], tuple[str, str]]:
    """What wallet-rpc itself finds for the view-only wallet: incoming transfers and its balance."""
    name = keys.view_key[:16]
    params = {"filename": name, "password": "", "address": keys.address, "viewkey": keys.view_key}
    json_rpc(oracle.url, "generate_from_keys", {**params, "restore_height": restore_height})
    try:
        json_rpc(oracle.url, "refresh")
        found = json_rpc(oracle.url, "get_transfers", {"in": True, "pool": True, "account_index": 0})
        balance = json_rpc(oracle.url, "get_balance", {"account_index": 0})
    finally:
        json_rpc(oracle.url, "close_wallet")
    payments = {
        (t["txid"], int(t["amount"]), None if t["type"] == "pool" else t["height"], t["subaddr_index"]["minor"])
        for t in found.get("in", []) + found.get("pool", [])
    }
    locked = int(balance["balance"]) - int(balance["unlocked_balance"])
    return payments, (from_atomic(int(balance["unlocked_balance"])), from_atomic(locked))
