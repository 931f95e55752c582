"""Library commands answered without redoing pure work the library repeats on every call (issue 18).

``validateaddress`` decodes the address (bech32 or base58check, pure Python) and ``getaddresshistory``
decodes it again to its script hash before asking the server, on every call. Both decodings depend on
the address text alone and the process's network, which never changes while it runs, so their results
are kept per address (bounded). Nothing about a wallet or money is kept: the history is still the
server's answer of the moment.
"""

from __future__ import annotations

from typing import Any

from .rpc import RPCMethod


class PureResults:
    """Results of a pure function of one string, at most ``size`` (the oldest dropped first)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.results: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.results.get(key)

    def put(self, key: str, result: Any) -> None:
        if len(self.results) >= self.size:
            del self.results[next(iter(self.results))]  # the oldest: insertion order
        self.results[key] = result


class FastCallsMixin:
    """Runs a library command, through a fast path where the class names one for it (``FAST_COMMANDS``)."""

    # Library command -> the method that answers it as the library would. Electron Cash's getaddresshistory
    # takes another address type, so the BCH daemon keeps only validateaddress (a memo of its own answer).
    FAST_COMMANDS: dict[str, str] = {
        "validateaddress": "fast_validateaddress",
        "getaddresshistory": "fast_getaddresshistory",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.address_validity = PureResults()  # address text -> the library's validateaddress answer
        self.address_scripthashes = PureResults()  # address text -> its Electrum-protocol script hash

    async def run_library_command(self, method: RPCMethod, arguments: dict[str, Any]) -> Any:
        fast = self.FAST_COMMANDS.get(method.name)
        if fast is not None:
            return await getattr(self, fast)(method, arguments)
        # Electrum's @command wrapper finds the wallet only as a keyword argument.
        return await method.func(**arguments)

    async def fast_validateaddress(self, method: RPCMethod, arguments: dict[str, Any]) -> Any:
        """The library's own answer for this address text, asked once."""
        address = arguments.get("address")
        if not isinstance(address, str):
            return await method.func(**arguments)
        known = self.address_validity.get(address)
        if known is None:
            known = await method.func(**arguments)
            if isinstance(known, bool):
                self.address_validity.put(address, known)
        return known

    async def fast_getaddresshistory(self, method: RPCMethod, arguments: dict[str, Any]) -> Any:
        """Electrum's getaddresshistory (the server's history of the address's script hash), the script hash
        decoded once per address; offline or for a non-string, the library's command as is."""
        address = arguments.get("address")
        if self.network is None or not isinstance(address, str) or len(arguments) != 1:
            return await method.func(**arguments)
        scripthash = self.address_scripthashes.get(address)
        if scripthash is None:
            scripthash = self.electrum.bitcoin.address_to_scripthash(address)  # raises as the command would
            self.address_scripthashes.put(address, scripthash)
        return await self.network.get_history_for_scripthash(scripthash)
