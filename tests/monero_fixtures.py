"""Real Monero for tests: monerod in regtest and monero-wallet-rpc processes (Debian's monero 0.18).

``monero_chain`` (session scope) starts ``monerod --regtest --offline --fixed-difficulty 1`` on free loopback
ports in a temporary directory and mines a funded chain once: coinbase to two wallets made offline from
random seeds, a *spender* (which tests load into the daemon as a spending wallet) and a *payer* (held by a
wallet-rpc of the fixture, which makes the test payments). Coinbase unlocks after 60 blocks and transfers
need ring members, so ~150 blocks are mined (about 10 s at regtest's ~15 blocks/s). Nothing is faked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from daemons.xmr_client import MoneroRPC
from tests.support import free_port, stop_process

MONEROD = shutil.which("monerod") or "/usr/bin/monerod"
WALLET_RPC = shutil.which("monero-wallet-rpc") or "/usr/bin/monero-wallet-rpc"
PICONERO = 10**12


def json_rpc(url: str, method: str, params: dict[str, Any] | None = None, timeout: float = 120.0) -> Any:
    """A blocking JSON-RPC call, for fixtures (tests use asyncio.to_thread around it)."""
    payload = json.dumps({"jsonrpc": "2.0", "id": 0, "method": method, "params": params or {}}).encode()
    request = urllib.request.Request(f"{url}/json_rpc", data=payload, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = json.loads(response.read())
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error']}")
    return body["result"]


def wait_answering(url: str, process: subprocess.Popen[bytes], method: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        with contextlib.suppress(urllib.error.URLError, ConnectionError, OSError, RuntimeError):
            json_rpc(url, method, timeout=2.0)
            return
        time.sleep(0.1)
    raise TimeoutError(f"{process.args[0]} did not answer")


@dataclass
class Keys:
    """A wallet made offline by the monero library: mnemonic, primary address, secret view key."""

    mnemonic: str
    address: str
    view_key: str

    @classmethod
    def random(cls) -> Keys:
        from monero.seed import Seed

        seed = Seed()
        return cls(seed.phrase, str(seed.public_address()), str(seed.secret_view_key()))

    @property
    def view_only(self) -> dict[str, str]:
        """The identity as the bitcart SDK's XMR class sends it."""
        return {"xpub": self.view_key, "address": self.address}

    @property
    def spending(self) -> dict[str, Any]:
        return {"xpub": self.mnemonic, "restore_height": 0}


