"""The BCH daemon against the real Electron Cash library: skipped, with the reason, where it is not installed.

Electron Cash is on no registry this project reaches (README, "BCH daemon"), so CI skips this module; a developer
runs it in a virtualenv where Electron Cash is installed (the commands are in the README). The end-to-end payment
runs on the regtest stack in its Bitcoin Cash mode (tests/regtest_fixtures.py's ``bch_regtest_stack``): our
regtest node without segwit (no witness, no witness commitment in coinbases) indexed by a real ElectrumX with
COIN=BitcoinCash NET=regtest. BCH and BTC regtest share genesis, headers and legacy addresses, and the node checks
no scripts, so Electron Cash's signatures (SIGHASH_FORKID) are accepted. Blocks are mined to legacy base58 addresses
(the node does not decode CashAddr); the funder's coins are a coinbase mined to its own address, which Electron Cash
downloads, verifies and lets mature like any other.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "electroncash", reason="Electron Cash is not installed (README, 'BCH daemon'): BCH tests need the real library"
)

from bitcart import BCH
from bitcart.errors import errors as sdk_errors

from daemons.bch import BCHDaemon
from daemons.jsonrpc import RPCError
from daemons.payment_requests import REQUEST_FIELDS
from regtest.stack import RegtestStack, electrumx_python
from tests.support import running_daemon

# Electrum-type seeds and the regtest master public key of the first (made once with Electron Cash itself).
SEED = "brief ritual edit faint shell gown tenant deal meat find cluster ethics"
XPUB = "tpubD6NzVbkrYhZ4YNVwYbVSbTcDMBEr9YRK87Bj5uTxfvKxNM3zt6bwZzrEwpf5eg5XB5U7muAqvBnHmQ4r5Er2KB9JpjDLFtMWPJr5tXghSkf"
FUNDER_SEED = "sand trial sure observe fortune mimic feature must sure mother despair city"
OFFLINE = {"NETWORK": "regtest", "OFFLINE": "true"}
BURN = "mgD9q6aArv4BrfL6rFRQZypp21ZBY2QfYF"  # a regtest legacy address for blocks nobody here spends


def legacy(address: str) -> str:
    from electroncash.address import Address

    return Address.from_string(address).to_full_string(Address.FMT_LEGACY)


def is_cashaddr(address: str) -> bool:
    from electroncash.address import Address

    return Address.from_string(address).to_ui_string() == address and address[0] in "qp"


async def error_of(d: Any, method: str, *args: Any, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(RPCError) as info:
        await d.call(method, *args, **kwargs)
    return info.value.code, info.value.message


async def test_wallets_from_xpub_and_seed_share_cashaddr_addresses_and_accept_legacy_input():
    async with running_daemon(BCHDaemon, OFFLINE) as d:
        from_xpub = await d.call("getunusedaddress", xpub=XPUB)
        assert is_cashaddr(from_xpub)
        assert await d.call("getunusedaddress", xpub=SEED) == from_xpub
        assert await d.call("ismine", legacy(from_xpub), xpub=XPUB) is True
        assert await d.call("validateaddress", legacy(from_xpub)) is True
        assert (await error_of(d, "getaddressbalance_wallet", "nonsense", xpub=XPUB))[0] == -32004
        assert await d.call("getmpk", xpub=SEED) == XPUB
        assert len(await d.call("listaddresses", xpub=XPUB)) >= 20
        assert await d.call("getbalance", xpub=XPUB) == {"confirmed": "0"}
        # A seed is never a wallet key: it is hashed before it names a wallet or a file.
        assert d.daemon.wallets.keys() == {XPUB, "sha256:" + hashlib.sha256(SEED.encode()).hexdigest()}
        assert all(SEED not in p.name for p in d.daemon.wallet_dir().iterdir())
        code, message = await error_of(d, "getbalance", xpub="not a key")
        assert code == -32005 and "Seed or key not recognized" in message
        assert (await error_of(d, "getbalance"))[0] == -32000


async def test_getinfo_offline_has_the_btc_daemons_fields_with_electron_cash_values():
    """getinfo's offline fields and its tail (offline, synchronized, total_wallets) are shared with the BTC daemon."""
    async with running_daemon(BCHDaemon, OFFLINE) as d:
        await d.call("getbalance", xpub=XPUB)
        info = await d.call("getinfo")
        assert list(info) == [
            "network", "path", "server", "blockchain_height", "server_height", "spv_nodes", "connected",
            "auto_connect", "version", "fee_per_kb", "offline", "synchronized", "total_wallets",
        ]  # fmt: skip
        assert {k: v for k, v in info.items() if k not in ("path", "fee_per_kb")} == {
            "network": "regtest",
            "server": "",
            "blockchain_height": 0,
            "server_height": 0,
            "spv_nodes": 0,
            "connected": False,
            "auto_connect": True,
            "version": d.daemon.electrum.version.PACKAGE_VERSION,
            "offline": True,
            "synchronized": False,
            "total_wallets": 1,
        }
        assert info["path"] == d.daemon.electrum_config.path and isinstance(info["fee_per_kb"], int)


