"""The BTC daemon as the bitcart SDK and bitcart's merchant server use it, written once for every coin (issue 13).

Offline parts run on a regtest daemon without a server; the payment parts on the regtest stack
(tests/regtest_fixtures.py). The XMR side of the same checks is tests/test_sdk_xmr.py.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bitcart import BTC
from bitcart.errors import errors

from daemons.payment_requests import REQUEST_FIELDS
from tests.btc_payment_support import PAYER_SEED, eventually, fund_payer, online_daemon, wait_synchronized
from tests.btc_support import btc_daemon, key_pair
from tests.regtest_fixtures import Key, coinbase_utxo, sats, sign_tx
from tests.support import LOGIN, PASSWORD, DaemonClient

PRICE = Decimal("0.0015")
FEE = 20_000


@contextlib.asynccontextmanager
async def sdk(d: DaemonClient, xpub: Any = None) -> AsyncIterator[BTC]:
    coin = BTC(rpc_url=d.url, rpc_user=LOGIN, rpc_pass=PASSWORD, xpub=xpub)
    try:
        yield coin
    finally:
        await coin.server._close()


def assert_request_shape(request: dict[str, Any]) -> None:
    """The fields every coin's request carries (README, "Payment requests"), with their types."""
    assert set(REQUEST_FIELDS) <= request.keys(), set(REQUEST_FIELDS) - request.keys()
    assert isinstance(request["confirmations"], int) and isinstance(request["status"], int)
    assert isinstance(request["tx_hashes"], list) and isinstance(request["sent_amount"], str)
    expiry = request["expiry"]
    assert request["expiration"] == (request["timestamp"] + expiry if expiry else 0)


async def test_sdk_requests_take_any_amount_and_expiry_type_and_read_like_every_coin():
    async with btc_daemon() as d, sdk(d, key_pair(131, "p2wpkh").xpub) as coin:
        # amounts as the SDK passes them (Decimal, float, str, int); expire in minutes, int or float
        for amount, expire in ((Decimal("0.001"), 15), (0.001, 0.5), ("0.001", 15.0), (1, 20)):
            created = await coin.add_request(amount, "order", expire=expire)
            assert created["amount_BTC"] == Decimal(str(amount))
            assert_request_shape(created)
            assert created["expiry"] == int(60 * expire)
            # one text per status code: Electrum's own would say "Expires in 14 minutes"
            assert (created["status"], created["status_str"], created["confirmations"]) == (0, "Unpaid", 0)
            fetched = await coin.get_request(created["address"])
            assert_request_shape(fetched)
            assert (fetched["request_id"], fetched["sent_amount"]) == (created["request_id"], "0")
        never = await coin.add_request(Decimal("0.002"), "no expiry", expire=0)
        assert (never["expiry"], never["expiration"]) == (0, 0)


async def test_sdk_raises_the_same_error_names_as_on_every_coin():
    async with btc_daemon() as d, sdk(d) as anonymous, sdk(d, "not a key") as broken:
        coin = BTC(rpc_url=d.url, rpc_user=LOGIN, rpc_pass=PASSWORD, xpub=key_pair(132, "p2wpkh").xpub)
        try:
            with pytest.raises(errors.WalletNotLoadedError):
                await anonymous.server.getbalance()
            with pytest.raises(errors.LoadingWalletError):
                await broken.balance()
            with pytest.raises(errors.RequestNotFoundError):
                await coin.get_request("bcrt1qnotarequest")
            with pytest.raises(errors.InvalidAddressError):
                await coin.server.normalizeaddress("not an address")
            with pytest.raises(errors.TxNotFoundError):
                await coin.server.get_used_fee("00" * 32)
            with pytest.raises(errors.InvalidTxHashError):
                await coin.server.get_used_fee("xyz")
            with pytest.raises(errors.InvalidTransactionError):
                await coin.server.finalizepsbt("not a psbt")
        finally:
            await coin.server._close()


