"""XMR daemon end to end, against real monerod (regtest) and monero-wallet-rpc from Debian's monero.

The chain is mined once per session (tests/monero_fixtures.py). Each test runs its own daemon with a fresh
DATA_PATH; the daemon starts its own wallet-rpc processes unless the test gives it an external one.
Waits are bounded loops on real events, never timing assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import stat
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from daemons.jsonrpc import RPCError
from daemons.xmr import XMRDaemon
from daemons.xmr_process import WalletRPCProcess
from daemons.xmr_requests import from_atomic
from daemons.xmr_wallet import XMRWallet
from tests.monero_fixtures import Chain, Keys, WalletRPC, free_port
from tests.support import DaemonClient, running_daemon, spawned_daemon

pytestmark = pytest.mark.slow
WAIT = 120.0  # upper bound for any awaited event; a healthy run needs a few seconds


def env_for(chain: Chain, **extra: str) -> dict[str, str]:
    return {
        "MONEROD_URL": chain.monerod.url,
        "NETWORK": "regtest",
        "POLL_INTERVAL": "0.3",
        "CONFIRMATIONS": "2",
        "SCANNER": "false",  # these pin the wallet-rpc path; tests/test_xmr_scanner.py runs the scanner's
        **extra,
    }


class Listener:
    """A websocket client that keeps every event it receives, in order.

    A task reads the socket all along, as a real listener does: reading answers the server's heartbeat
    pings, which a socket left unread while a test pays (a minute under load) would miss and be closed for."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.reader = asyncio.ensure_future(self.read())

    async def read(self) -> None:
        try:
            async for message in self.ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    body = json.loads(message.data)
                    self.messages.append(body)
                    self.events.extend(body.get("updates", []))
                    self.changed.set()
        finally:
            self.changed.set()

    async def until(self, found: Callable[[dict[str, Any]], bool], timeout: float = WAIT) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            checked = 0
            while True:
                for event in self.events[checked:]:
                    if found(event):
                        return event
                checked = len(self.events)
                if self.reader.done():
                    raise AssertionError(f"the socket closed ({self.ws.close_code}); events: {self.events}")
                self.changed.clear()
                await self.changed.wait()

    async def stop(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader

    def payments(self, address: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "new_payment" and e["address"] == address]


def payment(address: str, status: int) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["event"] == "new_payment" and e["address"] == address and e["status"] == status


@contextlib.asynccontextmanager
async def listening(client: DaemonClient, *identities: Any, since: int | None = None) -> Any:
    async with client.ws_connect() as ws:
        if identities:
            await ws.send_json({"xpubs": list(identities)})
        if since is not None:
            await ws.send_json({"since": since})
        listener = Listener(ws)
        try:
            yield listener
        finally:
            await listener.stop()


def total(balance: dict[str, str]) -> Decimal:
    return Decimal(balance["confirmed"]) + Decimal(balance["unconfirmed"])


def wallet_of(d: DaemonClient, address: str) -> XMRWallet:
    return next(wallet for wallet in d.daemon.wallets.values() if wallet.address == address)


async def answers_like_wallet_rpc(d: DaemonClient, address: str, xpub: str) -> dict[str, str]:
    """getbalance and get_height through the daemon equal the wallet's own wallet-rpc's answers."""
    balance, height = await d.call("getbalance", xpub=xpub), await d.call("get_height", xpub=xpub)
    wallet = wallet_of(d, address)
    direct = d.daemon.pool.by_file[wallet.filename].client
    raw = await direct.call("get_balance", {"account_index": 0})
    locked = int(raw["balance"]) - int(raw["unlocked_balance"])
    assert (balance["confirmed"], balance["unconfirmed"]) == (from_atomic(raw["unlocked_balance"]), from_atomic(locked))
    assert height == (await direct.call("get_height"))["height"]
    return balance


async def test_request_paid_in_full_by_a_spending_wallet(monero_chain: Chain) -> None:
    view = Keys.random()
    async with running_daemon(XMRDaemon, env=env_for(monero_chain)) as d:
        request = await d.call("add_request", "1.25", "order 1", 900, xpub=view.view_only)
        assert request["status"] == 0 and request["amount_XMR"] == "1.250000000000"
        assert request["address"] != view.address and request["subaddress_index"] == [0, 1]
        async with listening(d, view.view_only) as events:
            spender = monero_chain.spender.spending
            before = await d.call("getbalance", xpub=spender)
            tx_data = await d.call("payto", request["address"], "1.25", xpub=spender)
            txid = await d.call("broadcast", tx_data, xpub=spender)
            # relay_tx changed the spending wallet: its balance is asked again, never a snapshot from before
            after = await answers_like_wallet_rpc(d, monero_chain.spender.address, spender)
            assert total(before) - total(after) >= Decimal("1.25")
            seen = await events.until(payment(request["address"], 7))
            assert seen["tx_hashes"] == [txid] and seen["sent_amount"] == "1.250000000000"
            assert seen["status_str"] == "Unconfirmed"
            await events.until(lambda e: e["event"] == "new_transaction" and e["tx"] == txid)
            await monero_chain.confirm_async([txid], 2)
            paid = await events.until(payment(request["address"], 3))
        assert paid["tx_hashes"] == [txid] and paid["sent_amount"] == "1.250000000000"
        assert [e["status"] for e in events.payments(request["address"])] == [7, 3]
        stored = await d.call("get_request", request["request_id"], xpub=view.view_only)
        assert (stored["status"], stored["status_str"], stored["tx_hashes"]) == (3, "Paid", [txid])
        assert stored == await d.call("get_request", request["address"], xpub=view.view_only)
        wallet = wallet_of(d, view.address)
        assert d.daemon.snapshot(wallet) is not None  # the poller's, taken before it sent "paid"
        balance = await answers_like_wallet_rpc(d, view.address, view.view_only)
        assert total(balance) == Decimal("1.25")
        history = await d.call("history", xpub=view.view_only)
        assert [(t["tx_hash"], t["amount"]) for t in history["transactions"]] == [(txid, "1.250000000000")]
        assert (await d.call("get_transaction", txid, xpub=view.view_only))["amount"] == "1.250000000000"
        assert (await d.call("gettransaction", txid))["tx_hash"] == txid


async def test_bitcart_sdk_runs_the_same_flow(monero_chain: Chain) -> None:
    from bitcart import XMR

    view = Keys.random()
    async with running_daemon(XMRDaemon, env=env_for(monero_chain)) as d:
        shop, customer = XMR(rpc_url=d.url, xpub=view.view_only), XMR(rpc_url=d.url, xpub=monero_chain.spender.spending)
        seen: list[tuple[str, int, list[str], str]] = []

        @shop.on("new_payment")
        async def on_payment(event: str, address: str, status: int, tx_hashes: list[str], sent_amount: str) -> None:
            seen.append((address, status, tx_hashes, sent_amount))

        socket = asyncio.ensure_future(shop.start_websocket(auto_reconnect=False))
        try:
            invoice = await shop.add_request(Decimal("0.75"), "sdk order", expire=15)
            assert invoice["amount_XMR"] == Decimal("0.75") and invoice["expiry"] == 900
            txid = await customer.pay_to(invoice["address"], Decimal("0.75"))
            await until(lambda: any(s[1] == 7 for s in seen))
            await monero_chain.confirm_async([txid], 2)
            await until(lambda: any(s[1] == 3 for s in seen))
            assert seen == [
                (invoice["address"], 7, [txid], "0.750000000000"),
                (invoice["address"], 3, [txid], "0.750000000000"),
            ]
            fetched = await shop.get_request(invoice["address"])
            assert fetched["status"] == 3 and fetched["amount_XMR"] == Decimal("0.75")
            balance = await shop.balance()
            assert balance["unconfirmed"] + balance["confirmed"] == Decimal("0.75")
            assert await shop.validate_key(view.view_key) is True
            assert await shop.get_config("lightning") is False
        finally:
            socket.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await socket
            await shop.server._close()
            await customer.server._close()


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.1)


