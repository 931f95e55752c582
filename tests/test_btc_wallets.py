"""BTC wallets by xpub on regtest with the real Electrum library: keys, persistence, single-flight loading."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from tests.btc_support import (
    MAINNET_XPUB,
    MAINNET_ZPUB,
    btc_daemon,
    call_error,
    key_pair,
    make_seed,
    random_vpub,
    raw_payment,
)


@pytest.mark.parametrize(
    ("xtype", "prefixes", "address_start"),
    [
        ("p2wpkh", ("vpub", "vprv"), "bcrt1q"),  # the regtest form of zpub
        ("p2wpkh-p2sh", ("upub", "uprv"), "2"),  # the regtest form of ypub
        ("standard", ("tpub", "tprv"), ("m", "n")),  # the regtest form of xpub
    ],
)
async def test_master_keys_load_watch_only_and_spending_wallets(xtype, prefixes, address_start):
    async with btc_daemon() as d:
        keys = key_pair(7, xtype)
        assert keys.xpub.startswith(prefixes[0]) and keys.xprv.startswith(prefixes[1])
        expected = keys.first_address()
        assert expected.startswith(address_start)
        for key in (keys.xpub, keys.xprv):
            addresses = await d.call("listaddresses", xpub=key)
            assert addresses[0] == expected
            assert await d.call("getmpk", xpub=key) == keys.xpub
        # The private key's wallet signs; the watch-only one cannot, and says so.
        signature = await d.call("signmessage", expected, "hello", xpub=keys.xprv)
        assert await d.call("verifymessage", expected, signature, "hello") is True
        code, message = await call_error(d, "signmessage", expected, "hello", xpub=keys.xpub)
        assert (code, message) == (-32019, "signmessage needs private keys and this is a watch-only wallet")


async def test_seed_wallet_restores_its_keys():
    async with btc_daemon() as d:
        seed = make_seed("segwit")
        assert await d.call("validatekey", seed) is True
        mpk = await d.call("getmpk", xpub=seed)
        assert mpk.startswith("vpub")
        # The seed's wallet and its master public key's watch-only wallet share addresses.
        assert await d.call("listaddresses", xpub=seed) == await d.call("listaddresses", xpub=mpk)
        assert (await d.call("getseed", xpub=seed)) == seed
        address = (await d.call("listaddresses", xpub=seed))[0]
        signature = await d.call("signmessage", address, "paid", xpub=seed)
        assert await d.call("verifymessage", address, signature, "paid") is True


@pytest.mark.parametrize("key", ["not a key at all", MAINNET_XPUB, MAINNET_ZPUB, "vpub" + "1" * 107])
async def test_bad_key_or_key_of_another_network_is_32005_with_electrums_reason(key):
    async with btc_daemon() as d:
        code, message = await call_error(d, "getbalance", xpub=key)
        assert code == -32005
        assert "Seed or key not recognized" in message
        assert key not in message  # a key (perhaps a secret) is never echoed
        assert await d.call("validatekey", key) is False
        assert d.daemon.wallets == {}
        # The daemon keeps serving.
        assert (await d.call("getbalance", xpub=random_vpub()))["confirmed"] == "0"


async def test_requests_survive_a_restart_on_the_same_data_path(tmp_path):
    async with btc_daemon(data_path=tmp_path) as d:
        vpub = key_pair(11, "p2wpkh").xpub  # keys are made while Electrum is on regtest
        created = await d.call("add_request", amount="0.0123", memo="order 42", expiry=3600, force=True, xpub=vpub)
        assert created["amount_BTC"] == "0.0123"
        assert created["message"] == "order 42"
        by_address = await d.call("get_request", created["address"], xpub=vpub)
        by_id = await d.call("get_request", created["request_id"], xpub=vpub)
        assert by_address == by_id
        assert by_id["address"] == created["address"] and by_id["status"] == 0
        listed = await d.call("list_requests", xpub=vpub)
        assert [r["request_id"] for r in listed] == [created["request_id"]]
        addresses_before = await d.call("listaddresses", xpub=vpub)
    async with btc_daemon(data_path=tmp_path) as d:
        again = await d.call("get_request", created["address"], xpub=vpub)
        assert again["request_id"] == created["request_id"]
        assert again["amount_BTC"] == "0.0123" and again["message"] == "order 42"
        assert [r["request_id"] for r in await d.call("list_requests", xpub=vpub)] == [created["request_id"]]
        assert await d.call("listaddresses", xpub=vpub) == addresses_before
        # The next request takes the next unused address, not the reserved one.
        second = await d.call("add_request", amount="1", xpub=vpub)
        assert second["address"] != created["address"]


async def test_diskless_wallet_leaves_no_file_and_is_forgotten_on_close(tmp_path):
    async with btc_daemon(data_path=tmp_path) as d:
        identity = {"xpub": key_pair(12, "p2wpkh").xpub, "diskless": True}
        created = await d.call("add_request", amount="0.5", force=True, xpub=identity)
        wallet_dir = d.daemon.wallet_dir()
        assert not wallet_dir.exists() or list(wallet_dir.iterdir()) == []
        assert await d.call("close_wallet", xpub=identity) is True
        assert await d.call("close_wallet", xpub=identity) is False
        assert await d.call("list_requests", xpub=identity) == []  # memory only: the request is gone
        assert created["address"]


async def test_wallet_files_do_not_name_a_seed(tmp_path):
    seed = make_seed("standard")
    async with btc_daemon(data_path=tmp_path) as d:
        await d.call("getbalance", xpub=seed)
        wallet_files = [p.name for p in d.daemon.wallet_dir().iterdir()]
        assert wallet_files == [hashlib.sha256(seed.encode()).hexdigest()]
        assert list(d.daemon.wallets) == ["sha256:" + wallet_files[0]]


async def test_fifty_concurrent_first_requests_load_the_wallet_once():
    async with btc_daemon() as d:
        vpub = random_vpub()
        results = await asyncio.gather(*(d.call("getbalance", xpub=vpub) for _ in range(50)))
        assert results == [{"confirmed": "0"}] * 50
        assert d.daemon.wallet_loads == 1
        assert list(d.daemon.wallets) == [vpub]


async def test_close_wallet_unloads_and_the_next_call_reloads_from_disk(tmp_path):
    async with btc_daemon(data_path=tmp_path) as d:
        vpub = key_pair(13, "p2wpkh").xpub
        created = await d.call("add_request", amount="0.2", force=True, xpub=vpub)
        assert await d.call("close_wallet", vpub) is True  # by its wallet key
        assert vpub not in d.daemon.wallets
        assert (await d.call("get_request", created["address"], xpub=vpub))["amount_BTC"] == "0.2"
        assert d.daemon.wallet_loads == 2


async def test_local_payment_emits_new_transaction_and_new_payment_once():
    async with btc_daemon() as d:
        vpub = key_pair(14, "p2wpkh").xpub
        request = await d.call("add_request", amount="0.5", force=True, xpub=vpub)
        raw = raw_payment(request["address"], 50_000_000)
        txid = await d.call("addtransaction", raw, xpub=vpub)
        assert txid == await d.call("get_tx_hash", raw)
        updates = []
        for _ in range(100):  # Electrum delivers its callbacks on the loop, just after the call
            updates += await d.call("get_updates", xpub=vpub)
            if {u["event"] for u in updates} >= {"new_transaction", "new_payment"}:
                break
            await asyncio.sleep(0.02)
        by_event = {u["event"]: u for u in updates}
        assert by_event["new_transaction"]["tx"] == txid
        payment = by_event["new_payment"]
        assert payment["address"] == request["address"]
        assert payment["tx_hashes"] == [txid]
        assert payment["sent_amount"] == "0.5"
        assert payment["status"] == 7 and payment["status_str"]  # Electrum's PR_UNCONFIRMED
        assert (await d.call("get_request", request["address"], xpub=vpub))["status"] == 7
        assert await d.call("addtransaction", raw, xpub=vpub) == txid  # Electrum accepts it again...
        await asyncio.sleep(0.1)
        assert await d.call("get_updates", xpub=vpub) == []  # ...but nothing is reported twice


def one_character_typos(key: str) -> list[str]:
    """Every position of ``key`` changed to every third base58 digit: ~2,000 typos of a 111-character key."""
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    return [key[:i] + c + key[i + 1 :] for i in range(len(key)) for c in alphabet[::3] if c != key[i]]


async def test_mistyped_extended_keys_are_refused_never_loaded_as_seed_wallets(tmp_path):
    async with btc_daemon(data_path=tmp_path) as d:
        from electrum import keystore

        vpub = key_pair(11, "p2wpkh").xpub
        typos = one_character_typos(vpub)
        # The danger is real: Electrum takes some of these typos for seeds (1 in ~256 strings).
        seed_shaped = [typo for typo in typos if keystore.is_seed(typo)]
        assert len(typos) > 2000 and seed_shaped
        answers = [await d.call("validatekey", typo) for typo in typos]
        assert not any(answers)
        for typo in [*seed_shaped, " " + seed_shaped[0], seed_shaped[0].replace("vpub", "tprv", 1)]:
            code, message = await call_error(d, "getbalance", xpub=typo)
            assert code == -32005 and "not a valid extended key" in message
            assert typo.strip() not in message
        assert d.daemon.wallets == {} and d.daemon.wallet_loads == 0
        assert not list(tmp_path.rglob("wallets/*"))
        # The key itself, an Electrum seed and a master private key still load.
        for key in (vpub, make_seed("segwit"), key_pair(11, "p2wpkh").xprv):
            assert await d.call("validatekey", key) is True
            assert (await d.call("getbalance", xpub=key))["confirmed"] == "0"