async def test_add_request_and_get_request_through_the_bitcart_sdk():
    async with running_daemon(BCHDaemon, OFFLINE) as d:
        coin = BCH(rpc_url=d.url, xpub=XPUB)
        try:
            created = await coin.add_request(0.5, "coffee", expire=20)
            address = created["address"]
            assert is_cashaddr(address)
            assert str(created["amount (BCH)"]) == "0.5" and created["amount"] == 50_000_000
            assert (created["memo"], created["exp"], created["status"]) == ("coffee", 1200, 0)
            assert created["URI"] == f"bchreg:{address}?amount=0.5" and created["sent_amount"] == "0"
            fetched = await coin.get_request(address)
            assert fetched["address"] == address and fetched["id"] == created["id"]
            assert (await d.call("getrequest", legacy(address), xpub=XPUB))["id"] == created["id"]
            assert [r["address"] for r in await d.call("listrequests", xpub=XPUB)] == [address]
            with pytest.raises(sdk_errors.RequestNotFoundError):
                await coin.get_request(await d.call("createnewaddress", xpub=XPUB))
            with pytest.raises(sdk_errors.InvalidAddressError):
                await coin.get_request("bchreg:not-an-address")
            assert (await error_of(d, "addrequest", "-1", xpub=XPUB))[0] == -32602
            assert await coin.history() == []
        finally:
            await coin.server.session.close()


async def test_help_spec_sdk_helpers_and_electron_cash_errors_mapped_by_the_spec():
    from electroncash.commands import known_commands

    async with running_daemon(BCHDaemon, OFFLINE) as d:
        names = set(await d.call("help"))
        assert set(known_commands) - d.daemon.EXCLUDED_COMMANDS <= names
        assert {"stop", "load_wallet", "notify", "get_invoice"}.isdisjoint(names)
        payto = await d.call("help", "payto")
        assert payto["params"][:2] == ["destination", "amount"] and payto["requires_wallet"] is True
        sdk = BCH(rpc_url=d.url, xpub=XPUB)
        try:
            assert await sdk.validate_key(XPUB) is True and await sdk.validate_key(SEED) is True
            assert await sdk.validate_key("definitely not a key") is False
            assert await sdk.balance() == {"confirmed": 0, "unconfirmed": 0, "unmatured": 0, "lightning": 0}
            assert (await sdk.spec)["capabilities"]["lightning"] is False
            with pytest.raises(sdk_errors.LoadingWalletError):
                await BCH(rpc_url=d.url, xpub="not a key").balance()
        finally:
            await sdk.server.session.close()
        assert await d.call("get_default_fee", 250) == "0.0000025"
        assert await d.call("recommended_fee", 2) == 1000
        # Electron Cash raises bare BaseExceptions and its own errors: each reaches the client as the spec's code.
        address = await d.call("getunusedaddress", xpub=SEED)
        assert (await error_of(d, "payto", address, "0.1", xpub=SEED))[0] == -32006
        assert (await error_of(d, "payto", "nonsense", "0.1", xpub=SEED))[0] == -32004
        assert (await error_of(d, "gettransaction", "00" * 32, xpub=SEED))[0] == -32013
        assert (await error_of(d, "get_tx_size", "zz"))[0] == -32017
        assert (await error_of(d, "get_used_fee", "00" * 32, xpub=SEED))[0] == -32002
        assert (await error_of(d, "stop"))[0] == -32601
        assert await d.call("getbalance", xpub=SEED) == {"confirmed": "0"}  # still serving


