"""XMR daemon: Monero payments through monero-wallet-rpc (and monerod for the chain).

A proxy in front of real wallet-rpc processes speaking their JSON-RPC (daemons/xmr_client.py), with the
method shapes the bitcart SDK's XMR class expects. Payment requests each get their own subaddress
(daemons/xmr_requests.py); a poller per wallet asks wallet-rpc for incoming transfers (pool included) and
turns status changes into durable events (daemons/xmr_poller.py).

Several wallets: wallet-rpc holds one open wallet per process, and opening one costs ~2 s of CPU here, so by
default the daemon runs and supervises one wallet-rpc per wallet, up to ``XMR_MAX_WALLET_RPC``; beyond that
cap, or with a single external wallet-rpc (``XMR_WALLET_RPC_URL``), the least recently used process switches
wallets (daemons/xmr_walletrpc.py, daemons/xmr_pool.py; bench/xmr_bench.py has the measurements).
Which wallet-rpc methods pass through and which are refused: daemons/xmr_methods.py; spending and the
pass-through itself: daemons/xmr_commands.py.

Watch-only wallets are served by the scanner instead (daemons/xmr_scanner.py; ``XMR_SCANNER``): one task
that follows monerod and finds every such wallet's payments with its view key, so a wallet costs its keys
rather than a wallet-rpc process. The requests, statuses and events are the same either way.

``getbalance`` and ``get_height`` answer from the poller's snapshot of wallet-rpc's own answers, which
equals what a direct call would return (daemons/xmr_snapshot.py says why): no second HTTP round trip.

Wallets are known by a hash of their keys (never by the secret view key or seed), so that hash is the
``wallet`` of websocket messages. The monero library is imported in the load hook only, for what needs no
wallet-rpc: checking keys and addresses, and offline subaddresses.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import BaseDaemon, rpc
from .jsonrpc import INVALID_PARAMS, RPCError, WalletIdentity
from .merchant_compat import NoContractsMixin
from .metrics import Metric, gauge, state_gauge
from .settings import SettingsError, parse_bool, parse_positive_float, parse_positive_int
from .urls import parse_backend_url
from .xmr_client import MoneroError, MoneroRPC, MoneroUnauthorized, MoneroUnavailable, health_word
from .xmr_commands import WalletRPCCommandsMixin
from .xmr_poller import REORG_MARGIN, Poller, Reporter
from .xmr_pool import WalletPool
from .xmr_process import fits_config_file
from .xmr_requests import (
    PaymentRequest,
    RequestStore,
    from_atomic,
    monerod_transaction,
    now,
    to_atomic,
    transfer_entry,
)
from .xmr_scan_crypto import load_crypto
from .xmr_scan_store import ScanStore, Sealer
from .xmr_scanner import Scanner
from .xmr_snapshot import Snapshot
from .xmr_wallet import (
    NETS,
    InvalidIdentity,
    WalletTable,
    XMRWallet,
    identity_secrets,
    load_monero,
    parse_address,
    wallet_key_of,
)
from .xmr_walletrpc import WalletRPCs, external_pool, split_login, supervised_pool

logger = logging.getLogger(__name__)

TXID = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_SUBADDRESS_SKIPS = 1000  # subaddresses handed out again after a wallet-rpc crash lost its counter


def non_negative_int(value: Any) -> int:
    number = int(str(value).strip())
    if number < 0:
        raise ValueError("must be zero or more")
    return number


def monerod_syncing(info: dict[str, Any]) -> bool:
    """monerod is behind the network: it says it is not synchronized (it has not caught up with its peers,
    or has no peers yet: a wallet on it sees no new payments), or it knows of a higher target height."""
    height, target = info.get("height"), info.get("target_height")
    behind = isinstance(height, int) and isinstance(target, int) and target > height
    return info.get("synchronized") is False or bool(info.get("busy_syncing")) or behind


class XMRDaemon(NoContractsMixin, WalletRPCCommandsMixin, BaseDaemon):
    name = "XMR"
    DEFAULT_PORT = 5011
    DEFAULT_CONFIRMATIONS = 10  # Monero's own spendable age: outputs this deep can no longer be reorganised away

    def load_settings(self) -> None:
        super().load_settings()
        self.monerod_url, self.monerod_login = self.backend_setting("MONEROD", "http://127.0.0.1:18081")
        self.wallet_rpc_url, self.wallet_rpc_login = self.backend_setting("WALLET_RPC", "")
        self.wallet_rpc_binary = self.env("WALLET_RPC_BINARY", default="monero-wallet-rpc")
        self.wallet_dir = self.env("WALLET_DIR", cast=Path, default=self.settings.data_path / "wallets")
        self.max_wallet_rpc = self.env("MAX_WALLET_RPC", cast=parse_positive_int, default=16)
        self.poll_interval = self.env("POLL_INTERVAL", cast=parse_positive_float, default=2.0)
        self.confirmations = self.env("CONFIRMATIONS", cast=non_negative_int, default=self.DEFAULT_CONFIRMATIONS)
        self.rpc_timeout = self.env("RPC_TIMEOUT", cast=parse_positive_float, default=60.0)
        self.use_scanner = self.env("SCANNER", cast=parse_bool, default=True)
        if not self.wallet_rpc_url and not fits_config_file(self.monerod_login):
            # supervised wallet-rpcs get it through a config file; the value itself is never shown
            raise SettingsError(
                f"Invalid value for {self.env_reader.variable('MONEROD_LOGIN')} (value hidden): monero-wallet-rpc"
                " reads it from a config file, so it cannot hold '#', line breaks or leading/trailing spaces"
            )

    def backend_setting(self, prefix: str, default: str) -> tuple[str, str]:
        """``<prefix>_URL`` without credentials, and ``<prefix>_LOGIN`` (``user:password``), or what the URL held.

        Credentials inside the URL are moved into the login (HTTP Digest), so the URL that logs, errors and
        getinfo show holds none. In both places at once they could disagree: start-up stops."""
        login = self.env(f"{prefix}_LOGIN", default="")
        given = self.env(f"{prefix}_URL", cast=lambda v: parse_backend_url(v) if v.strip() else None, default=None)
        backend = given or (parse_backend_url(default) if default else None)
        if backend is None:
            return "", login
        user, _, password = login.partition(":")
        try:
            user, password = backend.credentials(user, password)
        except ValueError:
            variables = f"{self.env_reader.variable(prefix + '_URL')} and {self.env_reader.variable(prefix + '_LOGIN')}"
            raise SettingsError(f"Credentials are given both in {variables}: give them in one place") from None
        return backend.url.rstrip("/"), f"{user}:{password}" if user or password else ""

    def load_backend(self) -> None:
        try:
            self.lib = load_monero()
        except ImportError as exc:
            raise self.missing_library("monero", "pip install monero") from exc
        try:
            load_crypto()
        except ImportError as exc:
            raise self.missing_library("PyNaCl", "pip install pynacl pycryptodomex") from exc

    # -- lifecycle --------------------------------------------------------------------------------

    async def start_backend(self) -> None:
        user, password = split_login(self.monerod_login)
        self.monerod = MoneroRPC(self.monerod_url, name="monerod", login=user, password=password, timeout=10.0)
        self.requests = RequestStore(self.state_db)
        self.table = WalletTable(self.state_db)
        secret_path = self.settings.data_path / "xmr_wallet_secret"
        self.wallet_rpcs = WalletRPCs(self._make_pool(), self.table, secret_path, on_change=self._kick)
        self.reporter = Reporter(self.notify, self.requests, self.table, self.confirmations)
        self.poller = Poller(self.monerod, self.wallet_rpcs, self.reporter, self.poll_interval)
        self.wallet_dir.mkdir(parents=True, exist_ok=True)
        scan_store = ScanStore(self.state_db, Sealer(secret_path))
        net = NETS.get(self.settings.network, "main")
        self.scanner = Scanner(self.monerod, scan_store, self.reporter, net, self.lib, self.poller.reach)
        self.scanner.load()
        for wallet in self.table.known():
            if wallet.key in self.scanner.wallets:  # served by the scanner; a wallet-rpc file, if any, is for queries
                wallet.secret = self.scanner.wallets[wallet.key].view_key.hex()
                self.add_wallet_loaded_at_start(wallet.key, wallet)
            elif wallet.created:  # a wallet whose file exists survives restarts; it is watched right away
                self.add_wallet_loaded_at_start(wallet.key, wallet)
                self.poller.start_wallet(wallet)
        self.poller.start()
        self.scanner.start()

    def _make_pool(self) -> WalletPool:
        if self.wallet_rpc_url:
            return external_pool(self.wallet_rpc_url, self.wallet_rpc_login, self.rpc_timeout)
        return supervised_pool(
            self.wallet_rpc_binary,
            self.monerod_url,
            self.monerod_login,
            self.wallet_dir,
            self.settings.data_path,
            self.settings.network,
            self.max_wallet_rpc,
            self.rpc_timeout,
        )

    def _kick(self, key: str) -> None:
        self.poller.kick(key)

    @property
    def pool(self) -> WalletPool:
        return self.wallet_rpcs.pool

    @property
    def chain_height(self) -> int:
        return self.poller.chain_height

    async def stop_backend(self) -> None:
        await self.scanner.stop()
        await self.poller.stop()
        await self.pool.close()
        await self.monerod.close()

    async def health(self) -> dict[str, Any]:
        body: dict[str, Any] = {"height": self.chain_height, "wallets": len(self.wallets)}
        syncing = False
        try:
            info = await self.monerod.call("get_info", timeout=3.0)
            body["monerod"] = "ok"
            syncing = monerod_syncing(info)
            body.update(monerod_height=info.get("height"), target_height=info.get("target_height"))
        except MoneroError as exc:
            body["monerod"] = health_word(exc, "monerod")  # the message names the URL: /health shows none
        body["wallet_rpc"] = await self.wallet_rpcs.health(self.wallet_rpc_binary)
        body["scanner"] = self.scanner.progress()
        if body["monerod"] != "ok" or body["wallet_rpc"] != "ok":
            return {"status": "backend_unavailable", **body}
        return {"status": "syncing" if syncing else "ok", **body}

    def metric_families(self) -> Iterator[Metric]:
        yield state_gauge(
            "xmr_wallet_rpc", "wallet-rpc endpoints (processes, or the external one) by state.", self.pool.slot_states()
        )
        starts = sum(process.starts for process in self.pool.processes())
        yield gauge("xmr_wallet_rpc_starts", "wallet-rpc process starts, restarts included.", starts)

    # -- wallets ----------------------------------------------------------------------------------

    def _identity(self, identity: WalletIdentity) -> tuple[str, str, bool]:
        try:
            return identity_secrets(self.lib, identity.key, identity.fields, self.settings.network)
        except InvalidIdentity as exc:
            raise RPCError(-32005, str(exc)) from None

    def wallet_key(self, identity: WalletIdentity) -> str:
        """A hash of the keys; memoized, as deriving it (ed25519, mnemonic checksum) costs more than a call."""
        return self._key_of(identity.key, str(identity.fields.get("address") or ""))

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - the daemon lives as long as the process
    def _key_of(self, key: str, address: str) -> str:
        fields = {"address": address} if address else {}
        try:
            primary, secret, _ = identity_secrets(self.lib, key, fields, self.settings.network)
        except InvalidIdentity:
            return "invalid-" + wallet_key_of("", key)  # never matches a loaded wallet
        return wallet_key_of(primary, secret)

    async def load_wallet(self, identity: WalletIdentity) -> XMRWallet:
        """Check the keys offline, then make the wallet file in wallet-rpc (later, if it is unreachable)."""
        address, secret, view_only = self._identity(identity)
        key = wallet_key_of(address, secret)
        wallet = self.table.get(key)
        if wallet is None:
            restore = identity.fields.get("restore_height")
            if restore is not None and (not isinstance(restore, int) or isinstance(restore, bool) or restore < 0):
                raise RPCError(-32005, "restore_height must be a non-negative integer")
            height = restore if restore is not None else await self._restore_height()
            wallet = XMRWallet(key, address, key, view_only, height)
            self.table.save(wallet)
            if view_only and self.use_scanner:
                self.scanner.add(key, address, bytes.fromhex(secret), height)
        elif view_only and self.scanner.knows(key):  # unloaded earlier: the scan goes on where it stopped
            self.scanner.add(key, address, bytes.fromhex(secret), wallet.restore_height)
        if self.scanned(wallet):
            wallet.secret = secret  # its wallet-rpc file, made only if a query needs one, comes from the view key
            return wallet
        wallet.secret = None if wallet.created else secret
        if not wallet.created:
            try:
                await self.wallet_call(wallet, "get_height")
            except MoneroUnavailable:
                pass  # offline: the poller makes the file once wallet-rpc is back; offline methods work meanwhile
            except MoneroUnauthorized as exc:
                raise RPCError(-32012, str(exc)) from None
        self.poller.start_wallet(wallet)
        return wallet

    async def _restore_height(self) -> int:
        """A new wallet scans from the current tip (requests come later); 0 when monerod is unreachable."""
        try:
            count = (await self.monerod.call("get_block_count", timeout=3.0))["count"]
        except MoneroError:
            return 0
        return max(0, int(count) - 1 - REORG_MARGIN)

    def keeps_watching(self, key: str, wallet: Any) -> bool:
        """A wallet with watched requests stays loaded: its poller is what reports their payments (and reorgs)."""
        return bool(self.poller.watched(key))

    async def unload_wallet(self, key: str, wallet: Any) -> None:
        self.wallet_rpcs.forget(key)
        self.poller.stop_wallet(key)
        self.scanner.unwatch(key)

    def scanned(self, wallet: XMRWallet) -> bool:
        """Whether the scanner serves the wallet (watch-only wallets, unless ``XMR_SCANNER`` is off)."""
        return wallet.key in self.scanner.wallets

    async def wallet_call(self, wallet: XMRWallet, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call ``method`` on the wallet's wallet-rpc; one that may change the wallet voids its snapshot.

        A wallet the scanner serves has no poller refreshing its wallet-rpc file: it is refreshed first."""
        if self.scanned(wallet) and method != "refresh":
            await self.wallet_rpcs.call(wallet, "refresh")
        return await self.wallet_rpcs.call(wallet, method, params)

    def snapshot(self, wallet: XMRWallet) -> Snapshot | None:
        """What wallet-rpc would answer to get_height and get_balance now, if the poller has it."""
        return self.wallet_rpcs.snapshot(wallet)

    # -- requests ---------------------------------------------------------------------------------

    @rpc(requires_wallet=True)
    async def add_request(
        self,
        wallet: XMRWallet,
        amount: Any = None,
        memo: str = "",
        expiration: float | None = None,
        force: bool = True,
        expiry: float | None = None,
    ) -> dict:
        """Create a payment request with its own subaddress; amount in XMR (None: any), expiration in seconds."""
        atomic = self._amount(amount) if amount is not None else None
        seconds = expiration if expiration is not None else expiry
        if seconds is not None and seconds < 0:
            raise RPCError(INVALID_PARAMS, "expiration must be a non-negative number of seconds")
        request_id = secrets.token_hex(8)
        if self.scanned(wallet):
            minor, address = self.scanner.new_subaddress(wallet.key)
            made = {"address": address, "address_index": minor}
        else:
            made = await self._new_subaddress(wallet, f"request {request_id}")
        request = PaymentRequest(
            wallet.key, request_id, made["address"], 0, int(made["address_index"]), atomic or None, memo,
            now(), int(seconds) if seconds else None, self.chain_height,
        )  # fmt: skip
        self.requests.add(request)
        return request.export(self.chain_height)

    async def _new_subaddress(self, wallet: XMRWallet, label: str) -> dict[str, Any]:
        """A subaddress no request has used, saved in the wallet file at once.

        wallet-rpc keeps its subaddress counter in memory until it stores the wallet: after a crash it would
        hand out the same subaddress again. So every new one is stored, and one already used is skipped.
        """
        async with self.wallet_rpcs.session(wallet) as client:
            for _ in range(MAX_SUBADDRESS_SKIPS):
                made = await client.call("create_address", {"account_index": 0, "label": label})
                await client.call("store")
                if self.requests.get(wallet.key, made["address"]) is None:
                    return dict(made)
        raise RPCError(-32020, "wallet-rpc error: it keeps handing out subaddresses already used by requests")

    def _amount(self, amount: Any) -> int:
        try:
            return to_atomic(amount)
        except ValueError as exc:
            raise RPCError(INVALID_PARAMS, str(exc)) from None

    def _request(self, wallet: XMRWallet, key: str) -> PaymentRequest:
        request = self.requests.get(wallet.key, key)
        if request is None:
            raise RPCError(-32017, f"Request not found: {key}")
        return request

    @rpc(requires_wallet=True)
    async def get_request(self, wallet: XMRWallet, key: str) -> dict:
        """A request by its id or its subaddress."""
        return self._request(wallet, key).export(self.chain_height)

    @rpc(requires_wallet=True)
    async def list_requests(
        self, wallet: XMRWallet, pending: bool = False, expired: bool = False, paid: bool = False
    ) -> list:
        """All requests of the wallet, or only those with the chosen statuses."""
        wanted = {s for s, on in ((0, pending), (7, pending), (1, expired), (3, paid)) if on}
        return [r.export(self.chain_height) for r in self.requests.list(wallet.key) if not wanted or r.status in wanted]

    @rpc(requires_wallet=True)
    async def clear_requests(self, wallet: XMRWallet) -> bool:
        """Forget all requests of the wallet."""
        self.requests.clear(wallet.key)
        return True

    # -- wallet queries ---------------------------------------------------------------------------

    @rpc(requires_wallet=True)
    async def getbalance(self, wallet: XMRWallet) -> dict:
        """confirmed = unlocked balance; unconfirmed = received but still locked."""
        snapshot = self.snapshot(wallet)
        if self.scanned(wallet):
            balance = self.scanner.balance(wallet.key)
        elif snapshot is not None:
            balance = snapshot.balance
        else:
            balance = await self.wallet_call(wallet, "get_balance", {"account_index": 0})
        total, unlocked = int(balance["balance"]), int(balance["unlocked_balance"])
        return {
            "confirmed": from_atomic(unlocked),
            "unconfirmed": from_atomic(total - unlocked),
            "unmatured": from_atomic(0),
            "lightning": from_atomic(0),
        }

    @rpc(requires_wallet=True)
    async def history(self, wallet: XMRWallet) -> dict:
        """All transfers of the wallet, oldest first, amounts as 12-decimal strings."""
        kinds = {"in": True, "out": True, "pending": True, "pool": True, "failed": True, "account_index": 0}
        found = await self.wallet_call(wallet, "get_transfers", kinds)
        entries = [entry for group in found.values() if isinstance(group, list) for entry in group]
        entries.sort(key=lambda e: (e.get("timestamp", 0), e.get("txid", "")))
        return {"transactions": [transfer_entry(entry) for entry in entries]}

    @rpc(aliases=("gettransaction",))
    async def get_transaction(self, tx: str, wallet: XMRWallet | None = None) -> dict:
        """A transaction: the wallet's view of it with a wallet, else monerod's."""
        if not isinstance(tx, str) or not TXID.match(tx):
            raise RPCError(-32016, "Invalid tx hash: expected 64 hex digits")
        if wallet is not None:
            found = await self.wallet_call(wallet, "get_transfer_by_txid", {"txid": tx, "account_index": 0})
            return transfer_entry(found["transfer"])
        found = await self.monerod.raw("get_transactions", {"txs_hashes": [tx]})
        txs = found.get("txs") or []
        if found.get("status") != "OK" or not txs:
            raise RPCError(-32015, "Transaction not found")
        return monerod_transaction(txs[0], self.chain_height)

    @rpc(requires_wallet=True, aliases=("get_address_offline",))
    async def get_address(self, wallet: XMRWallet, identity: WalletIdentity, major: int = 0, minor: int = 0) -> str:
        """The subaddress (major, minor), derived offline from the view key by the monero library."""
        if major < 0 or minor < 0:
            raise RPCError(INVALID_PARAMS, "major and minor must be non-negative")
        _, secret, view_only = self._identity(identity)
        view_key = secret if view_only else str(self.lib.Seed(secret).secret_view_key())
        offline = self.lib.Wallet(self.lib.OfflineWallet(wallet.address, view_key=view_key))
        return str(offline.get_address(major, minor))

    def normalize_address(self, address: str) -> str:
        """The address as given, once the monero library took it for one of this network."""
        try:
            parse_address(self.lib, address, self.settings.network)
        except ValueError as exc:
            raise RPCError(-32013, str(exc)) from None
        return address.strip()

    @rpc
    async def validateaddress(self, address: str) -> bool:
        """True for an address (primary, sub or integrated) of this daemon's network."""
        try:
            parse_address(self.lib, address, self.settings.network)
        except ValueError:
            return False
        return True

    @rpc
    async def validatekey(self, key: str, address: str | None = None) -> bool:
        """True if the key could load a wallet: a 25-word mnemonic, or a view key (matching ``address``)."""
        fields = {"address": address} if address else {}
        if len(key.split()) == 1 and not address:
            return bool(re.fullmatch(r"[0-9a-fA-F]{64}", key)) and self._is_scalar(key)
        try:
            identity_secrets(self.lib, key, fields, self.settings.network)
        except InvalidIdentity:
            return False
        return True

    def _is_scalar(self, key: str) -> bool:
        try:
            self.lib.ed25519.public_from_secret_hex(key)
        except Exception:
            return False
        return True

    @rpc(aliases=("get_height",))
    async def getheight(self, wallet: XMRWallet | None = None) -> int:
        """The chain height: the wallet's (wallet-rpc get_height) with a wallet, else monerod's block count."""
        if wallet is not None:
            if self.scanned(wallet):
                return self.scanner.height(wallet.key)
            snapshot = self.snapshot(wallet)
            if snapshot is not None:
                return snapshot.height
            return int((await self.wallet_call(wallet, "get_height"))["height"])
        return int((await self.monerod.call("get_block_count"))["count"])

    @rpc
    async def getinfo(self) -> dict:
        """The chain and backend state."""
        info = await self.monerod.call("get_info")
        return {
            "blockchain_height": info.get("height"),
            "connected": True,
            "synchronized": bool(info.get("synchronized", True)) and not info.get("busy_syncing", False),
            "server": self.monerod_url,
            "network": self.settings.network,
            "confirmations": self.confirmations,
            "wallet_rpc": "external" if self.pool.external is not None else "supervised",
            "wallets": len(self.wallets),
            "version": self.VERSION,
        }

    @rpc
    async def getconfig(self, key: str) -> Any:
        """Only ``lightning`` is known: Monero has none."""
        return False if key == "lightning" else None