async def test_underpaid_overpaid_partial_and_expired_requests(monero_chain: Chain) -> None:
    view = Keys.random()
    async with running_daemon(XMRDaemon, env=env_for(monero_chain)) as d:
        make = [d.call("add_request", "1", name, 900, xpub=view.view_only) for name in ("under", "over", "partial")]
        under, over, partial = await asyncio.gather(*make)
        expiring = await d.call("add_request", "1", "late", 1, xpub=view.view_only)
        async with listening(d, view.view_only) as events:
            first = await asyncio.to_thread(
                monero_chain.pay, [(under["address"], "0.4"), (over["address"], "1.6"), (partial["address"], "0.3")]
            )
            short = await events.until(payment(partial["address"], 0))
            assert (short["status_str"], short["sent_amount"], short["tx_hashes"]) == (
                "Unpaid",
                "0.300000000000",
                [first],
            )
            await events.until(payment(over["address"], 7))
            await events.until(payment(expiring["address"], 1))
            second = await monero_chain.pay_async(partial["address"], "0.7")
            both = await events.until(payment(partial["address"], 7))
            assert both["sent_amount"] == "1.000000000000" and set(both["tx_hashes"]) == {first, second}
            await monero_chain.confirm_async([first, second], 2)
            await events.until(payment(partial["address"], 3))
            await events.until(payment(over["address"], 3))
            await monero_chain.mine_async(1)
            await events.until(lambda e: e["event"] == "new_block")
        assert [(e["status"], e["sent_amount"]) for e in events.payments(under["address"])] == [(0, "0.400000000000")]
        assert [(e["status"], e["sent_amount"]) for e in events.payments(over["address"])] == [
            (7, "1.600000000000"),
            (3, "1.600000000000"),
        ]
        assert [e["status"] for e in events.payments(partial["address"])] == [0, 7, 3]
        assert [e["status_str"] for e in events.payments(expiring["address"])] == ["Expired"]
        final = {r["memo"]: r for r in await d.call("list_requests", xpub=view.view_only)}
        assert (final["under"]["status"], final["under"]["status_str"]) == (0, "Unpaid")
        assert (final["over"]["status"], final["over"]["sent_amount"]) == (3, "1.600000000000")
        assert final["partial"]["status"] == 3 and final["late"]["status"] == 1
        assert [r["memo"] for r in await d.call("list_requests", expired=True, xpub=view.view_only)] == ["late"]


