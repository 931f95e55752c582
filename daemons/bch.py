"""The BCH daemon: Electron Cash behind the common contract, on top of the BTC daemon.

Electron Cash is a fork of an old Electrum and differs where it matters: it is synchronous and
threaded (its Network is a thread, wallets run jobs on it, callbacks fire on its threads), its
commands object is built per wallet, addresses are ``Address`` objects shown as CashAddr, and its
callbacks are ``blockchain_updated``, ``new_transaction``, ``payment_received`` and ``verified2``.
So this class keeps what holds from ``BTCDaemon`` (settings, wallet keys and paths, the
single-flight loading, error mapping, ``ReportedState`` de-duplication, fee and URL helpers) and
overrides what differs: every blocking call runs in a worker thread (``asyncio.to_thread``), and
callbacks reach the loop through ``bch_events.ThreadBridge`` in the order they fired.

Each concern lives in its own mixin module, listed before ``BTCDaemon`` so its overrides win:
``bch_wallets``, ``bch_requests``, ``bch_transactions``, ``bch_callbacks``, ``bch_commands``,
``bch_network``; ``bch_calls`` holds the thread and error helpers they share, ``bch_events`` the
thread-to-loop bridge. This module keeps the class, Electron Cash's loading and the lifecycle.

Electron Cash is imported only in ``load_electrum``: it is on no registry this project reaches
(see README, "BCH daemon"), and without it ``python -m daemons bch`` stops with install steps.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import Any

from .bch_callbacks import BCHCallbacksMixin
from .bch_calls import in_thread
from .bch_commands import BCHCommandsMixin
from .bch_events import ThreadBridge
from .bch_network import BCHNetworkMixin
from .bch_requests import BCHRequestsMixin
from .bch_transactions import BCHTransactionsMixin
from .bch_wallets import BCHWalletsMixin
from .btc import BTCDaemon
from .btc_events import ReportedState

logger = logging.getLogger(__name__)

BCH_NETWORKS = ("mainnet", "testnet", "testnet4", "scalenet", "chipnet", "regtest")
INSTALL_HINT = (
    "Electron Cash is on no package registry: download a source release (Electron-Cash-<version>.tar.gz) "
    "from Electron Cash's releases and run `pip install Electron-Cash-<version>.tar.gz` in this virtualenv "
    "(README.md, section 'BCH daemon', has the steps)"
)


class BCHDaemon(
    BCHCallbacksMixin,
    BCHRequestsMixin,
    BCHTransactionsMixin,
    BCHWalletsMixin,
    BCHCommandsMixin,
    BCHNetworkMixin,
    BTCDaemon,
):
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
