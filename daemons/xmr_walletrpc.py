"""The wallet-rpc side of XMR wallets: its pool of processes, making and opening wallet files there, and calls.

wallet-rpc holds one open wallet per process and opening one costs ~2 s of CPU here (``open_wallet``;
``generate_from_keys`` ~3 s), so by default each wallet gets its own supervised process, up to
``XMR_MAX_WALLET_RPC`` (daemons/xmr_pool.py). A wallet file is made from the identity's secret the first time
a process opens it; the secret is dropped as soon as the file exists. Every call that may change the wallet
voids its snapshot (daemons/xmr_snapshot.py) and asks for a poll right after it, through ``on_change``.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .xmr_client import MoneroError, MoneroRPC, MoneroRPCError, MoneroUnavailable, health_word
from .xmr_pool import WalletPool
from .xmr_process import WalletRPCProcess
from .xmr_snapshot import KEEPS_SNAPSHOT, Snapshot, Snapshots
from .xmr_wallet import WalletTable, XMRWallet, file_password

Opener = Callable[[MoneroRPC], Any]


def split_login(value: str) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    user, _, password = value.partition(":")
    return user, password


def host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 18081}"


def external_pool(url: str, login: str, timeout: float) -> WalletPool:
    """One wallet-rpc run by someone else (``XMR_WALLET_RPC_URL``): every wallet takes turns in it."""
    user, password = split_login(login)
    return WalletPool(1, external=MoneroRPC(url, login=user, password=password, timeout=timeout))


def supervised_pool(
    binary: str,
    monerod_url: str,
    monerod_login: str,
    wallet_dir: Path,
    data_path: Path,
    network: str,
    size: int,
    timeout: float,
) -> WalletPool:
    """Up to ``size`` wallet-rpc processes of our own, their logs and start-up credential files in DATA_PATH."""
    logs = data_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    private = data_path / "wallet-rpc"  # the processes' credential files, while they start
    private.mkdir(mode=0o700, exist_ok=True)
    private.chmod(0o700)

    def make_process(index: int) -> WalletRPCProcess:
        return WalletRPCProcess(
            binary,
            host_port(monerod_url),
            wallet_dir,
            logs / f"wallet-rpc-{index}.log",
            private / f"wallet-rpc-{index}.conf",
            network,
            monerod_login or None,
            timeout,
        )

    return WalletPool(size, make_process=make_process)


class WalletRPCs:
    """Calls to each wallet's wallet-rpc, opening (or first making) its wallet file there as needed."""

    def __init__(
        self, pool: WalletPool, table: WalletTable, secret_path: Path, on_change: Callable[[str], None]
    ) -> None:
        self.pool = pool
        self.table = table
        self.secret_path = secret_path  # the random secret the wallet files' passwords derive from
        self.on_change = on_change
        self.snapshots = Snapshots()
        self._openers: dict[str, Opener] = {}

    def forget(self, key: str) -> None:
        self._openers.pop(key, None)
        self.snapshots.forget(key)

    @asynccontextmanager
    async def session(self, wallet: XMRWallet) -> AsyncIterator[MoneroRPC]:
        """The wallet's wallet-rpc, with the wallet open in it, for the duration of the block."""
        async with self.pool.session(wallet.filename, self._opener(wallet)) as client:
            yield client

    def epoch(self, wallet: XMRWallet) -> int | None:
        return self.pool.epoch(wallet.filename)

    async def call(self, wallet: XMRWallet, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call ``method`` on the wallet's wallet-rpc; one that may change the wallet voids its snapshot."""
        if method in KEEPS_SNAPSHOT:
            return await self._call_in_slot(wallet, method, params)
        try:
            with self.snapshots.changing(wallet.key):
                return await self._call_in_slot(wallet, method, params)
        finally:
            self.on_change(wallet.key)  # the poller's next round reads the changed wallet (and new events) at once

    async def _call_in_slot(self, wallet: XMRWallet, method: str, params: dict[str, Any] | None) -> Any:
        async with self.session(wallet) as client:
            return await client.call(method, params)

    def snapshot(self, wallet: XMRWallet) -> Snapshot | None:
        """What wallet-rpc would answer to get_height and get_balance now, if the poller has it."""
        return self.snapshots.get(wallet.key, self.epoch(wallet))

    async def health(self, binary: str) -> str:
        if self.pool.external is not None:
            try:
                await self.pool.external.call("get_version", timeout=3.0)
            except MoneroError as exc:
                return health_word(exc, "wallet-rpc")
            return "ok"
        if shutil.which(binary) is None:
            return f"wallet-rpc unreachable: {binary} not found"
        down = [p.pid for p in self.pool.processes() if not p.ready]
        return "ok" if not down else f"wallet-rpc unreachable: {len(down)} process(es) restarting"

    # -- opening ----------------------------------------------------------------------------------

    def _opener(self, wallet: XMRWallet) -> Opener:
        opener = self._openers.get(wallet.key)
        if opener is None:
            opener = self._openers[wallet.key] = self._make_opener(wallet)
        return opener

    def _make_opener(self, wallet: XMRWallet) -> Opener:
        password = file_password(self.secret_path, wallet.filename)

        async def open_or_create(client: MoneroRPC) -> None:
            await open_or_create_file(client)
            # the poller refreshes the wallet itself; wallet-rpc refreshing on its own (every 20 s by
            # default) would change the wallet behind the snapshot's back (daemons/xmr_snapshot.py)
            await client.call("auto_refresh", {"enable": False})

        async def open_or_create_file(client: MoneroRPC) -> None:
            if not wallet.created:
                if wallet.secret is None:
                    raise MoneroUnavailable("wallet not ready: send a request with its keys again")
                try:
                    await client.call(*self._creation(wallet, password))
                except MoneroRPCError as exc:
                    if "already exists" not in exc.message:
                        raise
                    # an earlier attempt timed out on our side but wallet-rpc finished it: it may be open here
                    if await self._is_open_in(client, wallet):
                        self._mark_created(wallet)
                        return
                else:
                    self._mark_created(wallet)
                    return
                self._mark_created(wallet)
            await client.call("open_wallet", {"filename": wallet.filename, "password": password})

        return open_or_create

    def _mark_created(self, wallet: XMRWallet) -> None:
        wallet.created, wallet.secret = True, None
        self.table.save(wallet)

    async def _is_open_in(self, client: MoneroRPC, wallet: XMRWallet) -> bool:
        try:
            return (await client.call("get_address", {"account_index": 0}))["address"] == wallet.address
        except MoneroRPCError:
            return False

    def _creation(self, wallet: XMRWallet, password: str) -> tuple[str, dict[str, Any]]:
        assert wallet.secret is not None
        common = {"filename": wallet.filename, "password": password, "restore_height": wallet.restore_height}
        if wallet.view_only:
            return "generate_from_keys", {**common, "address": wallet.address, "viewkey": wallet.secret}
        return "restore_deterministic_wallet", {**common, "seed": wallet.secret, "language": "English"}
