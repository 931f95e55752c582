"""Websocket fan-out of stored events, one writer task per socket.

Each socket has a bounded queue of live events and a cursor (the last event id it was sent or
is known to have seen). A socket that falls behind is never allowed to hold memory or slow the
others down: when its queue overflows it switches to catch-up mode and reads the missed events
from the durable store, in pages, until it reaches the head again. ``since`` replay is the same
catch-up mode started from the client's cursor. A socket whose peer stops reading entirely is
closed after the send timeout; the client can come back with ``since``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import WSCloseCode, web

from .events import Event, EventStore
from .jsonrpc import INVALID_REQUEST, PARSE_ERROR, RPCError, WalletIdentity, dumps, error_response, parse_identity
from .ws_resume import ResumeRegistry, client_id_of

logger = logging.getLogger(__name__)
CATCH_UP_PAGE = 200
CLOSE_TOO_SLOW = 4008  # application close code: the client stopped reading
CLOSE_TIMEOUT = 5.0  # seconds a close may take before the connection is dropped


class WSClient:
    """One connected socket: its scope, its live queue and the task that writes to it."""

    def __init__(
        self, ws: web.WebSocketResponse, hub: Hub, cursor: int, transport: asyncio.Transport | None = None
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.hub = hub
        self.scope: set[str] | None = None
        self.cursor = cursor
        # Per wallet (None: global events), an id range [first, last] in which every event of that wallet
        # has been sent on this socket. Per wallet, so that widening the scope keeps what it knew.
        self.sent_spans: dict[str | None, list[int]] = {}
        self.catching_up = False
        self.pending: deque[Event] = deque()
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def push(self, event: Event) -> None:
        if self.catching_up or not event.concerns(self.scope):
            return  # in catch-up mode the store supplies it
        if len(self.pending) >= self.hub.queue_size:
            self.start_catch_up(self.cursor)
            return
        self.pending.append(event)
        self.wakeup.set()

    def start_catch_up(self, after: int) -> None:
        self.pending.clear()
        self.cursor = after
        self.catching_up = True
        self.wakeup.set()

    def replay_since(self, since: int) -> None:
        self.start_catch_up(since)

    def already_sent(self, event: Event) -> bool:
        span = self.sent_spans.get(event.wallet)
        return span is not None and span[0] <= event.id <= span[1]

    async def run(self) -> None:
        try:
            while not self.ws.closed:
                if self.catching_up:
                    await self.catch_up_page()
                elif self.pending:
                    event = self.pending.popleft()
                    if event.id > self.cursor and event.concerns(self.scope):
                        await self.send([event])
                else:
                    self.wakeup.clear()
                    await self.wakeup.wait()
        except (TimeoutError, ConnectionResetError, RuntimeError) as exc:
            logger.info("closing websocket that stopped reading: %s", type(exc).__name__)
            await self.close(CLOSE_TOO_SLOW, b"too slow: reconnect with since")

    async def close(self, code: int, message: bytes) -> None:
        """Close with ``code``, but drop the connection if the peer has not taken the close frame in time.

        The close frame queues behind whatever the peer has not read yet: a peer that never reads
        would otherwise hold this socket, and the daemon's shutdown, open forever.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.hub.close_timeout
        closing = asyncio.ensure_future(self.ws.close(code=code, message=message))
        closing.add_done_callback(lambda task: task.cancelled() or task.exception())  # retrieved, never raised
        await asyncio.wait({closing}, timeout=self.hub.close_timeout)
        # aiohttp's close returns early when a timed-out send had cancelled its drain waiter: wait here.
        while self.unsent_bytes() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if self.transport is not None and (not closing.done() or self.unsent_bytes()):
            self.transport.abort()

    def unsent_bytes(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    async def catch_up_page(self) -> None:
        page = self.hub.store.fetch(self.cursor, self.scope, CATCH_UP_PAGE)
        if not page:
            # At the head: nothing can have been stored since fetch() returned (no await in between).
            self.catching_up = False
            return
        # A replay never resends what this socket already received, whatever cursor the client names.
        await self.send([event for event in page if not self.already_sent(event)])
        self.cursor = max(self.cursor, page[-1].id)

    async def send(self, events: list[Event]) -> None:
        for group in group_for_messages(events):
            text = self.hub.message(group)
            async with asyncio.timeout(self.hub.send_timeout):  # no task per send, unlike wait_for on 3.11
                await self.ws.send_str(text)
            self.record_sent(group)
            self.cursor = max(self.cursor, group[-1].id)

    def record_sent(self, group: list[Event]) -> None:
        """Widen the spans: events go out in id order (a replay from its cursor to the head), so every
        event of a wallet between two it was sent has been sent too."""
        spans = self.sent_spans
        for event in group:
            span = spans.get(event.wallet)
            if span is None:
                spans[event.wallet] = [event.id, event.id]
            elif event.id > span[1]:
                span[1] = event.id
            elif event.id < span[0]:
                span[0] = event.id

    def rescope(self, scope: set[str]) -> None:
        # A wallet that leaves the scope stops getting events: its span could not stay gap-free.
        spans = self.sent_spans
        self.sent_spans = {wallet: span for wallet, span in spans.items() if wallet is None or wallet in scope}
        indexed = self in self.hub.clients
        if indexed:
            self.hub.unindex(self)
        self.scope = scope
        if indexed:
            self.hub.index(self)


def decode_command(text: str) -> Any:
    """A command's JSON; -32700 for anything else, including nesting too deep for the parser."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise RPCError(PARSE_ERROR, "Parse error: the message is not valid JSON") from None


ENCODED_EVENTS = 256  # live events whose message text the hub keeps, for the sockets still to send it
MESSAGE_EVENTS = 64  # events per message at most, so a replay page never makes one huge frame


def group_for_messages(events: list[Event]) -> list[list[Event]]:
    """Consecutive events of one wallet share a message (up to MESSAGE_EVENTS), keeping the order."""
    groups: list[list[Event]] = []
    for event in events:
        if groups and groups[-1][0].wallet == event.wallet and len(groups[-1]) < MESSAGE_EVENTS:
            groups[-1].append(event)
        else:
            groups.append([event])
    return groups


class Hub:
    """All sockets of one daemon, and the handler that serves ``GET /ws``."""

    def __init__(
        self,
        store: EventStore,
        currency: str,
        wallet_key: Callable[[WalletIdentity], str],
        queue_size: int = 1000,
        send_timeout: float = 30.0,
        watch: Callable[[WalletIdentity], Awaitable[Any]] | None = None,
    ) -> None:
        self.watch = watch
        self.store = store
        self.currency = currency
        self.wallet_key = wallet_key
        self.queue_size = queue_size
        self.send_timeout = send_timeout
        self.close_timeout = CLOSE_TIMEOUT
        self.clients: set[WSClient] = set()
        # The clients by scope, so that a wallet's event visits only the sockets it concerns, not all of them.
        self.unscoped: set[WSClient] = set()
        self.by_wallet: dict[str, set[WSClient]] = {}
        # The latest single-event messages: a live event goes to every socket it concerns as the same text.
        self.encoded: dict[int, str] = {}
        self.resume = ResumeRegistry(store.db)

    def frame(self, updates: list[str], wallet: str | None) -> str:
        """The message text around already-encoded events (each event is encoded once)."""
        return f'{{"updates":[{",".join(updates)}],"wallet":{dumps(wallet)},"currency":{dumps(self.currency)}}}'

    def message(self, group: list[Event]) -> str:
        """The message text of a group of events (one wallet's), encoded once per live event."""
        if len(group) == 1:
            text = self.encoded.get(group[0].id)
            if text is None:
                text = self.frame([dumps(group[0].to_message())], group[0].wallet)
                if len(self.encoded) >= ENCODED_EVENTS:
                    del self.encoded[next(iter(self.encoded))]
                self.encoded[group[0].id] = text
            return text
        return self.frame([dumps(event.to_message()) for event in group], group[0].wallet)

    def publish(self, event: Event) -> None:
        if event.wallet is None:
            targets: Iterable[WSClient] = self.clients
        else:
            targets = itertools.chain(self.unscoped, self.by_wallet.get(event.wallet, ()))
        for client in targets:
            client.push(event)

    def add(self, client: WSClient) -> None:
        self.clients.add(client)
        self.index(client)

    def remove(self, client: WSClient) -> None:
        if client in self.clients:
            self.clients.discard(client)
            self.unindex(client)

    def index(self, client: WSClient) -> None:
        if client.scope is None:
            self.unscoped.add(client)
            return
        for wallet in client.scope:
            self.by_wallet.setdefault(wallet, set()).add(client)

    def unindex(self, client: WSClient) -> None:
        self.unscoped.discard(client)
        for wallet in client.scope or ():
            clients = self.by_wallet.get(wallet)
            if clients is not None:
                clients.discard(client)
                if not clients:
                    del self.by_wallet[wallet]

    async def close_all(self) -> None:
        await self.resume.stop()  # named sockets' cursors saved before they close
        closing = [client.close(WSCloseCode.GOING_AWAY, b"daemon shutting down") for client in list(self.clients)]
        await asyncio.gather(*closing)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            client_id = client_id_of(request)
        except RPCError as error:
            return web.json_response(error_response(None, error), status=400)
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
        await ws.prepare(request)
        newest = self.store.last_id()
        client = WSClient(ws, self, cursor=newest, transport=request.transport)
        if client_id is not None:
            await self.resume.attach(client, client_id, newest)
        self.add(client)
        client.task = asyncio.create_task(client.run())
        try:
            async for message in ws:
                if message.type == web.WSMsgType.TEXT:
                    await self.on_message(client, message.data)
        finally:
            self.remove(client)
            self.resume.detach(client)
            client.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await client.task
        return ws

    async def on_message(self, client: WSClient, text: str) -> None:
        try:
            command = decode_command(text)
            identities = self.apply_command(client, command)
            # A listener that scopes to a wallet is watching it: load it, so its events start.
            for identity in identities:
                if self.watch is not None:
                    await self.watch(identity)
        except (ValueError, RPCError) as exc:
            await self.send_error(client, exc)

    async def send_error(self, client: WSClient, exc: Exception) -> None:
        if isinstance(exc, RPCError):
            code = exc.code
        else:
            code = PARSE_ERROR if isinstance(exc, json.JSONDecodeError) else INVALID_REQUEST
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await client.ws.send_str(dumps({"error": {"code": code, "message": str(exc)}}))

    def apply_command(self, client: WSClient, command: Any) -> list[WalletIdentity]:
        """Apply ``{"xpub": X}``, ``{"xpubs": [X, ...]}`` and ``{"since": N}``; returns the scoped identities."""
        if not isinstance(command, dict):
            raise ValueError("expected an object with 'xpub', 'xpubs' or 'since'")
        identities: list[WalletIdentity] = []
        if "xpub" in command:
            identities = [parse_identity(command["xpub"])]
        if "xpubs" in command:
            if not isinstance(command["xpubs"], list):
                raise ValueError("'xpubs' must be an array")
            identities = [parse_identity(x) for x in command["xpubs"]]
        since = self.store.check_since(command["since"]) if "since" in command else None
        if "xpub" in command or "xpubs" in command:
            client.rescope({self.wallet_key(identity) for identity in identities})
        if since is not None:
            client.replay_since(since)
        self.resume.save(client)  # a named socket resumes with this scope
        return identities