async def test_three_view_only_wallets_concurrently_see_only_their_payments(monero_chain: Chain) -> None:
    wallets = [Keys.random() for _ in range(3)]
    async with running_daemon(XMRDaemon, env=env_for(monero_chain)) as d:
        listeners = [listening(d, w.view_only) for w in wallets]
        async with listeners[0] as first, listeners[1] as second, listeners[2] as third:
            sockets = [first, second, third]
            paid: dict[int, list[tuple[str, str]]] = {0: [], 1: [], 2: []}
            for round_ in range(2):
                requests = await asyncio.gather(
                    *(
                        d.call("add_request", f"0.{i + 1}{round_}", f"w{i}", 900, xpub=w.view_only)
                        for i, w in enumerate(wallets)
                    )
                )
                for i, request in enumerate(requests):  # a payment per wallet, interleaved with the next requests
                    txid = await monero_chain.pay_async(request["address"], request["amount_XMR"])
                    paid[i].append((request["address"], txid))
                    if i == 0:
                        await d.call("getbalance", xpub=wallets[2].view_only)
            await monero_chain.confirm_async([txid for payments in paid.values() for _, txid in payments], 2)
            for i, listener in enumerate(sockets):
                for address, _ in paid[i]:
                    await listener.until(payment(address, 3))
        for i, listener in enumerate(sockets):
            own_addresses = {address for address, _ in paid[i]}
            own_txids = {txid for _, txid in paid[i]}
            reported = {e["address"] for e in listener.events if e["event"] == "new_payment"}
            assert reported == own_addresses
            assert {e["tx"] for e in listener.events if e["event"] == "new_transaction"} == own_txids
            history = await d.call("history", xpub=wallets[i].view_only)
            assert {t["tx_hash"] for t in history["transactions"]} == own_txids
            requests = await d.call("list_requests", xpub=wallets[i].view_only)
            assert {r["address"] for r in requests} == own_addresses and all(r["status"] == 3 for r in requests)
        assert len(d.daemon.pool.processes()) == 3 and d.daemon.pool.switches == 0


async def test_external_wallet_rpc_with_digest_auth(monero_chain: Chain, tmp_path: Path) -> None:
    wallet_rpc = WalletRPC(tmp_path, monero_chain.monerod.url, login="merchant:s3cret-pass")
    await asyncio.to_thread(wallet_rpc.start)
    view = Keys.random()
    try:
        good = env_for(monero_chain, WALLET_RPC_URL=wallet_rpc.url, WALLET_RPC_LOGIN="merchant:s3cret-pass")
        async with running_daemon(XMRDaemon, env=good) as d:
            request = await d.call("add_request", "2", "digest", 900, xpub=view.view_only)
            assert request["subaddress_index"] == [0, 1]
            assert await d.call("get_height", xpub=view.view_only) == monero_chain.monerod.height()
            assert d.daemon.pool.processes() == []  # nothing supervised: it is the external wallet-rpc
        bad = env_for(monero_chain, WALLET_RPC_URL=wallet_rpc.url, WALLET_RPC_LOGIN="merchant:wrong")
        async with running_daemon(XMRDaemon, env=bad) as d:
            with pytest.raises(RPCError) as refused:
                await d.call("getbalance", xpub=view.view_only)
            assert refused.value.code == -32012 and "rejected the credentials" in refused.value.message
            async with d.session.get(d.url + "/health") as response:
                health = await response.json()
            assert response.status == 503 and "rejected the credentials" in health["wallet_rpc"]
    finally:
        wallet_rpc.stop()


