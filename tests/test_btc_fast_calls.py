"""validateaddress and getaddresshistory (btc_fast_calls, issue 18) answer what Electrum's commands answer."""

from __future__ import annotations

import asyncio

from tests.btc_support import MAINNET_XPUB, btc_daemon, call_error, key_pair


async def test_validateaddress_answers_as_electrum_first_time_and_remembered():
    from electrum.commands import Commands

    async with btc_daemon() as d:
        direct = Commands(config=d.daemon.electrum_config, network=None, daemon=None)
        keys = key_pair(51, "p2wpkh")
        segwit = keys.first_address()
        legacy = key_pair(52, "standard").first_address()
        wrapped = key_pair(53, "p2wpkh-p2sh").first_address()
        typo = segwit[:-1] + ("q" if segwit[-1] != "q" else "p")
        mainnet = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
        texts = [segwit, segwit.upper(), legacy, wrapped, typo, mainnet, MAINNET_XPUB, "", " " + segwit, "bcrt1"]
        for _ in range(2):  # the second round answers from what the first remembered
            for text in texts:
                assert await d.call("validateaddress", text) is await direct.validateaddress(text), text
        assert {await direct.validateaddress(t) for t in texts} == {True, False}  # both answers are exercised
        assert set(d.daemon.address_validity.results) == set(texts)


async def test_pure_results_are_bounded_and_forget_the_oldest():
    from daemons.btc_fast_calls import PureResults

    results = PureResults(size=2)
    for key in ("a", "b", "c"):
        results.put(key, key.upper())
    assert results.get("a") is None and results.get("b") == "B" and results.get("c") == "C"


async def test_getaddresshistory_answers_as_electrum_before_and_after_a_new_payment(regtest_stack):
    from electrum.commands import Commands

    env = {"OFFLINE": "false", "SERVER": regtest_stack.electrum_server, "ONESERVER": "true", "SYNC_TIMEOUT": "60"}
    async with btc_daemon(env) as d:
        address = key_pair(54, "p2wpkh").first_address()
        direct = Commands(config=d.daemon.electrum_config, network=d.daemon.network, daemon=None)
        assert await d.call("getaddresshistory", address) == await direct.getaddresshistory(address) == []
        await regtest_stack.amine(1, address)
        # The script hash is remembered; the history never is: the new block's coinbase shows at once.
        for _ in range(200):
            history = await d.call("getaddresshistory", address)
            if history:
                break
            await asyncio.sleep(0.05)
        assert history and history == await direct.getaddresshistory(address)
        assert list(d.daemon.address_scripthashes.results) == [address]
        # Bad input meets the same error as through the library's command (the fast path switched off).
        bad = [address[:-1] + "x", "", 5, None]
        fast = [await call_error(d, "getaddresshistory", text) for text in bad]
        d.daemon.FAST_COMMANDS = {}
        assert [await call_error(d, "getaddresshistory", text) for text in bad] == fast
