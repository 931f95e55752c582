"""Batches are bounded (issue 12, item 2): length, answer size, and the loop stays free between calls.

Served by the real SampleDaemon. Nothing here measures time: the loop's freedom is shown by counting
turns of a task that runs beside the batch on the same loop.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from daemons.rpc import rpc
from tests.sample_daemon import SampleDaemon
from tests.support import running_daemon


class TurnCountingDaemon(SampleDaemon):
    """``turn`` returns how many times a task beside the batch got the loop so far."""

    def load_settings(self) -> None:
        super().load_settings()
        self.turns = 0
        self.calls = 0

    async def count_turns(self) -> None:
        while True:
            self.turns += 1
            await asyncio.sleep(0)

    @rpc
    def turn(self) -> int:
        self.calls += 1
        return self.turns


def calls(method: str, count: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"jsonrpc": "2.0", "id": n, "method": method, **extra} for n in range(count)]


async def test_a_batch_over_the_length_limit_is_one_invalid_request_and_runs_nothing() -> None:
    async with running_daemon(TurnCountingDaemon) as d:
        status, body = await d.raw(calls("turn", 201))  # the default limit is 200
        assert status == 200
        assert body["error"]["code"] == -32600 and "at most 200" in body["error"]["message"]
        assert body["id"] is None and d.daemon.calls == 0
        status, body = await d.raw(calls("turn", 200))
        assert [answer["id"] for answer in body] == list(range(200)) and d.daemon.calls == 200

    async with running_daemon(TurnCountingDaemon, env={"MAX_BATCH_LENGTH": "3"}) as d:
        assert (await d.raw(calls("turn", 4)))[1]["error"]["code"] == -32600
        assert len((await d.raw(calls("turn", 3)))[1]) == 3


async def test_the_loop_serves_others_between_the_calls_of_a_batch() -> None:
    async with running_daemon(TurnCountingDaemon) as d:
        beside = asyncio.create_task(d.daemon.count_turns())
        try:
            _, body = await d.raw(calls("turn", 50))
        finally:
            beside.cancel()
        seen = [answer["result"] for answer in body]
        # Each call is a plain function: only a yield between calls lets the task beside it run.
        assert all(later > earlier for earlier, later in itertools.pairwise(seen)), seen


async def test_a_batch_answer_stops_growing_at_its_size_limit() -> None:
    async with running_daemon(TurnCountingDaemon, env={"MAX_BATCH_RESPONSE_SIZE": "2000"}) as d:
        one_help = len(json.dumps((await d.raw({"jsonrpc": "2.0", "id": 0, "method": "help"}))[1]))
        assert one_help * 20 > 2000, "twenty help answers are more than the limit"
        batch = [*calls("help", 20), {"jsonrpc": "2.0", "method": "turn"}, *calls("turn", 5)]
        status, body = await d.raw(batch)
        assert status == 200
        answered = [answer for answer in body if "result" in answer]
        not_run = [answer for answer in body if "error" in answer]
        assert 1 <= len(answered) < 20, "the calls stop once the answer passed the limit"
        assert all(a["error"]["code"] == -32600 and "Not run" in a["error"]["message"] for a in not_run)
        assert [a["id"] for a in body] == [*range(20), *range(5)], "every call with an id gets an answer"
        assert d.daemon.calls == 0, "no call past the limit ran, the notification included"
