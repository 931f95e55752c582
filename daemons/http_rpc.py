"""JSON-RPC over HTTP, as plain functions: reading a bounded body, answering a bounded batch, encoding.

One request must not be able to hold the daemon: its body has a size limit and a deadline, a batch
has a length limit (over it the whole batch is -32600), its calls run one at a time with the loop
free to serve other connections between them, and its answer stops growing at a size limit (the
calls past it are not run, and each says so).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import jsonrpc
from .jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, RPCError

logger = logging.getLogger(__name__)
Answer = dict[str, Any]


class BodyTimeout(RPCError):
    """The client declared a body and did not send it in time (HTTP 408, connection closed)."""


def body_too_large(limit: int) -> RPCError:
    return RPCError(INVALID_REQUEST, f"Request body too large: the limit is {limit} bytes")


async def read_body(request: web.BaseRequest, limit: int, timeout: float) -> bytes:
    """The body, at most ``limit`` bytes, all received within ``timeout`` seconds; RPCError otherwise."""
    if request.content.is_eof():  # the whole body is here already (usually, with the head): no wait to bound
        return await read_limited(request, limit)
    try:
        async with asyncio.timeout(timeout):
            return await read_limited(request, limit)
    except TimeoutError:
        raise BodyTimeout(INVALID_REQUEST, f"Request body not received within {timeout:g} seconds") from None


async def read_limited(request: web.BaseRequest, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise body_too_large(limit)
    try:
        if length is not None and not request.headers.get("Content-Encoding"):
            # The common case: a declared, plain length within the limit is read in one go.
            return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:  # the declared length was a lie
        raise body_too_large(limit) from exc
    chunks, size = [], 0
    try:
        while chunk := await request.content.read(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise body_too_large(limit)
            chunks.append(chunk)
    except web.RequestPayloadError as exc:  # such as a Content-Encoding the body does not have
        raise RPCError(jsonrpc.PARSE_ERROR, "Parse error: the body cannot be decoded") from exc
    return b"".join(chunks)


def encode_answer(answer: Answer) -> str:
    """One answer as strict JSON; a result that cannot be encoded becomes its request's internal error."""
    try:
        return jsonrpc.dumps(answer, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        logger.error("the result for request id %r cannot be encoded as JSON", answer.get("id"), exc_info=exc)
        error = RPCError(INTERNAL_ERROR, "Internal error: the result cannot be encoded as JSON")
        return jsonrpc.dumps(jsonrpc.error_response(answer.get("id"), error))


async def answer_batch(
    items: list[Any], handle: Callable[[Any], Awaitable[Answer | None]], max_length: int, max_size: int
) -> str | None:
    """The encoded answer to a batch (None: only notifications), within ``max_length`` calls and ``max_size`` bytes."""
    if not items:
        return jsonrpc.dumps(jsonrpc.error_response(None, RPCError(INVALID_REQUEST, "Invalid request: empty batch")))
    if len(items) > max_length:
        message = f"Invalid request: a batch may hold at most {max_length} calls, this one holds {len(items)}"
        return jsonrpc.dumps(jsonrpc.error_response(None, RPCError(INVALID_REQUEST, message)))
    parts: list[str] = []
    size = 0
    for index, item in enumerate(items):
        if index:
            await asyncio.sleep(0)  # between two calls, the loop serves the other connections
        if size > max_size:
            answer = not_run(item, max_size)
        else:
            answer = await handle(item)
        if answer is not None:
            text = encode_answer(answer)
            size += len(text)
            parts.append(text)
    return f"[{','.join(parts)}]" if parts else None


def not_run(item: Any, max_size: int) -> Answer | None:
    """The answer of a call that a full batch answer left unrun (None for a notification)."""
    if isinstance(item, dict) and "id" not in item:
        return None
    message = f"Not run: the batch's answer reached {max_size} bytes before this call; send it again"
    return jsonrpc.error_response(jsonrpc.request_id_of(item), RPCError(INVALID_REQUEST, message))
