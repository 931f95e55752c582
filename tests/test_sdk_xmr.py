"""The XMR daemon as the bitcart SDK and bitcart's merchant server use it, written once for every coin (issue 13).

The same checks as tests/test_sdk_btc.py, on real monerod (regtest) and monero-wallet-rpc
(tests/monero_fixtures.py): request fields (confirmations included), one status text per code,
the SDK's argument types, error names, and the merchant server's contract methods.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
from bitcart import XMR
from bitcart.errors import errors

from daemons.xmr import XMRDaemon
from tests.monero_fixtures import Chain, Keys
from tests.support import DaemonClient, running_daemon
from tests.test_sdk_btc import assert_request_shape
from tests.test_xmr import WAIT, env_for

pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def sdk(d: DaemonClient, xpub: Any = None) -> AsyncIterator[XMR]:
    coin = XMR(rpc_url=d.url, xpub=xpub)
    try:
        yield coin
    finally:
        await coin.server._close()


async def until(check: Callable[[], Any]) -> Any:
    async with asyncio.timeout(WAIT):
        while not (result := await check()):
            await asyncio.sleep(0.2)
        return result


async def test_sdk_request_fields_types_status_text_and_confirmations(monero_chain: Chain) -> None:
    view = Keys.random()
    async with (
        running_daemon(XMRDaemon, env=env_for(monero_chain)) as d,
        sdk(d, view.view_only) as shop,
        sdk(d, monero_chain.spender.spending) as customer,
    ):
        for amount, expire in ((Decimal("0.5"), 15), (0.25, 0.5), ("0.125", 15.0), (1, 20)):
            created = await shop.add_request(amount, "order", expire=expire)
            assert created["amount_XMR"] == Decimal(str(amount))
            assert_request_shape(created)
            assert (created["expiry"], created["status"], created["status_str"]) == (int(60 * expire), 0, "Unpaid")
            assert created["confirmations"] == 0
        invoice = await shop.add_request(Decimal("0.3"), "paid", expire=15)
        txid = await customer.pay_to(invoice["address"], Decimal("0.1"))  # underpaid first

        async def underpaid() -> dict | None:
            request = await shop.get_request(invoice["address"])
            return request if request["sent_amount"] != "0.000000000000" else None

        short = await until(underpaid)
        # one text per code on every coin: underpaid is "Unpaid" with what was sent so far
        assert (short["status"], short["status_str"], short["sent_amount"]) == (0, "Unpaid", "0.100000000000")
        second = await customer.pay_to(invoice["address"], Decimal("0.2"))
        await monero_chain.confirm_async([txid, second], 2)  # XMR_CONFIRMATIONS=2 in env_for

        async def paid() -> dict | None:
            request = await shop.get_request(invoice["address"])
            return request if request["status"] == 3 else None

        request = await until(paid)
        assert sorted(request["tx_hashes"]) == sorted([txid, second]) and request["status_str"] == "Paid"
        assert_request_shape(request)
        # as soon as it reads paid (tests/test_xmr_block_lag.py): a store that needs 1 or 2 completes the invoice
        assert request["confirmations"] >= 2
        before = request["confirmations"]
        await monero_chain.mine_async(1)

        async def deeper() -> bool:
            return (await shop.get_request(invoice["address"]))["confirmations"] > before

        await until(deeper)


async def test_sdk_error_names_and_merchant_server_calls(monero_chain: Chain) -> None:
    view = Keys.random()
    async with (
        running_daemon(XMRDaemon, env=env_for(monero_chain)) as d,
        sdk(d) as anonymous,
        sdk(d, {"xpub": "00" * 32, "address": view.address}) as broken,
        sdk(d, view.view_only) as shop,
        sdk(d, monero_chain.spender.spending) as spender,
    ):
        with pytest.raises(errors.WalletNotLoadedError):
            await anonymous.server.getbalance()
        with pytest.raises(errors.LoadingWalletError):
            await broken.balance()
        with pytest.raises(errors.RequestNotFoundError):
            await shop.get_request(view.address)
        with pytest.raises(errors.InvalidAddressError):
            await shop.server.normalizeaddress("not an address")
        with pytest.raises(errors.InvalidTxHashError):
            await anonymous.server.get_transaction("xyz")
        with pytest.raises(errors.TxNotFoundError):
            await anonymous.server.get_transaction("00" * 32)
        with pytest.raises(errors.UnsupportedWalletOperationError):
            await shop.server.payto(monero_chain.payer.address, "0.1")
        with pytest.raises(errors.NotEnoughFundsError):
            await spender.server.payto(monero_chain.payer.address, "1000000")

        assert await shop.server.get_tokens() == {}
        assert await shop.server.getabi() == []
        assert await shop.server.validatecontract(view.address) is False
        assert await shop.server.normalizeaddress(f" {view.address} ") == view.address
        assert await shop.server.setrequestaddress("some request", view.address) is False
