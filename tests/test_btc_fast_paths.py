"""The BTC daemon's fast paths (issue 18) answer exactly what Electrum answers on the same wallet and keys."""

from __future__ import annotations

import hashlib

from tests.btc_support import MAINNET_XPUB, btc_daemon, call_error, key_pair, make_seed, raw_payment


def electrum_validates(key: str) -> bool:
    """Electrum's own verdict on a well-formed key or seed: whether it restores a wallet."""
    from electrum import keystore

    return bool(keystore.is_master_key(key) or keystore.is_seed(key))


async def test_validatekey_answers_as_electrum_first_time_and_from_the_cache():
    async with btc_daemon() as d:
        keys = [key_pair(n, xtype) for n in (31, 32) for xtype in ("standard", "p2wpkh-p2sh", "p2wpkh")]
        seed = make_seed("segwit")
        well_formed = [*(k.xpub for k in keys), *(k.xprv for k in keys), seed, "not a seed"]
        for key in well_formed:
            expected = electrum_validates(key)
            assert [await d.call("validatekey", key) for _ in range(3)] == [expected] * 3, key
        assert await d.call("validatekey", MAINNET_XPUB) is False  # another network's key, cached or not
        typo = keys[0].xpub[:-1] + ("a" if keys[0].xpub[-1] != "a" else "b")
        assert await d.call("validatekey", typo) is False
        # Only master public keys are remembered: never a seed or a private key (they are secrets).
        remembered = set(d.daemon.public_keys.keys)
        assert remembered == {k.xpub for k in keys}


async def test_known_public_keys_are_bounded_and_forget_the_oldest():
    from daemons.btc_keys import KnownPublicKeys

    known = KnownPublicKeys(size=2)
    for key in ("a", "b", "c"):
        known.add(key)
    assert "a" not in known and "b" in known and "c" in known


async def test_wallet_named_by_xpub_or_seed_as_before_the_cache():
    async with btc_daemon() as d:
        vpub = key_pair(33, "p2wpkh").xpub
        seed = make_seed("segwit")
        for _ in range(2):  # the second round finds the xpub in the cache
            assert await d.call("getbalance", xpub=vpub) == {"confirmed": "0"}
            assert await d.call("getbalance", xpub=seed) == {"confirmed": "0"}
        hashed = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
        assert set(d.daemon.wallets) == {vpub, hashed}
        assert seed not in d.daemon.public_keys
        # The seed wallet's public name is not a key to it.
        code, _ = await call_error(d, "getbalance", xpub=hashed)
        assert code == -32005
        assert set(d.daemon.wallets) == {vpub, hashed}


async def test_wallet_calls_by_xpub_answer_as_electrums_commands_on_the_same_wallet():
    """Calls whose wallet is found through the remembered key answer what Electrum's Commands answer directly."""
    import json

    from electrum.commands import Commands

    async with btc_daemon() as d:
        keys = key_pair(34, "p2wpkh")
        address = keys.first_address()
        txid = await d.call("addtransaction", raw_payment(address, 1_234_567), xpub=keys.xpub)
        wallet = d.daemon.wallets[keys.xpub]
        assert keys.xpub in d.daemon.public_keys
        direct = Commands(config=d.daemon.electrum_config, network=None, daemon=None)
        assert txid in (await d.call("onchain_history", xpub=keys.xpub))["transactions"][0]["txid"]
        for name in ("getbalance", "onchain_history", "listaddresses"):
            for _ in range(2):  # the first call may recognise the key, the second finds it remembered
                through_daemon = await d.call(name, xpub=keys.xpub)
                expected = await getattr(direct, name)(wallet=wallet)
                assert through_daemon == json.loads(json.dumps(expected, default=str)), name
        assert await d.call("validateaddress", address) == await direct.validateaddress(address)


async def test_lightning_guard_remembers_only_the_librarys_command_names():
    """is_lightning_method keeps the library's answer per command name; a client's made-up names are not kept."""
    from electrum.commands import known_commands

    async with btc_daemon() as d:
        for n in range(3):
            code, _ = await call_error(d, f"no_such_method_{n}")
            assert code == -32601
        assert await d.call("getbalance", xpub=key_pair(35, "p2wpkh").xpub) == {"confirmed": "0"}
        code, _ = await call_error(d, "list_channels", xpub=key_pair(35, "p2wpkh").xpub)  # Lightning is off
        remembered = d.daemon._lightning_commands
        assert remembered and set(remembered) <= set(known_commands)
        assert remembered["getbalance"] is False and remembered["list_channels"] is True
