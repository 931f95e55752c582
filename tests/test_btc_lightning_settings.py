"""Lightning on the BTC daemon without a chain: the setting, the named errors, node ids, Lightning requests.

The flow on a chain (channels, payments, closes) is in tests/test_btc_lightning.py.
"""

from __future__ import annotations

import pytest

from daemons.btc import BTCDaemon
from daemons.btc_lightning import parse_listen
from daemons.payment_requests import REQUEST_FIELDS
from daemons.settings import SettingsError
from tests.btc_support import btc_daemon, call_error, key_pair
from tests.support import LOGIN, NO_ENV_FILE, PASSWORD


async def spec(d) -> dict:
    async with d.session.get(d.url + "/spec", headers=d.headers) as response:
        return await response.json()


SEED = "kid secret cancel vacuum flock retire reunion bicycle noise kitten bicycle shoot"
LN_ON = {"LIGHTNING": "true"}


async def test_lightning_off_answers_lightning_disabled_and_the_sdk_raises_its_error():
    from bitcart import BTC
    from bitcart.errors import LightningDisabledError

    async with btc_daemon() as d:
        assert (await spec(d))["capabilities"]["lightning"] is False
        for method, args in [("nodeid", ()), ("list_channels", ()), ("lnpay", ("lnbcrt1",)), ("add_peer", ("x",))]:
            code, message = await call_error(d, method, *args, xpub=SEED)
            assert code == -32030 and "BTC_LIGHTNING=true" in message, (method, code, message)
        code, _ = await call_error(d, "add_request", "0.001", lightning=True, xpub=SEED)
        assert code == -32030
        assert (await spec(d))["exceptions"]["-32030"]["exc_name"] == "LightningDisabledError"
        sdk = BTC(rpc_url=d.url, rpc_user=LOGIN, rpc_pass=PASSWORD, xpub=SEED)
        try:
            with pytest.raises(LightningDisabledError):
                await sdk.node_id
            with pytest.raises(LightningDisabledError):
                await sdk.add_invoice(0.001)
        finally:
            await sdk.server._close()
        # the seed wallet runs no node, and its on-chain requests are plain ones
        request = await d.call("add_request", "0.001", xpub=SEED)
        assert request["is_lightning"] is False and request["address"].startswith("bcrt1")


async def test_seed_wallet_gets_electrums_node_key_and_watch_only_gets_a_named_error(tmp_path):
    from bitcart import BTC

    async with btc_daemon(LN_ON, data_path=tmp_path / "d") as d:
        assert (await spec(d))["capabilities"]["lightning"] is True
        node_id = await d.call("nodeid", xpub=SEED)
        # Electrum's deterministic node key: the seed's lightning_xprv, as Electrum itself derives it
        from electrum import keystore
        from electrum.bip32 import BIP32Node
        from electrum.lnutil import LnKeyFamily, generate_keypair

        xprv = keystore.from_seed(SEED, None).get_lightning_xprv(None)
        expected = generate_keypair(BIP32Node.from_xkey(xprv), LnKeyFamily.NODE_KEY).pubkey.hex()
        assert node_id == expected
        watch_only = key_pair(7, "p2wpkh").xpub
        for method, args in [("nodeid", ()), ("list_channels", ()), ("export_channel_backup", ("00" * 32 + ":0",))]:
            code, message = await call_error(d, method, *args, xpub=watch_only)
            assert code == -32011 and "watch-only" in message, (method, code, message)
        code, _ = await call_error(d, "add_request", "0.001", lightning=True, xpub=watch_only)
        assert code == -32011
        sdk = BTC(rpc_url=d.url, rpc_user=LOGIN, rpc_pass=PASSWORD, xpub=SEED)
        try:
            assert await sdk.node_id == node_id
            assert await sdk.list_channels() == []
            invoice = await sdk.add_invoice(0.001, "coffee", expire=10)
            assert invoice["is_lightning"] is True and invoice["lightning_invoice"].startswith("lnbcrt")
            assert invoice["request_id"] == invoice["rhash"] and invoice["address"] == invoice["URI"] == ""
            assert set(REQUEST_FIELDS) <= invoice.keys()  # the fields every coin's request has
            assert invoice["expiry"] == 600 and invoice["sent_amount"] == "0" and invoice["tx_hashes"] == []
            onchain = await sdk.add_request(0.001, "on chain")
            assert onchain["is_lightning"] is False and onchain["address"].startswith("bcrt1")
            stored = await sdk.get_request(invoice["rhash"])
            assert stored["lightning_invoice"] == invoice["lightning_invoice"] and stored["status"] == 0
            listed = {r["request_id"]: r["is_lightning"] for r in await d.call("list_requests", xpub=SEED)}
            assert listed == {invoice["rhash"]: True, onchain["request_id"]: False}
        finally:
            await sdk.server._close()
    # the same node after a restart (its key is in the wallet file), and none with Lightning turned off
    async with btc_daemon(LN_ON, data_path=tmp_path / "d") as d:
        assert await d.call("nodeid", xpub=SEED) == node_id
    async with btc_daemon(data_path=tmp_path / "d") as d:
        code, _ = await call_error(d, "nodeid", xpub=SEED)
        assert code == -32030
        assert "lightning" not in await d.call("getbalance", xpub=SEED)
        from electrum import lnworker, util

        registered = [cb for cbs in util.callback_mgr.callbacks.values() for cb in cbs]
        assert not [cb for cb in registered if isinstance(getattr(cb, "__self__", None), lnworker.LNWallet)]


