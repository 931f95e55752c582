"""Property-based fuzzing of ``POST /`` on the real application: no input may get a 5xx or a non-JSON answer.

One SampleDaemon serves the whole module from an event loop in a background thread, so that the
synchronous ``@given`` tests can drive thousands of requests through one client session. Every
example checks the contract's promises: a status of 200, 204, 401 or 413; a JSON body (strict JSON,
no NaN) that is a JSON-RPC response or a batch of them, answering the requests' ids in order;
exactly the contract's body for 401; "Internal error" only from the one method whose job it is
to fail; and the daemon still answering a normal call afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import math
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemons.http_app import UNAUTHORIZED_BODY
from daemons.jsonrpc import INTERNAL_ERROR
from tests.sample_daemon import SampleDaemon
from tests.support import LOGIN, PASSWORD, DaemonClient, running_daemon

MAX_BODY = 64 * 1024  # a small MAX_BODY_SIZE keeps the oversized-body examples cheap
WAIT = 30.0  # seconds: a guard against hangs, never a performance assertion
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
ALLOWED_STATUS = {200, 204, 401, 413}
# emit and emit_padded loop over a client-given count: fuzzing them would only fill the event log.
METHODS = ["add", "add_numbers", "echo", "sync_concat", "getbalance", "deposit", "broadcast_block", "getheight"]
METHODS += ["fail_mapped", "fail_bug", "help", "get_updates", "nonexistent", ""]
PARAM_NAMES = ["a", "b", "left", "right", "amount", "height", "since", "method", "xpub", "wallet", "identity", "x"]


class Served:
    """The module's daemon, running in its own thread's event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client: DaemonClient | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._serving = asyncio.run_coroutine_threadsafe(self._serve(), self.loop)

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with running_daemon(SampleDaemon, env={"MAX_BODY_SIZE": str(MAX_BODY)}) as client:
            self.client = client
            self._ready.set()
            await self._stop.wait()

    def run(self, job: Callable[[DaemonClient], Awaitable[Any]]) -> Any:
        assert self._ready.wait(WAIT), "the daemon did not start"
        assert self.client is not None
        return asyncio.run_coroutine_threadsafe(job(self.client), self.loop).result(WAIT)

    @staticmethod
    async def _cancel_leftovers() -> None:
        """Connections the lying-framing examples left half-open still have handler tasks."""
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._serving.result(WAIT)
        asyncio.run_coroutine_threadsafe(self._cancel_leftovers(), self.loop).result(WAIT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    server = Served()
    try:
        yield server
    finally:
        server.close()


# -- strategies --------------------------------------------------------------------------------

huge_ints = st.integers(0, 4300).map(lambda digits: 10**digits - 1)  # up to Python's int/str limit
numbers = st.one_of(st.integers(), huge_ints, st.floats(allow_nan=False, allow_infinity=False))
# Values that once slipped through argument checks, or that sit on a limit: digits that int() refuses,
# numbers beyond SQLite's, float's or Decimal's range, numbers that cannot be printed back.
edge_texts = ["\u00b2", "\u0663", " 12 ", "-0", "1" * 5000, "1e999999999", "-1e-999999", "NaN", "Infinity", "1e400"]
edge_values = st.sampled_from([*edge_texts, 2**63 - 1, 2**63, 2**64, -1, 9 * 10**4299, 10**400])
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20), edge_values)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
wallet_keys = st.one_of(st.sampled_from(["X", "Y", "bad-key", " ", ""]), st.text(max_size=12))
xpubs = st.one_of(
    wallet_keys,
    st.fixed_dictionaries(
        {"xpub": st.one_of(wallet_keys, json_values)},
        optional={"diskless": st.one_of(st.booleans(), scalars), "quiet_mode": scalars, "address": scalars},
    ),
    json_values,
)
named = st.dictionaries(st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=6)), json_values, max_size=4)
named_with_wallet = st.builds(lambda kw, x: {**kw, "xpub": x}, named, xpubs)
params = st.one_of(
    st.lists(json_values, max_size=4),
    st.builds(lambda args, kw: [*args, kw], st.lists(json_values, max_size=3), st.one_of(named, named_with_wallet)),
    named,
    named_with_wallet,
    json_values,
)
ids = st.one_of(st.integers(), st.text(max_size=8), st.floats(allow_nan=False, allow_infinity=False), json_values)
requests = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.one_of(st.just("2.0"), json_values),
        "id": ids,
        "method": st.one_of(st.sampled_from(METHODS), st.text(max_size=12), json_values),
        "params": params,
    },
)
# The real methods' parameters (SampleDaemon's, and the base's help and get_updates).
SIGNATURES = {
    "add": ["a", "b"],
    "sync_concat": ["left", "right"],
    "deposit": ["amount"],
    "broadcast_block": ["height"],
    "help": ["method"],
    "get_updates": ["since"],
    "getbalance": [],
    "echo": ["x"],
}
argument_values = st.one_of(edge_values, scalars, json_values)


