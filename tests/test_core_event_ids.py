"""Event ids after retention emptied the log by age and the daemon restarted (issue 12, item 10).

Clients keep ids as cursors: an id that came back after the log emptied would make them skip the
new events as already seen. Served by the real SampleDaemon, restarted on the same DATA_PATH.
"""

from __future__ import annotations

from pathlib import Path

from tests.sample_daemon import SampleDaemon
from tests.support import running_daemon
from tests.test_core_websocket import listen

EXPIRE_AT_ONCE = {"EVENTS_RETENTION_DAYS": "0.000000001"}  # about 86 microseconds: every stored event is older


async def test_ids_continue_after_the_log_emptied_by_age_and_a_restart(tmp_path: Path) -> None:
    async with running_daemon(SampleDaemon, data_path=tmp_path) as d:
        before = await d.call("emit", "X", 3)
        await d.call("get_updates", xpub="X")  # the polling cursor now stands at the last id

    async with running_daemon(SampleDaemon, env=EXPIRE_AT_ONCE, data_path=tmp_path) as d:
        assert d.daemon.store.fetch(0) == [], "start-up retention removed every event by age"
        assert await d.call("get_updates", since=0, xpub="X") == []
        # The client's cursor from before is still an id of this log, not one "from another log".
        assert await d.call("get_updates", since=before[-1], xpub="X") == []

    async with running_daemon(SampleDaemon, data_path=tmp_path) as d:
        after = await d.call("emit", "X", 2)
        assert after[0] == before[-1] + 1, f"ids restarted: {before} then {after}"
        assert [u["id"] for u in await d.call("get_updates", xpub="X")] == after
        listener = await listen(d, {"xpub": "X", "since": before[-1]})
        await listener.until(after[-1])
        assert listener.ids == after