def test_listen_setting_is_host_and_port():
    assert parse_listen(" 127.0.0.1:9735 ") == "127.0.0.1:9735"
    assert parse_listen("") == ""
    for bad in ("9735", "host:", ":9735", "host:70000", "host:x"):
        with pytest.raises(ValueError):
            parse_listen(bad)


def make(**env: str) -> BTCDaemon:
    return BTCDaemon(environ={f"BTC_{k}": v for k, v in env.items()}, env_file=NO_ENV_FILE)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("LIGHTNING_LISTEN", "9735"),
        ("LIGHTNING_LISTEN", "0.0.0.0:99999"),
        ("LIGHTNING_GOSSIP", "perhaps"),
        ("LIGHTNING_TO_SELF_DELAY", "0"),
        ("LIGHTNING_TO_SELF_DELAY", "2017"),
        ("LIGHTNING", "yes please"),
    ],
)
def test_bad_lightning_settings_stop_start_up_naming_the_variable(setting, value):
    with pytest.raises(SettingsError, match=f"BTC_{setting}"):
        make(**{"LIGHTNING": "true", setting: value})


def test_lightning_options_given_to_electrum():
    off = make()
    assert off.lightning_options() == {"use_gossip": False}
    regtest = make(LIGHTNING="true", NETWORK="regtest", LIGHTNING_LISTEN="127.0.0.1:9735")
    assert regtest.lightning_options() == {
        "use_gossip": False,
        "lightning_to_self_delay": 144,  # Electrum's regtest scripts' value
        "lightning_listen": "127.0.0.1:9735",
    }
    mainnet = make(LIGHTNING="true", LIGHTNING_GOSSIP="true")
    assert mainnet.lightning_options() == {"use_gossip": True, "lightning_to_self_delay": 1008}
    assert mainnet.config_options()["use_gossip"] is True


async def test_a_wallet_made_while_lightning_was_off_gets_the_same_node_when_it_is_turned_on(tmp_path):
    async with btc_daemon(data_path=tmp_path / "d") as d:
        await d.call("getunusedaddress", xpub=SEED)  # the wallet file, without a Lightning key
    async with btc_daemon(LN_ON, data_path=tmp_path / "fresh") as fresh:
        expected = await fresh.call("nodeid", xpub=SEED)
    async with btc_daemon(LN_ON, data_path=tmp_path / "d") as d:
        assert await d.call("nodeid", xpub=SEED) == expected


async def test_electrums_in_flight_payment_messages_map_to_already_paid():
    from daemons.spec import map_message

    async with btc_daemon() as d:
        spec = d.daemon.spec
        for message in (
            "This invoice has been paid already",
            "A payment was already initiated for this invoice",
            "A previous attempt to pay this invoice did not clear",
        ):
            assert map_message(spec, message) == -32033
        assert map_message(spec, "No path found") == -32010
        assert map_message(spec, "This invoice has expired") == -32032