@st.composite
def real_calls(draw: st.DrawFn) -> dict[str, Any]:
    """A call of a real method with arguments of random value, shaped like its signature."""
    method = draw(st.sampled_from(sorted(SIGNATURES)))
    names = SIGNATURES[method]
    args = draw(st.lists(argument_values, max_size=len(names) + 1))
    keys = st.sampled_from([*names, "xpub", "wallet", "other"])
    kwargs = draw(st.dictionaries(keys, argument_values, max_size=len(names) + 1))
    if draw(st.booleans()):
        kwargs["xpub"] = draw(xpubs)
    shape = draw(st.sampled_from(["list", "object", "absent"]))
    call: dict[str, Any] = {"jsonrpc": "2.0", "id": draw(st.integers()), "method": method}
    if shape == "list":
        call["params"] = [*args, kwargs] if kwargs else args
    elif shape == "object":
        call["params"] = kwargs
    return call


random_calls = st.builds(
    lambda method, p, request_id: {"jsonrpc": "2.0", "id": request_id, "method": method, "params": p},
    st.sampled_from(METHODS),
    params,
    st.integers(),
)
well_formed = st.one_of(real_calls(), random_calls)
items = st.one_of(well_formed, requests, json_values)
payloads = st.one_of(well_formed, requests, st.lists(items, min_size=1, max_size=25), st.just([]), json_values)


def mutated(text: str) -> st.SearchStrategy[bytes]:
    """A JSON text with a slice cut out or replaced: almost JSON, which parsers must still refuse cleanly."""
    data = text.encode()
    return st.builds(
        lambda start, end, junk: data[:start] + junk + data[end:],
        st.integers(0, len(data)),
        st.integers(0, len(data)),
        st.binary(max_size=4),
    )


bodies = st.one_of(
    payloads.map(lambda p: json.dumps(p).encode()),
    payloads.map(json.dumps).flatmap(mutated),
    st.binary(max_size=200),
    st.sampled_from([b"", b"NaN", b'{"id": NaN}', b"[" * 100_000, b'{"a":' * 50_000, b"1" * 5000, b"\xff\xfe"]),
    st.sampled_from([b'{"id": 1e400, "method": "echo"}', b'{"id": 1, "method": "echo", "params": [-Infinity]}']),
)
credentials = base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f"), max_size=40)


def basic(user: str, password: str) -> tuple[str, bool]:
    header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return header, (user, password) == (LOGIN, PASSWORD)


# (Authorization header or None for none at all, whether it holds the right credentials)
authorizations = st.one_of(
    st.sampled_from([(f"Basic {credentials}", True), (f"basic  {credentials}", True), (None, False)]),
    st.builds(basic, st.sampled_from([LOGIN, "", "root"]), st.sampled_from([PASSWORD, "", PASSWORD + "x"])),
    st.builds(basic, header_text, header_text),
    st.builds(lambda raw: ("Basic " + base64.b64encode(raw).decode(), False), st.binary(max_size=30)),
    st.sampled_from(["Basic", "Basic ", "Bearer token", "Basic !!!", f"Basic {credentials[:-2]}", "Digest x", ""]).map(
        lambda header: (header, False)
    ),
    header_text.map(lambda header: (header, header.strip() == f"Basic {credentials}")),
)
content_types = st.one_of(
    st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]),
    header_text,
)


# -- checks ------------------------------------------------------------------------------------


def strict_json_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def strict_json(text: str) -> Any:
    return json.loads(text, parse_constant=strict_json_constant)


def check_response_object(answer: Any) -> None:
    assert isinstance(answer, dict) and answer.get("jsonrpc") == "2.0", answer
    assert "id" in answer and (("result" in answer) != ("error" in answer)), answer
    if "error" in answer:
        error = answer["error"]
        assert isinstance(error, dict) and set(error) == {"code", "message"}, error
        assert isinstance(error["code"], int) and isinstance(error["message"], str), error


def request_ids(payload: Any) -> list[Any]:
    """The ids answers may carry, in request order (None stands for requests without a usable id)."""
    entries = payload if isinstance(payload, list) else [payload]
    return [entry.get("id") if isinstance(entry, dict) else None for entry in entries]


def is_subsequence(found: list[Any], allowed: list[Any]) -> bool:
    remaining = iter(allowed)
    return all(any(item == candidate or item is None for candidate in remaining) for item in found)


