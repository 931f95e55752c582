"""Lightning on the BTC daemon: Electrum 4.3.4's own LNWallet behind the bitcart SDK's Lightning methods.

Lightning is off unless ``BTC_LIGHTNING=true``. A wallet restored from an Electrum seed then gets
its node key from the seed as Electrum derives it (``lightning_xprv``); a watch-only wallet has no
private keys and so no node (``LightningUnsupportedError``). Electrum's own commands (``nodeid``,
``list_channels``, ``close_channel``, ...) serve the SDK unchanged; ``add_peer``, ``open_channel`` and
``lnpay`` are wrapped here so that an unreachable peer, a payment that cannot succeed, an expired or
already paid invoice answer a named error instead of Electrum's ``success: false`` or a timeout.
Requests and events live in ``btc_lightning_requests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from decimal import Decimal
from typing import Any

from .btc_amounts import amount_text, parse_amount
from .btc_errors import LIGHTNING_UNSUPPORTED
from .jsonrpc import INVALID_PARAMS, RPCError, WalletIdentity
from .rpc import RPCMethod, rpc
from .settings import SettingsError, parse_positive_int

logger = logging.getLogger(__name__)
NODE_KIND = "lightning_node"  # btc_reported rows: wallets whose node has a channel to look after

# Codes of spec/btc.json for Lightning (the SDK raises each by its exc_name).
NO_ROUTE = -32010
LIGHTNING_DISABLED = -32030
INSUFFICIENT_CHANNEL_BALANCE = -32031
INVOICE_EXPIRED = -32032
INVOICE_ALREADY_PAID = -32033
PEER_UNREACHABLE = -32034

DEFAULT_TO_SELF_DELAY = 7 * 144  # Electrum's own default (blocks the remote waits after its force close)
REGTEST_TO_SELF_DELAY = 144  # what Electrum's regtest scripts set (lightning_to_self_delay 144)
MAX_TO_SELF_DELAY = 2016  # Electrum refuses a remote asking for more (MAXIMUM_REMOTE_TO_SELF_DELAY_ACCEPTED)
# Electrum's Lightning commands that need a swap server (on the internet) or a local watchtower: not served.
UNSUPPORTED_LIGHTNING_COMMANDS = frozenset({"normal_swap", "reverse_swap", "get_watchtower_ctn"})
PR_PAID = 3
LISTEN_TIMEOUT = 10.0  # seconds a loading wallet waits for its node to listen


def parse_listen(value: str) -> str:
    """``host:port`` for Electrum's lightning_listen ('' = no incoming connections)."""
    text = value.strip()
    if not text:
        return ""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError("expected host:port, for example 127.0.0.1:9735")
    return text