async def test_requests_survive_a_restart_and_diskless_wallets_leave_no_file(tmp_path):
    async with running_daemon(BCHDaemon, OFFLINE, data_path=tmp_path) as d:
        address = (await d.call("add_request", "1.25", "rent", 3600, xpub=XPUB))["address"]
        assert (await d.call("addrequest", "2", xpub={"xpub": SEED, "diskless": True}))["amount (BCH)"] == "2"
        files = sorted(p.name for p in d.daemon.wallet_dir().iterdir())
    assert len(files) == 1
    async with running_daemon(BCHDaemon, OFFLINE, data_path=tmp_path) as d:
        request = await d.call("get_request", address, xpub=XPUB)
        assert (request["memo"], request["amount (BCH)"], request["status"]) == ("rent", "1.25", 0)
        assert await d.call("listrequests", xpub={"xpub": SEED, "diskless": True}) == []


async def test_a_listener_is_watching_scoping_a_socket_or_polling_loads_the_electron_cash_wallet(caplog):
    caplog.set_level(logging.DEBUG)
    diskless = {"xpub": SEED, "diskless": True}
    seed_key = "sha256:" + hashlib.sha256(SEED.encode()).hexdigest()
    async with running_daemon(BCHDaemon, OFFLINE) as d, d.ws_connect() as ws:
        await ws.send_json({"xpub": XPUB})
        await ws.send_json({"xpubs": [XPUB, diskless]})
        await ws.send_json({"xpub": "not a key"})
        error = (await ws.receive_json(timeout=30))["error"]  # the socket handles its messages in order
        assert error["code"] == -32005 and "Seed or key not recognized" in error["message"]
        assert "not a key" not in error["message"]  # what was sent as a key is never echoed
        # Each wallet built once (XPUB was scoped twice), plus the failed attempt at "not a key".
        assert d.daemon.wallets.keys() == {XPUB, seed_key} and d.daemon.wallet_loads == 3
        assert [p.name for p in d.daemon.wallet_dir().iterdir()] == [d.daemon.wallet_path(XPUB).name]
        # The socket's wallets are the ones calls use: nothing is built again.
        address = (await d.call("add_request", "0.25", xpub=XPUB))["address"]
        assert await d.call("getunusedaddress", xpub=diskless) == address  # same keys, the diskless wallet
        assert await d.call("get_updates", xpub=FUNDER_SEED) == []
        assert len(d.daemon.wallets) == 3 and d.daemon.wallet_loads == 4
        assert await d.call("getbalance", xpub=XPUB) == {"confirmed": "0"}  # still serving
    assert SEED not in caplog.text and FUNDER_SEED not in caplog.text


async def test_a_wallet_with_an_open_request_is_kept_under_max_wallets():
    async with running_daemon(BCHDaemon, {**OFFLINE, "MAX_WALLETS": "1", "WALLET_IDLE_TIMEOUT": "0"}) as d:
        await d.call("getbalance", xpub=SEED)
        await d.call("getbalance", xpub=XPUB)  # the seed's wallet, no request, made room
        assert list(d.daemon.wallets) == [XPUB]
        await d.call("add_request", "0.1", xpub=XPUB)
        code, message = await error_of(d, "getbalance", xpub=SEED)
        assert code == -32051 and "BCH_MAX_WALLETS=1" in message
        assert list(d.daemon.wallets) == [XPUB]


