"""``POST /`` on the fast path (daemons/http_fast.py): the same answers as aiohttp's path, and aiohttp takes over
every request of another form, on the same connection, in order.

Raw HTTP over loopback against the real SampleDaemon: each case is sent once in the plain form (the fast
path) and once chunked (a form the fast path leaves to aiohttp), and the two answers must be the same bytes
but for the ``Date`` header and, for refusals (which the fast path answers before their body and then
closes), ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import base64
import re

import pytest

from daemons.http_fast import read_plain_post
from tests.sample_daemon import SampleDaemon
from tests.support import LOGIN, PASSWORD, running_daemon

AUTH = "Basic " + base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
CALL = b'{"jsonrpc":"2.0","id":7,"method":"add","params":[1,2]}'


def plain(body: bytes, headers: str = f"Authorization: {AUTH}\r\n") -> bytes:
    return f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Length: {len(body)}\r\n\r\n".encode() + body


def chunked(body: bytes, headers: str = f"Authorization: {AUTH}\r\n") -> bytes:
    head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Transfer-Encoding: chunked\r\n\r\n".encode()
    return head + (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n")


async def exchange(port: int, request: bytes, answers: int = 1) -> list[bytes]:
    """Send ``request`` (any number of requests) on one connection; read ``answers`` whole answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        got = []
        for _ in range(answers):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            length = re.search(rb"(?i)content-length: (\d+)", head)
            body = await reader.readexactly(int(length.group(1))) if length else b""
            got.append(head + body)
        return got
    finally:
        writer.close()


def comparable(answer: bytes) -> bytes:
    return re.sub(rb"Date: [^\r]*\r\n|Connection: close\r\n", b"", answer)


CASES = {
    "call": (CALL, f"Authorization: {AUTH}\r\n"),
    "notification": (b'{"jsonrpc":"2.0","method":"add","params":[1,2]}', f"Authorization: {AUTH}\r\n"),
    "batch": (b"[" + CALL + b"," + CALL.replace(b"add", b"nope") + b"]", f"Authorization: {AUTH}\r\n"),
    "parse error": (b'{"jsonrpc":', f"Authorization: {AUTH}\r\n"),
    "not a request": (b"{}", f"Authorization: {AUTH}\r\n"),
    "wrong password": (CALL, "Authorization: Basic eDp5\r\n"),
    "no credentials": (CALL, ""),
    "web page": (CALL, f"Authorization: {AUTH}\r\nOrigin: http://attacker.example\r\n"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_the_fast_path_answers_what_aiohttps_path_answers(case: str) -> None:
    body, headers = CASES[case]
    async with running_daemon(SampleDaemon) as d:
        port = int(d.url.rsplit(":", 1)[1])
        [fast] = await exchange(port, plain(body, headers))
        [slow] = await exchange(port, chunked(body, headers))
    assert comparable(fast) == comparable(slow)
    assert fast.startswith(b"HTTP/1.1 ")


async def test_other_requests_are_handed_to_aiohttp_in_order_on_the_same_connection() -> None:
    """Pipelined in one write: fast, fast, then a GET (handed over), then POSTs aiohttp now answers."""
    async with running_daemon(SampleDaemon) as d:
        port = int(d.url.rsplit(":", 1)[1])
        calls = [CALL.replace(b'"id":7', b'"id":%d' % i) for i in range(4)]
        health = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        sent = plain(calls[0]) + plain(calls[1]) + health + plain(calls[2]) + chunked(calls[3])
        answers = await exchange(port, sent, answers=5)
    ids = [re.search(rb'"id":(\d+)', answer) for answer in answers]
    assert [int(m.group(1)) if m else None for m in ids] == [0, 1, None, 2, 3]
    assert b'"status":"ok"' in answers[2]
    assert all(answer.startswith(b"HTTP/1.1 200 OK\r\n") for answer in answers)


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5",  # two lengths: ambiguous framing
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked",
        b"POST / HTTP/1.1\r\nContent-Length: +5",
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\n folded",  # obsolete line folding
        b"POST / HTTP/1.1\r\nBad Name: x\r\nContent-Length: 5",
        b"POST / HTTP/1.1\r\nX: a\nContent-Length: 5",  # a bare LF inside the head
        b"POST / HTTP/1.1\r\nX: \x00\r\nContent-Length: 5",
        b"POST / HTTP/1.0\r\nContent-Length: 5",
        b"POST /?x=1 HTTP/1.1\r\nContent-Length: 5",
        b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5",
        b"POST / HTTP/1.1\r\nConnection: Upgrade\r\nContent-Length: 5",
        b"POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 5",
        b"POST / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\nContent-Length: 5",
        b"POST / HTTP/1.1",  # no length
    ],
)
def test_only_the_plain_form_is_read_here(head: bytes) -> None:
    assert read_plain_post(head) is None


def test_the_plain_form_is_read() -> None:
    head = b"POST / HTTP/1.1\r\nhost: a\r\nAUTHORIZATION:  Basic x \r\nOrigin: o\r\nConnection: keep-alive, Close"
    post = read_plain_post(head + b"\r\ncontent-length: 12")
    assert post is not None
    assert (post.length, post.authorization, post.origin, post.host, post.close) == (12, "Basic x", "o", "a", True)


