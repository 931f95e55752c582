"""XMR pieces that need no running Monero: amounts, request statuses, the request table, new_block reporting,
and the daemon's answers when monerod and wallet-rpc are unreachable (key checks, offline methods, errors, spec)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemons.jsonrpc import RPCError
from daemons.payment_requests import REQUEST_FIELDS
from daemons.settings import SettingsError
from daemons.xmr import XMRDaemon
from daemons.xmr_client import MoneroRPC, MoneroUnavailable
from daemons.xmr_poller import Poller, Reporter
from daemons.xmr_process import write_config
from daemons.xmr_requests import (
    PR_EXPIRED,
    PR_PAID,
    PR_UNCONFIRMED,
    PR_UNPAID,
    SCHEMA,
    PaymentRequest,
    RequestStore,
    Transfer,
    evaluate,
    from_atomic,
    mined_height,
    monerod_transaction,
    now,
    to_atomic,
)
from daemons.xmr_wallet import WalletTable
from tests.monero_fixtures import Keys, free_port
from tests.support import NO_ENV_FILE, prefixed, running_daemon

XMR = 10**12


def test_amounts_are_12_decimal_strings() -> None:
    assert to_atomic("1.25") == 1_250_000_000_000
    assert to_atomic(Decimal("0.000000000001")) == 1
    assert to_atomic(3) == 3 * XMR
    assert from_atomic(1) == "0.000000000001"
    assert from_atomic(17 * XMR) == "17.000000000000"
    for bad in ("abc", "-1", "0.0000000000001", "NaN", True, None, [1]):
        with pytest.raises(ValueError, match="Invalid amount"):
            to_atomic(bad)


@given(st.integers(min_value=0, max_value=2**64))
def test_amount_round_trip(atomic: int) -> None:
    assert to_atomic(from_atomic(atomic)) == atomic


def request(amount: int | None = XMR, expiration: int | None = None, status: int = PR_UNPAID) -> PaymentRequest:
    return PaymentRequest("w", "r1", "addr", 0, 3, amount, "", 1000, expiration, 10, status=status)


def transfer(amount: int, confirmations: int = 0, minor: int = 3, txid: str = "a") -> Transfer:
    return Transfer(txid, amount, minor, 0, confirmations, confirmations == 0, 0)


@pytest.mark.parametrize(
    ("transfers", "expected"),
    [
        ([], (PR_UNPAID, 0, [])),
        ([transfer(XMR // 2)], (PR_UNPAID, XMR // 2, ["a"])),
        ([transfer(XMR)], (PR_UNCONFIRMED, XMR, ["a"])),
        ([transfer(XMR, confirmations=1)], (PR_UNCONFIRMED, XMR, ["a"])),
        ([transfer(XMR, confirmations=2)], (PR_PAID, XMR, ["a"])),
        ([transfer(XMR // 2, 2), transfer(XMR // 2, 0, txid="b")], (PR_UNCONFIRMED, XMR, ["a", "b"])),
        ([transfer(2 * XMR, 5)], (PR_PAID, 2 * XMR, ["a"])),
        ([transfer(XMR, 5, minor=4)], (PR_UNPAID, 0, [])),  # another request's subaddress
    ],
)
def test_status_from_transfers(transfers: list[Transfer], expected: tuple[int, int, list[str]]) -> None:
    assert evaluate(request(), transfers, 2, now=1500) == expected


def test_expiry_any_amount_and_a_reorganised_payment() -> None:
    assert evaluate(request(expiration=60), [], 2, now=1059)[0] == PR_UNPAID
    assert evaluate(request(expiration=60), [], 2, now=1060)[0] == PR_EXPIRED
    assert evaluate(request(expiration=60), [transfer(XMR // 3)], 2, now=2000)[:2] == (PR_EXPIRED, XMR // 3)
    assert evaluate(request(expiration=60), [transfer(XMR, 2)], 2, now=2000)[0] == PR_PAID
    assert evaluate(request(amount=None), [transfer(1, 2)], 2, now=1500)[0] == PR_PAID
    # a reorganisation took the payment away: what remains decides, as for any request
    assert evaluate(request(status=PR_PAID), [], 2, now=1500) == (PR_UNPAID, 0, [])
    assert evaluate(request(status=PR_PAID), [transfer(XMR, 1)], 2, now=1500)[0] == PR_UNCONFIRMED
    assert evaluate(request(expiration=60, status=PR_PAID), [], 2, now=2000)[0] == PR_EXPIRED


def test_export_has_every_coins_fields_with_one_status_text_and_confirmations() -> None:
    underpaid = PaymentRequest("w", "r", "a", 0, 1, XMR, "", 1000, 60, 0, sent=1)
    data = underpaid.export(chain_height=50)
    assert set(REQUEST_FIELDS) <= data.keys()
    # the text is the code's, as on BTC and BCH: an underpaid request shows through its sent_amount
    assert (data["status"], data["status_str"], data["sent_amount"]) == (0, "Unpaid", "0.000000000001")
    assert (data["expiry"], data["expiration"], data["confirmations"]) == (60, 1060, 0)
    mined = [Transfer("a", XMR // 2, 3, 0, 5, False, 40), Transfer("b", XMR // 2, 3, 0, 2, False, 43)]
    paid = request()
    paid.mined_height = mined_height(paid, mined)
    assert paid.mined_height == 43  # the least confirmed transfer counts
    assert paid.export(chain_height=45)["confirmations"] == 2  # wallet-rpc: height 43 of a 45-block chain
    assert mined_height(paid, [*mined, transfer(1)]) is None  # one still in the pool: unconfirmed
    assert mined_height(paid, []) is None


def test_request_table_gains_mined_height_on_an_old_database() -> None:
    db = sqlite3.connect(":memory:", isolation_level=None)
    old_schema = SCHEMA.replace("    mined_height INTEGER,\n", "")
    assert old_schema != SCHEMA
    db.executescript(old_schema)
    store = RequestStore(db)
    stored = request()
    store.add(stored)
    stored.mined_height = 7
    store.update(stored)
    assert store.get("w", "r1").mined_height == 7


def test_request_table() -> None:
    store = RequestStore(sqlite3.connect(":memory:", isolation_level=None))
    first = request()
    store.add(first)
    assert store.get("w", "r1") == first and store.get("w", "addr") == first and store.get("x", "r1") is None
    first.status, first.sent, first.tx_hashes = PR_PAID, XMR, ["a"]
    store.update(first)
    assert store.get("w", "r1") == first and store.pending("w", 0) == store.pending_all(0) == []  # old, unmined: final
    first.mined_height = 100
    store.update(first)
    # paid in a block a reorganisation can still take away (at or above the floor): watched until it is deeper
    assert store.pending("w", reorg_floor=100) == store.pending_all(100) == [first]
    assert store.pending("w", reorg_floor=101) == store.pending_all(101) == []
    assert store.pending("x", reorg_floor=0) == []
    recent = PaymentRequest("w", "r2", "addr2", 0, 4, XMR, "", now(), None, 10, PR_PAID, XMR, ["b"])
    store.add(recent)  # paid, a transfer still in the pool (an extra payment): watched until the grace passes
    assert store.pending("w", reorg_floor=101) == [recent] and store.pending("w", 101, grace=-1) == []
    with pytest.raises(sqlite3.IntegrityError):  # one subaddress, one request
        store.add(PaymentRequest("w", "r2", "addr", 0, 3, None, "", 0, None, 0))
    assert store.clear("w") == 2 and store.list("w") == []


async def test_client_fails_fast_when_nothing_listens() -> None:
    client = MoneroRPC(f"http://127.0.0.1:{free_port()}", name="monerod")
    with pytest.raises(MoneroUnavailable, match="monerod unreachable"):
        await client.call("get_block_count")
    await client.close()
    assert "digest=True" in repr(MoneroRPC("http://x", login="u", password="secret")) and "secret" not in repr(
        MoneroRPC("http://x", login="u", password="secret")
    )


def test_wallet_rpc_config_file_is_private_and_made_afresh(tmp_path: Path) -> None:
    """The file holding wallet-rpc's credentials: mode 0600 whatever the umask, never an old file reused."""
    path, elsewhere = tmp_path / "wallet-rpc-0.conf", tmp_path / "elsewhere"
    elsewhere.write_text("untouched\n")
    path.symlink_to(elsewhere)  # a planted link is replaced, not followed
    old_umask = os.umask(0o000)
    try:
        write_config(path, {"rpc-login": "xmr:abc123", "daemon-login": "op:p=w:d"})
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.lstat().st_mode) == 0o600 and not path.is_symlink()
    assert path.read_text() == "rpc-login=xmr:abc123\ndaemon-login=op:p=w:d\n"
    assert elsewhere.read_text() == "untouched\n"
    path.chmod(0o644)
    write_config(path, {"rpc-login": "xmr:new"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "rpc-login=xmr:new\n"
    for bad in ("xmr:ab#cd", "xmr:a\nrpc-bind-ip=0.0.0.0", " xmr:abc"):
        with pytest.raises(ValueError, match="rpc-login cannot go in a wallet-rpc config file") as refused:
            write_config(path, {"rpc-login": bad})
        assert bad.strip() not in str(refused.value)


def test_monerod_login_wallet_rpc_cannot_read_is_refused_without_echoing_it() -> None:
    env = {"MONEROD_LOGIN": "op:hunter#2", "NETWORK": "regtest", "DATA_PATH": "/nonexistent"}
    with pytest.raises(SettingsError, match="XMR_MONEROD_LOGIN") as refused:
        XMRDaemon(environ=prefixed("XMR", env), env_file=NO_ENV_FILE)
    assert "hunter" not in str(refused.value)
    external = {**env, "WALLET_RPC_URL": "http://127.0.0.1:18083"}  # no config file involved: accepted
    assert XMRDaemon(environ=prefixed("XMR", external), env_file=NO_ENV_FILE).monerod_login == "op:hunter#2"


def offline_env(**extra: str) -> dict[str, str]:
    return {
        "MONEROD_URL": f"http://127.0.0.1:{free_port()}",
        "WALLET_RPC_URL": f"http://127.0.0.1:{free_port()}",
        "NETWORK": "regtest",
        **extra,
    }


async def test_identities_are_checked_before_wallet_rpc() -> None:
    keys, other = Keys.random(), Keys.random()
    from monero.backends.offline import OfflineWallet
    from monero.wallet import Wallet

    subaddress = str(Wallet(OfflineWallet(keys.address, view_key=keys.view_key)).get_address(0, 1))
    cases = {
        "not a key": ("Invalid key", {"xpub": "not-a-key", "address": keys.address}),
        "other's view key": ("Address mismatch", {"xpub": other.view_key, "address": keys.address}),
        "no address": ("needs its primary 'address'", {"xpub": keys.view_key}),
        "bad address": ("Invalid address", {"xpub": keys.view_key, "address": "4abc"}),
        "subaddress": ("not a subaddress", {"xpub": keys.view_key, "address": subaddress}),
        "bad mnemonic": ("Invalid mnemonic", {"xpub": "one two three"}),
        "wrong mnemonic": ("Address mismatch", {"xpub": other.mnemonic, "address": keys.address}),
    }
    async with running_daemon(XMRDaemon, env=offline_env()) as d:
        for name, (reason, identity) in cases.items():
            with pytest.raises(RPCError) as refused:
                await d.call("getbalance", xpub=identity)
            assert refused.value.code == -32005 and reason in refused.value.message, name
            assert keys.view_key not in refused.value.message and other.mnemonic not in refused.value.message
        assert d.daemon.wallets == {}


async def test_offline_methods_and_errors_without_backends() -> None:
    keys = Keys.random()  # view-only wallets go to wallet-rpc here (the scanner's are in test_xmr_scanner_units.py)
    async with running_daemon(XMRDaemon, env=offline_env(SCANNER="false")) as d:
        assert await d.call("validateaddress", keys.address) is True
        assert (
            await d.call(
                "validateaddress",
                "9wviCeWe2D8XS82k2ovp5EUYLzBt9pYNW2LXUFsZiv8S3Mt21FZ5qQaAroko1enzw3eGr9qC7X1D7Geoo2RrAotYPwq9Gm8",
            )
            is False
        )
        assert await d.call("validateaddress", "nonsense") is False
        assert await d.call("validatekey", keys.view_key) is True
        assert await d.call("validatekey", keys.view_key, keys.address) is True
        assert await d.call("validatekey", keys.mnemonic) is True
        assert await d.call("validatekey", "zz") is False
        assert await d.call("getconfig", "lightning") is False
        offline = await d.call("get_address", 0, 0, xpub=keys.view_only)
        assert offline == keys.address
        assert await d.call("get_address", 0, 0, xpub=keys.spending) == keys.address
        checks = {
            ("getbalance", ()): -32010,
            ("add_request", ("1",)): -32010,
            ("payto", (keys.address, "1")): -32018,
            ("get_request", ("nope",)): -32017,
            ("open_wallet", ()): -32019,
            ("stop_wallet", ()): -32019,
            ("auto_refresh", ()): -32019,
            ("add_request", ("1.0000000000001",)): -32602,
            ("get_transaction", ("xyz",)): -32016,
            ("no_such_method", ()): -32601,
        }
        with pytest.raises(RPCError) as no_chain:
            await d.call("getheight")
        assert no_chain.value.code == -32011
        for (method, args), code in checks.items():
            with pytest.raises(RPCError) as failed:
                await d.call(method, *args, xpub=keys.view_only)
            assert failed.value.code == code, (method, failed.value.message)
        async with d.session.get(d.url + "/health") as response:
            health = await response.json()
        assert response.status == 503 and health["status"] == "backend_unavailable"
        assert "monerod unreachable" in health["monerod"] and "wallet-rpc unreachable" in health["wallet_rpc"]
        methods = await d.call("help")
        assert {"add_request", "payto", "get_transfers", "incoming_transfers", "open_wallet"} <= set(methods)


async def test_spec_names_every_code_for_the_sdk() -> None:
    from bitcart import XMR as SDK

    async with running_daemon(XMRDaemon, env=offline_env(SCANNER="false")) as d:
        async with d.session.get(d.url + "/spec", auth=d.auth) as response:
            spec = await response.json()
        for code in range(-32022, -32009):
            assert str(code) in spec["exceptions"]
        assert spec["capabilities"]["lightning"] is False
        sdk = SDK(rpc_url=d.url, xpub=Keys.random().view_only)
        try:
            assert sdk.server.validate_spec(await sdk.spec)
            from bitcart.errors import errors

            with pytest.raises(errors.WalletRPCUnavailableError):
                await sdk.balance()
        finally:
            await sdk.server._close()


def test_tx_hashes_do_not_depend_on_wallet_rpc_order() -> None:
    """A payment's tx list is the same whatever order wallet-rpc lists pool and mined transfers in, so a
    transfer moving from the pool into a block does not report an unchanged payment again."""
    both_in_pool = [transfer(XMR // 2, txid="b"), transfer(XMR // 2, txid="a")]
    one_mined = [transfer(XMR // 2, confirmations=1, txid="a"), transfer(XMR // 2, txid="b")]
    first = evaluate(request(), both_in_pool, 10, 2000)
    second = evaluate(request(), one_mined, 10, 2000)
    assert first == second == (PR_UNCONFIRMED, XMR, ["a", "b"])


async def test_blocks_reached_by_several_wallets_at_once_are_reported_once_in_order(tmp_path: Path) -> None:
    """Wallet polls (and the scanner) report the blocks up to the height they got to, alongside the block watcher:
    serialised, each new_block goes out once and in order, and the height only moves forward from there."""
    db = sqlite3.connect(str(tmp_path / "state.db"), isolation_level=None)
    table = WalletTable(db)
    table.set_state("height", 10)
    blocks: list[int] = []

    async def notify(event: str, fields: dict, key: str | None, also) -> None:
        await asyncio.sleep(0)  # storing and sending an event lets other tasks run, as the daemon's notify does
        also(None)
        blocks.append(fields["height"])

    poller = Poller(None, None, Reporter(notify, RequestStore(db), table, 2), 1.0)  # type: ignore[arg-type]
    await asyncio.gather(poller.reach(14), poller.reach(13), poller.reach(15), poller.reach(12))
    assert blocks == [11, 12, 13, 14, 15] and poller.chain_height == 15 == table.state("height")
    await poller.reach(9)  # a wallet behind the chain
    assert poller.chain_height == 15 and blocks[-1] == 15


def test_get_transaction_without_a_wallet_counts_monerods_confirmations() -> None:
    mined = {"tx_hash": "ab" * 32, "in_pool": False, "block_height": 40, "confirmations": 5}
    assert monerod_transaction(mined, chain_height=43)["confirmations"] == 5  # the daemon's height lags monerod's
    assert monerod_transaction({**mined, "confirmations": None}, chain_height=43)["confirmations"] == 3  # no field
    pool = {"tx_hash": "ab" * 32, "in_pool": True, "block_height": 0, "confirmations": 0}
    assert monerod_transaction(pool, chain_height=43) == {
        "tx_hash": "ab" * 32,
        "height": None,
        "in_pool": True,
        "confirmations": 0,
    }