async def test_mistyped_extended_keys_are_refused_by_electron_cash_daemon_too():
    from electroncash import keystore, networks

    networks.set_regtest()
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    typos = [XPUB[:i] + c + XPUB[i + 1 :] for i in range(4, len(XPUB)) for c in alphabet[::9] if c != XPUB[i]]
    # Six of the 17 one-character typos of XPUB (of 6,099) that Electron Cash alone takes for seeds.
    seed_shaped = [
        XPUB[:i] + c + XPUB[i + 1 :] for i, c in ((11, "H"), (11, "h"), (15, "V"), (15, "v"), (20, "L"), (30, "U"))
    ]
    assert all(keystore.is_seed(typo) for typo in seed_shaped)
    async with running_daemon(BCHDaemon, OFFLINE) as d:
        assert await d.call("validatekey", XPUB) is True and await d.call("validatekey", SEED) is True
        assert not any([await d.call("validatekey", typo) for typo in [*seed_shaped, *typos]])
        for typo in seed_shaped:
            code, message = await error_of(d, "getbalance", xpub=typo)
            assert code == -32005 and "not a valid extended key" in message
        assert d.daemon.wallets == {}


def raw_payment_to(address: str, satoshis: int) -> str:
    """A version-2 transaction paying ``satoshis`` to a P2PKH ``address`` from an unknown outpoint (never broadcast)."""
    import os

    from electroncash.address import Address

    script = bytes.fromhex("76a914") + Address.from_string(address).hash160 + bytes.fromhex("88ac")
    parts = [(2).to_bytes(4, "little"), b"\x01", os.urandom(32), (0).to_bytes(4, "little"), b"\x00"]
    parts += [b"\xff\xff\xff\xff", b"\x01", satoshis.to_bytes(8, "little"), bytes([len(script)]), script]
    return b"".join([*parts, (0).to_bytes(4, "little")]).hex()


async def test_what_the_wallet_file_holds_and_was_never_reported_is_reported_once_on_load(tmp_path):
    """Electron Cash fires no callback for what its wallet file already holds (here a transaction added
    locally, which fires none at all): loading the wallet reconciles it with what was reported."""
    async with running_daemon(BCHDaemon, OFFLINE, data_path=tmp_path) as d:
        address = (await d.call("add_request", "0.3", xpub=XPUB))["address"]
        txid = await d.call("addtransaction", raw_payment_to(address, 30_000_000), xpub=XPUB)
        await d.call("close_wallet", xpub=XPUB)
    for _ in range(2):  # a restart reports it once, the next one finds everything reported
        async with running_daemon(BCHDaemon, OFFLINE, data_path=tmp_path) as d:
            events = [e for e in await d.call("get_updates", xpub=XPUB, since=0) if e["event"] != "new_block"]
            # Electron Cash counts a request paid from the address's server history only, which a local
            # transaction is not in: the request stays Pending, so a transaction event is all there is.
            assert (await d.call("get_request", address, xpub=XPUB))["status"] == 0
            assert [(e["event"], e["tx"]) for e in events] == [("new_transaction", txid)]


@pytest.fixture
def bch_stack(request: pytest.FixtureRequest) -> RegtestStack:
    """The shared Bitcoin Cash regtest stack; skipped where ElectrumX's virtualenv is missing (make electrumx-venv)."""
    if not electrumx_python().exists():
        pytest.skip(f"the regtest stack is not installed: {electrumx_python()} not found")
    return request.getfixturevalue("bch_regtest_stack")


class Pushed:
    """The events a websocket pushed, kept in arrival order so a test can wait for one in any order."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.events = ws, []

    async def wait(self, wanted: str, timeout: float = 90.0, **fields: Any) -> dict[str, Any]:
        """The first pushed event named ``wanted`` whose fields include ``fields``, waiting for it if needed."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if event["event"] == wanted and all(event.get(k) == v for k, v in fields.items()):
                        return event
                self.events += (await self.ws.receive_json())["updates"]