async def test_ambiguous_framing_is_refused_by_aiohttp_not_read_here() -> None:
    """A request smuggled behind a second Content-Length must never be answered as a request."""
    smuggled = plain(CALL).replace(b"Content-Length:", b"Content-Length: 0\r\nContent-Length:", 1)
    async with running_daemon(SampleDaemon) as d:
        port = int(d.url.rsplit(":", 1)[1])
        [answer] = await exchange(port, smuggled)
    assert b" 400 Bad Request\r\n" in answer and b'"code":-32600' in answer


async def test_a_body_too_large_or_too_slow() -> None:
    async with running_daemon(SampleDaemon, env={"MAX_BODY_SIZE": "100", "BODY_TIMEOUT": "0.5"}) as d:
        port = int(d.url.rsplit(":", 1)[1])
        [large] = await exchange(port, plain(b"[" + b" " * 200 + b"]"))
        assert large.startswith(b"HTTP/1.1 413 ") and b"the limit is 100 bytes" in large
        [slow] = await exchange(port, plain(CALL)[:-10])  # the last 10 bytes of the body never come
        assert slow.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in slow
        [fine] = await exchange(port, plain(CALL))  # the daemon serves on
        assert b'"result":3' in fine


async def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(tmp_path) -> None:
    """Between requests a fast-path connection lives as long as aiohttp's would: the keep-alive timeout."""
    from aiohttp import web

    from tests.support import NO_ENV_FILE, prefixed

    settings = {"HOST": "127.0.0.1", "PORT": "0", "DATA_PATH": str(tmp_path)}
    daemon = SampleDaemon(environ=prefixed(SampleDaemon.name, settings), env_file=NO_ENV_FILE)
    runner = daemon.make_runner(keepalive_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(3):  # answered on the one connection, each request resetting the idle time
            writer.write(plain(CALL))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            assert head.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" not in head
            await reader.readexactly(int(re.search(rb"Content-Length: (\d+)", head).group(1)))
            await asyncio.sleep(0.2)
        assert await asyncio.wait_for(reader.read(), 30) == b""  # closed by the daemon once idle for 0.5 s
        writer.close()
    finally:
        await runner.cleanup()


async def test_pipelined_requests_are_answered_in_order_even_when_the_first_is_slow() -> None:
    """The second request arrives while the first (a wallet load) is still being answered: it waits."""
    async with running_daemon(SampleDaemon) as d:
        d.daemon.load_delay = 0.5  # the first call loads a wallet: it answers last if nothing keeps the order
        port = int(d.url.rsplit(":", 1)[1])
        slow = b'{"jsonrpc":"2.0","id":1,"method":"getbalance","params":{"xpub":"tpub-pipelined"}}'
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(plain(slow))
        await asyncio.sleep(0.1)
        writer.write(plain(CALL.replace(b'"id":7', b'"id":2')))
        ids = []
        for _ in range(2):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            body = await reader.readexactly(int(re.search(rb"Content-Length: (\d+)", head).group(1)))
            ids.append(re.search(rb'"id":(\d+)', body).group(1))
        writer.close()
    assert ids == [b"1", b"2"]


async def test_a_client_that_does_not_read_its_answers_is_not_answered_into_memory() -> None:
    """Pipelined calls with large answers, none read: the daemon stops answering (and reading) until the client
    reads, as aiohttp's drain does, instead of holding every answer in the socket's write buffer."""
    async with running_daemon(SampleDaemon) as d:
        port = int(d.url.rsplit(":", 1)[1])
        call = b'{"jsonrpc":"2.0","id":1,"method":"echo","params":["%s"]}' % (b"x" * 50_000)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(plain(call) * 200)  # 10 MB of answers if all were made
        await asyncio.sleep(1.5)
        buffered = [conn.transport.get_write_buffer_size() for conn in d.daemon.guard.open]
        assert buffered and max(buffered) < 1_000_000
        answered = 0
        while answered < 200:  # reading them all, every one comes
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            await reader.readexactly(int(re.search(rb"Content-Length: (\d+)", head).group(1)))
            answered += 1
        writer.close()


async def test_a_call_cancelled_inside_closes_its_connection_rather_than_leaving_the_client_waiting() -> None:
    """A library may cancel a future a call awaits (aiorpcx does when a server connection drops): no answer
    will come, so the connection is closed at once, and the daemon serves on."""
    async with running_daemon(SampleDaemon) as d:
        port = int(d.url.rsplit(":", 1)[1])
        handle_single = d.daemon.handle_single

        async def cancelled(payload):
            d.daemon.handle_single = handle_single
            raise asyncio.CancelledError

        d.daemon.handle_single = cancelled
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(plain(CALL))
        assert await asyncio.wait_for(reader.read(), 30) == b""
        writer.close()
        [fine] = await exchange(port, plain(CALL))
        assert b'"result":3' in fine
