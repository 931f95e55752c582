"""bitcart's APIManager over a BTC and an XMR daemon at once, as bitcart's merchant server runs it (issue 13).

One APIManager with no wallets per coin (the merchant server's own setup), unscoped sockets, handlers that
receive the coin instance; the BTC daemon on the regtest stack, the XMR daemon on regtest monerod. The XMR
daemon restarts while a payment to it is made; its listener comes back through the SDK's own reconnect, and
``reconnect_callback`` re-checks the pending requests as the merchant server's check_pending does (which loads
the wallet, so the daemon finds the payment and pushes it to the socket that is already back).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bitcart import APIManager

from daemons.xmr import XMRDaemon
from tests.btc_payment_support import fund_payer, online_daemon, pay
from tests.btc_support import key_pair
from tests.monero_fixtures import Chain, Keys
from tests.support import free_port, running_daemon
from tests.test_xmr import WAIT, env_for

pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def xmr_daemon(chain: Chain, port: int, data_path: Path) -> AsyncIterator[Any]:
    async with running_daemon(XMRDaemon, env={**env_for(chain), "PORT": str(port)}, data_path=data_path) as d:
        yield d


async def test_api_manager_routes_btc_and_xmr_payments_to_their_handlers_across_a_restart(
    regtest_stack, electrum_regtest, monero_chain: Chain, tmp_path: Path
) -> None:
    btc_port, xmr_port = free_port(), free_port()
    merchant_btc, merchant_xmr = key_pair(141, "p2wpkh").xpub, Keys.random()
    manager = APIManager(
        {"BTC": [], "XMR": []},
        custom_params={
            "BTC": {"rpc_url": f"http://127.0.0.1:{btc_port}"},
            "XMR": {"rpc_url": f"http://127.0.0.1:{xmr_port}"},
        },
    )
    shop_btc = manager.load_wallet("BTC", merchant_btc)
    shop_xmr = manager.load_wallet("XMR", merchant_xmr.view_only)
    payments: list[tuple[str, str, int]] = []
    paid_on_recheck: list[tuple[str, str, int]] = []  # what the merchant server's re-check on reconnect finds
    pending: dict[str, tuple[Any, str]] = {}  # address -> (coin, request id), as the merchant server's database
    rechecked: list[str] = []

    @manager.on("new_payment")
    async def on_payment(instance: Any, event: str, address: str, status: int) -> None:
        payments.append((instance.coin_name, address, status))

    async def check_pending(currency: str) -> None:
        """What the merchant server does after every (re)connection: ask for each pending request again."""
        rechecked.append(currency)
        for coin, request_id in [p for p in pending.values() if p[0].coin_name == currency]:
            with contextlib.suppress(Exception):  # the daemon may still be starting its backend
                request = await coin.get_request(request_id)
                # a payment seen while the socket was away reaches the shop through this re-check (the SDK's
                # reconnect sends no since): the daemon may detect it before the SDK reconnects 5 s later
                if request["status"] == 3:
                    paid_on_recheck.append((currency, request["address"], 3))

    async def until_listening(daemon: Any) -> None:
        async with asyncio.timeout(WAIT):
            while not daemon.hub.clients:
                await asyncio.sleep(0.1)

    async def until_paid(coin: str, address: str) -> None:
        async with asyncio.timeout(WAIT):
            while (coin, address, 3) not in payments + paid_on_recheck:
                await asyncio.sleep(0.1)

    listener = asyncio.create_task(manager.start_websocket(reconnect_callback=check_pending, force_connect=True))
    try:
        async with online_daemon(regtest_stack, tmp_path / "btc", PORT=str(btc_port)) as btc:
            payer = await fund_payer(btc, regtest_stack)
            btc_invoice = await shop_btc.add_request(Decimal("0.002"), "btc order")
            await until_listening(btc.daemon)
            async with xmr_daemon(monero_chain, xmr_port, tmp_path / "xmr") as xmr:
                await until_listening(xmr.daemon)  # the manager's XMR socket is there before the restart
                xmr_invoice = await shop_xmr.add_request(Decimal("0.4"), "xmr order")
                pending[xmr_invoice["address"]] = (shop_xmr, xmr_invoice["request_id"])
                await pay(btc, btc_invoice["address"], Decimal("0.002"))
                await regtest_stack.amine(1, payer)
                await until_paid("BTC", btc_invoice["address"])
            # the XMR daemon is down: its invoice is paid and confirmed meanwhile
            xmr_tx = await monero_chain.pay_async(xmr_invoice["address"], "0.4")
            await monero_chain.confirm_async([xmr_tx], 2)
            async with xmr_daemon(monero_chain, xmr_port, tmp_path / "xmr"):
                await until_paid("XMR", xmr_invoice["address"])
                later = await shop_btc.add_request(Decimal("0.001"), "after the restart")
                await pay(btc, later["address"], Decimal("0.001"))
                await regtest_stack.amine(1, payer)
                await until_paid("BTC", later["address"])
        assert rechecked.count("XMR") >= 2  # connected, then reconnected after the restart
        ours = [p for p in payments if p[1] in {btc_invoice["address"], xmr_invoice["address"], later["address"]}]
        assert len(ours) == len(set(ours)), f"a status reported twice: {ours}"
        ours += paid_on_recheck  # the XMR invoice may reach the shop by the re-check alone (paid while away)
        assert {p[0] for p in ours if p[1] == xmr_invoice["address"]} == {"XMR"}
        assert {p[0] for p in ours if p[1] in (btc_invoice["address"], later["address"])} == {"BTC"}
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        for coin in (shop_btc, shop_xmr):
            await coin.server._close()