def wallet_rpc_command_lines() -> dict[int, bytes]:
    """Every running monero-wallet-rpc's argv as any local user reads it (``ps``): /proc/<pid>/cmdline."""
    found = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and (entry / "comm").read_text().strip().startswith("monero-wallet"):
                found[int(entry.name)] = (entry / "cmdline").read_bytes()
    return found


def assert_secrets_hidden(process: WalletRPCProcess, data: Path, secrets: list[str]) -> None:
    command_lines = wallet_rpc_command_lines()
    assert process.pid in command_lines and b"--config-file" in command_lines[process.pid]
    for secret in secrets:
        assert all(secret.encode() not in line for line in command_lines.values())
        # nor any file of the daemon (wallet-rpc's log included; the config file is gone once read)
        assert all(secret.encode() not in f.read_bytes() for f in data.rglob("*") if f.is_file())
    assert list(data.rglob("*.conf")) == []
    assert stat.S_IMODE((data / "wallet-rpc").stat().st_mode) == 0o700


async def test_supervised_wallet_rpc_credentials_stay_off_the_command_line(monero_chain: Chain, tmp_path: Path) -> None:
    view, data = Keys.random(), tmp_path / "data"
    env = env_for(monero_chain, MONEROD_LOGIN="operator:monerod-pass-4f2a")  # monerod ignores it (no login)
    async with running_daemon(XMRDaemon, env=env, data_path=data) as d:
        await d.call("getbalance", xpub=view.view_only)  # digest auth to the supervised wallet-rpc works
        (process,) = d.daemon.pool.processes()
        assert process.client is not None
        password = process.client._password  # the daemon's own copy: nothing else should hold it
        assert password and len(password) == 32
        assert_secrets_hidden(process, data, [password, "monerod-pass-4f2a", view.view_key])
        payload = {"jsonrpc": "2.0", "id": 0, "method": "get_version"}
        async with d.session.post(process.client.url + "/json_rpc", json=payload) as anonymous:
            assert anonymous.status == 401  # wallet-rpc did read rpc-login from the file

        os.kill(process.pid, signal.SIGKILL)  # the restarted process gets new credentials, the same way
        await wait_health(d, lambda h: "wallet-rpc unreachable" in h["wallet_rpc"])
        await wait_call(d, "getbalance", xpub=view.view_only)
        assert process.client._password != password
        assert_secrets_hidden(process, data, [password, process.client._password, "monerod-pass-4f2a"])


async def test_daemon_killed_between_request_and_payment(monero_chain: Chain, tmp_path: Path) -> None:
    view = Keys.random()
    data = tmp_path / "xmr-data"
    data.mkdir()
    env = env_for(monero_chain)
    async with spawned_daemon("xmr", env, data) as (d, process):
        request = await d.call("add_request", "0.5", "crash", 900, xpub=view.view_only)
        async with listening(d, view.view_only, since=0) as before:
            await before.until(lambda e: e["event"] == "new_block")
        last_seen = before.events[-1]["id"]
        process.send_signal(signal.SIGKILL)
        process.wait()
    txid = await monero_chain.pay_async(request["address"], "0.5")
    await monero_chain.confirm_async([txid], 2)
    async with spawned_daemon("xmr", env, data) as (d, _):
        async with listening(d, view.view_only, since=last_seen) as after:
            await after.until(payment(request["address"], 3))
            await after.until(lambda e: e["event"] == "new_transaction" and e["tx"] == txid)
        async with listening(d, view.view_only, since=last_seen) as again:
            await again.until(payment(request["address"], 3))
        ids = [e["id"] for e in again.events]
        assert ids == sorted(set(ids)) and min(ids) > last_seen
        assert [e for e in again.events if e["event"] != "new_block"] == [
            e for e in after.events if e["event"] != "new_block"
        ]
        paid = [e for e in again.events if e["event"] == "new_payment"]
        assert [(e["status"], e["tx_hashes"]) for e in paid] == [(3, [txid])]
        assert [e["tx"] for e in again.events if e["event"] == "new_transaction"] == [txid]
        heights = [e["height"] for e in again.events if e["event"] == "new_block"]
        assert heights == sorted(set(heights))
        assert (await d.call("get_request", request["address"], xpub=view.view_only))["status"] == 3