def mentions_fail_bug(payload: Any) -> bool:
    entries = payload if isinstance(payload, list) else [payload]
    return any(isinstance(entry, dict) and entry.get("method") == "fail_bug" for entry in entries)


def check_answer(status: int, text: str, payload: Any = None) -> None:
    """What every answer of ``POST /`` must look like; ``payload`` is the decoded request if it was JSON."""
    assert status in ALLOWED_STATUS, (status, text[:300])
    if status == 204:
        assert text == ""
        return
    body = strict_json(text)
    if status == 401:
        assert body == UNAUTHORIZED_BODY
        return
    answers = body if isinstance(body, list) else [body]
    assert answers, "an empty batch gets one error object, never an empty array"
    for answer in answers:
        check_response_object(answer)
        if answer.get("error", {}).get("code") == INTERNAL_ERROR:
            # Only the method that exists to fail, or a result too big to print (add of two 4300-digit numbers).
            unprintable = "cannot be encoded" in answer["error"]["message"]
            assert mentions_fail_bug(payload) or unprintable, f"internal error for a client's input: {answer}"
    if isinstance(payload, list) and payload:
        assert isinstance(body, list), "a batch is answered with an array"
        assert is_subsequence([a["id"] for a in answers], request_ids(payload)), (answers, payload)


async def post(
    client: DaemonClient, body: bytes, headers: dict[str, str] | None = None, authorization: str | None = ""
) -> tuple[int, str]:
    """POST a body; ``authorization`` "" means the right credentials, None no header at all."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if authorization is not None:
        all_headers["Authorization"] = authorization or client.headers["Authorization"]
    async with client.session.post(client.url + "/", data=body, headers=all_headers) as response:
        return response.status, await response.text()


def decoded(body: bytes) -> Any:
    """The body as the daemon reads it, or None: a float beyond float's range (1e400) is a parse error there."""

    def finite(text: str) -> float:
        if math.isinf(number := float(text)):
            raise ValueError(f"{text} is out of range")
        return number

    try:
        return json.loads(body.decode(), parse_constant=strict_json_constant, parse_float=finite)
    except (ValueError, RecursionError):
        return None


async def still_answers(client: DaemonClient) -> None:
    assert await client.call("add", 2, b=3) == 5


# -- properties --------------------------------------------------------------------------------


@FUZZ
@given(batch=st.lists(bodies, min_size=1, max_size=12))
def test_random_bodies_get_json_answers(served: Served, batch: list[bytes]) -> None:
    async def job(client: DaemonClient) -> None:
        for body in batch:
            status, text = await post(client, body)
            check_answer(status, text, decoded(body))
        await still_answers(client)

    served.run(job)


@FUZZ
@given(batch=st.lists(st.lists(well_formed, min_size=1, max_size=30), min_size=1, max_size=4))
def test_real_methods_with_random_params(served: Served, batch: list[list[dict[str, Any]]]) -> None:
    async def job(client: DaemonClient) -> None:
        for payload in batch:
            status, text = await post(client, json.dumps(payload).encode())
            if status == 413:  # huge generated numbers can push a batch over the body limit: refused whole
                check_answer(status, text)
                continue
            check_answer(status, text, payload)
            assert len(strict_json(text)) == len(payload), "every request with an id is answered"
        await still_answers(client)

    served.run(job)


@FUZZ
@given(attempts=st.lists(st.tuples(authorizations, st.one_of(st.none(), content_types), payloads), max_size=8))
def test_random_headers(served: Served, attempts: list[tuple[tuple[str | None, bool], str | None, Any]]) -> None:
    async def job(client: DaemonClient) -> None:
        for (authorization, valid), content_type, payload in attempts:
            headers = {} if content_type is None else {"Content-Type": content_type}
            status, text = await post(client, json.dumps(payload).encode(), headers, authorization or None)
            assert (status != 401) == valid, (authorization, status)
            check_answer(status, text, payload)
        await still_answers(client)

    served.run(job)


# -- bodies over the limit and lying framing -------------------------------------------------------


