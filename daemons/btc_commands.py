"""Electrum's commands served as the BTC daemon's methods (the wallet passed in where a command takes one)."""

from __future__ import annotations

from typing import Any

from .btc_errors import WATCH_ONLY
from .jsonrpc import RPCError
from .rpc import RPCMethod


class CommandsMixin:
    """Every command of the library's ``known_commands`` but ``EXCLUDED_COMMANDS``, as a dynamic method."""

    async def call(self, method: RPCMethod, bound: Any) -> Any:
        wallet = bound.arguments.get("wallet")
        if method.requires_network and wallet is not None:
            await self.wait_until(lambda: self.headers_synchronized() and wallet.is_up_to_date(), "the wallet")
        if self.dynamic_methods.get(method.name) is method:
            self.check_can_sign(method.name, wallet, bound.arguments)
            # Electrum's @command wrapper finds the wallet only as a keyword argument.
            return await method.func(**bound.arguments)
        return await super().call(method, bound)

    def check_can_sign(self, name: str, wallet: Any, arguments: dict[str, Any]) -> None:
        """Electrum's private-key commands fail on a watch-only wallet with a TypeError: say why instead."""
        command = self.electrum.commands.known_commands[name]
        watch_only = wallet is not None and wallet.is_watching_only()
        if command.requires_password and watch_only and not arguments.get("unsigned"):
            raise RPCError(WATCH_ONLY, f"{name} needs private keys and this is a watch-only wallet")

    def commands_ready(self) -> bool:
        """Whether the library's commands can be served yet (they exist once the backend started)."""
        return self.commands is not None

    def command_function(self, name: str, command: Any) -> Any:
        """The callable that serves one library command."""
        return getattr(self.commands, name)

    def find_dynamic_method(self, name: str) -> RPCMethod | None:
        if not self.commands_ready() or name in self.EXCLUDED_COMMANDS:
            return None
        command = self.electrum.commands.known_commands.get(name)
        if command is None:
            return None
        return RPCMethod(
            name=name,
            func=self.command_function(name, command),
            requires_wallet=command.requires_wallet,
            requires_network=command.requires_network,
            doc=(command.description or "").strip(),
        )

    def list_dynamic_methods(self) -> list[str]:
        if not self.backend_loaded:
            return []
        return sorted(set(self.electrum.commands.known_commands) - self.EXCLUDED_COMMANDS)
