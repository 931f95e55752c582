"""The BTC daemon: the Electrum library (Debian's python3-electrum 4.3.4) behind the common contract.

Electrum runs inside the daemon's own asyncio loop (aiohttp's): its Network, wallets and
callbacks share the loop with the HTTP server, so no thread hops are needed except for the CPU
and disk work of building a wallet. Electrum is imported only in ``load_electrum`` and kept on
``self.electrum``, so a subclass (the BCH daemon on Electron Cash) can point the same machinery at
another Electrum-like module by overriding the small hooks below: ``load_electrum``,
``config_options``/``create_config``, ``create_electrum_daemon``, ``create_commands``,
``restore_wallet``/``open_wallet``/``start_wallet``/``stop_wallet``, the ``on_*`` event handlers,
``format_request``, and the wallet and server hooks that ``sent_amount``, ``get_used_fee``,
``get_transaction`` and ``confirmations`` are written over (``wallet_transaction``,
``wallet_tx_confirmations``, ``server_transaction``, ``tx_json``, ``output_scripthashes``,
``server_history``, ``payment_target``/``value_paid_to``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import string
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from .base import BaseDaemon, RPCMethod, rpc
from .btc_config import NETWORKS, Proxy, parse_network, parse_proxy_url, parse_server
from .btc_events import AdbRouter, ReportedState
from .jsonrpc import INVALID_PARAMS, Request, RPCError, WalletIdentity
from .settings import SettingsError, parse_positive_float
from .spec import map_message

logger = logging.getLogger(__name__)

# Codes of spec/btc.json that the daemon raises itself (Electrum's own messages are mapped there).
TX_HASH_INVALID = -32001
TX_NOT_FOUND = -32002
REQUEST_NOT_FOUND = -32003
ADDRESS_INVALID = -32004
INVOICE_NOT_FOUND = -32012
NETWORK_OFFLINE = -32013
NOT_SYNCHRONIZED = -32014
WATCH_ONLY = -32019

SATOSHIS = Decimal(10) ** 8


def format_amount(satoshis: int | None, decimals: int = 8) -> str | None:
    """Satoshis as a plain decimal string in coin units ('0.0001', never '1E-4' or a float)."""
    if satoshis is None:
        return None
    text = format(Decimal(satoshis).scaleb(-decimals), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


class BTCDaemon(BaseDaemon):
    """Bitcoin on Electrum: every Electrum command plus the daemon methods the bitcart SDK calls."""

    name = "BTC"
    DEFAULT_PORT = 5000
    NETWORKS: tuple[str, ...] = NETWORKS
    COIN_DECIMALS = 8
    LIGHTNING_SUPPORTED = True
    ELECTRUM_PACKAGE = "electrum"
    ELECTRUM_INSTALL_HINT = "install Debian's python3-electrum (apt-get install python3-electrum)"
    # Electrum commands not served: they manage Electrum's own process or wallet files by path,
    # which this daemon owns (wallets are loaded from the 'xpub' identity, closed by close_wallet).
    EXCLUDED_COMMANDS = frozenset({"stop", "load_wallet", "create", "restore", "password"})
    # Electrum callback -> handler method; each handler emits one contract event.
    CALLBACKS = {
        "blockchain_updated": "on_blockchain_updated",
        "new_transaction": "on_new_transaction",
        "request_status": "on_request_status",
        "verified": "on_verified",
    }

    electrum: ModuleType

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec["capabilities"] = {**self.spec.get("capabilities", {}), "lightning": self.lightning}
        self.electrum_config: Any = None
        self.electrum_daemon: Any = None
        self.network: Any = None
        self.commands: Any = None
        self.router: AdbRouter | None = None
        self.reported: ReportedState | None = None
        self.wallet_loads = 0  # wallets built (restored or opened) since start: the single-flight's witness
        self._keys_by_wallet: dict[int, str] = {}
        self._registered: list[Any] = []

    # -- settings -------------------------------------------------------------------------------

    def load_settings(self) -> None:
        super().load_settings()
        try:
            self.network_name = parse_network(self.settings.network, self.NETWORKS)
        except ValueError as exc:
            raise SettingsError(f"Invalid value for {self.env_reader.variable('NETWORK')}: {exc}") from exc
        self.server: str = self.env("SERVER", cast=parse_server, default="")
        self.oneserver: bool = self.env("ONESERVER", cast=bool, default=False)
        self.proxy: Proxy | None = self.env("PROXY_URL", cast=parse_proxy_url, default=None)
        self.offline: bool = self.env("OFFLINE", cast=bool, default=False)
        self.fiat_currency: str = self.env("FIAT_CURRENCY", default="USD").strip().upper()
        self.lightning: bool = self.LIGHTNING_SUPPORTED and self.env("LIGHTNING", cast=bool, default=False)
        self.sync_timeout: float = self.env("SYNC_TIMEOUT", cast=parse_positive_float, default=60.0)

    # -- loading Electrum -----------------------------------------------------------------------

    def load_backend(self) -> None:
        self.load_electrum()
        self.activate_network()

    def load_electrum(self) -> None:
        """Import the Electrum library; a subclass imports its own Electrum-like module here."""
        root = logging.getLogger()
        level = root.level
        try:
            import electrum
            import electrum.commands
            import electrum.daemon
            import electrum.keystore
            import electrum.wallet_db
        except ImportError as exc:
            raise self.missing_library(self.ELECTRUM_PACKAGE, self.ELECTRUM_INSTALL_HINT) from exc
        finally:
            # electrum.logging forces the root logger to WARNING at import: give the daemon its level back.
            root.setLevel(level)
        logging.getLogger("electrum").setLevel(logging.DEBUG if self.settings.debug else logging.WARNING)
        self.electrum = electrum
        self.NETWORK_MAPPING = {name: getattr(electrum.constants, f"set_{name}") for name in self.NETWORKS}

    def activate_network(self) -> None:
        # Electrum's chain parameters are process-global: one network per process (restored at stop).
        self._previous_net = getattr(self.electrum.constants, "net", None)
        self.NETWORK_MAPPING[self.network_name]()

    def config_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "electrum_path": str(self.settings.data_path / "electrum"),
            "forget_config": True,  # the environment is the configuration; setconfig lasts until restart
            "offline": self.offline,
            "oneserver": self.oneserver,
            "auto_connect": not self.server,
            "use_exchange_rate": False,
            "currency": self.fiat_currency,
            "use_gossip": False,
            "verbosity": "*" if self.settings.debug else "",
        }
        return {**options, **self.connection_options()}

    def connection_options(self) -> dict[str, Any]:
        """Chain, server and proxy options: Electrum and Electron Cash spell them the same."""
        options: dict[str, Any] = {}
        if self.network_name != "mainnet":
            options[self.network_name] = True
        if self.server:
            options["server"] = self.server
        if self.proxy is not None:
            options["proxy"] = self.electrum.network.serialize_proxy(self.proxy.as_electrum_dict())
        return options

    def create_config(self) -> Any:
        return self.electrum.simple_config.SimpleConfig(options=self.config_options())

    def create_electrum_daemon(self) -> Any:
        return self.electrum.daemon.Daemon(self.electrum_config, listen_jsonrpc=False)

    def create_commands(self) -> Any:
        return self.electrum.commands.Commands(
            config=self.electrum_config, network=self.network, daemon=self.electrum_daemon
        )

    # -- lifecycle ------------------------------------------------------------------------------

    def adopt_event_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make aiohttp's loop Electrum's loop (Electrum keeps it in module globals)."""
        util = self.electrum.util
        util._asyncio_event_loop = loop
        if hasattr(util, "callback_mgr"):
            util.callback_mgr.asyncio_loop = loop  # cached on first use: stale after a restart in-process

    async def start_backend(self) -> None:
        self.adopt_event_loop(asyncio.get_running_loop())
        self.reported = ReportedState(self.state_db, self.name)
        self.electrum_config = self.create_config()
        self.electrum_daemon = self.create_electrum_daemon()
        self.network = self.electrum_daemon.network
        self.commands = self.create_commands()
        self.router = AdbRouter(self.electrum.util.register_callback, self.electrum.util.unregister_callback)
        self.router.start()
        self.register_callbacks()
        logger.info(
            "%s on %s: %s", self.name, self.network_name, "offline" if self.network is None else "network started"
        )

    async def stop_backend(self) -> None:
        for key in list(self.wallets):
            await self.forget_wallet(key)
        self.unregister_callbacks()
        if self.electrum_daemon is not None:
            await self.electrum_daemon.stop()
        if self.router is not None:
            self.router.stop()
        self.release_globals()

    def release_globals(self) -> None:
        """Undo Electrum's process-wide state so another daemon can start in this process (tests, benches)."""
        if getattr(self, "_previous_net", None) is not None:
            self.electrum.constants.net = self._previous_net
        if getattr(self.electrum.network, "_INSTANCE", None) is self.network and self.network is not None:
            self.electrum.network._INSTANCE = None  # Network is a singleton that never clears itself

    def register_callbacks(self) -> None:
        for event, handler_name in self.CALLBACKS.items():
            handler = getattr(self, handler_name)
            self.electrum.util.register_callback(handler, [event])
            self._registered.append(handler)

    def unregister_callbacks(self) -> None:
        for handler in self._registered:
            self.electrum.util.unregister_callback(handler)
        self._registered.clear()

    # -- network readiness ----------------------------------------------------------------------

    def headers_synchronized(self) -> bool:
        network = self.network
        if network is None or not network.is_connected():
            return False
        # Connected means the server sent its tip (which may be 0 on a fresh regtest chain).
        return network.get_local_height() >= network.get_server_height() - 1

    async def wait_until(self, ready: Any, what: str) -> None:
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
        await self.wait_until(self.headers_synchronized, "block headers")

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
        if self.headers_synchronized():
            return {"status": "ok", **body}
        return {"status": "syncing" if self.network.is_connected() else "backend_unavailable", **body}

    # -- errors ---------------------------------------------------------------------------------

    def exception_message(self, exc: BaseException) -> str:
        """Electrum hides server errors behind generic wrappers: surface the useful text."""
        original = getattr(exc, "original_exception", None)
        if original is not None:
            return self.exception_message(original)
        server_message = getattr(exc, "message", None)  # aiorpcx's RPCError: str() is a (code, message) tuple
        if isinstance(server_message, str) and server_message:
            return server_message
        gui_message = getattr(exc, "get_message_for_gui", None)
        if callable(gui_message):
            try:
                return str(gui_message())
            except Exception:  # TxBroadcastError's own base raises NotImplementedError
                pass
        return str(exc) or type(exc).__name__

    def error_from_exception(self, request: Request, exc: Exception) -> RPCError:
        message = self.exception_message(exc)
        code = map_message(self.spec, message)
        if code is not None:
            return RPCError(code, message)
        return super().error_from_exception(request, exc)

    # -- wallets --------------------------------------------------------------------------------

    def is_public_key(self, key: str) -> bool:
        keystore = self.electrum.keystore
        return bool(self.electrum.bip32.is_xpub(key) or keystore.is_old_mpk(key))

    def wallet_key(self, identity: WalletIdentity) -> str:
        """A master public key names its wallet; a seed or private key is never echoed: it is hashed."""
        if self.backend_loaded and self.is_public_key(identity.key):
            return identity.key
        return "sha256:" + hashlib.sha256(identity.key.encode()).hexdigest()

    def wallet_dir(self) -> Path:
        return Path(self.electrum_config.get_wallet_path()).parent

    def wallet_path(self, key: str) -> Path:
        # Hashed: a file name must not reveal a seed, and the network's folder keeps networks apart.
        return self.wallet_dir() / hashlib.sha256(key.encode()).hexdigest()

    async def load_wallet(self, identity: WalletIdentity) -> Any:
        self.wallet_loads += 1
        if identity.diskless:
            wallet = await asyncio.to_thread(self.restore_wallet, identity.key, None)
        else:
            path = self.wallet_path(identity.key)
            wallet = await asyncio.to_thread(self.open_or_restore_wallet, identity.key, path)
        self.start_wallet(self.wallet_key(identity), wallet)
        return wallet

    def open_or_restore_wallet(self, key: str, path: Path) -> Any:
        if path.exists():
            return self.open_wallet(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return self.restore_wallet(key, path)

    def open_wallet(self, path: Path) -> Any:
        storage = self.electrum.storage.WalletStorage(str(path))
        db = self.electrum.wallet_db.WalletDB(storage.read(), manual_upgrades=False)
        return self.electrum.wallet.Wallet(db, storage, config=self.electrum_config)

    def build_wallet_db(self, key: str) -> Any:
        """A standard wallet's db from a master key or an Electrum seed; None for anything else."""
        keystore = self.electrum.keystore
        if keystore.is_master_key(key):
            store = keystore.from_master_key(key)
        elif keystore.is_seed(key):
            store = keystore.from_seed(key, None)
        else:
            return None
        db = self.electrum.wallet_db.WalletDB("", manual_upgrades=False)
        db.put("keystore", store.dump())
        db.put("wallet_type", "standard")
        # Electrum gives every seed wallet a Lightning key; with Lightning off it gets none (no LN worker).
        if self.lightning and store.can_have_deterministic_lightning_xprv():
            db.put("lightning_xprv", store.get_lightning_xprv(None))
        return db

    def restore_wallet(self, key: str, path: Path | None) -> Any:
        """Build a wallet from its key; ``path`` None keeps it in memory only (diskless)."""
        db = self.build_wallet_db(key)
        if db is None:  # address or private-key lists, or a reason from Electrum why not
            result = self.electrum.wallet.restore_wallet_from_text(
                key, path=str(path) if path else None, config=self.electrum_config
            )
            return result["wallet"]
        storage = self.electrum.storage.WalletStorage(str(path)) if path else None
        wallet = self.electrum.wallet.Wallet(db, storage, config=self.electrum_config)
        wallet.save_db()
        return wallet

    def start_wallet(self, key: str, wallet: Any) -> None:
        assert self.router is not None
        self.router.attach(wallet)
        self._keys_by_wallet[id(wallet)] = key
        wallet.start_network(self.network)
        if wallet.storage is not None:
            self.electrum_daemon.add_wallet(wallet)

    async def stop_wallet(self, wallet: Any) -> None:
        if wallet.storage is not None:
            await self.electrum_daemon._stop_wallet(wallet.storage.path)
        else:
            await wallet.stop()

    async def unload_wallet(self, key: str, wallet: Any) -> None:
        if self.router is not None:
            self.router.detach(wallet)
        self._keys_by_wallet.pop(id(wallet), None)
        await self.stop_wallet(wallet)

    def key_of(self, wallet: Any) -> str | None:
        return self._keys_by_wallet.get(id(wallet))

    # -- Electrum commands as dynamic methods ---------------------------------------------------

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

    # -- events ---------------------------------------------------------------------------------

    async def on_blockchain_updated(self, *args: Any) -> None:
        if self.network is None or self.reported is None:
            return
        height = self.network.get_local_height()
        if height > 0 and self.reported.is_higher("block", "height", height):
            await self.notify(
                "new_block", {"height": height}, also=self.reported.recorder("block", "", "height", str(height))
            )

    async def on_new_transaction(self, wallet: Any, tx: Any) -> None:
        key = self.key_of(wallet)
        txid = tx.txid()
        if key is None or self.reported is None or not self.reported.is_new("tx", key, txid, "seen"):
            return
        await self.notify(
            "new_transaction", {"tx": txid}, wallet=key, also=self.reported.recorder("tx", key, txid, "seen")
        )

    async def on_verified(self, wallet: Any, tx_hash: str, tx_mined_status: Any) -> None:
        key = self.key_of(wallet)
        height = int(tx_mined_status.height)
        if key is None or self.reported is None or not self.reported.is_new("verified", key, tx_hash, str(height)):
            return
        record = self.reported.recorder("verified", key, tx_hash, str(height))
        await self.notify("verified_tx", {"tx": tx_hash, "height": height}, wallet=key, also=record)

    async def on_request_status(self, wallet: Any, request_id: str, status: int) -> None:
        key = self.key_of(wallet)
        request = wallet.get_request(request_id) if key is not None else None
        if key is None or request is None or self.reported is None:
            return
        if not self.reported.is_new("request", key, request_id, str(status)):
            return
        record = self.reported.recorder("request", key, request_id, str(status))
        await self.notify("new_payment", self.payment_fields(wallet, request, status), wallet=key, also=record)

    def payment_fields(self, wallet: Any, request: Any, status: int) -> dict[str, Any]:
        address = request.get_address()
        tx_hashes = self.request_tx_hashes(wallet, request)
        return {
            "address": address,
            "status": status,
            "status_str": request.get_status_str(status),
            "tx_hashes": tx_hashes,
            "sent_amount": self.sent_amount(wallet, address, tx_hashes),
        }

    # -- payment requests -----------------------------------------------------------------------

    def request_tx_hashes(self, wallet: Any, request: Any) -> list[str]:
        return list(wallet._is_onchain_invoice_paid(request)[2])

    def sent_amount(self, wallet: Any, address: str | None, tx_hashes: list[str]) -> str | None:
        """What the wallet's transactions ``tx_hashes`` paid to ``address``, in coin units."""
        total = 0
        if address:
            target = self.payment_target(address)
            for tx_hash in tx_hashes:
                tx = self.wallet_transaction(wallet, tx_hash)
                if tx is not None:
                    total += self.value_paid_to(tx, target)
        return format_amount(total, self.COIN_DECIMALS)

    def payment_target(self, address: str) -> Any:
        """The address in the form ``value_paid_to`` compares outputs with (Electrum: the string itself)."""
        return address

    def value_paid_to(self, tx: Any, target: Any) -> int:
        """Satoshis a transaction's outputs pay to ``target`` (from ``payment_target``)."""
        return tx.output_value_for_address(target)

    def find_request(self, wallet: Any, key: str) -> Any:
        """A request by its id, or the newest one paying to ``key`` as an address (what the SDK passes)."""
        request = wallet.get_request(key)
        if request is not None:
            return request
        matching = [r for r in wallet.get_sorted_requests() if r.get_address() == key]
        return matching[-1] if matching else None

    def format_request(self, wallet: Any, request: Any) -> dict[str, Any]:
        data = wallet.export_request(request)
        data["expiry"] = request.exp
        data["sent_amount"] = self.sent_amount(wallet, data.get("address"), data.get("tx_hashes", []))
        return data

    @rpc(requires_wallet=True)
    async def add_request(
        self,
        amount: Decimal | None = None,
        memo: str = "",
        expiry: float | None = 3600,
        force: bool = False,
        wallet: Any = None,
    ) -> Any:
        """Create a payment request on the first unused address (a new one with force=true).

        amount in coin units (a decimal string), expiry in seconds (0 or null: never). Returns the
        request with amount_BTC, address, URI, status and sent_amount, or false when no unused
        address is left and force is false."""
        if amount is not None and amount < 0:
            raise RPCError(INVALID_PARAMS, "amount must not be negative")
        if expiry is not None and expiry < 0:
            raise RPCError(INVALID_PARAMS, "expiry must not be negative")
        created = await self.commands.add_request(
            None if amount is None else str(amount),
            memo,
            expiration=int(expiry) if expiry else None,
            force=force,
            wallet=wallet,
        )
        if not created:
            return created
        return self.format_request(wallet, wallet.get_request(created["request_id"]))

    @rpc(requires_wallet=True, aliases=("getrequest",))
    async def get_request(self, key: str, wallet: Any = None) -> dict[str, Any]:
        """A payment request by its request_id or by its address, with its status and sent_amount."""
        request = self.find_request(wallet, key)
        if request is None:
            raise RPCError(REQUEST_NOT_FOUND, "Request not found")
        return self.format_request(wallet, request)

    @rpc(requires_wallet=True)
    async def get_invoice(self, key: str, wallet: Any = None) -> dict[str, Any]:
        """An invoice by its id: an incoming request (as get_request) or an outgoing invoice."""
        request = wallet.get_request(key)
        if request is not None:
            return self.format_request(wallet, request)
        invoice = wallet.get_invoice(key)
        if invoice is None:
            raise RPCError(INVOICE_NOT_FOUND, "Invoice not found")
        return wallet.export_invoice(invoice)

    # -- keys and addresses ---------------------------------------------------------------------

    @rpc
    async def validatekey(self, key: str) -> bool:
        """Whether key restores a wallet on this network: a master public or private key, or an Electrum seed."""
        keystore = self.electrum.keystore
        try:
            if keystore.is_master_key(key):
                keystore.from_master_key(key)
                return True
            if keystore.is_seed(key):
                keystore.from_seed(key, None)
                return True
        except Exception:
            return False
        return False

    @rpc
    async def getfingerprint(self, xpub: str) -> str | None:
        """The root fingerprint of an extended key (known only for a master key of depth 0 or 1)."""
        try:
            return self.electrum.bip32.root_fp_and_der_prefix_from_xkey(xpub)[0]
        except Exception as exc:
            raise RPCError(INVALID_PARAMS, f"Not an extended key for this network: {exc}") from exc

    @rpc(requires_wallet=True)
    async def getaddressbalance_wallet(self, address: str, wallet: Any = None) -> dict[str, str | None]:
        """Balance of one of the wallet's addresses, from the wallet's own history (no server query)."""
        if not self.electrum.bitcoin.is_address(address):
            raise RPCError(ADDRESS_INVALID, f"Invalid Bitcoin address: {address}")
        confirmed, unconfirmed, unmatured = wallet.get_addr_balance(address)
        return {
            "confirmed": format_amount(confirmed, self.COIN_DECIMALS),
            "unconfirmed": format_amount(unconfirmed, self.COIN_DECIMALS),
            "unmatured": format_amount(unmatured, self.COIN_DECIMALS),
        }

    # -- transactions and fees ------------------------------------------------------------------

    def parse_tx(self, raw_tx: str) -> Any:
        return self.electrum.transaction.tx_from_any(raw_tx)

    @rpc
    async def get_tx_size(self, raw_tx: str) -> int:
        """Estimated virtual size in bytes of a raw or partial (PSBT) transaction."""
        return self.parse_tx(raw_tx).estimated_size()

    @rpc
    async def get_tx_hash(self, raw_tx: str) -> str | None:
        """The txid of a raw transaction."""
        return self.parse_tx(raw_tx).txid()

    @rpc
    async def get_default_fee(self, tx: str | int) -> str | None:
        """The fee (in coin units) Electrum would pay for a transaction, given raw or its size in bytes."""
        size = tx if isinstance(tx, int) else await self.get_tx_size(tx)
        return format_amount(self.electrum_config.estimate_fee(size), self.COIN_DECIMALS)

    @rpc
    async def recommended_fee(self, target: int) -> int | None:
        """Fee rate in sat/kvB to confirm within ``target`` blocks (null without server estimates)."""
        return self.electrum_config.eta_target_to_fee(target)

    @rpc(requires_wallet=True)
    async def get_used_fee(self, tx_hash: str, wallet: Any = None) -> str | None:
        """The fee a wallet transaction paid (null when the wallet cannot know its inputs' values)."""
        self.check_tx_hash(tx_hash)
        tx = self.wallet_transaction(wallet, tx_hash)
        if tx is None:
            raise RPCError(TX_NOT_FOUND, "Transaction not in wallet.")
        return format_amount(wallet.get_wallet_delta(tx).fee, self.COIN_DECIMALS)

    @staticmethod
    def check_tx_hash(tx_hash: str) -> None:
        """64 hex digits, as Electrum's is_hash256_str checks (Electron Cash has no such helper)."""
        if not isinstance(tx_hash, str) or len(tx_hash) != 64 or any(c not in string.hexdigits for c in tx_hash):
            raise RPCError(TX_HASH_INVALID, f"{tx_hash!r} should be a transaction hash")

    @rpc(requires_network=True)
    async def get_transaction(self, tx_hash: str, wallet: Any = None) -> dict[str, Any]:
        """A transaction decoded (inputs, outputs) with its confirmations, from the wallet or the server."""
        self.check_tx_hash(tx_hash)
        tx = self.wallet_transaction(wallet, tx_hash) if wallet is not None else None
        if tx is None:
            tx = await self.server_transaction(tx_hash)
        data = self.tx_json(tx, tx_hash)
        data["confirmations"] = await self.confirmations(tx_hash, tx, wallet)
        return data

    async def confirmations(self, tx_hash: str, tx: Any, wallet: Any) -> int:
        """From the wallet when it holds the transaction, else from the server's history of its outputs."""
        if wallet is not None and self.wallet_transaction(wallet, tx_hash) is not None:
            return max(self.wallet_tx_confirmations(wallet, tx_hash), 0)
        for scripthash in self.output_scripthashes(tx):
            for item in await self.server_history(scripthash):
                if item["tx_hash"] == tx_hash:
                    height = int(item["height"])
                    return 0 if height <= 0 else max(self.network.get_local_height() - height + 1, 0)
        return 0

    # Hooks over the library's wallet and server API (Electron Cash's differ: the BCH daemon overrides them).

    def wallet_transaction(self, wallet: Any, tx_hash: str) -> Any:
        """The wallet's copy of a transaction, or None."""
        return wallet.db.get_transaction(tx_hash)

    def wallet_tx_confirmations(self, wallet: Any, tx_hash: str) -> int:
        """Confirmations of a transaction the wallet holds (0 or less: unconfirmed)."""
        return int(wallet.adb.get_tx_height(tx_hash).conf)

    async def server_transaction(self, tx_hash: str) -> Any:
        """A transaction fetched from the server (an error when the server has none)."""
        return self.parse_tx(await self.network.get_transaction(tx_hash))

    def tx_json(self, tx: Any, tx_hash: str) -> dict[str, Any]:
        """The decoded transaction get_transaction returns."""
        return tx.to_json()

    def output_scripthashes(self, tx: Any) -> list[str]:
        """The Electrum-protocol script hashes of the outputs that pay to an address, in output order."""
        return [self.electrum.bitcoin.address_to_scripthash(o.address) for o in tx.outputs() if o.address]

    async def server_history(self, scripthash: str) -> list[dict[str, Any]]:
        """The server's history ({tx_hash, height} items) of a script hash."""
        return await self.network.get_history_for_scripthash(scripthash)

    # -- daemon status and control --------------------------------------------------------------

    def is_synchronized(self) -> bool:
        return self.headers_synchronized() and all(w.is_up_to_date() for w in self.wallets.values())

    @rpc
    async def getinfo(self) -> dict[str, Any]:
        """Electrum's network info, plus synchronized and total_wallets (works offline too)."""
        if self.network is not None:
            data = await self.commands.getinfo()
        else:
            data = {
                "network": self.electrum.constants.net.NET_NAME,
                "path": self.electrum_config.path,
                "server": "",
                "blockchain_height": 0,
                "server_height": 0,
                "spv_nodes": 0,
                "connected": False,
                "auto_connect": False,
                "version": self.electrum.version.ELECTRUM_VERSION,
                "fee_per_kb": self.electrum_config.fee_per_kb(),
            }
        data.pop("default_wallet", None)
        data["offline"] = self.network is None
        data["synchronized"] = self.is_synchronized()
        data["total_wallets"] = len(self.wallets)
        return data

    @rpc
    async def close_wallet(self, key: str | None = None, identity: WalletIdentity | None = None) -> bool:
        """Unload a wallet (the one given as xpub, or by its wallet key); false if it was not loaded."""
        if identity is not None:
            key = self.wallet_key(identity)
        if key is None:
            raise RPCError(INVALID_PARAMS, "close_wallet needs a wallet: pass it as 'xpub' or give its key")
        return await self.forget_wallet(key)

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

    @rpc
    async def modifypaymenturl(self, url: str, amount: Decimal, divisibility: int | None = None) -> str:
        """The payment URL (BIP21) with its amount replaced; divisibility fixes the decimals shown."""
        try:
            if divisibility is not None:
                amount = amount.quantize(Decimal(1).scaleb(-divisibility))
        except InvalidOperation as exc:
            raise RPCError(INVALID_PARAMS, f"Invalid divisibility {divisibility}") from exc
        text = format(amount, "f")
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "amount"]
        query.insert(0, ("amount", text))
        return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))