def test_bodies_over_the_limit_get_413_and_the_daemon_keeps_running(served: Served) -> None:
    async def job(client: DaemonClient) -> None:
        big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": ["x" * MAX_BODY]}).encode()
        status, text = await post(client, big)
        assert status == 413
        check_answer(status, text)
        assert strict_json(text)["error"]["code"] == -32600

        async def chunks() -> Any:  # no Content-Length: the size shows only while reading
            for _ in range(2 * MAX_BODY // 1024 + 1):
                yield b"x" * 1024

        async with client.session.post(client.url + "/", data=chunks(), headers=client.headers) as response:
            status, text = response.status, await response.text()
        assert status == 413
        check_answer(status, text)

        template = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "echo", "params": [""]})
        filler = "y" * (MAX_BODY - len(template))
        at_the_limit = template.replace('""', f'"{filler}"').encode()
        assert len(at_the_limit) == MAX_BODY
        status, text = await post(client, at_the_limit)
        assert status == 200 and strict_json(text)["result"]["args"] == [filler]

        bomb = gzip.compress(b" " * (4 * MAX_BODY))  # small on the wire, over the limit once inflated
        assert len(bomb) < MAX_BODY
        status, text = await post(client, bomb, {"Content-Encoding": "gzip"})
        assert status == 413
        check_answer(status, text)
        await still_answers(client)

    served.run(job)


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {"gzip": gzip.compress, "deflate": zlib.compress}


@settings(FUZZ, max_examples=100)
@given(
    encoding=st.sampled_from(["gzip", "deflate", "identity"]),
    compression=st.sampled_from([None, "gzip", "deflate"]),
    payload=payloads,
)
def test_content_encodings(served: Served, encoding: str, compression: str | None, payload: Any) -> None:
    """Compressed bodies are read like plain ones; a body that does not decode is refused, never a 5xx."""
    body = json.dumps(payload).encode()
    data = COMPRESSORS[compression](body) if compression else body
    matching = encoding == (compression or "identity")

    async def job(client: DaemonClient) -> None:
        if matching:
            status, text = await post(client, data, {"Content-Encoding": encoding})
            check_answer(status, text, payload)
        else:
            # aiohttp inflates bodies itself: one that does not inflate gets -32700 from the daemon, or
            # the protocol's 400 (in JSON), or (its stream being lost) a closed connection. Never a 5xx.
            headers = {**client.headers, "Content-Encoding": encoding}
            status: int | None = None
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as once:
                with contextlib.suppress(aiohttp.ServerDisconnectedError):
                    async with once.post(client.url + "/", data=data, headers=headers) as response:
                        status, text = response.status, await response.text()
            if status == 400:
                assert_unparsable_answer(text)
            elif status is not None:
                check_answer(status, text)
                assert strict_json(text)["error"]["code"] == -32700
        await still_answers(client)

    served.run(job)


def assert_unparsable_answer(text: str) -> None:
    assert strict_json(text) == {
        "jsonrpc": "2.0",
        "error": {"code": -32600, "message": "Bad HTTP request: Bad Request"},
        "id": None,
    }


async def raw_exchange(client: DaemonClient, head: bytes, body: bytes, wait: float) -> bytes:
    """Send bytes as they are and collect what comes back within ``wait`` seconds of silence."""
    host, port = client.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    received = b""
    try:
        writer.write(head + body)
        await writer.drain()
        while chunk := await asyncio.wait_for(reader.read(65536), wait):
            received += chunk
    except TimeoutError:
        pass
    finally:
        writer.close()
    return received


def head(client: DaemonClient, *lines: str) -> bytes:
    fields = ["POST / HTTP/1.1", "Host: localhost", f"Authorization: {client.headers['Authorization']}", *lines]
    return ("\r\n".join(fields) + "\r\n\r\n").encode()


def parse_http(raw: bytes) -> tuple[int, str]:
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), body.decode()


@settings(FUZZ, max_examples=40)
@given(lie=st.one_of(st.integers(-5, 400), st.just(10**15), st.sampled_from(["abc", "1, 2", "", "0x10", "1e3"])))
def test_content_length_lies(served: Served, lie: int | str) -> None:
    payload = {"jsonrpc": "2.0", "id": 7, "method": "add", "params": [1, 2]}
    body = json.dumps(payload).encode()

    async def job(client: DaemonClient) -> None:
        raw = await raw_exchange(client, head(client, f"Content-Length: {lie}"), body, wait=0.2)
        if raw:
            status, text = parse_http(raw)
            assert status < 500, raw
            if status == 400:  # broken HTTP framing: answered by the connection's protocol, in JSON too
                assert_unparsable_answer(text)
            else:
                check_answer(status, text, decoded(body[: int(lie)]) if isinstance(lie, int) else None)
            if lie == len(body):
                assert strict_json(text) == {"jsonrpc": "2.0", "id": 7, "result": 3}
            if isinstance(lie, int) and lie > MAX_BODY:
                assert status == 413
        else:
            assert isinstance(lie, int) and len(body) < lie <= MAX_BODY, "only a body still to come goes unanswered"
        await still_answers(client)

    served.run(job)
