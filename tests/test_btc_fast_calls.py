"""validateaddress and getaddresshistory (btc_fast_calls, issue 18) answer what Electrum's commands answer."""

from __future__ import annotations

import asyncio

from tests.btc_support import MAINNET_XPUB, btc_daemon, call_error, key_pair, raw_payment


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
        assert set(d.daemon.address_validity.results) == {t for t in texts if len(t) <= 90}  # not the xpub
        too_long = "bcrt1q" + "q" * 90  # longer than any address: answered, not kept
        assert await d.call("validateaddress", too_long) is await direct.validateaddress(too_long) is False
        assert too_long not in d.daemon.address_validity.results


async def test_is_address_is_electrums_for_each_network_first_time_and_remembered():
    async with btc_daemon():
        from electrum import bitcoin, constants

        remembered = bitcoin.is_address
        original = remembered.__wrapped__
        segwit, legacy = key_pair(57, "p2wpkh").first_address(), key_pair(57, "standard").first_address()
        mainnet = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
        texts = [segwit, segwit.upper(), segwit[:-1] + "q", legacy, mainnet, "1BoatSLRHtKNngkdXEeobR76b53LETtpyT", ""]
        texts.append("bcrt1q" + "q" * 90)
        for net in (None, constants.BitcoinMainnet, constants.BitcoinRegtest):
            answers = [original(text, net=net) for text in texts]
            assert True in answers and False in answers
            for _ in range(2):
                assert [remembered(text, net=net) for text in texts] == answers, net
        assert remembered(segwit) is True and remembered(segwit, net=constants.BitcoinMainnet) is False
        assert all(len(key[0]) <= 90 for key in remembered.answers.results)


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


async def test_getaddresshistory_asks_the_main_server_directly_and_electrums_path_when_it_fails(regtest_stack):
    """The request goes to the main server without Electrum's retrying wrapper; when that request fails (an
    error, or cancelled as aiorpcx cancels requests of a lost connection), Electrum's path answers."""
    from electrum.commands import Commands

    env = {"OFFLINE": "false", "SERVER": regtest_stack.electrum_server, "ONESERVER": "true", "SYNC_TIMEOUT": "60"}
    async with btc_daemon(env) as d:
        address = key_pair(56, "p2wpkh").first_address()
        await regtest_stack.amine(1, address)
        network, interface = d.daemon.network, d.daemon.network.interface
        direct = Commands(config=d.daemon.electrum_config, network=network, daemon=None)
        for _ in range(200):
            expected = await direct.getaddresshistory(address)
            if expected:
                break
            await asyncio.sleep(0.05)
        assert expected
        through_electrum = []
        electrums = network.get_history_for_scripthash

        async def counted(scripthash):
            through_electrum.append(scripthash)
            return await electrums(scripthash)

        network.get_history_for_scripthash = counted
        servers = interface.get_history_for_scripthash
        try:
            assert await d.call("getaddresshistory", address) == expected
            assert through_electrum == []  # the main server answered directly

            # Each fails once (Electrum's path then asks again, as it would on the next server).
            async def failing(scripthash):
                interface.get_history_for_scripthash = servers
                raise RuntimeError("request timed out")

            async def cancelled(scripthash):
                interface.get_history_for_scripthash = servers
                raise asyncio.CancelledError  # what aiorpcx raises in a request whose connection is lost

            for broken in (failing, cancelled):
                interface.get_history_for_scripthash = broken
                async with asyncio.timeout(60):
                    assert await d.call("getaddresshistory", address) == expected
            assert len(through_electrum) == 2  # each failure answered through Electrum's path
        finally:
            interface.get_history_for_scripthash = servers
            network.get_history_for_scripthash = electrums


def output_scripts() -> list[bytes]:
    """Scripts of every address type, of none (OP_RETURN, bare multisig, malformed) and one too long to keep."""
    from electrum import bitcoin

    keys = [key_pair(55, xtype).first_address() for xtype in ("standard", "p2wpkh-p2sh", "p2wpkh")]
    scripts = [bytes.fromhex(bitcoin.address_to_script(address)) for address in keys]
    scripts += [bytes([0x00, 0x20]) + bytes(range(32)), bytes([0x51, 0x20]) + bytes(32)]  # p2wsh, p2tr
    scripts += [bytes([0x6A, 0x04]) + b"memo", bytes([0x51, 0x21]) + bytes(33) + bytes([0x51, 0xAE]), b"\x4c"]
    scripts.append(bytes([0x00, 0x14]) + bytes(20) + bytes(30))  # longer than any address script
    return scripts


