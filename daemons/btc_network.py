"""Network readiness and daemon status of the BTC daemon: sync waits, /health, getinfo, switch_server."""

from __future__ import annotations

import asyncio
from typing import Any

from .btc_config import parse_server
from .btc_errors import NETWORK_OFFLINE, NOT_SYNCHRONIZED
from .jsonrpc import INVALID_PARAMS, RPCError
from .rpc import rpc

# getinfo's network fields when the daemon is offline (no network): one shape for the BTC and BCH daemons.
DISCONNECTED_NETWORK_INFO: dict[str, Any] = {
    "server": "",
    "blockchain_height": 0,
    "server_height": 0,
    "spv_nodes": 0,
    "connected": False,
}


class NetworkMixin:
    """The Electrum network's state as the daemon's readiness, health and status methods."""

    def headers_synchronized(self) -> bool:
        network = self.network
        if network is None or not network.is_connected():
            return False
        # Connected means the server sent its tip (which may be 0 on a fresh regtest chain).
        return network.get_local_height() >= network.get_server_height() - 1

    async def wait_until(self, ready: Any, what: str) -> None:
        if ready():  # the usual case: no clock to read, no deadline to set
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.sync_timeout
        while not ready():
            if loop.time() >= deadline:
                connected = self.network is not None and self.network.is_connected()
                raise RPCError(
                    NOT_SYNCHRONIZED,
                    f"Not synchronized: {what} did not synchronize within {self.sync_timeout:g}s "
                    f"(server connected: {connected}); check {self.env_reader.variable('SERVER')} "
                    f"or raise {self.env_reader.variable('SYNC_TIMEOUT')}",
                )
            await asyncio.sleep(0.05)

    async def wait_network_ready(self) -> None:
        if self.network is None:
            raise RPCError(
                NETWORK_OFFLINE,
                f"The {self.name} daemon is offline ({self.env_reader.variable('OFFLINE')}=true): "
                "this method needs the network",
            )
        if not self.headers_synchronized():  # in step: no wait to set up
            await self.wait_until(self.headers_synchronized, "block headers")

    async def health(self) -> dict[str, Any]:
        if self.network is None:
            return {"status": "ok", "network": self.network_name, "offline": True}
        body = {
            "network": self.network_name,
            "offline": False,
            "connected": self.network.is_connected(),
            "local_height": self.network.get_local_height(),
            "server_height": self.network.get_server_height(),
        }
        if not body["connected"]:
            return {"status": "backend_unavailable", **body}
        # ok only when our headers and the server's tip agree (one block of slack for a block in flight):
        # behind it we are still syncing; ahead of it, the server is behind or serves another chain
        # (a regtest chain started anew), and what the daemon reports does not match it either.
        in_step = abs(body["local_height"] - body["server_height"]) <= 1
        return {"status": "ok" if in_step else "syncing", **body}

    def is_synchronized(self) -> bool:
        return self.headers_synchronized() and all(w.is_up_to_date() for w in self.wallets.values())

    def daemon_status(self) -> dict[str, Any]:
        """What getinfo adds to the library's network info; the BCH daemon's getinfo adds the same."""
        return {
            "offline": self.network is None,
            "synchronized": self.is_synchronized(),
            "total_wallets": len(self.wallets),
        }

    @rpc
    async def getinfo(self) -> dict[str, Any]:
        """Electrum's network info, plus synchronized and total_wallets (works offline too)."""
        if self.network is not None:
            data = await self.commands.getinfo()
        else:
            data = {
                "network": self.electrum.constants.net.NET_NAME,
                "path": self.electrum_config.path,
                **DISCONNECTED_NETWORK_INFO,
                "auto_connect": False,
                "version": self.electrum.version.ELECTRUM_VERSION,
                "fee_per_kb": self.electrum_config.fee_per_kb(),
            }
        data.pop("default_wallet", None)
        return {**data, **self.daemon_status()}

    @rpc
    async def switch_server(self, server: str) -> bool:
        """Connect to another Electrum server (host:port:t or host:port:s)."""
        if self.network is None:
            await self.wait_network_ready()  # raises the offline error
        try:
            address = self.electrum.interface.ServerAddr.from_str(parse_server(server) or "?")
        except ValueError as exc:
            raise RPCError(INVALID_PARAMS, f"Invalid server {server!r}: {exc}") from exc
        params = self.network.get_parameters()._replace(server=address, auto_connect=False)
        await self.network.set_parameters(params)
        return True
