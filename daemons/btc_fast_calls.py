"""Library commands answered without redoing pure work the library repeats on every call (issue 18).

``validateaddress`` decodes the address (bech32 or base58check, pure Python) and ``getaddresshistory``
decodes it again to its script hash before asking the server, on every call. Both decodings depend on
the address text alone and the process's network, which never changes while it runs, so their results
are kept per address (bounded). Nothing about a wallet or money is kept: the history is still the
server's answer of the moment.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

from .rpc import RPCMethod


class PureResults:
    """Results of a pure function by its argument, at most ``size`` (the oldest dropped first)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.results: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        return self.results.get(key)

    def put(self, key: Any, result: Any) -> None:
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


# Output scripts up to this size are remembered: the longest address script (a version 1-16 witness
# program of 40 bytes, with its two opcodes). Longer ones are never an address and are not kept.
LONGEST_ADDRESS_SCRIPT = 42


def remember_output_addresses(transaction: ModuleType, constants: ModuleType, size: int = 8192) -> None:
    """Make Electrum's ``transaction.get_address_from_output_script`` remember its answers (once per process).

    Every ``TxOutput.address`` calls it (Electrum's own "TODO cache this?"), and get_request reads a
    request's address four times (export_request, its URI, the payment check, sent_amount): a script
    parse and a bech32 encoding in pure Python each time. The answer depends on the script's bytes and the
    network alone, so it is kept per (bytes, network), bounded, and the network of the moment is part of
    the key (tests run several networks in one process).
    """
    original = transaction.get_address_from_output_script
    if getattr(original, "remembers_addresses", False):
        return
    answers = PureResults(size)
    lock = threading.Lock()

    def get_address_from_output_script(_bytes: bytes, *, net: Any = None) -> str | None:
        if len(_bytes) > LONGEST_ADDRESS_SCRIPT:
            return original(_bytes, net=net)
        key = (bytes(_bytes), net if net is not None else constants.net)
        known = answers.results.get(key, answers)  # the PureResults itself marks "not known": None is an answer
        if known is answers:
            known = original(_bytes, net=net)
            with lock:  # Electrum also decodes in worker threads (wallets are built off the loop)
                answers.put(key, known)
        return known

    get_address_from_output_script.remembers_addresses = True  # type: ignore[attr-defined]
    get_address_from_output_script.__wrapped__ = original  # type: ignore[attr-defined]
    get_address_from_output_script.answers = answers  # type: ignore[attr-defined]
    transaction.get_address_from_output_script = get_address_from_output_script
