"""Daemon status of the BCH daemon: /health with Electron Cash's version, getinfo, switch_server.

Electron Cash's commands are built per wallet (see ``bch_commands``), so there is no daemon-wide
commands object to ask: getinfo reads Electron Cash's Network (a thread with a synchronous API) directly.
"""

from __future__ import annotations

from typing import Any

from .bch_calls import in_thread
from .btc_config import parse_server
from .btc_errors import NETWORK_OFFLINE
from .btc_network import DISCONNECTED_NETWORK_INFO
from .jsonrpc import INVALID_PARAMS, RPCError
from .rpc import rpc


class BCHNetworkMixin:
    """Electron Cash's network state as the daemon's health and status methods."""

    async def health(self) -> dict[str, Any]:
        body = await super().health()
        body["electron_cash"] = self.electrum.version.PACKAGE_VERSION
        return body

    @rpc
    async def getinfo(self) -> dict[str, Any]:
        """Network info (works offline too), plus synchronized and total_wallets."""
        network = self.network
        data: dict[str, Any] = {
            "network": self.network_name,
            "path": self.electrum_config.path,
            **DISCONNECTED_NETWORK_INFO,
            "auto_connect": not self.server,
            "version": self.electrum.version.PACKAGE_VERSION,
            "fee_per_kb": self.electrum_config.fee_per_kb(),
        }
        if network is not None:
            data.update(
                server=network.get_parameters()[0],
                blockchain_height=network.get_local_height(),
                server_height=network.get_server_height(),
                spv_nodes=len(network.get_interfaces()),
                connected=network.is_connected(),
            )
        return {**data, **self.daemon_status()}

    @rpc
    async def switch_server(self, server: str) -> bool:
        """Connect to another Electron Cash server (host:port:t or host:port:s)."""
        if self.network is None:
            raise RPCError(NETWORK_OFFLINE, f"The {self.name} daemon is offline: it has no server to switch")
        try:
            host, port, protocol = (parse_server(server) or "?").rsplit(":", 2)
        except ValueError as exc:
            raise RPCError(INVALID_PARAMS, f"Invalid server {server!r}: expected host:port:t or host:port:s") from exc
        proxy = self.network.get_parameters()[3]
        await in_thread(self.network.set_parameters, host, port, protocol, proxy, False)
        return True
