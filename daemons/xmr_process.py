"""One supervised monero-wallet-rpc process: started on a free loopback port, restarted when it dies.

Each process gets fresh random ``rpc-login`` credentials, so no other local program can drive the
wallets it holds, and the daemon always talks to it with digest auth. Credentials never go on the command
line, which every local user can read (``ps``, /proc/<pid>/cmdline): they go in a ``--config-file`` made
with mode 0600 in the daemon's DATA_PATH, which lives only while wallet-rpc starts (it reads it once, at
start-up) and is written afresh, with new credentials, for every start. The supervisor restarts a process
that exits on its own (after a short backoff) and tells its owner through ``on_restart`` so the wallet
it held is opened again. While a process is down or starting, ``ready`` is false and callers fail fast
instead of queueing behind a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import secrets
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from .xmr_client import MoneroError, MoneroRPC, MoneroUnavailable

logger = logging.getLogger(__name__)

START_TIMEOUT = 60.0  # wallet-rpc answers after ~3 s here; generous for a loaded CI machine
RESTART_BACKOFF = 1.0
PR_SET_PDEATHSIG = 1
NETWORK_FLAGS = {"testnet": ["--testnet"], "stagenet": ["--stagenet"]}  # regtest and mainnet use mainnet addresses


def die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the daemon dies, even by SIGKILL (Linux prctl).

    Otherwise an orphaned wallet-rpc would keep the wallet file locked and the restarted daemon could
    not open it again.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def fits_config_file(value: str) -> bool:
    """Whether wallet-rpc reads ``value`` back unchanged from an ``option=value`` line.

    Its config parser (boost program_options) cuts a line at ``#`` and strips the value's outer spaces
    (checked with 0.18: ``rpc-login=xmr:ab#cd`` accepts the password "ab"), and a line break would start
    another option.
    """
    return value == value.strip() and not any(char in value for char in "#\r\n")


def write_config(path: Path, options: dict[str, str]) -> None:
    """Write wallet-rpc's ``--config-file``, readable by this user only.

    The file is made afresh with ``O_EXCL`` and mode 0600 (a umask can only narrow it), so it is never
    readable by others, not even for a moment, and whatever was at ``path`` (an old file, a symlink) is
    replaced, never followed or reused.
    """
    for name, value in options.items():
        if not fits_config_file(value):
            raise ValueError(f"{name} cannot go in a wallet-rpc config file ('#', line breaks, outer spaces)")
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write("".join(f"{name}={value}\n" for name, value in options.items()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WalletRPCProcess:
    """A monero-wallet-rpc child of the daemon, with the client that reaches it."""

    def __init__(
        self,
        binary: str,
        daemon_address: str,
        wallet_dir: Path,
        log_path: Path,
        config_path: Path,
        network: str = "mainnet",
        daemon_login: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.binary = binary
        self.daemon_address = daemon_address
        self.wallet_dir = wallet_dir
        self.log_path = log_path
        self.config_path = config_path
        self.network = network
        self.daemon_login = daemon_login
        self.timeout = timeout
        self.process: asyncio.subprocess.Process | None = None
        self.client: MoneroRPC | None = None
        self.ready = False
        self.starts = 0  # how many times it was (re)started: a restart loses whatever it had open
        self.on_restart: Callable[[], Awaitable[None]] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def _command(self, port: int) -> list[str]:
        """The argv, which any local user can read: no secret in it (those are in ``config_path``)."""
        command = [
            self.binary,
            "--config-file", str(self.config_path),
            "--daemon-address", self.daemon_address,
            "--trusted-daemon",
            "--rpc-bind-ip", "127.0.0.1",
            "--rpc-bind-port", str(port),
            "--wallet-dir", str(self.wallet_dir),
            "--shared-ringdb-dir", str(self.wallet_dir / ".ringdb"),
            "--log-file", str(self.log_path),
            "--max-log-files", "2",
            "--non-interactive",
        ]  # fmt: skip
        return command + NETWORK_FLAGS.get(self.network, [])

    def _write_secrets(self, login: str) -> None:
        options = {"rpc-login": login}
        if self.daemon_login:
            options["daemon-login"] = self.daemon_login
        try:
            write_config(self.config_path, options)
        except OSError as exc:
            raise MoneroUnavailable(f"wallet-rpc unreachable: cannot write {self.config_path}: {exc}") from exc

    async def start(self) -> None:
        """Start the process and wait until it answers; raises MoneroUnavailable if it cannot."""
        self._stopping = False
        await self._spawn()
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.ensure_future(self._supervise())

    async def _spawn(self) -> None:
        self.ready = False
        self.starts += 1
        port = free_port()
        user, password = "xmr", secrets.token_hex(16)
        self.wallet_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._write_secrets(f"{user}:{password}")
            self.process = await self._launch(port)
            if self.client is not None:
                await self.client.close()
            self.client = MoneroRPC(f"http://127.0.0.1:{port}", login=user, password=password, timeout=self.timeout)
            await self._wait_answering()
        finally:  # it answers only after reading its options: the file is no longer needed
            self.config_path.unlink(missing_ok=True)
        self.ready = True
        logger.info("wallet-rpc started (pid %s, port %s)", self.process.pid, port)

    async def _launch(self, port: int) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                *self._command(port),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        except OSError as exc:
            raise MoneroUnavailable(f"wallet-rpc unreachable: cannot start {self.binary}: {exc}") from exc

    async def _wait_answering(self) -> None:
        assert self.process is not None and self.client is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while loop.time() < deadline:
            if self.process.returncode is not None:
                raise MoneroUnavailable(f"wallet-rpc unreachable: {self.binary} exited with {self.process.returncode}")
            with contextlib.suppress(MoneroUnavailable):
                await self.client.call("get_version", timeout=2.0)
                return
            await asyncio.sleep(0.1)
        raise MoneroUnavailable(f"wallet-rpc unreachable: {self.binary} did not answer in {START_TIMEOUT:.0f} s")

    async def _supervise(self) -> None:
        """Restart the process whenever it exits while the daemon still wants it."""
        while not self._stopping:
            process = self.process
            if process is not None:
                await process.wait()
            if self._stopping:
                return
            self.ready = False
            code = process.returncode if process is not None else None
            logger.warning("wallet-rpc (pid %s) exited with %s; restarting", self.pid, code)
            await asyncio.sleep(RESTART_BACKOFF)
            try:
                await self._spawn()
            except MoneroError as exc:
                logger.error("wallet-rpc restart failed: %s", exc)
                continue
            if self.on_restart is not None:
                try:
                    await self.on_restart()
                except Exception:
                    logger.exception("reopening the wallet after a wallet-rpc restart failed")

    async def stop(self) -> None:
        """Save and stop: ``stop_wallet`` stores the open wallet; SIGTERM, then SIGKILL, as fallbacks."""
        self._stopping = True
        self.ready = False
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        process, client = self.process, self.client
        if process is not None and process.returncode is None:
            if client is not None:
                with contextlib.suppress(MoneroError):
                    await client.call("stop_wallet", timeout=10.0)
            try:
                await asyncio.wait_for(process.wait(), 10.0)
            except TimeoutError:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 5.0)
                except TimeoutError:
                    process.kill()
                    await process.wait()
        if client is not None:
            await client.close()
