"""Electron Cash's commands served as the BCH daemon's dynamic JSON-RPC methods.

Its ``Commands`` object is bound to one wallet and blocks, so each call builds one and runs it off the loop.
"""

from __future__ import annotations

import inspect
from typing import Any

from .bch_calls import in_thread, to_json


class BCHCommandsMixin:
    """Every Electron Cash command, by its name, with its own signature, run in a worker thread.

    Which commands are served (``list_dynamic_methods``: known_commands minus EXCLUDED_COMMANDS) is the BTC daemon's.
    """

    # The BTC daemon's fast paths (btc_fast_calls) are written over Electrum's API: none here.
    FAST_COMMANDS: dict[str, str] = {}

    def commands_ready(self) -> bool:
        return self.electrum_config is not None

    def command_function(self, name: str, command: Any) -> Any:
        """An async function with the command's signature that runs it in a worker thread."""

        async def run(wallet: Any = None, **kwargs: Any) -> Any:
            return await self.run_command(name, wallet, **kwargs)

        params = [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in command.params]
        params += [
            inspect.Parameter(o, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d)
            for o, d in zip(command.options, command.defaults, strict=True)
        ]
        params.append(inspect.Parameter("wallet", inspect.Parameter.KEYWORD_ONLY, default=None))
        run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        return run

    async def run_command(self, name: str, wallet: Any, **kwargs: Any) -> Any:
        """Electron Cash's Commands are bound to one wallet and block: build one, run it off the loop."""
        commands = self.electrum.commands.Commands(self.electrum_config, wallet, self.network)
        result = await in_thread(getattr(commands, name), **kwargs)
        return to_json(result)
