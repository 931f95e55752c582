"""The doubles stop as a killed program does: no connection they took is left open without an answer.

A client whose connection is left open waits its whole read timeout and takes the program for busy,
not gone; CI saw the Bitmessage daemon report a stopped double as busy for 60 s that way.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.bitmessage_double import BitmessageDouble
from tests.xmrig_double import XMRigDouble

GUARD = 5.0  # a guard against a hang, not a timing assertion
ROUNDS = 20


async def ask(port: int) -> str:
    """What a client sees of one request sent as the server stops: an answer, the close, a refusal or a hang."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return "refused"
    try:
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return "answered" if await asyncio.wait_for(reader.read(), GUARD) else "closed"
    except TimeoutError:
        return "left open"
    except ConnectionError:
        return "reset"
    finally:
        writer.close()


@pytest.mark.parametrize(
    "make", [lambda: BitmessageDouble("xml", auth_delay=0), lambda: XMRigDouble()], ids=["bitmessage", "xmrig"]
)
async def test_a_connection_taken_as_the_double_stops_is_answered_or_closed(make: Any) -> None:
    double = make()
    seen = []
    for turns in range(ROUNDS):
        await double.start()
        client = asyncio.ensure_future(ask(double.port))
        for _ in range(turns % 5):  # stop at each point of the accept: queued, accepted, attached, served
            await asyncio.sleep(0)
        await double.stop()
        seen.append(await client)
    assert "left open" not in seen, seen
    assert set(seen) - {"refused"}, "no connection was taken before the stop: the test saw nothing"