async def fund(stack: RegtestStack, address: str) -> int:
    """Mine a block whose coinbase pays ``address``, then let it mature; returns the tip's height.

    Electron Cash counts a coinbase as spendable once the next block would be 100 deeper (as the node does), and it
    checks the regtest checkpoint at height 100, so the chain is longer than that before the wallet connects."""
    await stack.amine(1, legacy(address))
    await stack.amine(100, BURN)
    return await stack.arpc("getblockcount")


async def test_payment_on_a_bch_regtest_chain_emits_the_contract_events(bch_stack: RegtestStack, tmp_path: Path):
    from electroncash import keystore, networks
    from electroncash.address import Address

    networks.set_regtest()
    first_pubkey = keystore.from_seed(FUNDER_SEED, None).derive_pubkey(False, 0)
    tip = await fund(bch_stack, Address.from_pubkey(first_pubkey).to_ui_string())
    env = {"NETWORK": "regtest", "SERVER": bch_stack.electrum_server, "ONESERVER": "true", "SYNC_TIMEOUT": "90"}
    async with running_daemon(BCHDaemon, env, data_path=tmp_path) as d, d.ws_connect() as ws:
        await ws.send_json({"xpubs": [XPUB]})
        pushed = Pushed(ws)
        request = await d.call("add_request", "1.5", "order 1", xpub=XPUB)
        assert await d.call("is_synchronized", xpub=FUNDER_SEED) is True
        # The coinbase, read from ElectrumX and verified by Electron Cash, has matured: all of it is spendable.
        assert await d.call("getbalance", xpub=FUNDER_SEED) == {"confirmed": "50"}

        unsent = await d.call("payto", request["address"], "0.1", xpub=FUNDER_SEED)  # signed, not broadcast
        assert unsent["complete"] is True and len(await d.call("get_tx_hash", unsent)) == 64
        assert 0 < await d.call("get_tx_size", unsent["hex"]) == len(unsent["hex"]) // 2
        funder_sdk = BCH(rpc_url=d.url, xpub=FUNDER_SEED)
        try:  # the SDK's pay_to: payto (to a legacy address here), then broadcast of payto's result
            txid = await funder_sdk.pay_to(legacy(request["address"]), Decimal("1.5"))
        finally:
            await funder_sdk.server.session.close()
        await pushed.wait("new_transaction", tx=txid)
        unconfirmed = await pushed.wait("new_payment", status=7)
        assert unconfirmed["address"] == request["address"] and unconfirmed["status_str"] == "Unconfirmed"
        assert unconfirmed["tx_hashes"] == [txid] and unconfirmed["sent_amount"] == "1.5"

        await bch_stack.amine(1, BURN)
        await pushed.wait("new_block", height=tip + 1)
        assert (await pushed.wait("verified_tx", tx=txid))["height"] == tip + 1
        paid = await pushed.wait("new_payment", status=3)
        assert (paid["status_str"], paid["sent_amount"]) == ("Paid", "1.5")
        done = await d.call("get_request", request["address"], xpub=XPUB)
        assert (done["status"], done["sent_amount"], done["tx_hashes"]) == (3, "1.5", [txid])
        assert (done["status_str"], done["confirmations"]) == ("Paid", 1)
        assert (await d.call("get_transaction", txid, xpub=XPUB))["confirmations"] == 1
        balance = {"confirmed": "1.5", "unconfirmed": "0", "unmatured": "0"}  # CashAddr or legacy: one address
        assert await d.call("getaddressbalance_wallet", request["address"], xpub=XPUB) == balance
        assert await d.call("getaddressbalance_wallet", legacy(request["address"]), xpub=XPUB) == balance
        events = await d.call("get_updates", xpub=XPUB, since=0)
    names = [e["event"] for e in events]
    assert names.count("new_transaction") == 1 and names.count("verified_tx") == 1
    assert [e["status"] for e in events if e["event"] == "new_payment"] == [7, 3]
    # After a restart nothing is reported twice: the listener reconnects from the last event it saw (its scope
    # loads the wallet, which syncs again), and the next block's event (delivered in order behind anything the
    # resync reported) is the only new one.
    async with running_daemon(BCHDaemon, env, data_path=tmp_path) as d, d.ws_connect() as ws:
        await ws.send_json({"xpub": XPUB, "since": events[-1]["id"]})
        pushed = Pushed(ws)
        assert await d.call("is_synchronized", xpub=XPUB) is True
        await bch_stack.amine(1, BURN)
        await pushed.wait("new_block", height=tip + 2)
        assert [e for e in pushed.events if e["event"] != "new_block"] == []
        later = await d.call("get_updates", xpub=XPUB, since=events[-1]["id"])
        assert [e for e in later if e["event"] != "new_block"] == []