@dataclass
class Monerod:
    """A regtest monerod that a test may kill and start again (same data and port)."""

    root: Path
    rpc_port: int = field(default_factory=free_port)
    p2p_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # Online: it looks for peers, but only at a closed loopback port (never the internet), so it stays
    # unsynchronized, as a node that has not caught up with the network yet.
    offline: bool = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    def start(self) -> None:
        network = ["--offline"] if self.offline else ["--add-exclusive-node", f"127.0.0.1:{free_port()}"]
        command = [
            MONEROD, "--regtest", "--keep-fakechain", *network, "--fixed-difficulty", "1", "--non-interactive",
            "--data-dir", str(self.root / "monerod"), "--log-file", str(self.root / "monerod.log"),
            "--rpc-bind-ip", "127.0.0.1", "--rpc-bind-port", str(self.rpc_port),
            "--p2p-bind-ip", "127.0.0.1", "--p2p-bind-port", str(self.p2p_port),
            "--no-zmq", "--no-igd", "--disable-dns-checkpoints", "--log-level", "0",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_answering(self.url, self.process, "get_block_count")

    def kill(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def mine(self, blocks: int, address: str) -> int:
        params = {"amount_of_blocks": blocks, "wallet_address": address}
        return int(json_rpc(self.url, "generateblocks", params)["height"])

    def height(self) -> int:
        return int(json_rpc(self.url, "get_block_count")["count"])

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One of monerod's plain JSON endpoints (/pop_blocks, /get_transactions...), not a JSON-RPC method."""
        request = urllib.request.Request(
            f"{self.url}/{path}", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        assert answer["status"] == "OK", answer
        return dict(answer)


@dataclass
class WalletRPC:
    """A monero-wallet-rpc of the fixture (external to the daemon), optionally with --rpc-login."""

    root: Path
    daemon_url: str
    login: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        wallet_dir = self.root / f"wallet-rpc-{self.port}"
        wallet_dir.mkdir(parents=True, exist_ok=True)
        daemon = self.daemon_url.removeprefix("http://")
        command = [
            WALLET_RPC, "--daemon-address", daemon, "--trusted-daemon", "--non-interactive",
            "--rpc-bind-ip", "127.0.0.1", "--rpc-bind-port", str(self.port), "--wallet-dir", str(wallet_dir),
            "--log-file", str(wallet_dir / "wallet-rpc.log"), "--shared-ringdb-dir", str(wallet_dir / "ringdb"),
        ]  # fmt: skip
        command += ["--rpc-login", self.login] if self.login else ["--disable-rpc-login"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.login:  # a 401 is an answer too: wait for the port only
            wait_port(self.port, self.process)
        else:
            wait_answering(self.url, self.process, "get_version")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None:
            stop_process(self.process, sig)

    def client(self) -> MoneroRPC:
        user, _, password = (self.login or "").partition(":")
        return MoneroRPC(self.url, login=user or None, password=password or None)


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("wallet-rpc exited")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise TimeoutError("wallet-rpc did not listen")


@dataclass
class Chain:
    """The funded regtest chain shared by the XMR tests."""

    monerod: Monerod
    payer_rpc: WalletRPC
    spender: Keys
    payer: Keys
    root: Path
    burn: str = ""  # blocks mined for confirmations go here, so no test wallet sees coinbase noise

    def mine(self, blocks: int = 1) -> int:
        return self.monerod.mine(blocks, self.burn)

    async def mine_async(self, blocks: int = 1) -> int:
        return await asyncio.to_thread(self.mine, blocks)

    def confirm(self, txids: list[str], confirmations: int) -> int:
        """Mines until every one of ``txids`` is in a block and the newest of them has ``confirmations``; returns
        the top block's height. monerod now and then leaves a transaction relayed just before out of the next
        block (seen under load: the second of two payments landed a block later), so ``mine(n)`` may fall short."""
        while True:
            found = self.monerod.post("get_transactions", {"txs_hashes": txids}).get("txs") or []
            heights = [t["block_height"] for t in found if not t["in_pool"]]
            if len(heights) == len(txids):
                break
            self.mine(1)
        top = self.monerod.height() - 1
        missing = confirmations - (top - max(heights) + 1)
        return self.mine(missing) if missing > 0 else top

    async def confirm_async(self, txids: list[str], confirmations: int) -> int:
        return await asyncio.to_thread(self.confirm, txids, confirmations)

    def pay(self, destinations: list[tuple[str, Decimal | str]]) -> str:
        """Send from the payer wallet (refreshed first) and relay; returns the tx hash."""
        outputs = [{"address": a, "amount": int(Decimal(str(x)) * PICONERO)} for a, x in destinations]
        for attempt in range(30):  # right after monerod restarts, wallet-rpc needs a moment to reconnect
            try:
                json_rpc(self.payer_rpc.url, "refresh")
                return str(json_rpc(self.payer_rpc.url, "transfer", {"destinations": outputs})["tx_hash"])
            except RuntimeError as exc:
                if attempt == 29 or not any(s in str(exc) for s in ("output distribution", "daemon", "-38")):
                    raise
                time.sleep(1)
        raise AssertionError("unreachable")

    async def pay_async(self, address: str, amount: Decimal | str) -> str:
        return await asyncio.to_thread(self.pay, [(address, amount)])


class HeldBlockCount:
    """Stands between the XMR daemon's block watcher (``Poller.monerod``) and monerod: every get_block_count is
    answered by monerod at once, then held until the test lets it through. So the watcher sees blocks exactly
    as late as a test wants (behind the wallets' polls or the scanner) instead of racing its 0.25 s rounds."""

    def __init__(self, monerod: MoneroRPC) -> None:
        self.monerod = monerod
        self.held: list[tuple[int, asyncio.Event]] = []  # monerod's count per read, and its release
        self.changed = asyncio.Event()
        self.opened = False

    async def call(self, method: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        answer = await self.monerod.call(method, params, **kwargs)
        if method == "get_block_count" and not self.opened:
            release = asyncio.Event()
            self.held.append((int(answer["count"]), release))
            self.changed.set()
            await release.wait()
        return answer

    async def count(self, index: int, timeout: float = 120.0) -> int:
        """What monerod answered to the watcher's ``index``-th held read, once it made that read."""
        async with asyncio.timeout(timeout):
            while len(self.held) <= index:
                self.changed.clear()
                await self.changed.wait()
        return self.held[index][0]

    def release(self, index: int) -> None:
        self.held[index][1].set()

    def open(self) -> None:
        """No read is held any more."""
        self.opened = True
        for _, release in self.held:
            release.set()


@contextlib.contextmanager
def funded_chain(prefix: str, payer_blocks: int, spender_blocks: int = 0) -> Iterator[Chain]:
    """A regtest monerod in a temporary directory with a payer wallet (restored in a wallet-rpc of its own)
    that owns `payer_blocks` coinbases, and a spender with `spender_blocks` (none: the payer is the spender).
    70 more blocks to a burn address unlock them (coinbase unlocks after 60) and give transfers ring members.
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        root = Path(tmp)
        monerod = Monerod(root)
        monerod.start()
        payer, burn = Keys.random(), Keys.random()
        spender = Keys.random() if spender_blocks else payer
        payer_rpc = WalletRPC(root, monerod.url)
        try:
            if spender_blocks:
                monerod.mine(spender_blocks, spender.address)
            monerod.mine(payer_blocks, payer.address)
            monerod.mine(70, burn.address)
            payer_rpc.start()
            restore = {"filename": "payer", "password": "", "seed": payer.mnemonic, "restore_height": 0}
            json_rpc(payer_rpc.url, "restore_deterministic_wallet", {**restore, "language": "English"})
            yield Chain(monerod, payer_rpc, spender, payer, root, burn.address)
        finally:
            payer_rpc.stop()
            monerod.stop()


@pytest.fixture(scope="session")
def monero_chain() -> Iterator[Chain]:
    if not (os.path.exists(MONEROD) and os.path.exists(WALLET_RPC)):
        pytest.fail("monerod and monero-wallet-rpc are needed (Debian package 'monero')")
    with funded_chain("xmr-chain-", payer_blocks=50, spender_blocks=40) as chain:
        yield chain
