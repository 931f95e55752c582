"""Where each wallet is open: a pool of wallet-rpc "slots", each holding at most one open wallet.

monero-wallet-rpc holds one open wallet per process, and opening one is expensive: ``open_wallet`` costs
about 2 s of CPU on the CI machine (the wallet file's key derivation), ``generate_from_keys`` about 3 s.
So the pool keeps wallets open and pinned: in supervised mode every wallet gets its own wallet-rpc process
(a slot) up to ``max_slots``; calls to different wallets then run in parallel and never wait for a switch.
Only beyond ``max_slots`` (or with one external wallet-rpc, where ``max_slots`` is 1) does the least
recently used idle slot switch wallets (store, close, open), which is correct but slow. Calls on a slot are
counted, never serialized: a switch waits until no call is using the slot, and new calls wait for the switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from .xmr_client import MoneroError, MoneroRPC, MoneroRPCError, MoneroUnavailable
from .xmr_process import WalletRPCProcess

NO_WALLET_OPEN = -13  # wallet-rpc's WALLET_RPC_ERROR_CODE_NOT_OPEN: it restarted and lost its wallet

Opener = Callable[[MoneroRPC], Awaitable[None]]


@dataclass(eq=False)
class Slot:
    """One wallet-rpc endpoint: a supervised process, or the external wallet-rpc."""

    index: int
    process: WalletRPCProcess | None = None
    external: MoneroRPC | None = None
    open_file: str | None = None
    opener: Opener | None = None
    users: int = 0
    busy: bool = True  # starting or switching: no new calls until it is done
    epoch: int | None = None  # which opening of its wallet this is (unique in the pool); None: none open
    opened_in: int = 0  # the process's start count when its wallet was opened
    last_used: float = field(default_factory=time.monotonic)

    @property
    def client(self) -> MoneroRPC:
        if self.external is not None:
            return self.external
        if self.process is None or self.process.client is None or not self.process.ready:
            raise MoneroUnavailable("wallet-rpc unreachable: its process is restarting")
        return self.process.client

    @property
    def ready(self) -> bool:
        return self.external is not None or (self.process is not None and self.process.ready)

    @property
    def starts(self) -> int:
        return self.process.starts if self.process is not None else 0

    def opened(self, epoch: int) -> None:
        self.epoch, self.opened_in = epoch, self.starts


class WalletPool:
    """Hands out the wallet-rpc client on which a given wallet file is open."""

    def __init__(
        self,
        max_slots: int,
        make_process: Callable[[int], WalletRPCProcess] | None = None,
        external: MoneroRPC | None = None,
    ) -> None:
        if (make_process is None) == (external is None):
            raise ValueError("a pool needs either a process factory or an external wallet-rpc")
        self.max_slots = 1 if external is not None else max_slots
        self.make_process = make_process
        self.external = external
        self.slots: list[Slot] = []
        self.by_file: dict[str, Slot] = {}
        self.switches = 0
        self._epochs = itertools.count(1)
        self._changed = asyncio.Condition()
        self._placing = asyncio.Semaphore(os.cpu_count() or 2)

    @contextlib.asynccontextmanager
    async def session(self, filename: str, opener: Opener) -> AsyncIterator[MoneroRPC]:
        """The client of a slot on which ``filename`` is open (``opener`` opens or creates it if needed)."""
        slot = await self._enter(filename, opener)
        try:
            yield slot.client
        except MoneroRPCError as exc:
            if exc.code == NO_WALLET_OPEN:
                await self._forget(slot)
            raise
        except MoneroUnavailable:
            if slot.external is not None:  # it may come back without our wallet open
                await self._forget(slot)
            raise
        finally:
            async with self._changed:
                slot.users -= 1
                self._changed.notify_all()

    async def _enter(self, filename: str, opener: Opener) -> Slot:
        while True:
            async with self._changed:
                slot = self.by_file.get(filename)
                if slot is not None and not slot.busy:
                    if not slot.ready:
                        raise MoneroUnavailable("wallet-rpc unreachable: its process is restarting")
                    slot.users += 1
                    slot.last_used = time.monotonic()
                    return slot
                if slot is not None:  # being opened for us, or restarting
                    await self._changed.wait()
                    continue
                slot = self._claim_slot()
                if slot is None:
                    await self._changed.wait()
                    continue
                previous = slot.open_file
                if previous is not None:
                    self.by_file.pop(previous, None)
                slot.busy, slot.open_file, slot.opener, slot.epoch = True, filename, opener, None
                self.by_file[filename] = slot
                await self._changed.wait_for(lambda s=slot: s.users == 0)
            await self._place(slot, previous, opener)

    def _claim_slot(self) -> Slot | None:
        """A new slot while under the cap, else the least recently used idle one (None: wait)."""
        if len(self.slots) < self.max_slots:
            slot = Slot(len(self.slots), external=self.external)
            self.slots.append(slot)
            return slot
        idle = [slot for slot in self.slots if not slot.busy and slot.users == 0]
        return min(idle, key=lambda slot: slot.last_used) if idle else None

    async def _place(self, slot: Slot, previous: str | None, opener: Opener) -> None:
        """Start the slot's process if needed and open (or create) the wallet in it.

        Starting wallet-rpc and opening a wallet are CPU-bound for seconds: at most one per core runs at a
        time, so fifty wallets loaded at once queue here instead of all timing out together.
        """
        async with self._placing:
            await self._place_now(slot, previous, opener)

    async def _place_now(self, slot: Slot, previous: str | None, opener: Opener) -> None:
        try:
            if slot.external is None and slot.process is None:
                assert self.make_process is not None
                slot.process = self.make_process(slot.index)
                slot.process.on_restart = lambda s=slot: self._reopen(s)
                await slot.process.start()
            client = slot.client
            if previous is not None:
                self.switches += 1
                with contextlib.suppress(MoneroError):
                    await client.call("close_wallet", {"autosave_current": True})
            await opener(client)
        except BaseException:
            if slot.process is not None and not slot.process.ready:  # never came up: start afresh next time
                await slot.process.stop()
                slot.process = None
            async with self._changed:
                if self.by_file.get(slot.open_file or "") is slot:
                    self.by_file.pop(slot.open_file or "", None)
                slot.open_file, slot.opener, slot.busy, slot.epoch = None, None, False, None
                self._changed.notify_all()
            raise
        async with self._changed:
            slot.busy = False
            slot.opened(next(self._epochs))
            slot.last_used = time.monotonic()
            self._changed.notify_all()

    async def _reopen(self, slot: Slot) -> None:
        """After a supervised process restarted: open its wallet again before serving calls."""
        opener = slot.opener
        if opener is None:
            return
        async with self._changed:
            slot.busy, slot.epoch = True, None
        try:
            await opener(slot.client)
        except BaseException:
            await self._forget(slot)
            raise
        finally:
            async with self._changed:
                slot.busy = False
                if slot.opener is not None:
                    slot.opened(next(self._epochs))
                self._changed.notify_all()

    async def _forget(self, slot: Slot) -> None:
        async with self._changed:
            if slot.open_file is not None and self.by_file.get(slot.open_file) is slot:
                del self.by_file[slot.open_file]
            slot.open_file, slot.opener, slot.epoch = None, None, None
            self._changed.notify_all()

    def is_open(self, filename: str) -> bool:
        slot = self.by_file.get(filename)
        return slot is not None and not slot.busy and slot.ready

    def epoch(self, filename: str) -> int | None:
        """Which opening of ``filename`` serves calls now; None while it is not open or its process is down."""
        slot = self.by_file.get(filename)
        if slot is None or slot.busy or not slot.ready or slot.starts != slot.opened_in:
            return None  # a restarted process has lost the wallet until ``_reopen`` opens it again
        return slot.epoch

    def slot_states(self) -> dict[str, int]:
        """wallet-rpc endpoints by state: serving calls, busy (starting or switching wallets) or down."""
        states = {"ready": 0, "busy": 0, "down": 0}
        for slot in self.slots:
            states["busy" if slot.busy else "ready" if slot.ready else "down"] += 1
        return states

    def processes(self) -> list[WalletRPCProcess]:
        return [slot.process for slot in self.slots if slot.process is not None]

    async def close(self) -> None:
        await asyncio.gather(*(process.stop() for process in self.processes()), return_exceptions=True)
        if self.external is not None:
            await self.external.close()
