"""The XMR scanner's pieces that need no monerod: view-key arithmetic, tx_extra parsing, the durable scan state,
and a view-only wallet served by the scanner while no backend is reachable.

The arithmetic is checked two ways: subaddresses against the monero library's own derivation, and outputs
made here the way a sender makes them (``r·C`` on the sender's side, ``8·a·R`` on ours) — the real transactions
of monero-wallet-rpc are scanned in tests/test_xmr_scanner.py.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from pathlib import Path

import pytest

from daemons import xmr_scan_crypto as crypto
from daemons.xmr import XMRDaemon
from daemons.xmr_requests import RequestStore
from daemons.xmr_scan_crypto import Found, Output, ParsedTx, parse_extra, parse_tx, scan_tx
from daemons.xmr_scan_store import ScanStore, ScanWallet, Sealer
from tests.monero_fixtures import Keys, free_port
from tests.support import running_daemon

nacl = crypto.load_crypto()


def scalar() -> bytes:
    return crypto.hash_to_scalar(os.urandom(32))


class Wallet:
    """A wallet made offline by the monero library, with its spend-key table as the scanner builds it."""

    def __init__(self, minors: int = 10) -> None:
        from monero.address import address

        self.keys = Keys.random()
        self.view = bytes.fromhex(self.keys.view_key)
        self.spend = bytes.fromhex(address(self.keys.address).spend_key())
        self.table = {crypto.subaddress_spend_key(self.view, self.spend, 0, m): m for m in range(minors)}

    def sub(self, minor: int) -> tuple[bytes, bytes]:
        """(spend, view) public keys of subaddress (0, minor)."""
        spend = crypto.subaddress_spend_key(self.view, self.spend, 0, minor)
        view = nacl.mult_base(self.view) if minor == 0 else nacl.mult(self.view, spend)
        return spend, bytes(view)


def send(payees: list[tuple[Wallet, int, int]], additional: bool, tagged: bool = True) -> ParsedTx:
    """A transaction paying ``amount`` to each (wallet, minor, amount), made on the sender's side of the ECDH.

    Without additional keys there is one payee (wallet2's rule): ``R = r·D`` for a subaddress, ``r·G`` else."""
    assert additional or len(payees) == 1
    r = scalar()
    first_spend = payees[0][0].sub(payees[0][1])[0]
    main_key = bytes(nacl.mult(r, first_spend) if payees[0][1] else nacl.mult_base(r))
    outputs, extra_keys = [], []
    for index, (wallet, minor, amount) in enumerate(payees):
        spend, view = wallet.sub(minor)
        if additional:
            r_i = scalar()
            extra_keys.append(bytes(nacl.mult(r_i, spend)) if minor else bytes(nacl.mult_base(r_i)))
            shared = nacl.mult(r_i, view)
        else:
            shared = nacl.mult(r, view)
        eight = bytes(nacl.mult(bytes([8]) + bytes(31), shared))  # 8·r·C = 8·a·R
        secret = crypto.output_secret(eight, index)
        key = bytes(nacl.add(nacl.mult_base(secret), spend))
        mask = crypto.hash_to_scalar(b"commitment_mask" + secret)
        commitment = bytes(nacl.add(nacl.mult_base(mask), nacl.mult(amount.to_bytes(32, "little"), crypto.H_POINT)))
        pad = crypto.keccak256(b"amount" + secret)[:8]
        encrypted = bytes(a ^ b for a, b in zip(amount.to_bytes(8, "little"), pad, strict=True))
        tag = crypto.view_tag(eight, index) if tagged else None
        outputs.append(Output(index, key, tag, 0, encrypted, commitment))
    return ParsedTx(os.urandom(32).hex(), (main_key,), tuple(extra_keys), tuple(outputs), 0, False)


def test_subaddresses_equal_the_monero_library() -> None:
    from monero import base58
    from monero.backends.offline import OfflineWallet
    from monero.wallet import Wallet as MoneroWallet

    wallet = Wallet()
    offline = MoneroWallet(OfflineWallet(wallet.keys.address, view_key=wallet.keys.view_key))
    for minor in (1, 2, 199):
        mine = crypto.subaddress(wallet.view, wallet.spend, 0, minor, "main", base58)
        assert mine == str(offline.get_address(0, minor))


def test_outputs_are_found_for_their_wallet_only() -> None:
    ours, other, stranger = Wallet(), Wallet(), Wallet()
    tx = send([(ours, 3, 1234), (other, 5, 99), (ours, 0, 7)], additional=True)
    found = scan_tx(tx, ours.view, ours.table)
    assert [(f.index, f.minor, f.amount) for f in found] == [(0, 3, 1234), (2, 0, 7)]
    assert [(f.minor, f.amount) for f in scan_tx(tx, other.view, other.table)] == [(5, 99)]
    assert scan_tx(tx, stranger.view, stranger.table) == []
    for minor in (0, 6):
        single = send([(ours, minor, 10**12)], additional=False)
        assert [(f.minor, f.amount) for f in scan_tx(single, ours.view, ours.table)] == [(minor, 10**12)]
        assert scan_tx(single, other.view, other.table) == []


def test_a_view_tag_that_does_not_match_skips_the_output() -> None:
    """wallet2 takes a wrong view tag for "not ours" before any curve operation; so does the scanner."""
    ours = Wallet()
    tx = send([(ours, 2, 10)], additional=False)
    out = tx.outputs[0]
    assert out.view_tag is not None
    wrong = Output(0, out.key, (out.view_tag + 1) % 256, 0, out.encrypted, out.commitment)
    assert scan_tx(ParsedTx(tx.txid, tx.public_keys, (), (wrong,), 0, False), ours.view, ours.table) == []


def test_untagged_outputs_are_checked_without_a_view_tag() -> None:
    ours = Wallet()
    tx = send([(ours, 4, 10**12)], additional=False, tagged=False)
    assert [(f.minor, f.amount) for f in scan_tx(tx, ours.view, ours.table)] == [(4, 10**12)]


def test_an_amount_that_does_not_open_its_commitment_is_refused() -> None:
    """A sender could write any amount into ecdhInfo; only the one its commitment holds counts."""
    ours = Wallet()
    tx = send([(ours, 1, 500)], additional=False)
    honest = tx.outputs[0]
    assert honest.encrypted is not None
    forged = bytes([honest.encrypted[0] ^ 1]) + honest.encrypted[1:]
    bad = ParsedTx(
        tx.txid, tx.public_keys, (), (Output(0, honest.key, honest.view_tag, 0, forged, honest.commitment),), 0, False
    )
    assert scan_tx(bad, ours.view, ours.table) == []


def test_points_off_the_curve_are_no_outputs() -> None:
    ours = Wallet()
    tx = send([(ours, 1, 500)], additional=False)
    garbage = ParsedTx(tx.txid, (b"\xff" * 32, bytes(32)), (), tx.outputs, 0, False)
    assert scan_tx(garbage, ours.view, ours.table) == []
    assert crypto.derivation(ours.view, bytes(32)) is None  # small order: no derivation


def test_tx_extra_parsing() -> None:
    key, extra1, extra2 = os.urandom(32), os.urandom(32), os.urandom(32)
    nonce = [0x02, 9, 0x01, *os.urandom(8)]
    data = [0x01, *key, *nonce, 0x04, 2, *extra1, *extra2, 0x00, 0, 0]
    assert parse_extra(data) == ([key], [extra1, extra2])
    assert parse_extra([0x01, *key[:10]]) == ([], [])  # cut short
    assert parse_extra([0x01, *key, 0x77, 1, 2]) == ([key], [])  # an unknown tag ends the parse
    with pytest.raises(crypto.BadTransaction):
        parse_tx("ab" * 32, {"vout": [{"target": {}}]})
    with pytest.raises(crypto.BadTransaction, match="RingCT type 3"):  # full ecdhInfo: not read as amount 0
        parse_tx("ab" * 32, {"vout": [{"amount": 0, "target": {"key": "00" * 32}}], "rct_signatures": {"type": 3}})


def test_varint_matches_monero() -> None:
    assert [crypto.varint(n) for n in (0, 127, 128, 300)] == [b"\x00", b"\x7f", b"\x80\x01", b"\xac\x02"]
    assert struct.pack("<I", 5) == b"\x05\x00\x00\x00"


def found(txid: str, index: int, minor: int, amount: int) -> Found:
    return Found(txid, index, os.urandom(32), minor, amount, 0)


def test_scan_state_is_durable_and_rewinds(tmp_path: Path) -> None:
    db = sqlite3.connect(str(tmp_path / "state.db"), isolation_level=None)
    RequestStore(db)  # the scanner's queries join the requests table
    from daemons.xmr_wallet import WalletTable

    WalletTable(db)
    sealer = Sealer(tmp_path / "secret")
    store = ScanStore(db, sealer)
    view = os.urandom(32)
    store.add_wallet(ScanWallet("w", "addr", view, b"", 1, 10))
    assert (
        view not in (tmp_path / "state.db").read_bytes()
        and view.hex().encode() not in (tmp_path / "state.db").read_bytes()
    )
    pool_hit = found("t1", 0, 2, 5)
    store.record_pool([("w", pool_hit)], [])
    store.add_wallet(ScanWallet("late", "addr2", view, b"", 1, 11))  # added while block 11 was being scanned
    store.record_block(10, "h10", ["w"], [])
    store.record_block(11, "h11", ["w"], [("w", pool_hit), ("w", found("t2", 1, 3, 7))])
    again = ScanStore(sqlite3.connect(str(tmp_path / "state.db"), isolation_level=None), Sealer(tmp_path / "secret"))
    assert again.wallets() == [("w", "addr", view, 1, 12), ("late", "addr2", view, 1, 11)]
    assert [(o.txid, o.height) for o in again.outputs("w")] == [("t1", 11), ("t2", 11)]
    assert again.top_block() == (11, "h11") and again.pool_txids() == set()
    again.rewind(11)
    assert [w[4] for w in again.wallets()] == [11, 11] and again.outputs("w") == [] and again.top_block() == (10, "h10")
    again.record_pool([("w", pool_hit)], [])
    again.record_pool([], ["t1"])
    assert again.outputs("w") == []
    assert again.take_minor("w") == 1 and again.take_minor("w") == 2


async def test_a_view_only_wallet_is_served_by_the_scanner_without_backends(tmp_path: Path) -> None:
    """Requests get the subaddresses wallet-rpc would give (0,1), (0,2), ... and survive a restart; the view
    key is never stored in clear; nothing needs wallet-rpc."""
    from monero.backends.offline import OfflineWallet
    from monero.wallet import Wallet as MoneroWallet

    keys = Keys.random()
    offline = MoneroWallet(OfflineWallet(keys.address, view_key=keys.view_key))
    env = {"MONEROD_URL": f"http://127.0.0.1:{free_port()}", "WALLET_RPC_BINARY": "/nonexistent", "NETWORK": "regtest"}
    async with running_daemon(XMRDaemon, env=env, data_path=tmp_path) as d:
        first = await d.call("add_request", "1", "a", 900, xpub=keys.view_only)
        second = await d.call("add_request", "2", "b", 900, xpub=keys.view_only)
        assert [first["address"], second["address"]] == [str(offline.get_address(0, i)) for i in (1, 2)]
        assert first["subaddress_index"] == [0, 1]
        assert await d.call("getbalance", xpub=keys.view_only) == {
            "confirmed": "0.000000000000",
            "unconfirmed": "0.000000000000",
            "unmatured": "0.000000000000",
            "lightning": "0.000000000000",
        }
        assert await d.call("get_height", xpub=keys.view_only) == 0  # monerod unreachable: scans from 0
    async with running_daemon(XMRDaemon, env=env, data_path=tmp_path) as d:
        assert len(d.daemon.scanner.wallets) == 1  # watched again before any call
        third = await d.call("add_request", "3", "c", 900, xpub=keys.view_only)
        assert third["address"] == str(offline.get_address(0, 3))
        await d.daemon.forget_wallet(next(iter(d.daemon.wallets)))  # unloaded (idle, or for room), then used again
        assert d.daemon.scanner.wallets == {}
        fourth = await d.call("add_request", "4", "d", 900, xpub=keys.view_only)
        assert fourth["address"] == str(offline.get_address(0, 4)) and len(d.daemon.scanner.wallets) == 1
        assert sorted(r["memo"] for r in await d.call("list_requests", xpub=keys.view_only)) == ["a", "b", "c", "d"]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert keys.view_key.encode() not in path.read_bytes(), path


async def test_a_wallet_restored_at_start_up_starts_its_idle_time_then(tmp_path: Path) -> None:
    """Wallets the daemon loads by itself when it starts are as recently used as any loaded then: the first idle
    sweep after a restart unloaded them (they had no last use)."""
    keys = Keys.random()
    env = {"MONEROD_URL": f"http://127.0.0.1:{free_port()}", "WALLET_RPC_BINARY": "/nonexistent", "NETWORK": "regtest"}
    async with running_daemon(XMRDaemon, env=env, data_path=tmp_path) as d:
        await d.call("getbalance", xpub=keys.view_only)  # loaded, no open request: unwatched
    async with running_daemon(XMRDaemon, env=env, data_path=tmp_path) as d:
        assert len(d.daemon.wallets) == 1  # restored at start
        assert await d.daemon.unload_idle_wallets() == []  # WALLET_IDLE_TIMEOUT (3600 s) has not passed
        assert len(d.daemon.wallets) == 1


async def test_a_paid_request_still_shallow_stays_paid_round_after_round(tmp_path: Path) -> None:
    """The scanner re-evaluates paid requests while a reorganisation can undo them. It read only unpaid
    requests' outputs, so such a request saw no money and flipped unpaid/paid every round (seen in CI:
    statuses [0, 7, 3, 0, 3, 0, 3, ...])."""
    from daemons.xmr_poller import Reporter
    from daemons.xmr_requests import PaymentRequest
    from daemons.xmr_scanner import Scanner
    from daemons.xmr_wallet import WalletTable

    db = sqlite3.connect(str(tmp_path / "state.db"), isolation_level=None)
    requests, table = RequestStore(db), WalletTable(db)
    store = ScanStore(db, Sealer(tmp_path / "secret"))
    wallet = ScanWallet("w", "addr", os.urandom(32), b"", 2, 10)
    store.add_wallet(wallet)
    store.record_block(10, "h10", ["w"], [("w", found("t1", 0, 1, 7)), ("w", found("t2", 0, 1, 3))])
    requests.add(PaymentRequest("w", "r1", "sub1", 0, 1, 10, "split", 0, None, 9))
    events: list[dict] = []

    async def notify(event: str, fields: dict, key: str | None, also) -> None:
        events.append({"event": event, **fields})
        also(None)

    reached: list[int] = []

    async def reach(height: int) -> None:
        reached.append(height)

    reporter = Reporter(notify, requests, table, confirmations=2)
    scanner = Scanner(None, store, reporter, "main", None, reach)  # type: ignore[arg-type]
    scanner.wallets["w"] = wallet
    for count in (11, 12, 13, 14):  # blocks come; the payment (block 10) is shallow, so it is re-evaluated
        wallet.scanned = scanner.chain_count = count
        await scanner.report()
    payments = [(e["status"], e["sent_amount"]) for e in events if e["event"] == "new_payment"]
    assert [status for status, _ in payments] == [7, 3]
    assert requests.list("w")[0].status == 3
    assert reached == [11, 12, 13, 14]  # each round's statuses count from the blocks it scanned: reported first
