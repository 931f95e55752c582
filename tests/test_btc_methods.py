"""Every BTC daemon method and a sample of Electrum's commands through POST /, and the bitcart SDK as client."""

from __future__ import annotations

from decimal import Decimal

import pytest
from bitcart import BTC
from bitcart.errors import errors

from tests.btc_support import btc_daemon, call_error, key_pair, make_seed, random_vpub, raw_payment

DAEMON_METHODS = {
    "add_request", "get_request", "getrequest", "get_invoice", "validatekey", "get_updates", "get_transaction",
    "get_tx_size", "get_tx_hash", "get_default_fee", "recommended_fee", "getinfo", "getaddressbalance_wallet",
    "get_used_fee", "close_wallet", "modifypaymenturl", "getfingerprint", "switch_server", "help",
}  # fmt: skip


async def test_help_lists_daemon_methods_and_electrum_commands():
    async with btc_daemon() as d:
        names = await d.call("help")
        assert set(names) >= DAEMON_METHODS
        from electrum.commands import known_commands

        served = set(known_commands) - d.daemon.EXCLUDED_COMMANDS
        assert served <= set(names)
        assert "stop" not in names  # the daemon's lifecycle is not Electrum's to end
        payto = await d.call("help", "payto")
        assert payto["params"][:2] == ["destination", "amount"] and payto["requires_wallet"] is True
        assert payto["doc"] == "Create a transaction."
        own = await d.call("help", "get_request")
        assert own["params"] == ["key"] and "request_id or by its address" in own["doc"]
        assert (await call_error(d, "help", "no_such_method"))[0] == -32601


async def test_sdk_help_requests_balance_validate_key_and_named_errors():
    async with btc_daemon() as d:
        vpub = key_pair(21, "p2wpkh").xpub
        sdk = BTC(rpc_url=d.url, xpub=vpub)
        try:
            assert "add_request" in await sdk.help()
            assert await sdk.validate_key(vpub) is True
            assert await sdk.validate_key("definitely not a key") is False
            balance = await sdk.balance()
            assert balance == {"confirmed": 0, "unconfirmed": 0, "unmatured": 0, "lightning": 0}
            assert all(isinstance(value, Decimal) for value in balance.values())
            request = await sdk.add_request(Decimal("0.00042"), "coffee", expire=30)
            assert request["amount_BTC"] == Decimal("0.00042")
            assert request["expiry"] == 30 * 60
            fetched = await sdk.get_request(request["address"])
            assert fetched["amount_BTC"] == Decimal("0.00042") and fetched["message"] == "coffee"
            assert fetched["sent_amount"] == "0"
            with pytest.raises(errors.RequestNotFoundError):
                await sdk.get_request("bcrt1qnotanaddressofthiswallet")
            with pytest.raises(errors.LoadingWalletError):
                await BTC(rpc_url=d.url, xpub="not a key").balance()
            assert (await sdk.spec)["capabilities"]["lightning"] is False
            assert await sdk.set_config("fee_level", "2") is True
            assert await sdk.get_config("fee_level") == 2
        finally:
            await sdk.server._close()


async def test_daemon_methods_answer_in_the_shape_clients_expect():
    async with btc_daemon() as d:
        seed = make_seed("segwit")
        address = (await d.call("listaddresses", xpub=seed))[0]
        raw = raw_payment(address, 12_345)
        size = await d.call("get_tx_size", raw)
        assert isinstance(size, int) and size > 0
        txid = await d.call("get_tx_hash", raw)
        assert len(txid) == 64
        fee = await d.call("get_default_fee", size)
        assert Decimal(fee) > 0 and fee == await d.call("get_default_fee", raw)
        assert isinstance(await d.call("recommended_fee", 2), int | None)
        info = await d.call("getinfo")
        assert info["network"] == "regtest" and info["offline"] is True
        assert info["synchronized"] is False and info["total_wallets"] == 1
        assert "default_wallet" not in info
        assert await d.call("addtransaction", raw, xpub=seed) == txid
        assert await d.call("getaddressbalance_wallet", address, xpub=seed) == {
            "confirmed": "0", "unconfirmed": "0.00012345", "unmatured": "0",
        }  # fmt: skip
        assert await d.call("get_used_fee", txid, xpub=seed) is None  # its input is not the wallet's: fee unknown
        assert (await call_error(d, "get_used_fee", "ab" * 32, xpub=seed))[0] == -32002
        assert (await call_error(d, "get_used_fee", "nothex", xpub=seed))[0] == -32001
        assert (await call_error(d, "getaddressbalance_wallet", "nonsense", xpub=seed))[0] == -32004
        request = await d.call("add_request", amount="0.1", xpub=seed)
        invoice = await d.call("get_invoice", request["request_id"], xpub=seed)
        assert invoice["request_id"] == request["request_id"]
        assert (await call_error(d, "get_invoice", "nope", xpub=seed))[0] == -32012
        assert (await call_error(d, "get_request", "nope", xpub=seed))[0] == -32003
        assert await d.call("getrequest", request["request_id"], xpub=seed) == await d.call(
            "get_request", request["request_id"], xpub=seed
        )
        url = await d.call("modifypaymenturl", request["URI"], "0.25")
        assert "amount=0.25" in url and url.startswith("bitcoin:" + request["address"] + "?")
        assert "amount=0.25000" in await d.call("modifypaymenturl", request["URI"], "0.25", 5)
        mpk = await d.call("getmpk", xpub=seed)
        from electrum import bip32

        master = key_pair(3, "standard")
        expected = bip32.BIP32Node.from_xkey(master.xpub).calc_fingerprint_of_this_node().hex()
        assert await d.call("getfingerprint", master.xpub) == expected
        assert len(await d.call("getfingerprint", mpk)) == 8  # depth 1 (m/0'): its parent is the root
        assert (await call_error(d, "getfingerprint", "nope"))[0] == -32602
        assert isinstance(await d.call("get_updates", xpub=seed), list)
        assert await d.call("close_wallet", xpub=seed) is True
        assert (await call_error(d, "switch_server", "127.0.0.1:1:t"))[0] == -32013
        assert (await call_error(d, "get_transaction", txid))[0] == -32013


