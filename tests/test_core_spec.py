"""/spec passes the bitcart SDK's validation, and the SDK raises the spec's named exceptions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bitcart.errors import RequestError
from bitcart.providers.jsonrpcrequests import RPCProxy

from daemons.spec import SPEC_DIR, SpecError, load_spec, map_message, merge_specs, validate_spec
from tests.sample_daemon import SampleDaemon
from tests.support import running_daemon


@pytest.fixture
async def daemon():
    async with running_daemon(SampleDaemon) as client:
        yield client


async def fetch_spec(client):
    async with client.session.get(client.url + "/spec", headers=client.headers) as response:
        assert response.status == 200
        return await response.json()


async def test_spec_passes_sdk_validation_and_lists_methods(daemon):
    spec = await fetch_spec(daemon)
    proxy = RPCProxy(daemon.url, "electrum", "electrumz")
    assert proxy.validate_spec(spec)
    for code in ("-32700", "-32600", "-32601", "-32602", "-32603", "-32000", "-32005", "-32006"):
        assert code in spec["exceptions"]
    assert spec["electrum_map"] == {"insufficient funds": -32006}
    assert spec["capabilities"]["websocket"] is True
    assert spec["methods"]["deposit"] == {
        "params": ["amount"],
        "requires_wallet": True,
        "requires_network": False,
        "doc": "",
    }
    await proxy._close()


async def test_sdk_turns_daemon_errors_into_named_exceptions(daemon):
    proxy = RPCProxy(daemon.url, "electrum", "electrumz")
    try:
        assert await proxy.add_numbers(2, 2) == 4
        cases = {"fail_mapped": "NotEnoughFundsError", "no_such": "MethodNotFoundError", "getheight": None}
        daemon.daemon.network_ready = False
        cases["getheight"] = "NetworkNotReadyError"
        for method, name in cases.items():
            with pytest.raises(RequestError) as raised:
                await getattr(proxy, method)()
            assert type(raised.value).__name__ == name
        with pytest.raises(RequestError) as raised:
            await proxy.add_numbers("x")
        assert type(raised.value).__name__ == "InvalidParamsError"
    finally:
        await proxy._close()


async def test_sdk_with_bad_credentials_gets_unauthorized(daemon):
    proxy = RPCProxy(daemon.url, "electrum", "wrong")
    try:
        with pytest.raises(RequestError) as raised:
            await proxy.help()
        assert type(raised.value).__name__ == "UnauthorizedError"
    finally:
        await proxy._close()


def test_every_shipped_spec_is_valid_and_merges():
    for path in sorted(Path(SPEC_DIR).glob("*.json")):
        spec = load_spec(path.stem)
        validate_spec(spec)
        assert RPCProxy("http://127.0.0.1:1").validate_spec(json.loads(json.dumps(spec)))


def test_merge_and_validation_rules(tmp_path):
    base = {"version": "1", "exceptions": {"-1": {"exc_name": "A", "docstring": "a"}}, "electrum_map": {}}
    merged = merge_specs(base, {"exceptions": {"-2": {"exc_name": "B", "docstring": "b"}}, "electrum_map": {"x": -2}})
    assert set(merged["exceptions"]) == {"-1", "-2"} and merged["version"] == "1"
    assert map_message(merged, "an X happened") == -2 and map_message(merged, "fine") is None
    with pytest.raises(SpecError):
        validate_spec({"version": "1", "exceptions": {}, "electrum_map": {"x": -5}})
    with pytest.raises(SpecError):
        validate_spec({"version": 1, "exceptions": {}})
    with pytest.raises(ValueError):
        validate_spec({"version": "1", "exceptions": {"abc": {"exc_name": "A", "docstring": "a"}}})


# One exception name per situation, whatever the daemon (issue 13): (daemon, code) -> the name.
# The names are those the bitcart SDK's documentation and bitcart's merchant server catch.
SITUATIONS = {
    "TxNotFoundError": {"btc": "-32002", "bch": "-32002", "xmr": "-32015"},
    "InvalidTxHashError": {"btc": "-32001", "bch": "-32001", "xmr": "-32016"},
    "RequestNotFoundError": {"btc": "-32003", "bch": "-32003", "xmr": "-32017"},
    "InvalidAddressError": {"btc": "-32004", "bch": "-32004", "xmr": "-32013"},
    "NotEnoughFundsError": {"btc": "-32006", "bch": "-32006", "xmr": "-32014"},
    "UnsupportedWalletOperationError": {"btc": "-32019", "bch": "-32019", "xmr": "-32018"},
}
SHARED = {"-32000": "WalletNotLoadedError", "-32005": "LoadingWalletError"}
DAEMON_SPECS = ("btc", "bch", "xmr", "xmrig", "bitmessage")


def test_one_exception_name_per_situation_across_the_five_daemons():
    base = load_spec("base")
    merged = {name: load_spec(name) for name in DAEMON_SPECS}
    for code, name in SHARED.items():
        assert base["exceptions"][code]["exc_name"] == name
        for daemon in DAEMON_SPECS:
            own = json.loads((Path(SPEC_DIR) / f"{daemon}.json").read_text())
            assert code not in own.get("exceptions", {}), f"{daemon} redefines the shared {code}"
            assert merged[daemon]["exceptions"][code]["exc_name"] == name
    for name, codes in SITUATIONS.items():
        for daemon, code in codes.items():
            assert merged[daemon]["exceptions"][code]["exc_name"] == name, (daemon, code)
    # A name means one situation: no daemon uses it for another code than the table's.
    for daemon in DAEMON_SPECS:
        for code, exc in merged[daemon]["exceptions"].items():
            if exc["exc_name"] in SITUATIONS:
                assert SITUATIONS[exc["exc_name"]].get(daemon) == code, (daemon, code, exc["exc_name"])
