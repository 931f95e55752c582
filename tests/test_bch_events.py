"""The bridge that carries Electron Cash's callbacks from its threads to the event loop (no Electron Cash needed).

Electron Cash fires callbacks on its network thread and on worker threads; the daemon must see them on its loop in
the order each thread fired them, and must not lose the ones queued when it stops.
"""

from __future__ import annotations

import asyncio
import threading

from daemons.bch_events import Report, ThreadBridge


def report(n: int, source: str) -> Report:
    return Report("new_block", {"height": n, "source": source}, None, "block", "height", str(n))


async def test_reports_from_threads_arrive_on_the_loop_in_each_threads_order_and_none_is_lost_at_stop():
    loop = asyncio.get_running_loop()
    delivered: list[tuple[str, int, bool]] = []

    async def deliver(r: Report) -> None:
        on_loop = threading.get_ident() == loop_thread
        delivered.append((r.fields["source"], r.fields["height"], on_loop))
        await asyncio.sleep(0)  # a consumer that yields must still keep the order

    loop_thread = threading.get_ident()
    bridge = ThreadBridge(loop, deliver)
    bridge.start()

    def fire(source: str) -> None:
        for n in range(200):
            bridge.submit(report(n, source))

    threads = [threading.Thread(target=fire, args=(name,)) for name in ("network", "worker")]
    for thread in threads:
        thread.start()
    fire("loop")  # Electron Cash may also call back on the loop's own thread (a command run in place)
    for thread in threads:
        await asyncio.to_thread(thread.join)
    await bridge.stop()

    assert all(on_loop for _, _, on_loop in delivered)
    for source in ("network", "worker", "loop"):
        assert [n for s, n, _ in delivered if s == source] == list(range(200))


async def test_a_failing_delivery_is_logged_and_the_next_report_still_arrives(caplog):
    delivered: list[int] = []

    async def deliver(r: Report) -> None:
        if r.fields["height"] == 1:
            raise RuntimeError("boom")
        delivered.append(r.fields["height"])

    bridge = ThreadBridge(asyncio.get_running_loop(), deliver)
    bridge.start()
    for n in range(3):
        bridge.submit(report(n, "network"))
    await bridge.stop()
    assert delivered == [0, 2]
    assert "could not deliver the new_block event" in caplog.text


async def test_submit_after_the_loop_closed_is_dropped_quietly():
    loop = asyncio.new_event_loop()
    delivered: list[Report] = []

    async def deliver(r: Report) -> None:
        delivered.append(r)

    bridge = ThreadBridge(loop, deliver)
    loop.close()
    bridge.submit(report(1, "network"))  # must not raise into Electron Cash's thread
    assert delivered == []
