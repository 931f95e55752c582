"""Launch the regtest stack: our regtest node plus a real ElectrumX indexing it, on loopback ports.

Used by the pytest fixtures (tests/regtest_fixtures.py), the benchmark and `make run`
(`python -m regtest.stack`). Both parts run as child processes so that a test can stop or kill one of them
and start it again on the same port (ElectrumX lives in its own virtualenv, .venv-electrumx, because it needs
a newer aiorpcX than the Electrum library of the main one).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .electrum_client import ElectrumError, request_sync
from .errors import RPCError

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def electrumx_python() -> Path:
    """The interpreter of ElectrumX's own virtualenv (REGTEST_ELECTRUMX_PYTHON overrides it)."""
    return Path(os.environ.get("REGTEST_ELECTRUMX_PYTHON", REPO_ROOT / ".venv-electrumx" / "bin" / "python"))


def free_port(host: str = HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class StackError(RuntimeError):
    """A part of the stack did not start or answer in time (its log file is named in the message)."""


def _stop_process(proc: subprocess.Popen | None, timeout: float = 20.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class NodeProcess:
    """`python -m regtest` as a child process, with a blocking RPC helper."""

    def __init__(self, datadir: Path, port: int, user: str, password: str, log_path: Path, segwit: bool = True) -> None:
        self.datadir, self.port, self.user, self.password, self.log_path = datadir, port, user, password, log_path
        self.segwit = segwit
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.user}:{self.password}@{HOST}:{self.port}/"

    def start(self, timeout: float = 30.0) -> None:
        cmd = [sys.executable, "-m", "regtest", "--datadir", str(self.datadir), "--rpcbind", HOST]
        cmd += ["--rpcport", str(self.port), "--rpcuser", self.user, "--rpcpassword", self.password]
        if not self.segwit:
            cmd.append("--no-segwit")
        if os.environ.get("REGTEST_DEBUG"):
            cmd.append("--debug")  # logs every RPC method called, e.g. to see which ones ElectrumX uses
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StackError(f"regtest node exited with {self.proc.returncode}, see {self.log_path}")
            try:
                self.rpc("getblockcount")
                return
            except (OSError, StackError):
                time.sleep(0.05)
        raise StackError(f"regtest node did not answer within {timeout}s, see {self.log_path}")

    def stop(self) -> None:
        _stop_process(self.proc)

    def rpc(self, method: str, *params: Any, timeout: float = 30.0) -> Any:
        body = json.dumps({"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)}).encode()
        req = urllib.request.Request(f"http://{HOST}:{self.port}/", body, {"Content-Type": "application/json"})
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                reply = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            if e.code == 401:
                raise StackError("regtest node refused the RPC credentials") from None
            reply = json.loads(e.read())
        if reply.get("error"):
            raise RPCError(reply["error"]["code"], reply["error"]["message"])
        return reply["result"]


class ElectrumXProcess:
    """ElectrumX indexing one node, serving TCP on loopback only.

    coin "Bitcoin" (ElectrumX 2's Bitcoin class, segwit serialization; with NET=regtest: BitcoinRegtest) or
    "BitcoinCash" (BitcoinCashRegtest: no segwit, LTOR block processor) for a node started with --no-segwit.
    """

    def __init__(
        self,
        db_dir: Path,
        daemon_url: str,
        port: int,
        log_path: Path,
        poll_ms: int = 100,
        padding_wait: float | None = 0.0,
        coin: str = "Bitcoin",
    ) -> None:
        self.db_dir, self.daemon_url, self.port, self.log_path = db_dir, daemon_url, port, log_path
        self.coin = coin
        self.poll_ms = poll_ms
        self.padding_wait = padding_wait  # None keeps ElectrumX's 1 s hold-back (see regtest/electrumx_launch.py)
        self.proc: subprocess.Popen | None = None

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ELECTRUMX_", "VIRTUAL_ENV"))}
        env.update(
            COIN=self.coin,
            NET="regtest",
            DB_ENGINE="leveldb",
            DB_DIRECTORY=str(self.db_dir),
            DAEMON_URL=self.daemon_url,
            SERVICES=f"tcp://{HOST}:{self.port}",
            REPORT_SERVICES="",
            PEER_DISCOVERY="off",
            PEER_ANNOUNCE="",
            ALLOW_ROOT="1",
            CACHE_MB="64",
            DAEMON_POLL_INTERVAL_BLOCKS=str(self.poll_ms),
            DAEMON_POLL_INTERVAL_MEMPOOL=str(self.poll_ms),
            COST_SOFT_LIMIT="0",  # no per-session throttling: tests and benchmarks hammer it from one address
            COST_HARD_LIMIT="0",
            INITIAL_CONCURRENT="50",
            LOG_LEVEL="info",
        )
        if self.padding_wait is not None:
            env["REGTEST_ELECTRUMX_PADDING_WAIT"] = str(self.padding_wait)
        return env

    def start(self) -> None:
        python = electrumx_python()
        if not python.exists():
            raise StackError(f"{python} not found: run `make electrumx-venv`")
        self.db_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(python), str(Path(__file__).with_name("electrumx_launch.py"))]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=self.environment(), stdout=log, stderr=subprocess.STDOUT)

    def height(self) -> int:
        return request_sync(HOST, self.port, "blockchain.headers.subscribe")["height"]

    def wait_height(self, height: int, timeout: float = 60.0) -> None:
        """Block until ElectrumX serves `height` (it opens its port only once caught up with the node)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise StackError(f"ElectrumX exited with {self.proc.returncode}, see {self.log_path}")
            try:
                if self.height() >= height:
                    return
            except (OSError, ElectrumError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        raise StackError(f"ElectrumX did not reach height {height} within {timeout}s, see {self.log_path}")

    def stop(self) -> None:
        _stop_process(self.proc, timeout=30.0)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class RegtestStack:
    """Node + ElectrumX under one work dir. Ports are fixed at construction so restarts reuse them.

    coin="BitcoinCash" gives a chain without segwit indexed by ElectrumX's BitcoinCash regtest class (mine to
    legacy base58 addresses: the node does not decode CashAddr).
    """

    def __init__(
        self,
        workdir: Path | str | None = None,
        *,
        node_port: int = 0,
        electrumx_port: int = 0,
        user: str = "rpcuser",
        password: str = "rpcpassword",
        poll_ms: int = 100,
        padding_wait: float | None = 0.0,
        coin: str = "Bitcoin",
    ) -> None:
        self._tmp = None if workdir else tempfile.mkdtemp(prefix="regtest-stack-")
        self.workdir = Path(workdir or self._tmp)
        self.workdir.mkdir(parents=True, exist_ok=True)
        segwit = coin != "BitcoinCash"
        self.node = NodeProcess(
            self.workdir / "node", node_port or free_port(), user, password, self.workdir / "node.log", segwit
        )
        self.electrumx = ElectrumXProcess(
            self.workdir / "electrumx",
            self.node.url,
            electrumx_port or free_port(),
            self.workdir / "electrumx.log",
            poll_ms,
            padding_wait,
            coin,
        )

    @property
    def electrum_server(self) -> str:
        """Electrum's server string (host:port:protocol) for SERVER/ONESERVER settings."""
        return f"{HOST}:{self.electrumx.port}:t"

    def start(self) -> RegtestStack:
        try:
            self.node.start()
            self.start_electrumx()
        except BaseException:
            self.stop()  # never leave a half-started stack behind
            raise
        return self

    def start_electrumx(self, timeout: float = 60.0) -> None:
        self.electrumx.start()
        self.electrumx.wait_height(self.node.rpc("getblockcount"), timeout)

    def stop(self) -> None:
        self.electrumx.stop()
        self.node.stop()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> RegtestStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def rpc(self, method: str, *params: Any) -> Any:
        return self.node.rpc(method, *params)

    def mine(self, count: int, address: str, timeout: float = 60.0) -> list[str]:
        """Mine `count` blocks paying `address`; return once ElectrumX serves the new tip."""
        hashes = self.node.rpc("generatetoaddress", count, address)
        self.electrumx.wait_height(self.node.rpc("getblockcount"), timeout)
        return hashes

    async def amine(self, count: int, address: str, timeout: float = 60.0) -> list[str]:
        """`mine` for async code (the blocking parts run in a worker thread)."""
        return await asyncio.to_thread(self.mine, count, address, timeout)

    async def arpc(self, method: str, *params: Any) -> Any:
        return await asyncio.to_thread(self.node.rpc, method, *params)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m regtest.stack",
        description="Run the regtest node + ElectrumX until Ctrl-C, or around a command given after --.",
        epilog="With a command, it runs once the stack is ready, with REGTEST_ELECTRUM_SERVER (host:port:t) and "
        "REGTEST_RPC_PORT in its environment; the stack stops when the command exits.",
    )
    p.add_argument("--workdir", default=os.environ.get("REGTEST_WORKDIR", "data/regtest"), help="chain, index, logs")
    p.add_argument("--rpcport", type=int, default=int(os.environ.get("REGTEST_RPCPORT", 18443)))
    p.add_argument("--electrumx-port", type=int, default=int(os.environ.get("REGTEST_ELECTRUMX_PORT", 50001)))
    p.add_argument("--rpcuser", default=os.environ.get("REGTEST_RPCUSER", "rpcuser"))
    p.add_argument("--rpcpassword", default=os.environ.get("REGTEST_RPCPASSWORD", "rpcpassword"))
    p.add_argument("--coin", choices=("Bitcoin", "BitcoinCash"), default="Bitcoin", help="BitcoinCash: no segwit")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then a command to run against the stack")
    args = p.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    return args


def run_command(stack: RegtestStack, command: list[str]) -> int:
    """Run `command` against the ready stack; Ctrl-C reaches it too (same process group), SIGTERM is passed on."""
    env = {**os.environ, "REGTEST_ELECTRUM_SERVER": stack.electrum_server, "REGTEST_RPC_PORT": str(stack.node.port)}
    child = subprocess.Popen(command, env=env)
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue  # the child got the same SIGINT: wait for it to finish shutting down


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    stack = RegtestStack(
        args.workdir,
        node_port=args.rpcport,
        electrumx_port=args.electrumx_port,
        user=args.rpcuser,
        password=args.rpcpassword,
        coin=args.coin,
    )
    code = 0
    try:
        stack.start()
        print(
            f"regtest stack ready: node RPC http://{HOST}:{stack.node.port}/ (user {stack.node.user}), "
            f"ElectrumX {stack.electrum_server}, height {stack.rpc('getblockcount')}, logs in {stack.workdir}",
            flush=True,
        )
        if args.command:
            code = run_command(stack, args.command)
        else:
            stop: list[int] = []
            signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
            while not stop:
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