async def test_electrum_commands_sample_through_post():
    async with btc_daemon() as d:
        keys = key_pair(22, "p2wpkh")
        address = keys.first_address()
        assert await d.call("validateaddress", address) is True
        assert await d.call("validateaddress", "nonsense") is False
        assert await d.call("ismine", address, xpub=keys.xpub) is True
        assert await d.call("getbalance", xpub=keys.xpub) == {"confirmed": "0"}
        assert await d.call("onchain_history", xpub=keys.xpub) == {"summary": {}, "transactions": []}
        assert await d.call("getunusedaddress", xpub=keys.xpub) == address
        assert await d.call("version") == "4.3.4"
        assert len((await d.call("make_seed")).split()) == 12
        assert await d.call("setconfig", "test_key", "42") is True
        assert await d.call("getconfig", "test_key") == 42
        deserialized = await d.call("deserialize", raw_payment(address, 1000))
        assert deserialized["outputs"][0]["address"] == address
        # payto from a wallet with no coins: the spec's insufficient-funds code.
        code, message = await call_error(d, "payto", address, "0.1", xpub=keys.xprv)
        assert (code, message) == (-32006, "Insufficient funds")
        code, _ = await call_error(d, "payto", "nonsense", "0.1", xpub=keys.xprv)
        assert code == -32004
        code, _ = await call_error(d, "getbalance")
        assert code == -32000
        assert (await call_error(d, "stop"))[0] == -32601
        assert (await call_error(d, "get_tx_size", "zz"))[0] == -32017
        assert (await call_error(d, "getbalance", "extra", xpub=keys.xpub))[0] == -32602
        # The daemon still serves after every failure.
        assert await d.call("getbalance", xpub=random_vpub()) == {"confirmed": "0"}


async def test_bad_amounts_fees_expiries_and_command_input_are_32602_and_create_nothing():
    async with btc_daemon() as d:
        vpub, seed = key_pair(23, "p2wpkh").xpub, make_seed("segwit")
        mine = (await d.call("listaddresses", xpub=seed))[0]
        bad = [
            ("add_request", ["0.000000001"], vpub),  # finer than a satoshi
            ("add_request", ["1e-9"], vpub),
            ("add_request", ["-0.5"], vpub),
            ("add_request", ["21000000.00000001"], vpub),  # above the supply
            ("add_request", ["0.1", "", 1e308], vpub),  # expiry out of bounds
            ("add_request", ["0.1", "", -1], vpub),
            ("get_default_fee", [-5], None),
            ("get_default_fee", [0], None),
            ("get_default_fee", [10**30], None),
            ("recommended_fee", [-5], None),
            ("recommended_fee", [0], None),
            ("modifypaymenturl", ["bitcoin:x?amount=1", "-1"], None),
            ("convert_xkey", ["nonsense", "p2wpkh"], None),
            ("convert_xkey", [vpub[:-1] + "x", "p2wpkh"], None),
            ("convert_xkey", [vpub, "bogus"], None),
            ("signmessage", ["notanaddress", "hi"], seed),
            ("signmessage", [mine, 5], seed),
            ("signmessage", [5, "hi"], seed),
            ("signmessage", [(await d.call("listaddresses", xpub=vpub))[0], "hi"], seed),  # not this wallet's
            ("payto", [mine, "-1"], seed),
            ("payto", [mine, "0.000000001"], seed),
            ("payto", [mine, "21000001"], seed),
            ("payto", [mine, "0.1", "-0.0001"], seed),  # a negative fee
            ("paytomany", [[[mine, "0.000000001"]]], seed),
        ]
        for method, args, xpub in bad:
            code, message = await call_error(d, method, *args, xpub=xpub)
            assert code == -32602, (method, args, code, message)
        assert await d.call("list_requests", xpub=vpub) == []
        # Zero ("-0" is zero) and whole amounts are well-formed strings, never Electrum's "0." or "2.".
        for given, shown in (("-0", "0"), ("0.", "0"), ("2", "2"), ("0.00000001", "0.00000001")):
            created = await d.call("add_request", given, xpub=vpub, force=True)
            assert created["amount_BTC"] == shown
        listed = sorted(r["amount_BTC"] for r in await d.call("list_requests", xpub=vpub))  # Electrum's own command
        assert listed == ["0", "0", "0.00000001", "2"]
        assert (await d.call("convert_xkey", vpub, "standard")).startswith("tpub")
        assert await d.call("get_default_fee", 1) is not None