async def test_output_addresses_are_electrums_for_each_network_first_time_and_remembered():
    async with btc_daemon():
        from electrum import constants, transaction

        remembered = transaction.get_address_from_output_script
        original = remembered.__wrapped__
        for net in (None, constants.BitcoinMainnet, constants.BitcoinRegtest):
            answers = [original(script, net=net) for script in output_scripts()]
            assert None in answers and len({a for a in answers if a}) == 5  # every kind of answer is exercised
            for _ in range(2):
                assert [remembered(script, net=net) for script in output_scripts()] == answers, net
        # The network of the moment is part of what is remembered: mainnet's answer is not regtest's.
        script = output_scripts()[2]
        assert remembered(script, net=constants.BitcoinMainnet) != remembered(script)
        assert all(len(key[0]) <= 42 for key in remembered.answers.results)


async def electrums_own(call):
    """What a library call answers with Electrum's own address and URI functions (nothing remembered)."""
    from electrum import bitcoin, transaction, util

    remembered = transaction.get_address_from_output_script, bitcoin.is_address, util.create_bip21_uri
    transaction.get_address_from_output_script = remembered[0].__wrapped__
    bitcoin.is_address = remembered[1].__wrapped__
    util.create_bip21_uri = remembered[2].__wrapped__
    try:
        return await call
    finally:
        transaction.get_address_from_output_script, bitcoin.is_address, util.create_bip21_uri = remembered


async def test_get_request_answers_as_electrums_export_before_and_after_a_payment():
    from electrum import transaction
    from electrum.commands import Commands

    async with btc_daemon() as d:
        keys = key_pair(56, "p2wpkh")
        created = await d.call("add_request", "0.5", "order 1", xpub=keys.xpub)
        wallet = d.daemon.wallets[keys.xpub]
        direct = Commands(config=d.daemon.electrum_config, network=None, daemon=None)
        request_id, address = created["request_id"], created["address"]
        request = wallet.get_request(request_id)
        assert address == transaction.get_address_from_output_script.__wrapped__(request.outputs[0].scriptpubkey)
        for paid in (False, True):
            if paid:
                await d.call("addtransaction", raw_payment(address, 50_000_000), xpub=keys.xpub)
            expected = await electrums_own(direct.get_request(request_id, wallet=wallet))
            for key in (request_id, address, request_id):  # by id and by address, the last one remembered
                answer = await d.call("get_request", key, xpub=keys.xpub)
                # amount_BTC and status_str are the daemon's own spellings (the contract's), the rest Electrum's.
                same = [k for k in expected if k not in ("amount_BTC", "status_str")]
                assert {k: answer[k] for k in same} == {k: expected[k] for k in same}, (paid, key)
            assert answer["status"] == (7 if paid else 0)  # 7: paid, unconfirmed (offline)
            assert answer["sent_amount"] == ("0.5" if paid else "0")


async def test_commands_run_without_electrums_wrapper_answer_as_through_it():
    from electrum import commands

    from daemons.btc_fast_calls import plain_command

    async with btc_daemon() as d:
        daemon = d.daemon
        keys = key_pair(57, "p2wpkh")
        txid = await d.call("addtransaction", raw_payment(keys.first_address(), 70_000), xpub=keys.xpub)
        wallet = daemon.wallets[keys.xpub]
        calls = [
            ("get_tx_status", {"txid": txid}),
            ("get_tx_status", {"txid": "00" * 32}),  # not in the wallet: the same exception
            ("get_tx_status", {"txid": "nothex"}),
            ("listaddresses", {"funded": True}),
            ("getunusedaddress", {}),
            ("list_requests", {}),
            ("getservers", {}),
            ("version", {}),
        ]
        for name, arguments in calls:
            method = daemon.get_method(name)
            given = {**arguments, "wallet": wallet} if commands.known_commands[name].requires_wallet else arguments
            coroutine = daemon.library_call(method, dict(given))
            assert daemon._plain_commands[name] is not None, name  # these skip the wrapper
            answers = []
            for run in (coroutine, method.func(**given)):  # without, then through Electrum's wrapper
                try:
                    answers.append(("answer", await run))
                except Exception as exc:
                    answers.append((type(exc).__name__, str(exc)))
            assert answers[0] == answers[1], name
        # Commands whose wrapper has work to do keep it: a password, Lightning, a wallet path; and any function
        # that is not Electrum's own wrapper (the BCH daemon's thread runners).
        kept = {"signtransaction", "getseed", "nodeid", "add_peer"}
        for name in kept:
            assert plain_command(commands, name, getattr(daemon.commands, name)) is None, name
        assert plain_command(commands, "getbalance", lambda **kwargs: None) is None
        with_path = [name for name, command in commands.known_commands.items() if "wallet_path" in command.options]
        assert with_path and all(plain_command(commands, n, getattr(daemon.commands, n)) is None for n in with_path)
        # A wallet named by a string (never injected by the daemon), or none, goes through the wrapper.
        for given in ({"wallet": "x"}, {"wallet": None}):
            coroutine = daemon.library_call(daemon.get_method("get_tx_status"), {"txid": txid, **given})
            assert coroutine.cr_code.co_name == "func_wrapper"
            coroutine.close()