async def test_merchant_server_calls_for_coins_without_contracts():
    async with btc_daemon() as d, sdk(d, key_pair(133, "p2wpkh").xpub) as coin:
        address = key_pair(134, "p2wpkh").first_address()
        assert await coin.server.get_tokens() == {}
        assert await coin.server.getabi() == []
        assert await coin.server.validatecontract(address) is False
        assert await coin.server.normalizeaddress(f" {address} ") == address
        assert await coin.server.setrequestaddress("some request", address) is False


async def test_request_paid_while_the_daemon_was_down_reads_paid_right_after_restart(
    regtest_stack, electrum_regtest, tmp_path: Path
):
    payer = Key.from_int(131)
    hashes = await regtest_stack.amine(101, payer.address)
    merchant = key_pair(135, "p2wpkh").xpub
    async with online_daemon(regtest_stack, data_path=tmp_path) as d, sdk(d, merchant) as coin:
        address = (await coin.add_request(PRICE, "paid while down"))["address"]
        await wait_synchronized(d)

    utxo = coinbase_utxo(regtest_stack.rpc, hashes[0], payer)
    raw, txid = sign_tx([utxo], [(address, sats(PRICE)), (payer.address, utxo.value - sats(PRICE) - FEE)])
    await regtest_stack.arpc("sendrawtransaction", raw)
    await regtest_stack.amine(1, payer.address)

    async with online_daemon(regtest_stack, data_path=tmp_path) as d, sdk(d, merchant) as coin:
        # the first call loads the wallet from its file, which knows nothing of the payment yet: it waits for the sync
        request = await coin.get_request(address)
        assert (request["status"], request["status_str"], request["tx_hashes"]) == (3, "Paid", [txid])
        assert request["confirmations"] == 1 and Decimal(request["sent_amount"]) == PRICE
        assert_request_shape(request)
        assert (await coin.balance())["confirmed"] == PRICE


def signed_like_a_hardware_device(d: DaemonClient, psbt: str) -> str:
    """The PSBT signed by the payer seed's wallet, its signatures left partial as a hardware signer returns them."""
    from electrum.transaction import tx_from_any

    tx = tx_from_any(psbt)
    signer = d.daemon.wallets["sha256:" + hashlib.sha256(PAYER_SEED.encode()).hexdigest()]
    signer.sign_transaction(tx, None)
    assert all(txin.part_sigs for txin in tx.inputs()) and not any(txin.witness for txin in tx.inputs())
    with io.BytesIO() as out:
        tx._serialize_psbt(out)  # not serialize(): that would finalize the inputs itself
        return base64.b64encode(out.getvalue()).decode()


async def test_hardware_wallet_payout_from_a_watch_only_wallet(regtest_stack, electrum_regtest):
    from electrum import keystore

    seed_keys = keystore.from_seed(PAYER_SEED, None)
    fingerprint, derivation = seed_keys.get_root_fingerprint(), seed_keys.get_derivation_prefix()
    destination = Key.from_int(132).address
    async with online_daemon(regtest_stack) as d:
        payer = await fund_payer(d, regtest_stack)
        watch_only = await d.call("getmpk", xpub=PAYER_SEED)
        async with sdk(d, watch_only) as coin:
            await wait_synchronized(d)
            # as bitcart's merchant server prepares a payout: the SDK's pay_to without broadcast
            unsigned = await coin.pay_to(destination, Decimal("0.01"), broadcast=False)
            assert unsigned.startswith("cHNidP8")  # base64 of b"psbt\xff": a PSBT, not a signed transaction
            for_device = await coin.server.adjustforhwsign(unsigned, fingerprint, derivation)
            with pytest.raises(errors.InvalidTransactionError):  # no signature yet
                await coin.server.finalizepsbt(for_device)
            with pytest.raises(errors.InvalidParamsError):
                await coin.server.adjustforhwsign(unsigned, "00000000", derivation)
            raw = await coin.server.finalizepsbt(signed_like_a_hardware_device(d, for_device))
        txid = await regtest_stack.arpc("sendrawtransaction", raw)  # the node accepts it
        await regtest_stack.amine(1, payer)
        history = await eventually(lambda: d.call("getaddresshistory", destination))
        assert history == [{"tx_hash": txid, "height": history[0]["height"]}] and history[0]["height"] > 0
