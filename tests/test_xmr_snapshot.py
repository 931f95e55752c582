"""The poller's snapshot of get_height/get_balance (daemons/xmr_snapshot.py) and the pool's opening epochs.

The end-to-end check that the daemon's answers equal wallet-rpc's is in tests/test_xmr.py; these pin the
bookkeeping that decides when a snapshot may be stored and served.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemons.xmr_client import MoneroRPC, MoneroUnavailable
from daemons.xmr_pool import Slot, WalletPool
from daemons.xmr_snapshot import KEEPS_SNAPSHOT, Snapshots

BALANCE = {"balance": 5, "unlocked_balance": 3}


def test_served_for_its_epoch_until_a_change_starts() -> None:
    book = Snapshots()
    mark = book.mark("w")
    assert book.store("w", mark, 7, 100, BALANCE)
    snapshot = book.get("w", 7)
    assert snapshot is not None and (snapshot.height, snapshot.balance) == (100, BALANCE)
    assert book.get("w", 8) is None  # the wallet was opened again since: its state was re-read by wallet-rpc
    assert book.get("w", None) is None  # not open, or its process is down: the call must go and fail
    assert book.get("other", 7) is None
    with book.changing("w"):
        assert book.get("w", 7) is None
        assert book.mark("w") is None  # a reading that starts during a change is never kept
    assert book.get("w", 7) is None  # and the old one is gone for good


def test_reading_that_overlaps_a_change_is_not_kept() -> None:
    book = Snapshots()
    started_before = book.mark("w")
    with book.changing("w"):
        started_during = book.mark("w")
        assert not book.store("w", started_before, 1, 100, BALANCE)
    assert not book.store("w", started_before, 1, 100, BALANCE)  # the change ended after the reading began
    assert not book.store("w", started_during, 1, 100, BALANCE)
    assert book.store("w", book.mark("w"), 1, 101, BALANCE)
    assert not book.store("w", book.mark("w"), None, 101, BALANCE)  # read while the wallet was not open


def test_forget_and_other_wallets() -> None:
    book = Snapshots()
    book.store("a", book.mark("a"), 1, 10, BALANCE)
    book.store("b", book.mark("b"), 2, 20, BALANCE)
    with book.changing("a"):
        assert book.get("b", 2) is not None  # a change to one wallet leaves the others alone
    book.forget("b")
    assert book.get("b", 2) is None


def test_wallet_changing_methods_are_not_listed_as_keeping_it() -> None:
    changing = {"transfer", "transfer_split", "relay_tx", "sweep_all", "refresh", "rescan_blockchain"}
    changing |= {"rescan_spent", "import_key_images", "import_outputs", "submit_transfer", "thaw", "freeze"}
    assert not changing & KEEPS_SNAPSHOT
    assert {"get_height", "get_balance", "create_address", "store"} <= KEEPS_SNAPSHOT


# Operations on one wallet, in any order: a reading is (mark, then store); a change has a start and an end.
OPS = st.lists(st.sampled_from(["mark", "store", "begin", "end", "get"]), max_size=40)


@given(OPS)
def test_never_served_across_a_change(ops: list[str]) -> None:
    """Model: a stored reading is served only if it began after the last change ended and none is running."""
    book, running, changes = Snapshots(), [], 0
    last_change_end, reading_start, served_start = 0, None, None
    contexts = []
    for step, op in enumerate(ops, 1):
        if op == "mark":
            reading_start, mark = step, book.mark("w")
        elif op == "store" and reading_start is not None:
            if book.store("w", mark, 1, step, BALANCE):
                assert not running and reading_start > last_change_end
                served_start = reading_start
            reading_start = None
        elif op == "begin":
            context = book.changing("w")
            context.__enter__()
            contexts.append(context)
            running.append(step)
            changes += 1
        elif op == "end" and contexts:
            contexts.pop().__exit__(None, None, None)
            running.pop()
            last_change_end = step
        elif op == "get":
            snapshot = book.get("w", 1)
            if snapshot is not None:
                assert not running and served_start is not None and served_start > last_change_end
                assert snapshot.height > last_change_end


async def test_every_opening_gets_its_own_epoch() -> None:
    pool = WalletPool(1, external=MoneroRPC("http://127.0.0.1:9"))
    opened: list[str] = []

    async def opener(client: MoneroRPC) -> None:
        opened.append("x")

    async with pool.session("a", opener):
        first = pool.epoch("a")
    assert first is not None and pool.epoch("a") == first  # calls on the same opening keep it
    async with pool.session("b", opener):  # one external wallet-rpc: "a" is switched out
        assert pool.epoch("a") is None and pool.epoch("b") not in (None, first)
    async with pool.session("a", opener):
        again = pool.epoch("a")
    assert again is not None and again != first and len(opened) == 3
    with pytest.raises(MoneroUnavailable):
        async with pool.session("a", opener):
            raise MoneroUnavailable("wallet-rpc unreachable")  # it may come back without our wallet
    assert pool.epoch("a") is None
    await pool.close()


def test_a_restarted_process_voids_the_epoch_until_reopened() -> None:
    pool = WalletPool(1, make_process=lambda index: None)  # type: ignore[arg-type, return-value]
    process = SimpleNamespace(starts=1, ready=True, client=None)
    slot = Slot(0, process=process)  # type: ignore[arg-type]
    slot.busy, slot.open_file = False, "a"
    slot.opened(5)
    pool.by_file["a"] = slot
    assert pool.epoch("a") == 5
    process.ready = False  # died, being restarted
    assert pool.epoch("a") is None
    process.starts, process.ready = 2, True  # answering again, but the wallet is not open in it yet
    assert pool.epoch("a") is None
    slot.opened(6)  # what _reopen does once the wallet is open again
    assert pool.epoch("a") == 6
