"""Library commands answered without redoing pure work the library repeats on every call (issue 18).

``validateaddress`` decodes the address (bech32 or base58check, pure Python) and ``getaddresshistory``
decodes it again to its script hash before asking the server, on every call. Both decodings depend on
the address text alone and the process's network, which never changes while it runs, so their results
are kept per address (bounded). Nothing about a wallet or money is kept: the history is still the
server's answer of the moment.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .btc_fast_balance import BalanceAnswer, balance_answer
from .btc_fast_history import NOT_FINISHED, without_summary_coins
from .rpc import RPCMethod

logger = logging.getLogger(__name__)


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
        "getbalance": "fast_getbalance",
        "onchain_history": "fast_onchain_history",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plain_commands: dict[str, Any] = {}  # command name -> Electrum's Command, when its wrapper is skippable
        self.address_validity = PureResults()  # address text -> the library's validateaddress answer
        self.address_scripthashes = PureResults()  # address text -> its Electrum-protocol script hash
        self.server_requests = ServerRequests()  # getaddresshistory's requests to the main server
        self.balance_answers: dict[int, BalanceAnswer] = {}  # id(wallet) -> its last getbalance (btc_fast_balance)

    async def run_library_command(self, method: RPCMethod, arguments: dict[str, Any]) -> Any:
        fast = self.FAST_COMMANDS.get(method.name)
        if fast is not None:
            return await getattr(self, fast)(method, arguments)
        return await self.library_call(method, arguments)

    def library_call(self, method: RPCMethod, arguments: dict[str, Any]) -> Any:
        """The library command's coroutine for these arguments (Electrum's @command wrapper finds the wallet
        only as a keyword argument); the undecorated command where the wrapper would only pass them on."""
        command = self._plain_commands.get(method.name, UNKNOWN)
        if command is UNKNOWN:
            command = plain_command(self.electrum.commands, method.name, method.func)
            self._plain_commands[method.name] = command
        if command is None:
            return method.func(**arguments)
        wallet = arguments.get("wallet")
        if isinstance(wallet, str) or (command.requires_wallet and not wallet):  # the wrapper looks up or refuses
            return method.func(**arguments)
        return command.undecorated(method.func.__self__, **arguments)

    async def fast_validateaddress(self, method: RPCMethod, arguments: dict[str, Any]) -> Any:
        """The library's own answer for this address text, asked once."""
        address = arguments.get("address")
        if not isinstance(address, str) or len(address) > LONGEST_ADDRESS:
            return await method.func(**arguments)  # a longer text is no address: not worth keeping
        known = self.address_validity.get(address)
        if known is None:
            known = await method.func(**arguments)
            if isinstance(known, bool):
                self.address_validity.put(address, known)
        return known

    async def fast_getbalance(self, method: RPCMethod, arguments: dict[str, Any]) -> Any:
        """Electrum's getbalance, given again while Electrum's balance cache holds what it was made from."""
        wallet = arguments.get("wallet")
        known = self.balance_answers.get(id(wallet))
        if known is not None and len(arguments) == 1 and known.holds(wallet):
            return dict(known.answer)
        answer = await self.library_call(method, arguments)  # no await inside: nothing runs before it is kept
        kept = balance_answer(self.electrum, wallet, answer) if len(arguments) == 1 else None
        if kept is None:
            self.balance_answers.pop(id(wallet), None)
        else:
            self.balance_answers[id(wallet)] = kept
        return answer

    async def fast_onchain_history(self, method: RPCMethod, arguments: dict[str, Any]) -> Any:
        """Electrum's onchain_history without fiat, its unused summary coins not computed (btc_fast_history)."""
        wallet = arguments.get("wallet")
        if wallet is not None and not arguments.get("show_fiat") and "get_utxos" not in vars(wallet):
            answer = without_summary_coins(wallet, self.library_call(method, arguments))
            if answer is not NOT_FINISHED:
                return answer
        return await method.func(**arguments)

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
        return await self.history_for_scripthash(scripthash)

    async def history_for_scripthash(self, scripthash: str) -> Any:
        """The main server's history of a script hash. Electrum's ``Network.get_history_for_scripthash`` runs each
        request in a task group beside a wait for the server's disconnection, to retry on another server: that
        costs more than the request (bench/README, issue 18). So the request goes to the connected main server
        directly (``ServerRequests``: given up when that connection is lost, as Electrum gives up on it), and
        only if it does not answer (an error, a time-out, the connection lost) is it made again through
        Electrum's path, which retries, switches servers and words the errors as the command always has. The
        answer is the server's either way."""
        network = self.network
        interface = network.interface
        if interface is not None and interface.ready.done() and not interface.got_disconnected.is_set():
            task = asyncio.current_task()
            try:
                return await self.server_requests.send(interface, interface.get_history_for_scripthash(scripthash))
            except asyncio.CancelledError:
                if task is not None and task.cancelling():
                    raise  # this call itself is cancelled, not the server's request
            except Exception as exc:
                logger.debug("script hash history from the main server failed (%r); asking through Electrum", exc)
        return await network.get_history_for_scripthash(scripthash)


