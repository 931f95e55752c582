"""The BCH daemon: Electron Cash behind the common contract, on top of the BTC daemon.

Electron Cash is a fork of an old Electrum and differs where it matters: it is synchronous and
threaded (its Network is a thread, wallets run jobs on it, callbacks fire on its threads), its
commands object is built per wallet, addresses are ``Address`` objects shown as CashAddr, and its
callbacks are ``blockchain_updated``, ``new_transaction``, ``payment_received`` and ``verified2``.
So this class keeps what holds from ``BTCDaemon`` (settings, wallet keys and paths, the
single-flight loading, error mapping, ``ReportedState`` de-duplication, fee and URL helpers) and
overrides what differs: every blocking call runs in a worker thread (``asyncio.to_thread``), and
callbacks reach the loop through ``bch_events.ThreadBridge`` in the order they fired.

Electron Cash is imported only in ``load_electrum``: it is on no registry this project reaches
(see README, "BCH daemon"), and without it ``python -m daemons bch`` stops with install steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import warnings
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from .base import rpc
from .bch_events import Report, ThreadBridge
from .btc import BTCDaemon
from .btc_amounts import format_amount
from .btc_config import parse_server
from .btc_errors import ADDRESS_INVALID, INVALID_TRANSACTION, NETWORK_OFFLINE, REQUEST_NOT_FOUND, TX_NOT_FOUND
from .btc_events import ReportedState
from .btc_requests import OPEN_STATUSES
from .btc_transactions import check_fee_target
from .jsonrpc import INVALID_PARAMS, RPCError
from .payment_requests import request_fields, status_str

logger = logging.getLogger(__name__)

BCH_NETWORKS = ("mainnet", "testnet", "testnet4", "scalenet", "chipnet", "regtest")
INSTALL_HINT = (
    "Electron Cash is on no package registry: download a source release (Electron-Cash-<version>.tar.gz) "
    "from Electron Cash's releases and run `pip install Electron-Cash-<version>.tar.gz` in this virtualenv "
    "(README.md, section 'BCH daemon', has the steps)"
)


class ElectronCashError(Exception):
    """An error Electron Cash raised as a bare BaseException (it often does), made catchable."""


@contextlib.contextmanager
def electron_errors() -> Iterator[None]:
    """Turn Electron Cash's ``raise BaseException(msg)`` into an Exception with the same message.

    The core turns Exceptions into JSON-RPC errors; a bare BaseException would escape it.
    """
    try:
        yield
    except (KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError):
        raise
    except Exception:
        raise
    except BaseException as exc:
        raise ElectronCashError(str(exc) or type(exc).__name__) from exc


async def in_thread(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking Electron Cash call in a worker thread, with its errors made catchable."""

    def call() -> Any:
        with electron_errors():
            return func(*args, **kwargs)

    return await asyncio.to_thread(call)