async def test_events_lost_before_they_were_stored_are_reported_once_when_the_wallet_loads_again(
    bch_stack: RegtestStack, tmp_path: Path
):
    """The event log refuses every write (a full disk) while a payment arrives and is mined: Electron Cash keeps
    the payment in its wallet file, the events are lost. Loading the wallet again (offline, so no server can
    make Electron Cash fire anything) reports each of them, once."""
    import sqlite3

    from electroncash import keystore, networks
    from electroncash.address import Address

    networks.set_regtest()
    first_pubkey = keystore.from_seed(FUNDER_SEED, None).derive_pubkey(False, 0)
    await fund(bch_stack, Address.from_pubkey(first_pubkey).to_ui_string())
    env = {"NETWORK": "regtest", "SERVER": bch_stack.electrum_server, "ONESERVER": "true", "SYNC_TIMEOUT": "90"}
    import os

    from electroncash import bitcoin

    watcher = bitcoin.bip32_root(os.urandom(32), "standard")[1]  # the merchant's watch-only wallet, new each run
    async with running_daemon(BCHDaemon, env, data_path=tmp_path) as d:
        request = await d.call("add_request", "0.7", "lost", xpub=watcher)
        assert await d.call("is_synchronized", xpub=FUNDER_SEED) is True

        def disk_full(*args: Any, **kwargs: Any) -> Any:
            raise sqlite3.OperationalError("database or disk is full")

        d.daemon.store.append = disk_full
        txid = await d.call("broadcast", await d.call("payto", request["address"], "0.7", xpub=FUNDER_SEED))
        await bch_stack.amine(1, BURN)
        height = await bch_stack.arpc("getblockcount")
        async with asyncio.timeout(90):
            while (await d.call("get_request", request["address"], xpub=watcher))["status"] != 3:
                await asyncio.sleep(0.1)
        del d.daemon.store.append
        assert [e for e in await d.call("get_updates", xpub=watcher, since=0) if e["event"] != "new_block"] == []
    for _ in range(2):  # the first load reports what was lost, the next finds it all reported
        async with running_daemon(BCHDaemon, OFFLINE, data_path=tmp_path) as d:
            events = [e for e in await d.call("get_updates", xpub=watcher, since=0) if e["event"] != "new_block"]
            assert [e["tx"] for e in events if e["event"] == "new_transaction"] == [txid]
            assert [(e["tx"], e["height"]) for e in events if e["event"] == "verified_tx"] == [(txid, height)]
            payments = [e for e in events if e["event"] == "new_payment"]
            assert [(p["status"], p["tx_hashes"], p["sent_amount"]) for p in payments] == [(3, [txid], "0.7")]


