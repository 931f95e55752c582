"""The BTC daemon: the Electrum library (Debian's python3-electrum 4.3.4) behind the common contract.

Electrum runs inside the daemon's own asyncio loop (aiohttp's): its Network, wallets and
callbacks share the loop with the HTTP server, so no thread hops are needed except for the CPU
and disk work of building a wallet. Electrum is imported only in ``load_electrum`` and kept on
``self.electrum``, so a subclass (the BCH daemon on Electron Cash) can point the same machinery at
another Electrum-like module by overriding the small hooks of this class and of its mixins
(``btc_wallets``, ``btc_requests``, ``btc_transactions``, ``btc_callbacks``, ``btc_commands``,
``btc_network``, ``btc_keys``, ``btc_errors``, ``btc_lightning``, ``btc_lightning_requests``; one module
per concern): ``load_electrum``,
``config_options``/``create_config``, ``create_electrum_daemon``, ``create_commands``,
``restore_wallet``/``open_wallet``/``start_wallet``/``stop_wallet``, the ``on_*`` event handlers,
``format_request``, and the wallet and server hooks that ``sent_amount``, ``get_used_fee``,
``get_transaction`` and ``confirmations`` are written over (``wallet_transaction``,
``wallet_tx_confirmations``, ``server_transaction``, ``tx_json``, ``output_scripthashes``,
``server_history``, ``payment_target``/``value_paid_to``).
"""

from __future__ import annotations

import asyncio
import logging
from types import ModuleType
from typing import Any

from .base import BaseDaemon
from .btc_amounts import COIN_SUPPLY
from .btc_callbacks import CallbacksMixin
from .btc_commands import CommandsMixin
from .btc_config import NETWORKS, Proxy, parse_network, parse_proxy_url, parse_server
from .btc_errors import ElectrumErrorsMixin
from .btc_events import AdbRouter, ReportedState
from .btc_fast_calls import remember_output_addresses
from .btc_fast_history import faster_json_normalize
from .btc_fast_uris import remember_bip21_uris
from .btc_keys import KeysMixin, KnownPublicKeys
from .btc_lightning import UNSUPPORTED_LIGHTNING_COMMANDS, LightningMixin
from .btc_lightning_requests import LightningRequestsMixin
from .btc_network import NetworkMixin
from .btc_requests import RequestsMixin
from .btc_transactions import TransactionsMixin
from .btc_wallets import WalletsMixin
from .merchant_compat import NoContractsMixin
from .settings import SettingsError, parse_positive_float
from .tx_cache import DecodedTransactions

logger = logging.getLogger(__name__)


class BTCDaemon(
    LightningRequestsMixin,
    LightningMixin,
    CallbacksMixin,
    RequestsMixin,
    TransactionsMixin,
    WalletsMixin,
    KeysMixin,
    CommandsMixin,
    NetworkMixin,
    ElectrumErrorsMixin,
    NoContractsMixin,
    BaseDaemon,
):
    """Bitcoin on Electrum: every Electrum command plus the daemon methods the bitcart SDK calls.

    Each concern lives in its own mixin module (``btc_wallets``, ``btc_requests``, ``btc_commands``, ...);
    this class holds the settings, Electrum's loading and the lifecycle that tie them together.
    """

    name = "BTC"
    DEFAULT_PORT = 5000
    NETWORKS: tuple[str, ...] = NETWORKS
    COIN_DECIMALS = 8
    COIN_SUPPLY = COIN_SUPPLY
    MAX_TX_SIZE = 4_000_000  # bytes: a block's weight limit, so no transaction's virtual size exceeds it
    LIGHTNING_SUPPORTED = True
    ELECTRUM_PACKAGE = "electrum"
    ELECTRUM_INSTALL_HINT = "install Debian's python3-electrum (apt-get install python3-electrum)"
    # Electrum commands not served: they manage Electrum's own process or wallet files by path,
    # which this daemon owns (wallets are loaded from the 'xpub' identity, closed by close_wallet).
    # Submarine swaps need Electrum's swap server on the internet, get_watchtower_ctn a watchtower in the process.
    EXCLUDED_COMMANDS = (
        frozenset({"stop", "load_wallet", "create", "restore", "password"}) | UNSUPPORTED_LIGHTNING_COMMANDS
    )
    # Electrum callback -> handler method; each handler emits one contract event.
    CALLBACKS = {
        "blockchain_updated": "on_blockchain_updated",
        "new_transaction": "on_new_transaction",
        "request_status": "on_request_status",
        "verified": "on_verified",
        "wallet_updated": "on_wallet_updated",
        "channel": "on_channel",
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
        self.public_keys = KnownPublicKeys()
        self._lightning_commands: dict[str, bool] = {}  # library command name -> whether it needs Lightning
        self.decoded_transactions = DecodedTransactions()  # get_transaction's decodings and proven positions
        self._up_to_date: dict[int, bool] = {}  # per wallet: whether its last sync round had caught up
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
        self.load_lightning_settings()

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
            import electrum.bitcoin
            import electrum.commands
            import electrum.daemon
            import electrum.keystore
            import electrum.transaction
            import electrum.wallet_db
        except ImportError as exc:
            raise self.missing_library(self.ELECTRUM_PACKAGE, self.ELECTRUM_INSTALL_HINT) from exc
        finally:
            # electrum.logging forces the root logger to WARNING at import: give the daemon its level back.
            root.setLevel(level)
        logging.getLogger("electrum").setLevel(logging.DEBUG if self.settings.debug else logging.WARNING)
        self.electrum = electrum
        remember_output_addresses(electrum.transaction, electrum.bitcoin, electrum.constants)
        faster_json_normalize(electrum.commands, electrum.util)
        remember_bip21_uris(electrum.util, electrum.constants)
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
            "verbosity": "*" if self.settings.debug else "",
        }
        return {**options, **self.lightning_options(), **self.connection_options()}

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
        self.start_lightning_nodes()
        logger.info(
            "%s on %s: %s", self.name, self.network_name, "offline" if self.network is None else "network started"
        )

    async def stop_backend(self) -> None:
        self.stop_lightning_nodes()
        await self.forget_all_wallets()
        self.unregister_callbacks()
        if self.electrum_daemon is not None:
            await self.electrum_daemon.stop()
        self.server_requests.stop()
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
