"""Events of XMR wallets by polling wallet-rpc: new blocks from monerod, each wallet's incoming transfers.

monerod's block count is read every ``BLOCK_POLL_INTERVAL`` (it is cheap) and each new block is reported
once (``new_block``) and kicks every wallet's poller at once; otherwise a wallet is polled every
``XMR_POLL_INTERVAL``. A poll refreshes the wallet in its wallet-rpc, reads its incoming transfers (pool
included), keeps the snapshot of its height and balance (daemons/xmr_snapshot.py), and turns what is new into
durable events: ``new_transaction`` once per transaction, ``new_payment`` on each change of a request's status
(daemons/xmr_requests.py). What was reported is recorded in the event's own transaction: never twice, never lost.

A wallet's poll (or the scanner) can get to a block before the watcher does. It reports the blocks up to the
wallet's height first (``Poller.reach``): a request's confirmations count from ``chain_height``, which must never
be older than the height its status was computed at (else it reads paid one confirmation short for a round).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .xmr_client import MoneroError, MoneroRPC
from .xmr_requests import PaymentRequest, RequestStore, Transfer, evaluate, mined_height, now
from .xmr_wallet import WalletTable, XMRWallet
from .xmr_walletrpc import WalletRPCs

logger = logging.getLogger(__name__)

# blocks re-read below the tip by get_transfers, in case of a reorganisation; a paid request is re-evaluated
# (and can become unpaid again) until its payment's block is this deep
REORG_MARGIN = 20
BLOCK_POLL_INTERVAL = 0.25  # get_block_count is cheap; a new block kicks every wallet's poller at once
BLOCK_CATCHUP = 100  # at most this many new_block events after a long downtime

# BaseDaemon.notify: stores an event, running ``also(db)`` in the same transaction, then sends it
Notify = Callable[..., Awaitable[Any]]


class Reporter:
    """Turns what a wallet received into durable events: ``new_transaction`` once per transaction,
    ``new_payment`` on each change of a request's status. Shared by the poller and the scanner."""

    def __init__(self, notify: Notify, requests: RequestStore, table: WalletTable, confirmations: int) -> None:
        self.notify = notify
        self.requests = requests
        self.table = table
        self.confirmations = confirmations

    async def emit(self, event: str, fields: dict[str, Any], wallet: str | None, record: Callable[[], None]) -> None:
        """Store the event and ``record`` that it was reported in one transaction: never twice, never lost."""
        await self.notify(event, fields, wallet, also=lambda db: record())

    async def transaction(self, wallet: str, txid: str) -> None:
        if not self.table.seen(wallet, txid):
            await self.emit("new_transaction", {"tx": txid}, wallet, lambda: self.table.mark_seen(wallet, txid))

    async def update_request(self, request: PaymentRequest, transfers: list[Transfer]) -> None:
        status, sent, hashes = evaluate(request, transfers, self.confirmations, now())
        height = mined_height(request, transfers)
        if (status, sent, hashes) == (request.status, request.sent, request.tx_hashes):
            if height != request.mined_height:  # only the block its confirmations count from moved: no event
                request.mined_height = height
                self.requests.update(request)
            return
        request.mined_height = height
        request.status, request.sent, request.tx_hashes = status, sent, hashes
        await self.emit("new_payment", request.payment_event(), request.wallet, lambda: self.requests.update(request))


