"""Storage failures in the core, for every daemon: the error code, /health, shutdown (no full disk needed).

tests/test_btc_storage.py and tests/test_bch.py fill a real tmpfs; these inject the failure at the storage
layer with the exceptions the real layers raise, so they run wherever the tests run.
"""

from __future__ import annotations

import errno
import logging
import sqlite3

from daemons.jsonrpc import RPCError
from daemons.storage import STORAGE_UNAVAILABLE, StorageMonitor, storage_failure
from tests.sample_daemon import SampleDaemon
from tests.support import running_daemon


class StorageReadWriteError(Exception):  # Electrum 4.3.4's wrapper: electrum/storage.py, StorageReadWriteError(e)
    pass


def test_storage_failures_are_recognised_however_they_are_wrapped():
    full = OSError(errno.ENOSPC, "No space left on device")
    assert storage_failure(full) == "No space left on device"
    assert storage_failure(StorageReadWriteError(OSError(full))) == "No space left on device"
    assert storage_failure(sqlite3.OperationalError("database or disk is full")) == "database or disk is full"
    try:
        try:
            raise full
        except OSError as exc:
            raise RuntimeError("saving failed") from exc
    except RuntimeError as wrapped:
        assert storage_failure(wrapped) == "No space left on device"
    assert storage_failure(OSError(errno.ENOENT, "No such file or directory")) is None
    assert storage_failure(ValueError("Invalid master key")) is None


def test_a_folder_that_cannot_be_written_is_a_problem(tmp_path):
    assert StorageMonitor(tmp_path).problem() is None
    assert StorageMonitor(tmp_path, min_free=1 << 62).problem() is None  # little space: probed, and writable
    assert StorageMonitor(tmp_path / "gone").problem() == "No such file or directory"


async def test_an_event_log_that_cannot_be_written_fails_the_call_with_its_own_code(caplog):
    async with running_daemon(SampleDaemon) as d:
        store = d.daemon.store

        def disk_full(*args, **kwargs):
            raise sqlite3.OperationalError("database or disk is full")  # SQLite's SQLITE_FULL

        store.append = disk_full
        for _ in range(3):
            try:
                await d.call("broadcast_block", 7)
            except RPCError as error:
                assert error.code == STORAGE_UNAVAILABLE and "database or disk is full" in error.message
            else:
                raise AssertionError("a failed event write must fail the call")
        assert len([r for r in caplog.records if "cannot be written" in r.getMessage()]) == 1  # logged once
        del store.append
        # /health probes with a real write: this disk is fine, so the condition is over.
        async with d.session.get(d.url + "/health") as response:
            assert response.status == 200 and (await response.json())["status"] == "ok"
        assert await d.call("broadcast_block", 8) > 0


class UnsavableDaemon(SampleDaemon):
    async def unload_wallet(self, key: str, wallet) -> None:
        if key.startswith("full"):
            raise OSError(errno.ENOSPC, "No space left on device")


async def test_shutdown_tries_every_wallet_and_logs_each_failure_once(caplog):
    caplog.set_level(logging.INFO)
    keys = ["full-1", "ok-1", "full-2", "ok-2"]
    async with running_daemon(UnsavableDaemon) as d:
        for key in keys:
            await d.call("getbalance", xpub=key)
        daemon = d.daemon
        caplog.clear()
    assert daemon.wallets == {}
    failures = sorted(r.getMessage() for r in caplog.records if "could not be saved" in r.getMessage())
    assert failures == [
        f"wallet {key} could not be saved and unloaded: No space left on device" for key in ("full-1", "full-2")
    ]