async def test_sdk_requests_errors_and_merchant_calls_read_as_on_every_coin():
    """Issue 13 on BCH: request fields and one status text, the SDK's float expiry, error names, merchant calls."""
    async with running_daemon(BCHDaemon, OFFLINE) as d:
        coin = BCH(rpc_url=d.url, xpub=XPUB)
        try:
            for amount, expire in ((Decimal("0.5"), 15), (0.25, 0.5), ("0.125", 15.0), (1, 20)):
                created = await coin.add_request(amount, "order", expire=expire)  # expiration=30.0 etc.: a float
                assert set(REQUEST_FIELDS) <= created.keys()
                assert created["amount (BCH)"] == Decimal(str(amount)) and created["expiry"] == int(60 * expire)
                assert (created["status"], created["status_str"], created["confirmations"]) == (0, "Unpaid", 0)
                assert created["expiration"] == created["timestamp"] + created["expiry"]
                by_id = await d.call("get_request", created["request_id"], xpub=XPUB)
                assert by_id["address"] == created["address"]
            address = created["address"]
            assert await coin.server.normalizeaddress(legacy(address)) == address
            assert (await coin.server.get_tokens(), await coin.server.getabi()) == ({}, [])
            assert await coin.server.validatecontract(address) is False
            assert await coin.server.setrequestaddress(created["request_id"], address) is False
            with pytest.raises(sdk_errors.InvalidAddressError):
                await coin.server.normalizeaddress("nonsense")
            with pytest.raises(sdk_errors.MethodNotFoundError):  # Electron Cash has no PSBT
                await coin.server.finalizepsbt("cHNidP8=")
        finally:
            await coin.server.session.close()
        anonymous = BCH(rpc_url=d.url)
        try:
            with pytest.raises(sdk_errors.WalletNotLoadedError):
                await anonymous.server.getbalance()
        finally:
            await anonymous.server.session.close()


async def test_request_paid_while_the_daemon_was_down_reads_paid_and_payto_spends_no_spent_coin(
    bch_stack: RegtestStack, tmp_path: Path
):
    """Issue 13 item 4: right after a restart, history-dependent methods wait for the wallet to catch up."""
    from electroncash import keystore, networks
    from electroncash.address import Address
    from electroncash.mnemonic import Mnemonic_Electrum

    networks.set_regtest()
    funder = Mnemonic_Electrum("en").make_seed()
    await fund(bch_stack, Address.from_pubkey(keystore.from_seed(funder, None).derive_pubkey(False, 0)).to_ui_string())
    env = {"NETWORK": "regtest", "SERVER": bch_stack.electrum_server, "ONESERVER": "true", "SYNC_TIMEOUT": "90"}
    async with running_daemon(BCHDaemon, env, data_path=tmp_path) as d:
        request = await d.call("add_request", "1.5", "paid while down", xpub=XPUB)
        unsent = await d.call("payto", request["address"], "1.5", xpub=funder)  # signed, not broadcast
    await bch_stack.arpc("sendrawtransaction", unsent["hex"])
    await bch_stack.amine(1, BURN)
    async with running_daemon(BCHDaemon, env, data_path=tmp_path) as d:
        paid = await d.call("get_request", request["address"], xpub=XPUB)  # the wallet loads from its file here
        assert (paid["status"], paid["status_str"], paid["confirmations"], paid["sent_amount"]) == (3, "Paid", 1, "1.5")
        # from the change, not the coin spent while the daemon was down (the node would refuse that)
        again = await d.call("payto", legacy(request["address"]), "1", xpub=funder)
        assert len(await bch_stack.arpc("sendrawtransaction", again["hex"])) == 64


async def test_a_full_disk_fails_add_request_cleanly_and_shutdown_logs_each_wallet_once(small_disk, caplog):
    caplog.set_level(logging.INFO)
    data = small_disk.mount / "bch"
    async with running_daemon(BCHDaemon, OFFLINE, data_path=data) as d:
        await d.call("add_request", "0.1", "before", xpub=XPUB)
        small_disk.fill()
        code, message = await error_of(d, "add_request", "0.2", "while full", xpub=XPUB)
        assert code == -32050 and "No space left on device" in message
        assert [r["memo"] for r in await d.call("listrequests", xpub=XPUB)] == ["before"]  # nothing half-made
        async with d.session.get(d.url + "/health") as response:
            assert response.status == 503 and (await response.json())["status"] == "storage_unavailable"
        caplog.clear()
    failures = [r.getMessage() for r in caplog.records if "could not be saved" in r.getMessage()]
    assert failures == [f"wallet {XPUB} could not be saved and unloaded: No space left on device"]
    small_disk.free()
    async with running_daemon(BCHDaemon, OFFLINE, data_path=data) as d:
        assert [r["memo"] for r in await d.call("listrequests", xpub=XPUB)] == ["before"]