class Poller:
    """The block watcher and one polling task per wallet."""

    def __init__(self, monerod: MoneroRPC, wallet_rpcs: WalletRPCs, reporter: Reporter, poll_interval: float) -> None:
        self.monerod = monerod
        self.wallet_rpcs = wallet_rpcs
        self.reporter = reporter
        self.requests = reporter.requests
        self.table = reporter.table
        self.poll_interval = poll_interval
        self.chain_height = self.table.state("height") or 0
        self.blocks_lock = asyncio.Lock()  # one reporter of new_block at a time: the watcher or a wallet's poll
        self.reached = 0  # times a wallet's height moved chain_height on: a count read before that may be stale
        self.pollers: dict[str, asyncio.Task[None]] = {}
        self.kicks: dict[str, asyncio.Event] = {}
        self.block_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.block_task = asyncio.ensure_future(self._poll_blocks())

    async def stop(self) -> None:
        tasks = [task for task in (self.block_task, *self.pollers.values()) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def watched(self, key: str) -> list[PaymentRequest]:
        """The wallet's requests a poll re-evaluates: pending ones, and paid ones a reorganisation can still undo."""
        return self.requests.pending(key, self.chain_height - REORG_MARGIN)

    def kick(self, key: str) -> None:
        kick = self.kicks.get(key)
        if kick is not None:
            kick.set()

    # -- blocks -----------------------------------------------------------------------------------

    async def _poll_blocks(self) -> None:
        while True:
            try:
                await self._watch_round()
            except MoneroError as exc:
                logger.debug("block poll failed: %s", exc)
            except Exception:
                logger.exception("block poll failed")
            await asyncio.sleep(min(self.poll_interval, BLOCK_POLL_INTERVAL))

    async def _watch_round(self) -> None:
        reached = self.reached
        count = int((await self.monerod.call("get_block_count", timeout=5.0))["count"])
        async with self.blocks_lock:
            if count < self.chain_height and self.reached != reached:
                return  # read before a wallet reported newer blocks: stale, not a shorter chain (next round tells)
            await self._report_blocks(count)

    async def reach(self, height: int) -> None:
        """A wallet poll or scan learnt ``height`` (a block count, as wallet-rpc's get_height): the blocks up
        to it are reported and ``chain_height`` set before the caller reports anything computed against it.
        Forward only: a lower height is a wallet behind the chain, not a shorter chain."""
        if height <= self.chain_height:
            return
        async with self.blocks_lock:
            if height > self.chain_height:
                self.reached += 1
                await self._report_blocks(height)

    async def _report_blocks(self, count: int) -> None:
        """new_block for each height above the highest reported one (holding ``blocks_lock``, so never twice
        and in order), then ``chain_height`` is ``count``; a higher one kicks every wallet's poller."""
        last = self.table.state("height")
        first = count if last is None else max(last + 1, count - BLOCK_CATCHUP + 1)
        higher = count > self.chain_height
        for height in range(first, count + 1):
            self.chain_height = height  # before its event: a listener reacting to it reads at least this height
            record = lambda h=height: self.table.set_state("height", h)  # noqa: E731
            await self.reporter.emit("new_block", {"height": height}, None, record)
        self.chain_height = count  # also lower: a shorter chain after a reorganisation (no new_block for it)
        if higher:
            for kick in self.kicks.values():
                kick.set()

    # -- wallets ----------------------------------------------------------------------------------

    def start_wallet(self, wallet: XMRWallet) -> None:
        if wallet.key in self.pollers and not self.pollers[wallet.key].done():
            return
        self.kicks[wallet.key] = asyncio.Event()
        self.pollers[wallet.key] = asyncio.ensure_future(self._poll_wallet_forever(wallet))

    def stop_wallet(self, key: str) -> None:
        task = self.pollers.pop(key, None)
        if task is not None:
            task.cancel()

    async def _poll_wallet_forever(self, wallet: XMRWallet) -> None:
        kick = self.kicks[wallet.key]
        while True:
            kick.clear()
            try:
                await self.poll_wallet(wallet)
            except MoneroError as exc:
                logger.debug("poll of %s failed: %s", wallet.key, exc)
            except Exception:
                logger.exception("poll of %s failed", wallet.key)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(kick.wait(), self.poll_interval)

    async def poll_wallet(self, wallet: XMRWallet) -> None:
        """One round: refresh, read incoming transfers, report new ones and request status changes."""
        pending = self.watched(wallet.key)
        low = min([r.height for r in pending] + [wallet.scan_from]) - 1
        snapshots = self.wallet_rpcs.snapshots
        mark = snapshots.mark(wallet.key)
        async with self.wallet_rpcs.session(wallet) as client:
            epoch = self.wallet_rpcs.epoch(wallet)
            try:
                await client.call("refresh")
                params = {"in": True, "pool": True, "account_index": 0, "filter_by_height": True}
                found = await client.call("get_transfers", {**params, "min_height": max(0, low)})
                height = int((await client.call("get_height"))["height"])
                balance = await client.call("get_balance", {"account_index": 0})
            except BaseException:
                snapshots.forget(wallet.key)  # it may have refreshed without our reading the result
                raise
        # taken before the events below go out, so a client reacting to one sees the same wallet state
        snapshots.store(wallet.key, mark, epoch, height, balance)
        await self.reach(height)  # the statuses below count confirmations at this height: so must get_request
        entries = [e for e in found.get("in", []) + found.get("pool", []) if not e.get("double_spend_seen")]
        transfers = [Transfer.from_rpc(entry) for entry in entries]
        for transfer in transfers:
            await self.reporter.transaction(wallet.key, transfer.txid)
        for request in pending:
            await self.reporter.update_request(request, transfers)
        wallet.scan_from = max(wallet.scan_from, self.chain_height - REORG_MARGIN)
