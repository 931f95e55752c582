"""BTC start-up and network modes: settings checks, OFFLINE, sync timeout, lazy and missing Electrum."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from daemons.btc import BTCDaemon
from daemons.btc_amounts import format_amount
from daemons.btc_config import parse_proxy_url
from daemons.settings import SettingsError
from tests.btc_support import btc_daemon, call_error, key_pair, raw_payment
from tests.support import NO_ENV_FILE, ROOT, free_port


def make(**env: str) -> BTCDaemon:
    return BTCDaemon(environ={f"BTC_{k}": v for k, v in env.items()}, env_file=NO_ENV_FILE)


def test_unknown_network_stops_start_up_listing_the_valid_ones():
    with pytest.raises(SettingsError) as info:
        make(NETWORK="moonnet")
    message = str(info.value)
    assert "BTC_NETWORK" in message and "moonnet" in message
    assert all(name in message for name in ("mainnet", "testnet", "regtest", "signet", "simnet"))
    assert make(NETWORK="RegTest").network_name == "regtest"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("SERVER", "127.0.0.1:50001"),
        ("SERVER", "127.0.0.1:99999:t"),
        ("SERVER", "127.0.0.1:50001:x"),
        ("PROXY_URL", "ftp://127.0.0.1:21"),
        ("PROXY_URL", "socks5://127.0.0.1"),
        ("PROXY_URL", "socks5://127.0.0.1:notaport"),
        ("ONESERVER", "maybe"),
        ("OFFLINE", "sometimes"),
        ("SYNC_TIMEOUT", "-1"),
    ],
)
def test_bad_network_settings_name_the_variable(setting, value):
    with pytest.raises(SettingsError, match=f"BTC_{setting}"):
        make(**{setting: value})


def test_good_network_settings_are_read():
    daemon = make(SERVER="127.0.0.1:51001:s", ONESERVER="true", PROXY_URL="socks5://user:secret@127.0.0.1:9050")
    assert daemon.server == "127.0.0.1:51001:s" and daemon.oneserver is True
    assert daemon.proxy == parse_proxy_url("socks5://user:secret@127.0.0.1:9050")
    assert daemon.proxy is not None and daemon.proxy.password == "secret"
    assert "secret" not in repr(daemon.proxy)
    assert daemon.lightning is False and daemon.spec["capabilities"]["lightning"] is False
    assert make().network_name == "mainnet" and make().offline is False


def test_amounts_are_plain_decimal_strings():
    assert [format_amount(v) for v in (0, 1, 12_345, 50_000_000, 2_100_000_000_000_000, None)] == [
        "0", "0.00000001", "0.00012345", "0.5", "21000000", None,
    ]  # fmt: skip


async def test_offline_wallet_calls_work_and_network_calls_fail_fast():
    async with btc_daemon({"OFFLINE": "true"}) as d:
        keys = key_pair(31, "p2wpkh")
        assert d.daemon.network is None
        address = keys.first_address()
        assert await d.call("getbalance", xpub=keys.xprv) == {"confirmed": "0"}
        assert (await d.call("add_request", amount="1", xpub=keys.xprv))["address"] == address
        assert await d.call("addtransaction", raw_payment(address, 5000), xpub=keys.xprv)
        assert await d.call("getbalance", xpub=keys.xprv) == {"confirmed": "0", "unconfirmed": "0.00005"}
        assert await d.call("signmessage", address, "offline", xpub=keys.xprv)
        for method, args in [
            ("getaddresshistory", [address]),
            ("getaddressbalance", [address]),
            ("broadcast", [raw_payment(address, 1)]),
            ("get_transaction", ["ab" * 32]),
            ("is_synchronized", []),
            ("getfeerate", []),
        ]:
            code, message = await call_error(d, method, *args, xpub=keys.xprv)
            assert code == -32013
            assert message == "The BTC daemon is offline (BTC_OFFLINE=true): this method needs the network"
        async with d.session.get(d.url + "/health") as response:
            assert response.status == 200
            assert (await response.json())["offline"] is True


async def test_unreachable_server_fails_with_a_clear_error_after_the_sync_timeout():
    # A closed loopback port: Electrum keeps retrying, the daemon gives up after SYNC_TIMEOUT.
    env = {"OFFLINE": "false", "SERVER": f"127.0.0.1:{free_port()}:t", "ONESERVER": "true", "SYNC_TIMEOUT": "0.5"}
    async with btc_daemon(env) as d:
        keys = key_pair(32, "p2wpkh")
        code, message = await call_error(d, "getaddresshistory", keys.first_address())
        assert code == -32014
        assert message.startswith("Not synchronized: block headers did not synchronize within 0.5s")
        assert "BTC_SERVER" in message and "BTC_SYNC_TIMEOUT" in message
        # Wallet-local calls do not wait for the network; those whose answer depends on the wallet's history
        # wait for its sync after a load (d034175), and say why when it does not come.
        assert await d.call("getmpk", xpub=keys.xpub) == keys.xpub
        assert (await call_error(d, "getbalance", xpub=keys.xpub))[0] == -32014
        assert (await d.call("getinfo"))["connected"] is False
        async with d.session.get(d.url + "/health") as response:
            assert response.status == 503
            assert (await response.json())["status"] in ("syncing", "backend_unavailable")
        assert await d.call("switch_server", f"127.0.0.1:{free_port()}:t") is True
        assert (await call_error(d, "switch_server", "not-a-server"))[0] == -32602


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)


def test_importing_daemons_btc_does_not_import_electrum():
    result = run_python(
        "import json, sys, pkgutil, importlib, daemons\n"
        "for m in pkgutil.iter_modules(daemons.__path__):\n"
        "    if m.name.startswith('btc'):\n"
        "        importlib.import_module('daemons.' + m.name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'electrum')))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_missing_electrum_stops_start_up_with_the_promised_message(tmp_path):
    import os

    env = {
        **os.environ,
        "BTC_NETWORK": "regtest",
        "BTC_OFFLINE": "true",
        "BTC_DATA_PATH": str(tmp_path),
        "BTC_PORT": str(free_port()),
    }
    # sys.modules[name] = None makes "import electrum" raise ImportError, as on a machine without it.
    result = run_python(
        "import sys\nsys.modules['electrum'] = None\nfrom daemons.__main__ import main\nsys.exit(main(['btc']))", env
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: The BTC daemon needs the 'electrum' package, which is not installed: "
        "install Debian's python3-electrum (apt-get install python3-electrum)"
    )