class LightningMixin:
    """Settings, wallet set-up, the Lightning guard and the wrapped Lightning commands."""

    # -- settings and Electrum's options --------------------------------------------------------

    def load_lightning_settings(self) -> None:
        supported = self.LIGHTNING_SUPPORTED
        self.listening_node: bytes | None = None  # the node that bound LIGHTNING_LISTEN
        self.listen_tried = False
        self.lightning_listen: str = self.env("LIGHTNING_LISTEN", cast=parse_listen, default="") if supported else ""
        self.lightning_gossip: bool = supported and self.env("LIGHTNING_GOSSIP", cast=bool, default=False)
        default_delay = REGTEST_TO_SELF_DELAY if self.network_name == "regtest" else DEFAULT_TO_SELF_DELAY
        self.lightning_to_self_delay: int = (
            self.env("LIGHTNING_TO_SELF_DELAY", cast=parse_positive_int, default=default_delay)
            if supported
            else default_delay
        )
        if self.lightning_to_self_delay > MAX_TO_SELF_DELAY:
            raise SettingsError(
                f"Invalid value for {self.env_reader.variable('LIGHTNING_TO_SELF_DELAY')}: at most {MAX_TO_SELF_DELAY} "
                "blocks (Electrum refuses channels asking for more)"
            )

    def lightning_options(self) -> dict[str, Any]:
        """Electrum's config keys for its LNWallet (the same names Electrum's regtest scripts set)."""
        options: dict[str, Any] = {"use_gossip": self.lightning and self.lightning_gossip}
        if self.lightning:
            options["lightning_to_self_delay"] = self.lightning_to_self_delay
            if self.lightning_listen:
                options["lightning_listen"] = self.lightning_listen
        return options

    # -- wallets ----------------------------------------------------------------------------------

    def start_wallet(self, key: str, wallet: Any) -> None:
        self.apply_lightning_setting(wallet)
        super().start_wallet(key, wallet)

    def apply_lightning_setting(self, wallet: Any) -> None:
        """Give a seed wallet its node when Lightning is on; keep any wallet's node stopped when it is off.

        Electrum builds an LNWallet for every wallet file holding a Lightning key, so a wallet restored
        while Lightning was on would run a node with the setting off: its key stays in the file (the same
        node comes back when Lightning is turned on again), but no node runs.
        """
        if not hasattr(wallet, "has_lightning"):
            return
        if not self.lightning:
            if wallet.lnworker is not None:  # built by Electrum, never started: it only holds its callbacks
                wallet.lnworker.unregister_callbacks()
            wallet.lnworker = None
            return
        if not wallet.has_lightning() and wallet.can_have_deterministic_lightning():
            wallet.init_lightning(password=None)  # a file from before Lightning was turned on
            wallet.save_db()
        if wallet.has_lightning():
            self.guard_request_export(wallet)

    async def unload_wallet(self, key: str, wallet: Any) -> None:
        await super().unload_wallet(key, wallet)
        lnworker = getattr(wallet, "lnworker", None)
        if lnworker is not None:  # Electrum stops a wallet's node only when it ran online: drop its callbacks
            lnworker.unregister_callbacks()

    async def load_wallet(self, identity: Any) -> Any:
        wallet = await super().load_wallet(identity)
        await self.wait_listening(wallet)
        return wallet

    async def wait_listening(self, wallet: Any) -> None:
        """Until the wallet's node accepts connections on LIGHTNING_LISTEN (Electrum binds it in a task of its
        own), so that a node id handed out can be connected to at once. Only one node of the process can bind
        it (Electrum: "only one LNWorker can listen at a time"): once one does, the others do not wait."""
        lnworker = getattr(wallet, "lnworker", None)
        if lnworker is None or not self.lightning_listen or self.network is None or self.listen_tried:
            return
        self.listen_tried = True  # one wait per daemon: a port taken by another program must not slow every load
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LISTEN_TIMEOUT
        while lnworker.listen_server is None and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if lnworker.listen_server is not None:
            self.listening_node = lnworker.node_keypair.pubkey
        else:
            logger.warning(
                "Lightning node did not start listening on %s (%s): is the address in use?",
                self.lightning_listen,
                self.env_reader.variable("LIGHTNING_LISTEN"),
            )

    # -- nodes that must run: wallets with channels -----------------------------------------------------

    def remember_node(self, key: str, wallet: Any) -> None:
        """Record whether the wallet's node has a channel to look after, so the next start runs it."""
        lnworker = getattr(wallet, "lnworker", None)
        if lnworker is None or self.reported is None or not key.startswith("sha256:"):
            return
        value = "1" if any(not chan.is_redeemed() for chan in lnworker.channels.values()) else "0"
        if self.reported.get(NODE_KIND, key, "") != value:
            try:
                self.reported.put(NODE_KIND, key, "", value)
            except Exception:  # a full disk: the node still runs now, and is recorded at its next change
                logger.exception("could not record the Lightning node of wallet %s", key)

    def start_lightning_nodes(self) -> None:
        """Load, in the background, every seed wallet whose node has a channel not redeemed yet.

        A node runs only while its wallet is loaded: after a restart its peers could not pay it and its
        watcher would miss a force close until a client happened to name the wallet."""
        if self.lightning and self.network is not None and self.reported is not None:
            self._node_loader = asyncio.ensure_future(self.load_lightning_nodes())

    async def load_lightning_nodes(self) -> None:
        for key in self.reported.wallets_with(NODE_KIND, "1"):
            try:
                seed = await asyncio.to_thread(self.stored_seed, key)
                if seed is not None:
                    await self.get_wallet(WalletIdentity(seed))
            except Exception:
                logger.exception("could not start the Lightning node of wallet %s", key)

    def stored_seed(self, key: str) -> str | None:
        """The Electrum seed in the wallet file of ``key`` (files are named by the seed's SHA-256)."""
        path = self.wallet_dir() / key.removeprefix("sha256:")
        if not path.exists():
            return None
        storage = self.electrum.storage.WalletStorage(str(path))
        db = self.electrum.wallet_db.WalletDB(storage.read(), manual_upgrades=False)
        seed = (db.get("keystore") or {}).get("seed")
        if not seed or "sha256:" + hashlib.sha256(seed.encode()).hexdigest() != key:
            return None
        return seed

    def stop_lightning_nodes(self) -> None:
        loader = getattr(self, "_node_loader", None)
        if loader is not None:
            loader.cancel()

    @staticmethod
    def guard_request_export(wallet: Any) -> None:
        """Electrum 4.3.4's export_request asks the LN worker about every request of a Lightning wallet
        (it makes each request a Lightning one), which fails for the on-chain-only requests this daemon
        also makes: such a request is exported as the wallet without Lightning would export it."""
        export = wallet.export_request

        def export_request(request: Any) -> dict[str, Any]:
            if request.is_lightning():
                return export(request)
            lnworker, wallet.lnworker = wallet.lnworker, None
            try:  # synchronous: nothing else runs on the loop meanwhile
                return export(request)
            finally:
                wallet.lnworker = lnworker

        wallet.export_request = export_request

    def keeps_watching(self, key: str, wallet: Any) -> bool:
        """A node with a channel not yet redeemed stays loaded: its peer pays it, and its watcher must see
        a force close or a breach in time."""
        lnworker = getattr(wallet, "lnworker", None)
        if lnworker is not None and any(not chan.is_redeemed() for chan in lnworker.channels.values()):
            return True
        return super().keeps_watching(key, wallet)

    # -- the guard ----------------------------------------------------------------------------------

    def is_lightning_method(self, name: str) -> bool:
        if name in LIGHTNING_METHODS:
            return True
        if not self.backend_loaded or name in self.EXCLUDED_COMMANDS:
            return False
        known = self._lightning_commands.get(name)  # asked twice per call: the library's answer, kept
        if known is None:
            command = self.electrum.commands.known_commands.get(name)
            known = bool(getattr(command, "requires_lightning", False))
            if command is not None:  # only names the library has: a client's made-up names are not kept
                self._lightning_commands[name] = known
        return known

    def check_lightning(self, wallet: Any) -> Any:
        """The wallet's LN worker, or the named error: Lightning off in the daemon, or not for this wallet."""
        if not self.LIGHTNING_SUPPORTED:
            raise RPCError(LIGHTNING_DISABLED, f"Lightning is disabled: the {self.name} daemon has no Lightning")
        if not self.lightning:
            raise RPCError(
                LIGHTNING_DISABLED,
                f"Lightning is disabled in this daemon: set {self.env_reader.variable('LIGHTNING')}=true to turn it on",
            )
        lnworker = getattr(wallet, "lnworker", None) if wallet is not None else None
        if lnworker is None:
            raise RPCError(
                LIGHTNING_UNSUPPORTED,
                "Lightning not supported in this wallet type: it needs a wallet restored from an Electrum seed "
                "(segwit); watch-only wallets hold no node key",
            )
        return lnworker

    async def execute(self, request: Any) -> Any:
        # Before the wallet loads and the network is awaited: with Lightning off, that is the answer.
        if not self.lightning and self.is_lightning_method(request.method):
            self.check_lightning(None)
        return await super().execute(request)

    async def call(self, method: RPCMethod, bound: Any) -> Any:
        if self.is_lightning_method(method.name):
            self.check_lightning(bound.arguments.get("wallet"))
        return await super().call(method, bound)

    # -- peers and channels ---------------------------------------------------------------------------

    async def connect_peer(self, lnworker: Any, connection_string: str, timeout: float) -> Any:
        """Connect to a peer and wait for its init message: a peer that cannot be reached is an error
        now (Electrum's add_peer returns as soon as it started trying)."""
        lnutil = self.electrum.lnutil
        node_id, rest = lnutil.extract_nodeid(connection_string)  # -32007 for a malformed node id
        try:
            peer = await lnworker.add_peer(connection_string)
        except lnutil.ConnStringFormatError as exc:
            raise RPCError(PEER_UNREACHABLE, f"Lightning peer unreachable: {exc}") from exc
        where = rest or "its known address"
        done = asyncio.ensure_future(peer.got_disconnected.wait())
        try:
            await asyncio.wait([peer.initialized, done], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            done.cancel()
        if not peer.is_initialized():
            with contextlib.suppress(Exception):
                peer.close_and_cleanup()
            raise RPCError(PEER_UNREACHABLE, f"Lightning peer unreachable: no connection to {node_id.hex()} at {where}")
        return peer

    @rpc(requires_wallet=True)
    async def nodeid(self, wallet: Any = None) -> str:
        """The wallet's Lightning node id, with @host:port when this node is the one listening on
        LIGHTNING_LISTEN (what a payer passes to add_peer/open_channel)."""
        lnworker = self.check_lightning(wallet)
        node_id = lnworker.node_keypair.pubkey
        return node_id.hex() + (f"@{self.lightning_listen}" if node_id == self.listening_node else "")

    @rpc(requires_wallet=True, requires_network=True)
    async def add_peer(
        self, connection_string: str, timeout: float = 20, gossip: bool = False, wallet: Any = None
    ) -> bool:
        """Connect to a Lightning node: connection_string is node_id@host:port. True once the peer answered."""
        if gossip:
            raise RPCError(INVALID_PARAMS, "gossip peers are not served: the daemon's node uses direct channels")
        lnworker = self.check_lightning(wallet)
        if not 0 < timeout <= 300:
            raise RPCError(INVALID_PARAMS, "'timeout' must be between 0 and 300 seconds")
        await self.connect_peer(lnworker, connection_string, timeout)
        return True

    @rpc(requires_wallet=True, requires_network=True)
    async def list_peers(self, gossip: bool = False, wallet: Any = None) -> list[dict[str, Any]]:
        """The Lightning peers this wallet's node is connected to."""
        self.check_lightning(wallet)
        if gossip and self.network.lngossip is None:
            raise RPCError(INVALID_PARAMS, "gossip is off (LIGHTNING_GOSSIP=false): there are no gossip peers")
        return await self.commands.list_peers(gossip=gossip, wallet=wallet)

    @rpc(requires_wallet=True, requires_network=True)
    async def open_channel(
        self, connection_string: str, amount: Any, push_amount: Any = 0, password: str | None = None, wallet: Any = None
    ) -> str:
        """Open a channel funded with amount (coin units) to node_id@host:port; returns the channel point
        txid:index. It is usable once its funding transaction has 3 confirmations."""
        lnworker = self.check_lightning(wallet)
        funding = amount_text(self.funding_amount(amount, push_amount))
        push = amount_text(parse_amount("push_amount", push_amount, self.COIN_DECIMALS, self.COIN_SUPPLY))
        await self.connect_peer(lnworker, connection_string, 20)
        return await self.commands.open_channel(connection_string, funding, push, password, wallet=wallet)

    def funding_amount(self, amount: Any, push_amount: Any) -> Decimal:
        """A channel's funding within Electrum's bounds (it would fail deep in the opening flow), and a push
        no larger than it; -32602 otherwise."""
        funding = parse_amount("amount", amount, self.COIN_DECIMALS, self.COIN_SUPPLY)
        push = parse_amount("push_amount", push_amount, self.COIN_DECIMALS, self.COIN_SUPPLY)
        lnutil = self.electrum.lnutil
        low, high = (
            Decimal(sats).scaleb(-self.COIN_DECIMALS) for sats in (lnutil.MIN_FUNDING_SAT, lnutil.LN_MAX_FUNDING_SAT)
        )
        if not low <= funding <= high:
            raise RPCError(
                INVALID_PARAMS, f"'amount' must be between {low} and {high} (Electrum's channel size bounds)"
            )
        if push > funding:
            raise RPCError(INVALID_PARAMS, "'push_amount' cannot exceed the channel's amount")
        return funding

    def channel_by_point(self, lnworker: Any, channel_point: str) -> Any:
        txid, _, index = channel_point.partition(":") if isinstance(channel_point, str) else ("", "", "")
        for chan in lnworker.channels.values():
            if chan.funding_outpoint.to_str() == f"{txid}:{index}":
                return chan
        raise RPCError(INVALID_PARAMS, f"No channel with channel point {channel_point!r} in this wallet")

    @rpc(requires_wallet=True, requires_network=True)
    async def close_channel(self, channel_point: str, force: bool = False, wallet: Any = None) -> str:
        """Close a channel (txid:index from open_channel): cooperatively, or force=true to broadcast our
        commitment (our funds come back after the peer's to_self_delay in blocks). Returns the closing txid."""
        lnworker = self.check_lightning(wallet)
        chan = self.channel_by_point(lnworker, channel_point)
        if not force and chan.node_id not in lnworker.peers:
            raise RPCError(PEER_UNREACHABLE, "Lightning peer unreachable: a cooperative close needs the peer online")
        return await self.commands.close_channel(channel_point, force, wallet=wallet)

    # -- paying -------------------------------------------------------------------------------------

    def decode_invoice_or_raise(self, invoice: Any) -> Any:
        if not isinstance(invoice, str):
            raise RPCError(INVALID_PARAMS, "'invoice' must be a BOLT11 invoice string")
        try:
            return self.electrum.lnaddr.lndecode(invoice)
        except Exception as exc:
            raise RPCError(-32009, f"Invalid Lightning invoice: {exc}") from exc

    def check_payable(self, lnworker: Any, lnaddr: Any) -> None:
        """The named reasons a payment cannot succeed, before Electrum tries (it would answer success false)."""
        if lnaddr.is_expired():
            raise RPCError(INVOICE_EXPIRED, "This invoice has expired")
        if lnworker.get_payment_status(lnaddr.paymenthash) == PR_PAID:
            raise RPCError(INVOICE_ALREADY_PAID, "This invoice has been paid already")
        if lnaddr.pubkey.serialize() == lnworker.node_keypair.pubkey:
            raise RPCError(NO_ROUTE, "No path found: the invoice is this wallet's own")
        amount_msat = lnaddr.get_amount_msat()
        active = [chan for chan in lnworker.channels.values() if chan.is_active()]
        if not active:
            raise RPCError(NO_ROUTE, "No path found: this wallet has no open channel with a connected peer")
        if amount_msat and amount_msat > int(lnworker.num_sats_can_send()) * 1000:
            raise RPCError(
                INSUFFICIENT_CHANNEL_BALANCE,
                f"Insufficient channel balance: the invoice asks {amount_msat // 1000} sat, the channels can send "
                f"{int(lnworker.num_sats_can_send())} sat",
            )

    @rpc(requires_wallet=True, requires_network=True)
    async def lnpay(self, invoice: str, timeout: float = 120, wallet: Any = None) -> dict[str, Any]:
        """Pay a BOLT11 invoice over this wallet's channels; returns Electrum's {payment_hash, success,
        preimage, log}. A payment that cannot or did not succeed is an error named after the reason."""
        lnworker = self.check_lightning(wallet)
        lnaddr = self.decode_invoice_or_raise(invoice)
        self.check_payable(lnworker, lnaddr)
        result = await self.commands.lnpay(invoice, timeout, wallet=wallet)
        if not result.get("success"):
            reasons = [entry[-1] for entry in result.get("log", []) if entry and entry[-1]]
            detail = f" ({reasons[-1]})" if reasons else ""
            raise RPCError(NO_ROUTE, f"No path found: the payment did not reach the payee{detail}")
        return result


LIGHTNING_METHODS = frozenset({"nodeid", "add_peer", "list_peers", "open_channel", "close_channel", "lnpay"})
