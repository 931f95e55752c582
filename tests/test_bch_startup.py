"""The BCH daemon without Electron Cash: it must not import it early, and must refuse to start with install steps.

These run everywhere (CI has no Electron Cash). Where electroncash is importable, ``sys.modules`` hides it
from the child process the same way a machine without it would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from daemons.bch import BCH_NETWORKS, BCHDaemon
from daemons.bch_calls import ElectronCashError, electron_errors, to_json
from daemons.settings import SettingsError
from tests.support import NO_ENV_FILE, ROOT, free_port

HINT = (
    "Electron Cash is on no package registry: download a source release (Electron-Cash-<version>.tar.gz) "
    "from Electron Cash's releases and run `pip install Electron-Cash-<version>.tar.gz` in this virtualenv "
    "(README.md, section 'BCH daemon', has the steps)"
)


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)


def test_importing_daemons_bch_imports_nothing_of_electron_cash_or_electrum():
    result = run_python(
        "import json, sys, daemons.bch, daemons.bch_events\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('electroncash', 'electrum'))))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_missing_electron_cash_stops_start_up_with_the_install_steps(tmp_path):
    env = {
        **os.environ,
        "BCH_NETWORK": "regtest",
        "BCH_OFFLINE": "true",
        "BCH_DATA_PATH": str(tmp_path),
        "BCH_PORT": str(free_port()),
    }
    result = run_python(
        "import sys\nsys.modules['electroncash'] = None\nfrom daemons.__main__ import main\nsys.exit(main(['bch']))",
        env,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: The BCH daemon needs the 'electroncash' package, which is not installed: {HINT}"
    )
    assert not (tmp_path / "electron_cash").exists()


def make(**env: str) -> BCHDaemon:
    return BCHDaemon(environ={f"BCH_{k}": v for k, v in env.items()}, env_file=NO_ENV_FILE)


def test_defaults_and_the_networks_electron_cash_knows():
    daemon = make()
    assert (daemon.name, daemon.settings.port, daemon.network_name) == ("BCH", 5004, "mainnet")
    for network in BCH_NETWORKS:
        assert make(NETWORK=network.upper()).network_name == network
    with pytest.raises(SettingsError) as info:
        make(NETWORK="signet")
    assert "BCH_NETWORK" in str(info.value)
    for name in BCH_NETWORKS:
        assert name in str(info.value)


def test_spec_lists_electron_cash_errors_and_no_lightning():
    daemon = make()
    assert daemon.spec["capabilities"]["lightning"] is False
    assert daemon.spec["electrum_map"]["Request not found"] == -32003
    assert daemon.spec["electrum_map"]["invalid address"] == -32004
    assert daemon.spec["exceptions"]["-32003"]["exc_name"] == "RequestNotFoundError"
    assert "get_invoice" not in daemon.methods and "getfingerprint" not in daemon.methods
    assert {"addrequest", "add_request", "get_request", "getrequest", "broadcast"} <= set(daemon.methods)


def test_bare_base_exceptions_of_electron_cash_become_catchable_errors():
    with pytest.raises(ElectronCashError, match=r"^Invalid key$"), electron_errors():
        raise BaseException("Invalid key")
    with pytest.raises(ValueError), electron_errors():
        raise ValueError("kept as it is")
    with pytest.raises(KeyboardInterrupt), electron_errors():
        raise KeyboardInterrupt


def test_results_are_made_json_safe():
    class Address(tuple):  # Electron Cash's Address is a namedtuple with to_ui_string
        def to_ui_string(self) -> str:
            return "qq" + "0" * 40

    data = {"address": Address((0, b"\x00")), "outputs": [(Address((1,)), 5)], "raw": b"\x01\x02"}
    assert to_json(data) == {"address": "qq" + "0" * 40, "outputs": [["qq" + "0" * 40, 5]], "raw": "0102"}


# BIP-32 test vector 1's master public key: a valid mainnet xpub, as a string (no library needed).
BIP32_XPUB = (
    "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8"
)


async def test_mistyped_extended_keys_are_refused_before_electron_cash_sees_them():
    from daemons.jsonrpc import RPCError, WalletIdentity

    daemon = make()  # Electron Cash is not loaded: the refusal must come before the library is asked
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    typos = [BIP32_XPUB[:i] + c + BIP32_XPUB[i + 1 :] for i in range(4, len(BIP32_XPUB)) for c in alphabet[::7]]
    typos = [typo for typo in typos if typo != BIP32_XPUB]  # the prefix kept: the typo still looks like an xpub
    for typo in [*typos, BIP32_XPUB.replace("xpub", "Zprv", 1), BIP32_XPUB + "1"]:
        assert await daemon.validatekey(typo) is False
        with pytest.raises(RPCError) as info:
            await daemon.load_wallet(WalletIdentity(key=typo))
        assert info.value.code == -32005 and "not a valid extended key" in info.value.message


async def test_bch_checks_amounts_fees_and_expiries_before_electron_cash_sees_them():
    from daemons.jsonrpc import RPCError

    daemon = make()  # Electron Cash is not loaded: each refusal comes before the library is asked
    refused = [
        lambda: daemon.request_terms("0.000000001", 60, "expiration"),
        lambda: daemon.request_terms("-1", 60, "expiration"),
        lambda: daemon.request_terms("21000001", 60, "expiration"),
        lambda: daemon.request_terms("1", 1e308, "expiration"),
        lambda: daemon.check_command_arguments("payto", None, {"destination": "x", "amount": "-0.1"}),
        lambda: daemon.check_command_arguments("payto", None, {"destination": "x", "amount": "1", "fee": "1e-9"}),
    ]
    for call in refused:
        with pytest.raises(RPCError) as info:
            call()
        assert info.value.code == -32602
    for coroutine in (daemon.get_default_fee(-5), daemon.recommended_fee(-5)):
        with pytest.raises(RPCError) as info:
            await coroutine
        assert info.value.code == -32602
    assert daemon.request_terms("-0", 0, "expiration") == ("0", None)
    assert daemon.request_terms("1.50000000", 60, "expiration") == ("1.5", 60)


async def test_bch_records_a_reported_fact_in_its_events_own_transaction(tmp_path):
    """A crash between storing an event and recording it as reported would report it twice after a restart."""
    from daemons.bch_events import Report
    from daemons.btc_events import ReportedState
    from daemons.events import EventStore
    from daemons.websocket import Hub

    class RecordFails(ReportedState):  # the fault: the process dies while the fact is being recorded
        def put(self, *args, **kwargs):
            raise RuntimeError("killed while recording")

    daemon = make()
    daemon.store = EventStore(tmp_path / "events.sqlite3")
    daemon.hub = Hub(daemon.store, "BCH", daemon.wallet_key)
    txid = "ab" * 32
    report = Report("new_transaction", {"tx": txid}, "wallet", "tx", txid, "seen")
    daemon.reported = RecordFails(daemon.state_db, "BCH")
    with pytest.raises(RuntimeError):
        await daemon.deliver(report)
    assert daemon.store.fetch(0) == []  # not stored without its record
    daemon.reported = ReportedState(daemon.state_db, "BCH")
    await daemon.deliver(report)
    await daemon.deliver(report)
    assert [e.fields for e in daemon.store.fetch(0)] == [{"tx": txid}]
    daemon.store.close()
