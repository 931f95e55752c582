"""XMR daemon: Monero payments through monero-wallet-rpc (and monerod for the chain).

A proxy in front of real wallet-rpc processes speaking their JSON-RPC (daemons/xmr_client.py), with the
method shapes the bitcart SDK's XMR class expects. Payment requests each get their own subaddress; a poller
per wallet asks wallet-rpc for incoming transfers (pool included) and turns status changes into durable
events (daemons/xmr_requests.py).

Several wallets: wallet-rpc holds one open wallet per process, and opening one costs ~2 s of CPU here
(``open_wallet``; ``generate_from_keys`` ~3 s), so switching one process between wallets would serialize
every call behind seconds of CPU. By default the daemon runs and supervises one wallet-rpc per wallet,
each wallet staying open (~25-30 MB RSS per process), up to ``XMR_MAX_WALLET_RPC``; only beyond that cap,
or with a single external wallet-rpc (``XMR_WALLET_RPC_URL``), does the least recently used process switch
wallets. See daemons/xmr_pool.py, and bench/xmr_bench.py for the measurements.

``getbalance`` and ``get_height`` answer from the poller's snapshot of wallet-rpc's own answers, which
equals what a direct call would return (daemons/xmr_snapshot.py says why): no second HTTP round trip.

Wallets are known by a hash of their keys (never by the secret view key or seed), so that hash is the
``wallet`` of websocket messages. The monero library is imported in the load hook only, for what needs no
wallet-rpc: checking keys and addresses, and offline subaddresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .base import BaseDaemon, RPCMethod, rpc
from .jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND, RPCError, WalletIdentity
from .settings import SettingsError, parse_positive_float, parse_positive_int
from .xmr_client import MoneroError, MoneroRPC, MoneroRPCError, MoneroUnauthorized, MoneroUnavailable
from .xmr_pool import WalletPool
from .xmr_process import WalletRPCProcess, fits_config_file
from .xmr_requests import PaymentRequest, RequestStore, Transfer, evaluate, from_atomic, now, to_atomic
from .xmr_snapshot import KEEPS_SNAPSHOT, Snapshot, Snapshots
from .xmr_wallet import (
    InvalidIdentity,
    WalletTable,
    XMRWallet,
    file_password,
    identity_secrets,
    load_monero,
    parse_address,
    wallet_key_of,
)

logger = logging.getLogger(__name__)

TXID = re.compile(r"^[0-9a-fA-F]{64}$")
REORG_MARGIN = 20  # blocks re-read below the tip by get_transfers, in case of a reorganisation
BLOCK_POLL_INTERVAL = 0.25  # get_block_count is cheap; a new block kicks every wallet's poller at once
BLOCK_CATCHUP = 100  # at most this many new_block events after a long downtime
MAX_SUBADDRESS_SKIPS = 1000  # subaddresses handed out again after a wallet-rpc crash lost its counter
TYPICAL_TX_WEIGHT = 2200  # a 2-input, 2-output transaction on regtest weighed 2166

# wallet-rpc 0.18's methods that pass through to the wallet's wallet-rpc (our own @rpc methods win on a
# clash): those that leave the wallet's height and balances alone (daemons/xmr_snapshot.py), and these,
# which may change them and so void the wallet's snapshot while they run.
WALLET_CHANGING_METHODS = frozenset(
    {
        "create_account",
        "transfer",
        "transfer_split",
        "sign_transfer",
        "submit_transfer",
        "sweep_dust",
        "sweep_unmixable",
        "sweep_all",
        "sweep_single",
        "relay_tx",
        "rescan_blockchain",
        "import_outputs",
        "import_key_images",
        "refresh",
        "rescan_spent",
        "prepare_multisig",
        "make_multisig",
        "export_multisig_info",
        "import_multisig_info",
        "finalize_multisig",
        "exchange_multisig_keys",
        "sign_multisig",
        "submit_multisig",
        "freeze",
        "thaw",
    }
)
WALLET_RPC_METHODS = KEEPS_SNAPSHOT | WALLET_CHANGING_METHODS
# These would open, close, replace or re-point the wallet the daemon manages: refused.
FORBIDDEN_METHODS = [
    "open_wallet",
    "close_wallet",
    "stop_wallet",
    "create_wallet",
    "generate_from_keys",
    "restore_deterministic_wallet",
    "change_wallet_password",
    "set_daemon",
    "auto_refresh",  # the poller refreshes every wallet; wallet-rpc's own refreshes would void snapshots unseen
    "start_mining",
    "stop_mining",
    "set_log_level",
    "set_log_categories",
]


def split_login(value: str) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    user, _, password = value.partition(":")
    return user, password


def non_negative_int(value: Any) -> int:
    number = int(str(value).strip())
    if number < 0:
        raise ValueError("must be zero or more")
    return number


def host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 18081}"


class XMRDaemon(BaseDaemon):
    name = "XMR"
    DEFAULT_PORT = 5011
    DEFAULT_CONFIRMATIONS = 10  # Monero's own spendable age: outputs this deep can no longer be reorganised away

    def load_settings(self) -> None:
        super().load_settings()
        self.monerod_url = self.env("MONEROD_URL", default="http://127.0.0.1:18081").rstrip("/")
        self.monerod_login = self.env("MONEROD_LOGIN", default="")
        self.wallet_rpc_url = self.env("WALLET_RPC_URL", default="").rstrip("/")
        self.wallet_rpc_login = self.env("WALLET_RPC_LOGIN", default="")
        self.wallet_rpc_binary = self.env("WALLET_RPC_BINARY", default="monero-wallet-rpc")
        self.wallet_dir = self.env("WALLET_DIR", cast=Path, default=self.settings.data_path / "wallets")
        self.max_wallet_rpc = self.env("MAX_WALLET_RPC", cast=parse_positive_int, default=16)
        self.poll_interval = self.env("POLL_INTERVAL", cast=parse_positive_float, default=2.0)
        self.confirmations = self.env("CONFIRMATIONS", cast=non_negative_int, default=self.DEFAULT_CONFIRMATIONS)
        self.rpc_timeout = self.env("RPC_TIMEOUT", cast=parse_positive_float, default=60.0)
        if not self.wallet_rpc_url and not fits_config_file(self.monerod_login):
            # supervised wallet-rpcs get it through a config file; the value itself is never shown
            raise SettingsError(
                f"Invalid value for {self.env_reader.variable('MONEROD_LOGIN')} (value hidden): monero-wallet-rpc"
                " reads it from a config file, so it cannot hold '#', line breaks or leading/trailing spaces"
            )

    def load_backend(self) -> None:
        try:
            self.lib = load_monero()
        except ImportError as exc:
            raise self.missing_library("monero", "pip install monero") from exc

    # -- lifecycle --------------------------------------------------------------------------------

    async def start_backend(self) -> None:
        user, password = split_login(self.monerod_login)
        self.monerod = MoneroRPC(self.monerod_url, name="monerod", login=user, password=password, timeout=10.0)
        self.pool = self._make_pool()
        self.requests = RequestStore(self.state_db)
        self.snapshots = Snapshots()
        self.table = WalletTable(self.state_db)
        self.chain_height = self.table.state("height") or 0
        self.pollers: dict[str, asyncio.Task[None]] = {}
        self._openers: dict[str, Callable[[MoneroRPC], Any]] = {}
        self.kicks: dict[str, asyncio.Event] = {}
        self.wallet_dir.mkdir(parents=True, exist_ok=True)
        for wallet in self.table.known():
            if wallet.created:  # a wallet whose file exists survives restarts; it is watched right away
                self.wallets[wallet.key] = wallet
                self._start_poller(wallet)
        self.block_task = asyncio.ensure_future(self._poll_blocks())

    def _make_pool(self) -> WalletPool:
        if self.wallet_rpc_url:
            user, password = split_login(self.wallet_rpc_login)
            external = MoneroRPC(self.wallet_rpc_url, login=user, password=password, timeout=self.rpc_timeout)
            return WalletPool(1, external=external)
        logs = self.settings.data_path / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        private = self.settings.data_path / "wallet-rpc"  # the processes' credential files, while they start
        private.mkdir(mode=0o700, exist_ok=True)
        private.chmod(0o700)

        def make_process(index: int) -> WalletRPCProcess:
            return WalletRPCProcess(
                self.wallet_rpc_binary,
                host_port(self.monerod_url),
                self.wallet_dir,
                logs / f"wallet-rpc-{index}.log",
                private / f"wallet-rpc-{index}.conf",
                self.settings.network,
                self.monerod_login or None,
                self.rpc_timeout,
            )

        return WalletPool(self.max_wallet_rpc, make_process=make_process)

    async def stop_backend(self) -> None:
        tasks = [self.block_task, *self.pollers.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.pool.close()
        await self.monerod.close()

    async def health(self) -> dict[str, Any]:
        body: dict[str, Any] = {"height": self.chain_height, "wallets": len(self.wallets)}
        try:
            await self.monerod.call("get_block_count", timeout=3.0)
            body["monerod"] = "ok"
        except MoneroError as exc:
            body["monerod"] = str(exc)
        body["wallet_rpc"] = await self._wallet_rpc_health()
        healthy = body["monerod"] == "ok" and body["wallet_rpc"] == "ok"
        return {"status": "ok" if healthy else "backend_unavailable", **body}

    async def _wallet_rpc_health(self) -> str:
        if self.pool.external is not None:
            try:
                await self.pool.external.call("get_version", timeout=3.0)
            except MoneroError as exc:
                return str(exc)
            return "ok"
        if shutil.which(self.wallet_rpc_binary) is None:
            return f"wallet-rpc unreachable: {self.wallet_rpc_binary} not found"
        down = [p.pid for p in self.pool.processes() if not p.ready]
        return "ok" if not down else f"wallet-rpc unreachable: {len(down)} process(es) restarting"

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
        wallet.secret = None if wallet.created else secret
        if not wallet.created:
            try:
                await self.wallet_call(wallet, "get_height")
            except MoneroUnavailable:
                pass  # offline: the poller makes the file once wallet-rpc is back; offline methods work meanwhile
            except MoneroUnauthorized as exc:
                raise RPCError(-32012, str(exc)) from None
        self._start_poller(wallet)
        return wallet

    async def _restore_height(self) -> int:
        """A new wallet scans from the current tip (requests come later); 0 when monerod is unreachable."""
        try:
            count = (await self.monerod.call("get_block_count", timeout=3.0))["count"]
        except MoneroError:
            return 0
        return max(0, int(count) - 1 - REORG_MARGIN)

    async def unload_wallet(self, key: str, wallet: Any) -> None:
        self._openers.pop(key, None)
        self.snapshots.forget(key)
        task = self.pollers.pop(key, None)
        if task is not None:
            task.cancel()

    def _opener(self, wallet: XMRWallet) -> Callable[[MoneroRPC], Any]:
        opener = self._openers.get(wallet.key)
        if opener is None:
            opener = self._openers[wallet.key] = self._make_opener(wallet)
        return opener

    def _make_opener(self, wallet: XMRWallet) -> Callable[[MoneroRPC], Any]:
        password = file_password(self.settings.data_path / "xmr_wallet_secret", wallet.filename)

        async def open_or_create(client: MoneroRPC) -> None:
            await open_or_create_file(client)
            # the poller refreshes the wallet itself; wallet-rpc refreshing on its own (every 20 s by
            # default) would change the wallet behind the snapshot's back (daemons/xmr_snapshot.py)
            await client.call("auto_refresh", {"enable": False})

        async def open_or_create_file(client: MoneroRPC) -> None:
            if not wallet.created:
                if wallet.secret is None:
                    raise MoneroUnavailable("wallet not ready: send a request with its keys again")
                try:
                    await client.call(*self._creation(wallet, password))
                except MoneroRPCError as exc:
                    if "already exists" not in exc.message:
                        raise
                    # an earlier attempt timed out on our side but wallet-rpc finished it: it may be open here
                    if await self._is_open_in(client, wallet):
                        self._mark_created(wallet)
                        return
                else:
                    self._mark_created(wallet)
                    return
                self._mark_created(wallet)
            await client.call("open_wallet", {"filename": wallet.filename, "password": password})

        return open_or_create

    def _mark_created(self, wallet: XMRWallet) -> None:
        wallet.created, wallet.secret = True, None
        self.table.save(wallet)

    async def _is_open_in(self, client: MoneroRPC, wallet: XMRWallet) -> bool:
        try:
            return (await client.call("get_address", {"account_index": 0}))["address"] == wallet.address
        except MoneroRPCError:
            return False

    def _creation(self, wallet: XMRWallet, password: str) -> tuple[str, dict[str, Any]]:
        assert wallet.secret is not None
        common = {"filename": wallet.filename, "password": password, "restore_height": wallet.restore_height}
        if wallet.view_only:
            return "generate_from_keys", {**common, "address": wallet.address, "viewkey": wallet.secret}
        return "restore_deterministic_wallet", {**common, "seed": wallet.secret, "language": "English"}

    async def wallet_call(self, wallet: XMRWallet, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call ``method`` on the wallet's wallet-rpc; one that may change the wallet voids its snapshot."""
        if method in KEEPS_SNAPSHOT:
            return await self._call_in_slot(wallet, method, params)
        try:
            with self.snapshots.changing(wallet.key):
                return await self._call_in_slot(wallet, method, params)
        finally:
            self._kick(wallet.key)  # the poller's next round reads the changed wallet (and new events) at once

    async def _call_in_slot(self, wallet: XMRWallet, method: str, params: dict[str, Any] | None) -> Any:
        async with self.pool.session(wallet.filename, self._opener(wallet)) as client:
            return await client.call(method, params)

    def _kick(self, key: str) -> None:
        kick = self.kicks.get(key)
        if kick is not None:
            kick.set()

    def snapshot(self, wallet: XMRWallet) -> Snapshot | None:
        """What wallet-rpc would answer to get_height and get_balance now, if the poller has it."""
        return self.snapshots.get(wallet.key, self.pool.epoch(wallet.filename))

    # -- events -----------------------------------------------------------------------------------

    async def _emit(self, event: str, fields: dict[str, Any], wallet: str | None, record: Callable[[], None]) -> None:
        """Store the event and ``record`` that it was reported in one transaction: never twice, never lost."""
        await self.notify(event, fields, wallet, also=lambda db: record())

    async def _poll_blocks(self) -> None:
        while True:
            try:
                count = int((await self.monerod.call("get_block_count", timeout=5.0))["count"])
                await self._report_blocks(count)
            except MoneroError as exc:
                logger.debug("block poll failed: %s", exc)
            except Exception:
                logger.exception("block poll failed")
            await asyncio.sleep(min(self.poll_interval, BLOCK_POLL_INTERVAL))

    async def _report_blocks(self, count: int) -> None:
        last = self.table.state("height")
        first = count if last is None else max(last + 1, count - BLOCK_CATCHUP + 1)
        for height in range(first, count + 1):
            await self._emit("new_block", {"height": height}, None, lambda h=height: self.table.set_state("height", h))
        if count > self.chain_height:
            self.chain_height = count
            for kick in self.kicks.values():
                kick.set()
        self.chain_height = count

    def _start_poller(self, wallet: XMRWallet) -> None:
        if wallet.key in self.pollers and not self.pollers[wallet.key].done():
            return
        self.kicks[wallet.key] = asyncio.Event()
        self.pollers[wallet.key] = asyncio.ensure_future(self._poll_wallet_forever(wallet))

    async def _poll_wallet_forever(self, wallet: XMRWallet) -> None:
        kick = self.kicks[wallet.key]
        while True:
            kick.clear()
            try:
                await self.poll_wallet(wallet)
            except MoneroError as exc:
                logger.debug("poll of %s failed: %s", wallet.key, exc)
            except Exception:
                logger.exception("poll of %s failed", wallet.key)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(kick.wait(), self.poll_interval)

    async def poll_wallet(self, wallet: XMRWallet) -> None:
        """One round: refresh, read incoming transfers, report new ones and request status changes."""
        pending = self.requests.pending(wallet.key)
        low = min([r.height for r in pending] + [wallet.scan_from]) - 1
        mark = self.snapshots.mark(wallet.key)
        async with self.pool.session(wallet.filename, self._opener(wallet)) as client:
            epoch = self.pool.epoch(wallet.filename)
            try:
                await client.call("refresh")
                params = {"in": True, "pool": True, "account_index": 0, "filter_by_height": True}
                found = await client.call("get_transfers", {**params, "min_height": max(0, low)})
                height = int((await client.call("get_height"))["height"])
                balance = await client.call("get_balance", {"account_index": 0})
            except BaseException:
                self.snapshots.forget(wallet.key)  # it may have refreshed without our reading the result
                raise
        # taken before the events below go out, so a client reacting to one sees the same wallet state
        self.snapshots.store(wallet.key, mark, epoch, height, balance)
        entries = [e for e in found.get("in", []) + found.get("pool", []) if not e.get("double_spend_seen")]
        transfers = [Transfer.from_rpc(entry) for entry in entries]
        for transfer in transfers:
            if not self.table.seen(wallet.key, transfer.txid):
                record = lambda t=transfer: self.table.mark_seen(wallet.key, t.txid)  # noqa: E731
                await self._emit("new_transaction", {"tx": transfer.txid}, wallet.key, record)
        for request in pending:
            await self._update_request(request, transfers)
        wallet.scan_from = max(wallet.scan_from, self.chain_height - REORG_MARGIN)

    async def _update_request(self, request: PaymentRequest, transfers: list[Transfer]) -> None:
        status, sent, hashes = evaluate(request, transfers, self.confirmations, now())
        if (status, sent, hashes) == (request.status, request.sent, request.tx_hashes):
            return
        request.status, request.sent, request.tx_hashes = status, sent, hashes
        await self._emit("new_payment", request.payment_event(), request.wallet, lambda: self.requests.update(request))

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
        made = await self._new_subaddress(wallet, f"request {request_id}")
        request = PaymentRequest(
            wallet.key, request_id, made["address"], 0, int(made["address_index"]), atomic or None, memo,
            now(), int(seconds) if seconds else None, self.chain_height,
        )  # fmt: skip
        self.requests.add(request)
        return request.export()

    async def _new_subaddress(self, wallet: XMRWallet, label: str) -> dict[str, Any]:
        """A subaddress no request has used, saved in the wallet file at once.

        wallet-rpc keeps its subaddress counter in memory until it stores the wallet: after a crash it would
        hand out the same subaddress again. So every new one is stored, and one already used is skipped.
        """
        async with self.pool.session(wallet.filename, self._opener(wallet)) as client:
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
        return self._request(wallet, key).export()

    @rpc(requires_wallet=True)
    async def list_requests(
        self, wallet: XMRWallet, pending: bool = False, expired: bool = False, paid: bool = False
    ) -> list:
        """All requests of the wallet, or only those with the chosen statuses."""
        wanted = {s for s, on in ((0, pending), (7, pending), (1, expired), (3, paid)) if on}
        return [r.export() for r in self.requests.list(wallet.key) if not wanted or r.status in wanted]

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
        if snapshot is not None:
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
        return {"transactions": [self._transfer(entry) for entry in entries]}

    def _transfer(self, entry: dict[str, Any]) -> dict[str, Any]:
        index = entry.get("subaddr_index") or {}
        return {
            "tx_hash": entry.get("txid"),
            "type": entry.get("type"),
            "amount": from_atomic(int(entry.get("amount", 0))),
            "fee": from_atomic(int(entry.get("fee", 0))),
            "height": entry.get("height", 0),
            "confirmations": entry.get("confirmations", 0),
            "timestamp": entry.get("timestamp"),
            "address": entry.get("address"),
            "subaddress_index": [index.get("major", 0), index.get("minor", 0)],
            "payment_id": entry.get("payment_id"),
        }

    @rpc(aliases=("gettransaction",))
    async def get_transaction(self, tx: str, wallet: XMRWallet | None = None) -> dict:
        """A transaction: the wallet's view of it with a wallet, else monerod's."""
        if not isinstance(tx, str) or not TXID.match(tx):
            raise RPCError(-32016, "Invalid tx hash: expected 64 hex digits")
        if wallet is not None:
            found = await self.wallet_call(wallet, "get_transfer_by_txid", {"txid": tx, "account_index": 0})
            return self._transfer(found["transfer"])
        found = await self.monerod.raw("get_transactions", {"txs_hashes": [tx]})
        txs = found.get("txs") or []
        if found.get("status") != "OK" or not txs:
            raise RPCError(-32015, "Transaction not found")
        item = txs[0]
        height = None if item.get("in_pool") else item.get("block_height")
        confirmations = 0 if height is None else max(0, self.chain_height - height)
        return {
            "tx_hash": item.get("tx_hash"),
            "height": height,
            "in_pool": item.get("in_pool"),
            "confirmations": confirmations,
        }

    @rpc(requires_wallet=True, aliases=("get_address_offline",))
    async def get_address(self, wallet: XMRWallet, identity: WalletIdentity, major: int = 0, minor: int = 0) -> str:
        """The subaddress (major, minor), derived offline from the view key by the monero library."""
        if major < 0 or minor < 0:
            raise RPCError(INVALID_PARAMS, "major and minor must be non-negative")
        _, secret, view_only = self._identity(identity)
        view_key = secret if view_only else str(self.lib.Seed(secret).secret_view_key())
        offline = self.lib.Wallet(self.lib.OfflineWallet(wallet.address, view_key=view_key))
        return str(offline.get_address(major, minor))

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

    # -- spending ---------------------------------------------------------------------------------

    @rpc(requires_wallet=True)
    async def payto(
        self,
        wallet: XMRWallet,
        destination: str,
        amount: Any,
        fee: Any = None,
        feerate: Any = None,
        addtransaction: bool = True,
        priority: int = 0,
    ) -> str:
        """Build and sign a transfer, not yet relayed: returns its metadata for ``broadcast`` (the SDK's flow)."""
        if wallet.view_only:
            raise RPCError(-32018, "Cannot send from a view-only wallet")
        if fee is not None or feerate is not None:
            raise RPCError(INVALID_PARAMS, "Monero sets fees by priority (0-4): fee and feerate are not supported")
        if not await self.validateaddress(destination):
            raise RPCError(-32013, f"Invalid address: {destination}")
        params = {
            "destinations": [{"address": destination, "amount": self._amount(amount)}],
            "account_index": 0,
            "priority": priority,
            "do_not_relay": True,
            "get_tx_metadata": True,
        }
        made = await self.wallet_call(wallet, "transfer", params)
        return str(made["tx_metadata"])

    @rpc(requires_wallet=True)
    async def broadcast(self, wallet: XMRWallet, tx: str) -> str:
        """Relay a transaction made by ``payto``; returns its hash."""
        return str((await self.wallet_call(wallet, "relay_tx", {"hex": tx}))["tx_hash"])

    @rpc
    async def get_default_fee(self, tx_size: int = TYPICAL_TX_WEIGHT) -> str:
        """monerod's fee estimate for a transaction of this weight (default: a typical 2-output one)."""
        estimate = await self.monerod.call("get_fee_estimate")
        per_byte, mask = int(estimate["fee"]), int(estimate.get("quantization_mask", 1)) or 1
        total = (per_byte * tx_size + mask - 1) // mask * mask
        return from_atomic(total)

    # -- pass-through -----------------------------------------------------------------------------

    def find_dynamic_method(self, name: str) -> RPCMethod | None:
        if name in FORBIDDEN_METHODS:
            return RPCMethod(name, self._forbidden(name), doc="Refused: the daemon manages its wallets itself")
        if name not in WALLET_RPC_METHODS:
            return None

        async def passthrough(wallet: XMRWallet, **params: Any) -> Any:
            try:
                return await self.wallet_call(wallet, name, params)
            except MoneroRPCError as exc:
                if exc.code == METHOD_NOT_FOUND:
                    raise RPCError(METHOD_NOT_FOUND, "Procedure not found") from None
                raise

        return RPCMethod(name, passthrough, requires_wallet=True, doc=f"wallet-rpc's {name}, with named params")

    def _forbidden(self, name: str) -> Callable[..., Any]:
        async def refuse(**params: Any) -> None:
            raise RPCError(-32019, f"{name} is refused: the daemon manages its wallets itself")

        return refuse

    def list_dynamic_methods(self) -> list[str]:
        return sorted(name for name in WALLET_RPC_METHODS.union(FORBIDDEN_METHODS) if name not in self.methods)
