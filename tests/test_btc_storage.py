"""A full disk under DATA_PATH (a real, tiny tmpfs): /health says so, calls fail cleanly, shutdown saves what it can.

Mounting needs root, as CI runs; elsewhere these tests are skipped with the reason.
"""

from __future__ import annotations

import logging

from tests.btc_support import btc_daemon, call_error, key_pair

STORAGE_UNAVAILABLE = -32050


async def health(d) -> tuple[int, dict]:
    async with d.session.get(d.url + "/health") as response:
        return response.status, await response.json()


async def test_full_disk_is_reported_calls_fail_cleanly_and_shutdown_tries_every_wallet(
    small_disk, caplog, electrum_regtest
):
    data = small_disk.mount / "btc"
    vpubs = [key_pair(40 + n, "p2wpkh").xpub for n in range(3)]
    caplog.set_level(logging.INFO)
    async with btc_daemon(data_path=data) as d:
        for vpub in vpubs:
            await d.call("add_request", "0.01", "before", force=True, xpub=vpub)
        assert (await health(d))[0] == 200

        small_disk.fill()
        status, body = await health(d)
        assert (status, body["status"]) == (503, "storage_unavailable")
        for vpub in vpubs:
            code, message = await call_error(d, "add_request", "0.02", "while full", force=True, xpub=vpub)
            assert code == STORAGE_UNAVAILABLE and "No space left on device" in message
            assert [r["message"] for r in await d.call("list_requests", xpub=vpub)] == ["before"]  # nothing half-made
        fresh = key_pair(49, "p2wpkh").xpub
        assert (await call_error(d, "getbalance", xpub=fresh))[0] == STORAGE_UNAVAILABLE  # not the key's fault

        small_disk.free()
        assert (await health(d))[0] == 200
        await d.call("add_request", "0.03", "after", force=True, xpub=vpubs[0])

        small_disk.fill()  # full again at shutdown, with every wallet holding unsaved changes
        for vpub in vpubs:
            assert (await call_error(d, "add_request", "0.04", "lost", force=True, xpub=vpub))[0] == STORAGE_UNAVAILABLE
        caplog.clear()
    failures = [r.getMessage() for r in caplog.records if "could not be saved" in r.getMessage()]
    assert sorted(failures) == sorted(
        f"wallet {vpub} could not be saved and unloaded: No space left on device" for vpub in vpubs
    )

    small_disk.free()
    async with btc_daemon(data_path=data) as d:
        for n, vpub in enumerate(vpubs):
            messages = sorted(r["message"] for r in await d.call("list_requests", xpub=vpub))
            assert messages == (["after", "before"] if n == 0 else ["before"])