class ServerRequests:
    """Requests sent to a server connection (an Electrum interface) directly, each in its own task, all cancelled
    when that connection is lost: one watcher per connection rather than one per request."""

    def __init__(self) -> None:
        self.pending: dict[Any, set[asyncio.Task[Any]]] = {}  # interface -> its requests in flight
        self.watchers: dict[Any, asyncio.Task[None]] = {}

    def send(self, interface: Any, request: Any) -> asyncio.Task[Any]:
        if interface not in self.watchers:
            self.pending[interface] = set()
            self.watchers[interface] = asyncio.ensure_future(self.watch(interface))
        task = asyncio.ensure_future(request)
        pending = self.pending[interface]
        pending.add(task)
        task.add_done_callback(pending.discard)
        return task

    async def watch(self, interface: Any) -> None:
        try:
            await interface.got_disconnected.wait()
        finally:
            for task in self.pending.pop(interface, ()):
                task.cancel()
            self.watchers.pop(interface, None)

    def stop(self) -> None:
        for watcher in list(self.watchers.values()):
            watcher.cancel()


UNKNOWN: Any = object()


@dataclass(frozen=True, slots=True)
class PlainCommand:
    """An Electrum command whose @command wrapper checks nothing but the wallet: the function it wraps."""

    undecorated: Any
    requires_wallet: bool


def plain_command(commands: ModuleType, name: str, func: Any) -> PlainCommand | None:
    """Electrum 4.3.4's @command wrapper (``commands.command``) fills ``wallet_path``, looks a wallet given by
    its path up, and refuses a missing wallet, a missing password and a wallet without Lightning; then it
    awaits the command. For a command with no password, no Lightning and no ``wallet_path``, called with the
    wallet object itself, none of that applies: its undecorated function is the same call. None otherwise, and
    for any ``func`` but that wrapper bound to a ``Commands`` (the BCH daemon runs Electron Cash's its own way)."""
    command = commands.known_commands.get(name)
    wrapper = getattr(commands.Commands, name, None)
    undecorated = getattr(wrapper, "__wrapped__", None)
    if command is None or undecorated is None or getattr(func, "__func__", None) is not wrapper:
        return None
    if command.requires_password or command.requires_lightning:
        return None
    if "wallet_path" in command.options:
        return None
    return PlainCommand(undecorated, command.requires_wallet)


# Address texts up to this length are remembered: a bech32 string is at most 90 characters.
LONGEST_ADDRESS = 90
# Output scripts up to this size are remembered: the longest address script (a version 1-16 witness
# program of 40 bytes, with its two opcodes). Longer ones are never an address and are not kept.
LONGEST_ADDRESS_SCRIPT = 42


def remember_output_addresses(transaction: ModuleType, bitcoin: ModuleType, constants: ModuleType) -> None:
    """Make Electrum's ``transaction.get_address_from_output_script`` and ``bitcoin.is_address`` remember
    their answers (once per process).

    Every ``TxOutput.address`` calls the first (Electrum's own "TODO cache this?"): get_request reads a
    request's address four times (export_request, its URI, the payment check, sent_amount), a script
    parse and a bech32 encoding in pure Python each time; and its URI checks the address again with
    ``is_address`` (a bech32 decoding). Each answer depends on its argument and the network alone, so it is
    kept per (argument, network), bounded; the network of the moment is part of the key (tests run several
    networks in one process). Electrum modules that imported these functions by name keep the originals.
    """
    remember(transaction, "get_address_from_output_script", constants, LONGEST_ADDRESS_SCRIPT, bytes)
    remember(bitcoin, "is_address", constants, LONGEST_ADDRESS, str)


def remember(module: ModuleType, name: str, constants: ModuleType, longest: int, kind: type) -> None:
    """Replace ``module.name(value, *, net=None)``, a pure function of its arguments, by one that keeps its
    answers for values of type ``kind`` up to ``longest`` long, 8,192 at most (the original: ``__wrapped__``)."""
    original = getattr(module, name)
    if getattr(original, "answers", None) is not None:
        return
    answers = PureResults(8192)
    lock = threading.Lock()

    def remembering(value: Any, *, net: Any = None) -> Any:
        if type(value) is not kind or len(value) > longest:
            return original(value, net=net)
        key = (value, net if net is not None else constants.net)
        known = answers.results.get(key, answers)  # the PureResults itself marks "not known": None is an answer
        if known is answers:
            known = original(value, net=net)
            with lock:  # Electrum also runs these in worker threads (wallets are built off the loop)
                answers.put(key, known)
        return known

    remembering.__wrapped__ = original  # type: ignore[attr-defined]
    remembering.answers = answers  # type: ignore[attr-defined]
    remembering.__name__ = remembering.__qualname__ = name
    setattr(module, name, remembering)