def to_json(value: Any) -> Any:
    """Electron Cash results made JSON-safe: Address objects (namedtuples) become CashAddr strings."""
    if hasattr(value, "to_ui_string"):
        return value.to_ui_string()
    if isinstance(value, dict):
        return {str(to_json(k)): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


class BCHDaemon(BTCDaemon):
    """Bitcoin Cash on Electron Cash: its commands by their names plus the SDK's BTC-named methods."""

    name = "BCH"
    DEFAULT_PORT = 5004
    NETWORKS = BCH_NETWORKS
    LIGHTNING_SUPPORTED = False
    MAX_TX_SIZE = 32_000_000  # bytes: the largest Bitcoin Cash block
    ELECTRUM_PACKAGE = "electroncash"
    ELECTRUM_INSTALL_HINT = INSTALL_HINT
    # Commands that manage Electron Cash's own daemon process, wallet files by path or GUI, or that
    # make the wallet POST to arbitrary URLs (notify): the daemon owns wallets and events itself.
    EXCLUDED_COMMANDS = frozenset(
        {"stop", "load_wallet", "close_wallet", "list_wallets", "create", "restore", "password", "notify", "commands"}
    )
    CALLBACKS = {
        "blockchain_updated": "report_new_block",
        "new_transaction": "report_new_transaction",
        "payment_received": "report_new_payment",
        "verified2": "report_verified_tx",
        "wallet_updated": "reports_on_wallet_updated",
    }
    # BTC daemon methods with no Electron Cash counterpart (Electrum invoices, BIP32 fingerprints, PSBTs:
    # Electron Cash signs with hardware wallets through its own partial-transaction format and plugins).
    UNSUPPORTED_METHODS = ("get_invoice", "getfingerprint", "adjustforhwsign", "finalizepsbt")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.UNSUPPORTED_METHODS:
            self.methods.pop(name, None)
        self.bridge: ThreadBridge | None = None

    # -- loading Electron Cash ------------------------------------------------------------------

    def load_electrum(self) -> None:
        try:
            import electroncash
            import electroncash.address
            import electroncash.bitcoin
            import electroncash.commands
            import electroncash.keystore
            import electroncash.network
            import electroncash.networks
            import electroncash.simple_config
            import electroncash.storage
            import electroncash.transaction
            import electroncash.util
            import electroncash.version
            import electroncash.wallet
        except ImportError as exc:
            raise self.missing_library(self.ELECTRUM_PACKAGE, self.ELECTRUM_INSTALL_HINT) from exc
        # Its plugin hooks warn when run off the main thread; this daemon loads no plugins, so none can misbehave.
        warnings.filterwarnings("ignore", message='run_hook ".*" being called from outside the main thread')
        electroncash.util.set_verbosity(self.settings.debug)  # its print_error goes to stderr when on
        electroncash.address.Address.show_cashaddr(True)
        self.electrum = electroncash
        self.NETWORK_MAPPING = {name: getattr(electroncash.networks, f"set_{name}") for name in self.NETWORKS}

    def activate_network(self) -> None:
        # Electron Cash keeps its chain parameters in electroncash.networks.net (process-global).
        self.NETWORK_MAPPING[self.network_name]()

    def config_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "electron_cash_path": str(self.settings.data_path / "electron_cash"),
            "oneserver": self.oneserver,
            "auto_connect": not self.server,
            "use_exchange_rate": False,  # no fiat rate fetching: it would reach outside services
            "fiat_currency": self.fiat_currency,
        }
        return {**options, **self.connection_options()}

    def create_network(self) -> Any:
        return None if self.offline else self.electrum.network.Network(self.electrum_config)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start_backend(self) -> None:
        loop = asyncio.get_running_loop()
        self.reported = ReportedState(self.state_db, self.name)
        self.bridge = ThreadBridge(loop, self.deliver)
        self.bridge.start()
        self.electrum_config = await in_thread(self.create_config)
        self.network = await in_thread(self.create_network)
        if self.network is not None:
            self.register_callbacks()
            self.network.start()  # its own thread from here on
        logger.info(
            "%s on %s: %s", self.name, self.network_name, "offline" if self.network is None else "network started"
        )

    async def stop_backend(self) -> None:
        await self.forget_all_wallets()
        if self.network is not None:
            self.unregister_callbacks()
            await asyncio.to_thread(self.stop_network, self.network)
        if self.bridge is not None:
            await self.bridge.stop()

    @staticmethod
    def stop_network(network: Any) -> None:
        network.stop()
        network.join(timeout=10)

    def register_callbacks(self) -> None:
        self.network.register_callback(self.on_electron_callback, list(self.CALLBACKS))
        self._registered.append(self.on_electron_callback)

    def unregister_callbacks(self) -> None:
        for handler in self._registered:
            self.network.unregister_callback(handler)
        self._registered.clear()

    async def health(self) -> dict[str, Any]:
        body = await super().health()
        body["electron_cash"] = self.electrum.version.PACKAGE_VERSION
        return body

    # -- events: Electron Cash's threads -> Report -> the loop ----------------------------------

    def on_electron_callback(self, event: str, *args: Any) -> None:
        """Runs on an Electron Cash thread: describe the event now, deliver it on the loop."""
        try:
            report = getattr(self, self.CALLBACKS[event])(*args)
        except Exception:  # never let a bug here break Electron Cash's network thread
            logger.exception("Electron Cash callback %s failed", event)
            return
        reports = report if isinstance(report, list) else [report]
        for each in reports:
            if each is not None and self.bridge is not None:
                self.bridge.submit(each)

    def report_new_block(self, *args: Any) -> Report | None:
        height = self.network.get_local_height() if self.network is not None else 0
        if height <= 0:
            return None
        return Report("new_block", {"height": height}, None, "block", "height", str(height), monotonic=True)

    def report_new_transaction(self, tx: Any, wallet: Any) -> Report | None:
        key = self.key_of(wallet)
        if key is None:
            return None
        txid = tx.txid()
        return Report("new_transaction", {"tx": txid}, key, "tx", txid, "seen")

    def report_verified_tx(self, wallet: Any, tx_hash: str, height: int, *args: Any) -> Report | None:
        key = self.key_of(wallet)
        if key is None:
            return None
        return Report("verified_tx", {"tx": tx_hash, "height": int(height)}, key, "verified", tx_hash, str(height))

    def report_new_payment(self, wallet: Any, address: Any, status: int) -> Report | None:
        key = self.key_of(wallet)
        request = wallet.get_payment_request(address, self.electrum_config) if key is not None else None
        if request is None:
            return None
        text = address.to_ui_string()
        tx_hashes = list(request.get("tx_hashes", []))
        fields = {
            "address": text,
            "status": int(status),
            "status_str": status_str(int(status)),
            "tx_hashes": tx_hashes,
            "sent_amount": self.sent_amount(wallet, text, tx_hashes),
        }
        return Report("new_payment", fields, key, "request", text, str(status))

    async def deliver(self, report: Report) -> None:
        """On the loop: report each fact once, across restarts too (stored first, remembered after)."""
        assert self.reported is not None
        wallet = report.wallet or ""
        if report.monotonic:
            fresh = self.reported.is_higher(report.kind, report.item, int(report.value))
        else:
            fresh = self.reported.is_new(report.kind, wallet, report.item, report.value)
        if fresh:  # the fact is recorded in the event's own transaction: a crash cannot separate the two
            record = self.reported.recorder(report.kind, wallet, report.item, report.value)
            await self.notify(report.event, report.fields, wallet=report.wallet, also=record)

    # -- wallets --------------------------------------------------------------------------------

    def is_public_key(self, key: str) -> bool:
        return bool(self.electrum.bitcoin.is_xpub(key) or self.electrum.keystore.is_old_mpk(key))

    def keeps_watching(self, key: str, wallet: Any) -> bool:
        """Electron Cash's requests by address: open while unpaid and unexpired, or unconfirmed."""
        for address in list(wallet.receive_requests):
            status = wallet.get_request_status(address)  # (status, conf, tx_hashes), or PR_UNKNOWN
            if isinstance(status, tuple) and status[0] in OPEN_STATUSES:
                return True
        return False

    async def reconcile_wallet(self, wallet: Any) -> None:
        """Report what the wallet holds and was never reported, when it loads (see ``reconcile_reports``)."""
        if self.key_of(wallet) is None or self.reported is None:
            return
        for report in await in_thread(self.reconcile_reports, wallet):
            await self.deliver(report)

    def reports_on_wallet_updated(self, wallet: Any) -> list[Report]:
        """Electron Cash's 'wallet_updated' (on its threads): reconcile when the wallet has just caught up."""
        up_to_date = bool(wallet.is_up_to_date())
        was_up_to_date = self._up_to_date.get(id(wallet), False)
        self._up_to_date[id(wallet)] = up_to_date
        if not up_to_date or was_up_to_date or self.key_of(wallet) is None:
            return []
        return self.reconcile_reports(wallet)

    def reconcile_reports(self, wallet: Any) -> list[Report]:
        """Every fact the wallet holds as the callbacks would report it; ``deliver`` drops those already reported.

        The window is Electrum's: Electron Cash saves a wallet on its own threads before its callbacks
        reach the loop, and fires none again for what its file holds. Requests no transaction touched
        are left out: no callback reports them (their creation is not an event). Runs on any thread."""
        with wallet.lock:
            transactions = dict(wallet.transactions)
            heights = {txid: wallet.get_tx_height(txid)[0] for txid in transactions}
            verified = {txid: info[0] for txid, info in wallet.verified_tx.items() if txid in transactions}
            addresses = list(wallet.receive_requests)
        ordered = sorted(transactions, key=lambda txid: (heights[txid] <= 0, heights[txid], txid))
        reports = [self.report_new_transaction(transactions[txid], wallet) for txid in ordered]
        reports += [self.report_verified_tx(wallet, txid, verified[txid]) for txid in ordered if txid in verified]
        for address in addresses:
            status = wallet.get_request_status(address)  # (status, conf, tx_hashes), or PR_UNKNOWN
            if isinstance(status, tuple) and status[2]:
                reports.append(self.report_new_payment(wallet, address, status[0]))
        return [report for report in reports if report is not None]

    def restore_wallet(self, key: str, path: Any) -> Any:
        """A wallet from an xpub, a seed, or lists of addresses or private keys; path None: diskless."""
        with electron_errors():
            result = self.electrum.wallet.restore_wallet_from_text(
                key, path=str(path) if path else None, config=self.electrum_config, encrypt_file=False
            )
        return result["wallet"]

    def open_wallet(self, path: Any) -> Any:
        with electron_errors():
            storage = self.electrum.storage.WalletStorage(str(path), manual_upgrades=False)
            return self.electrum.wallet.Wallet(storage)

    def start_wallet(self, key: str, wallet: Any) -> None:
        self._keys_by_wallet[id(wallet)] = key
        if self.network is not None:
            wallet.start_threads(self.network)

    async def stop_wallet(self, wallet: Any) -> None:
        await in_thread(wallet.stop_threads)  # saves its state; joins a helper thread

    def normalize_address(self, address: str) -> str:
        """CashAddr, whichever form (legacy, with or without prefix) the address came in."""
        return self.parse_address(address).to_ui_string()

    def parse_address(self, text: str) -> Any:
        """CashAddr (with or without prefix) or legacy; RPCError -32004 otherwise."""
        try:
            return self.electrum.address.Address.from_string(str(text).strip())
        except Exception as exc:
            raise RPCError(ADDRESS_INVALID, f"Invalid address: {text}") from exc

    def owns_address(self, wallet: Any, address: str) -> bool:
        try:
            parsed = self.parse_address(address)
        except RPCError:
            return False
        return bool(wallet.is_mine(parsed))

    # -- Electron Cash commands as dynamic methods ----------------------------------------------

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

    def list_dynamic_methods(self) -> list[str]:
        if not self.backend_loaded:
            return []
        return sorted(set(self.electrum.commands.known_commands) - self.EXCLUDED_COMMANDS)

    # -- payment requests -----------------------------------------------------------------------

    def payment_target(self, address: str) -> Any:
        return self.parse_address(address)  # an Address: Electron Cash's outputs carry Address objects

    def value_paid_to(self, tx: Any, target: Any) -> int:
        return sum(value for _, addr, value in tx.outputs() if addr == target)

    def format_request(self, wallet: Any, request: dict[str, Any]) -> dict[str, Any]:
        """Electron Cash's request (wallet.get_payment_request: id, time, exp, memo, amount in satoshis)
        with 'amount (BCH)' (the SDK's amount field) and the fields every coin's request has."""
        data = to_json(request)
        data["amount (BCH)"] = format_amount(data.get("amount") or 0, self.COIN_DECIMALS)
        tx_hashes = list(data.get("tx_hashes", []))
        data.update(
            request_fields(
                request_id=data.get("id") or data["address"],
                address=data["address"],
                uri=data.get("URI") or "",
                message=data.get("memo") or "",
                timestamp=data.get("time") or 0,
                expiry=data.get("exp"),
                status=data["status"],
                tx_hashes=tx_hashes,
                sent_amount=self.sent_amount(wallet, data["address"], tx_hashes),
                confirmations=data.get("confirmations"),
            )
        )
        return data

    @rpc(requires_wallet=True)
    async def addrequest(
        self,
        amount: Decimal | None = None,
        memo: str = "",
        expiration: float | None = None,
        force: bool = False,
        wallet: Any = None,
    ) -> Any:
        """Electron Cash's addrequest: a request on the first unused address (a new one with force=true).

        amount in BCH (a decimal string or number), expiration in seconds (null or 0: never; a
        float is taken and its fraction cut, as the SDK sends minutes times 60). Returns the request
        with its CashAddr address, 'amount (BCH)', URI, status and sent_amount, or false when no
        unused address is left and force is false."""
        amount_given, seconds = self.request_terms(amount, expiration, "expiration")
        commands = self.electrum.commands.Commands(self.electrum_config, wallet, self.network)
        before = dict(wallet.receive_requests)
        try:
            created = await in_thread(commands.addrequest, amount_given or "0", memo, seconds, force)
        except Exception:
            # Electron Cash keeps the request in memory when saving it fails (a full disk): listed now, gone
            # after a restart. Put the requests back as they were, so a failed call leaves nothing behind.
            await in_thread(self._restore_requests, wallet, before)
            raise
        if not created:
            return False
        return await self.request_by_address(wallet, self.parse_address(created["address"]))

    @staticmethod
    def _restore_requests(wallet: Any, requests: dict[Any, Any]) -> None:
        with wallet.lock:
            wallet.receive_requests.clear()
            wallet.receive_requests.update(requests)

    @rpc(requires_wallet=True)
    async def add_request(
        self,
        amount: Decimal | None = None,
        memo: str = "",
        expiry: float | None = 3600,
        force: bool = False,
        wallet: Any = None,
    ) -> Any:
        """The BTC daemon's name for addrequest (expiry in seconds, 0 or null: never)."""
        return await self.addrequest(amount, memo, expiry, force, wallet=wallet)

    @rpc(requires_wallet=True, aliases=("getrequest",))
    async def get_request(self, key: str, wallet: Any = None) -> dict[str, Any]:
        """A payment request by its address (CashAddr or legacy) or its request_id, with its status and sent_amount."""
        found = next((a for a, r in list(wallet.receive_requests.items()) if r.get("id") == key), None)
        return await self.request_by_address(wallet, found if found is not None else self.parse_address(key))

    async def request_by_address(self, wallet: Any, address: Any) -> dict[str, Any]:
        request = await in_thread(wallet.get_payment_request, address, self.electrum_config)
        if request is None:
            raise RPCError(REQUEST_NOT_FOUND, "Request not found")
        return self.format_request(wallet, request)

    # -- addresses, transactions and fees -------------------------------------------------------

    @rpc(requires_wallet=True)
    async def getaddressbalance_wallet(self, address: str, wallet: Any = None) -> dict[str, str | None]:
        """Balance of one of the wallet's addresses, from the wallet's own history (no server query)."""
        confirmed, unconfirmed, unmatured = wallet.get_addr_balance(self.parse_address(address))
        return {
            "confirmed": format_amount(confirmed, self.COIN_DECIMALS),
            "unconfirmed": format_amount(unconfirmed, self.COIN_DECIMALS),
            "unmatured": format_amount(unmatured, self.COIN_DECIMALS),
        }

    def parse_tx(self, raw_tx: Any) -> Any:
        try:
            with electron_errors():
                tx = self.electrum.transaction.Transaction(raw_tx)
                tx.deserialize()
        except Exception as exc:
            raise RPCError(INVALID_TRANSACTION, f"failed to recognize transaction encoding: {exc}") from exc
        return tx

    @staticmethod
    def tx_argument(raw_tx: str | dict | None, fields: dict[str, Any]) -> Any:
        """A transaction given as hex, as payto's {"hex", ...} result, or as that result's fields.

        A client passing payto's result as the only parameter sends an object, which the extended JSON-RPC
        reads as named arguments: ``hex``, ``complete`` and ``final`` arrive as keywords."""
        if raw_tx is not None:
            return raw_tx
        if "hex" not in fields:
            raise RPCError(INVALID_PARAMS, "a transaction is needed: raw hex or payto's result")
        return fields

    @rpc
    async def get_tx_size(self, raw_tx: str | dict | None = None, **tx_fields: Any) -> int:
        """Estimated size in bytes of a raw transaction (hex, or payto's {"hex": ...} result)."""
        return self.parse_tx(self.tx_argument(raw_tx, tx_fields)).estimated_size()

    @rpc
    async def get_tx_hash(self, raw_tx: str | dict | None = None, **tx_fields: Any) -> str | None:
        """The txid of a raw transaction (hex, or payto's {"hex": ...} result)."""
        return self.parse_tx(self.tx_argument(raw_tx, tx_fields)).txid()

    @rpc
    async def recommended_fee(self, target: int) -> int | None:
        """Fee rate in sat/kB: Bitcoin Cash has no fee market, so the configured rate for any target."""
        check_fee_target(target)
        return self.electrum_config.fee_per_kb()

    # Electron Cash's side of the BTC daemon's get_used_fee / get_transaction / confirmations hooks.

    def wallet_transaction(self, wallet: Any, tx_hash: str) -> Any:
        return wallet.transactions.get(tx_hash)

    def wallet_tx_confirmations(self, wallet: Any, tx_hash: str) -> int:
        return int(wallet.get_tx_height(tx_hash)[1])

    async def server_transaction(self, tx_hash: str) -> Any:
        return self.parse_tx(await self.server_request("blockchain.transaction.get", [tx_hash]))

    def tx_json(self, tx: Any, tx_hash: str) -> dict[str, Any]:
        with electron_errors():  # a fresh copy: deserialize() returns the fields only on its first call
            data = to_json(self.electrum.transaction.Transaction(str(tx)).deserialize())
        data["txid"] = tx_hash
        data["hex"] = str(tx)
        return data

    def output_scripthashes(self, tx: Any) -> list[str]:
        return [address.to_scripthash_hex() for _, address, _ in tx.outputs() if hasattr(address, "to_scripthash_hex")]

    async def server_history(self, scripthash: str) -> list[dict[str, Any]]:
        return await self.server_request("blockchain.scripthash.get_history", [scripthash])

    async def server_request(self, method: str, params: list[Any]) -> Any:
        try:
            return await in_thread(self.network.synchronous_get, (method, params), 30)
        except Exception as exc:
            message = str(exc)
            if "transaction" in method and ("No such" in message or "not found" in message.lower()):
                raise RPCError(TX_NOT_FOUND, f"No such mempool or blockchain transaction: {message}") from exc
            raise

    @rpc(requires_wallet=True)
    async def addtransaction(self, tx: str | dict | None = None, wallet: Any = None, **tx_fields: Any) -> str:
        """Add a signed transaction to the wallet's history without broadcasting it (as the SDK does)."""
        parsed = self.parse_tx(self.tx_argument(tx, tx_fields))
        txid = parsed.txid()
        await in_thread(self._add_transaction, wallet, txid, parsed)
        return txid

    @staticmethod
    def _add_transaction(wallet: Any, txid: str, tx: Any) -> None:
        wallet.add_transaction(txid, tx)
        wallet.add_unverified_tx(txid, 0)
        wallet.save_transactions(write=True)

    @rpc(requires_network=True)
    async def broadcast(self, tx: str | dict | None = None, **tx_fields: Any) -> str:
        """Broadcast a signed transaction (hex, or payto's {"hex": ...} result); returns its txid."""
        parsed = self.parse_tx(self.tx_argument(tx, tx_fields))
        try:
            return await in_thread(self.network.broadcast_transaction2, parsed)
        except Exception as exc:
            raise RPCError(-32016, f"Error when broadcasting the transaction: {exc}") from exc

    # -- daemon status and control --------------------------------------------------------------

    @rpc
    async def getinfo(self) -> dict[str, Any]:
        """Network info (works offline too), plus synchronized and total_wallets."""
        network = self.network
        data: dict[str, Any] = {
            "network": self.network_name,
            "path": self.electrum_config.path,
            "server": "",
            "blockchain_height": 0,
            "server_height": 0,
            "spv_nodes": 0,
            "connected": False,
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
        data["offline"] = network is None
        data["synchronized"] = self.is_synchronized()
        data["total_wallets"] = len(self.wallets)
        return data

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