async def test_offline_subaddresses_equal_wallet_rpc_ones(monero_chain: Chain) -> None:
    view = Keys.random()
    async with running_daemon(XMRDaemon, env=env_for(monero_chain)) as d:
        account = await d.call("create_account", xpub=view.view_only)
        assert account["account_index"] == 1
        in_account_1 = await d.call("create_address", account_index=1, count=5, xpub=view.view_only)
        made = [await d.call("create_address", account_index=0, count=n, xpub=view.view_only) for n in (64, 36)]
        in_account_0 = made[0]["addresses"] + made[1]["addresses"]  # wallet-rpc makes at most 64 at a time
        online = {(0, 1): in_account_0[0], (0, 100): in_account_0[99]}
        online[(1, 5)] = in_account_1["addresses"][4]
        for (major, minor), address in online.items():
            assert await d.call("get_address", major, minor, xpub=view.view_only) == address
    dead = env_for(monero_chain, WALLET_RPC_URL=f"http://127.0.0.1:{free_port()}")
    async with running_daemon(XMRDaemon, env=dead) as d:
        for (major, minor), address in online.items():
            assert await d.call("get_address", major, minor, xpub=view.view_only) == address
            assert await d.call("validateaddress", address) is True
        with pytest.raises(RPCError) as down:
            await d.call("getbalance", xpub=view.view_only)
        assert down.value.code == -32010


async def test_wallet_rpc_and_monerod_killed_then_back(monero_chain: Chain) -> None:
    view = Keys.random()
    async with running_daemon(XMRDaemon, env=env_for(monero_chain)) as d:
        await d.call("add_request", "1", "before", 900, xpub=view.view_only)
        (process,) = d.daemon.pool.processes()
        old_pid = process.pid
        os.kill(old_pid, signal.SIGKILL)
        # once the supervisor has seen the exit (the health check says so), calls fail fast
        await wait_health(d, lambda h: "wallet-rpc unreachable" in h["wallet_rpc"])
        with pytest.raises(RPCError) as failed:
            await d.call("getbalance", xpub=view.view_only)  # not answered from the poller's snapshot either
        assert failed.value.code == -32010
        with pytest.raises(RPCError) as failed:
            await d.call("get_height", xpub=view.view_only)
        assert failed.value.code == -32010
        await wait_call(d, "getbalance", xpub=view.view_only)
        assert process.pid != old_pid
        await wait_health(d, lambda h: h["status"] == "ok")

        # SIGTERM, not SIGKILL: monerod syncs its database lazily, and a SIGKILL could drop the last blocks
        # under the wallets that share this chain. The daemon sees the same thing either way: a closed port.
        await asyncio.to_thread(monero_chain.monerod.stop)
        try:
            with pytest.raises(RPCError) as no_chain:
                await d.call("getheight")
            assert no_chain.value.code == -32011
            await wait_health(d, lambda h: "monerod unreachable" in h["monerod"])
        finally:
            await asyncio.to_thread(monero_chain.monerod.start)
        assert await d.call("getheight") == monero_chain.monerod.height()
        await wait_health(d, lambda h: h["status"] == "ok")
        request = await d.call("add_request", "1", "after", 900, xpub=view.view_only)
        async with listening(d, view.view_only) as events:
            await monero_chain.pay_async(request["address"], "1")
            await events.until(payment(request["address"], 7))
        await monero_chain.mine_async(2)


async def wait_health(d: DaemonClient, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        while True:
            async with d.session.get(d.url + "/health") as response:
                body = await response.json()
            if check(body):
                assert (response.status == 200) == (body["status"] == "ok")
                return body
            await asyncio.sleep(0.2)


async def wait_call(d: DaemonClient, method: str, *args: Any, **kwargs: Any) -> Any:
    async with asyncio.timeout(WAIT):
        while True:
            try:
                return await d.call(method, *args, **kwargs)
            except RPCError as error:
                assert error.code == -32010  # only "not back yet" is expected meanwhile
            await asyncio.sleep(0.3)
