"""Closing a loopback test server the way a killed process closes: nothing left open unanswered."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable


async def stop_accepting(sockets: Iterable[socket.socket | asyncio.trsock.TransportSocket]) -> None:
    """Stop taking connections on these listening sockets and let those already taken reach their server.

    Call it before closing a test server that stands for a process being killed. asyncio (CPython 3.11)
    accepts a connection in one loop turn and builds its transport in a task; if the server closes in
    between, the transport refuses to attach to the closed server and the accepted socket is dropped
    without being closed: the client waits its whole read timeout, where a killed process's client sees
    the connection close at once. Five loop turns are enough for the pending tasks (accept, transport,
    connection_made); connections still in the kernel's queue are reset when the socket closes.
    """
    loop = asyncio.get_running_loop()
    for sock in sockets:
        loop.remove_reader(sock.fileno())
    for _ in range(5):
        await asyncio.sleep(0)
