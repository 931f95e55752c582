"""BITMESSAGE daemon: a running PyBitmessage node's API behind the daemons' JSON-RPC, websocket and spec.

Every documented API command is a method under its documented names, taking positional or named
arguments with the documented parameter names; text fields go to the node base64-encoded and come
back decoded, whatever the node's API variant. ``raw=true`` passes and returns values exactly as
the node takes and gives them. The xpub identity is one of the node's own addresses: the default
``fromAddress`` and the scope of inbox queries and events. The protocol lives in
``daemons.bitmessage_client``, the command table in ``daemons.bitmessage_commands`` and the polling
for events in ``daemons.bitmessage_events``; this module ties them to the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from daemons import bitmessage_address
from daemons import bitmessage_commands as bmc
from daemons.base import BaseDaemon, RPCMethod, rpc
from daemons.bitmessage_client import (
    VARIANTS,
    BitmessageClient,
    BitmessageError,
    NodeAPIError,
    NodeAuthError,
    NodeTimeout,
    NodeUnavailable,
)
from daemons.bitmessage_events import NodeWatcher
from daemons.jsonrpc import INVALID_PARAMS, WALLET_LOAD_FAILED, RPCError, WalletIdentity
from daemons.settings import SettingsError, parse_positive_float
from daemons.urls import parse_backend_url

logger = logging.getLogger(__name__)

API_ERROR_BASE = -33000  # node error 00NN is -330NN
NODE_UNREACHABLE = -33100
NODE_AUTH_FAILED = -33101
NODE_PROTOCOL_ERROR = -33102
NODE_TIMEOUT = -33103
HEALTH_TIMEOUT = 5.0
LONG_CALL = 1.0  # a call at the node this long makes /health say busy instead of queueing behind it
AUTH_BACKOFF = (2.0, 120.0)  # seconds without calls after a refused login, doubling up to the second figure
DEFAULT_NODE_URL = "http://127.0.0.1:8442/"
SEND_COMMANDS = ("sendMessage", "sendBroadcast")
CHECKED_ADDRESSES = ("toAddress", "fromAddress")  # of the send commands: the node never checks toAddress
INBOX_SCOPED = ("getAllInboxMessages", "getAllInboxMessageIds", "getAllInboxMessageIDs")


class Missing:
    """A parameter the caller did not give: the node applies its documented default, shown in /spec."""

    def __init__(self, default: Any = bmc.REQUIRED) -> None:
        self.default = default

    def __repr__(self) -> str:
        return "<required>" if self.default is bmc.REQUIRED else repr(self.default)


def parse_variant(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in (*VARIANTS, "auto"):
        raise ValueError(f"expected one of xml, json, legacy, auto, got {value!r}")
    return text


@contextlib.contextmanager
def node_errors() -> Iterator[None]:
    """Turn the client's exceptions into the spec's codes, keeping the node's own message."""
    try:
        yield
    except NodeAPIError as exc:
        raise RPCError(API_ERROR_BASE - exc.number, str(exc)) from exc
    except NodeUnavailable as exc:
        raise RPCError(NODE_UNREACHABLE, str(exc)) from exc
    except NodeAuthError as exc:
        raise RPCError(NODE_AUTH_FAILED, str(exc)) from exc
    except NodeTimeout as exc:
        raise RPCError(NODE_TIMEOUT, str(exc)) from exc
    except BitmessageError as exc:
        raise RPCError(NODE_PROTOCOL_ERROR, str(exc)) from exc
    except bmc.BindError as exc:
        raise RPCError(INVALID_PARAMS, str(exc)) from exc


@dataclass(frozen=True)
class BitmessageIdentity:
    """A loaded identity: one of the node's own addresses."""

    address: str


class BitmessageDaemon(BaseDaemon):
    name = "BITMESSAGE"
    DEFAULT_PORT = 5012

    def load_settings(self) -> None:
        super().load_settings()
        node = self.env("NODE_URL", cast=parse_backend_url, default=parse_backend_url(DEFAULT_NODE_URL))
        self.node_url = node.url  # without credentials: those go as Basic auth only
        try:
            self.node_user, self.node_password = node.credentials(
                self.env("NODE_USER", default=""), self.env("NODE_PASSWORD", default="")
            )
        except ValueError:
            raise SettingsError(
                "BITMESSAGE_NODE_URL holds a user or password and BITMESSAGE_NODE_USER/BITMESSAGE_NODE_PASSWORD "
                "are set too: give the credentials once"
            ) from None
        self.api_variant = self.env("API_VARIANT", cast=parse_variant, default="auto")
        self.poll_interval = self.env("POLL_INTERVAL", cast=parse_positive_float, default=5.0)
        self.node_timeout = self.env("NODE_TIMEOUT", cast=parse_positive_float, default=60.0)
        self.notify_existing = self.env("NOTIFY_EXISTING", cast=bool, default=False)
        if ":" in self.node_user:
            raise SettingsError("BITMESSAGE_NODE_USER must not contain ':' (the node cannot parse it)")
        self.client: BitmessageClient | None = None
        self.watcher: NodeWatcher | None = None
        self.poller: asyncio.Task[None] | None = None
        self.node_error: str | None = None
        self.node_status: dict[str, Any] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    async def start_backend(self) -> None:
        self.client = BitmessageClient(
            self.node_url, self.node_user, self.node_password, self.api_variant, self.node_timeout, AUTH_BACKOFF
        )
        self.watcher = NodeWatcher(self.client, self.state_db, self.notify, self.notify_existing)
        self.poller = asyncio.create_task(self.poll_forever())

    async def stop_backend(self) -> None:
        if self.poller is not None:
            self.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.poller
        if self.client is not None:
            await self.client.close()

    async def poll_forever(self) -> None:
        """Poll the node; a failure is logged when its kind changes (the texts carry changing figures)."""
        assert self.watcher is not None
        while True:
            try:
                self.node_status = await self.watcher.poll()
                if self.node_error is not None:
                    logger.info("Bitmessage node answers again")
                self.node_error = None
            except BitmessageError as exc:
                if self.node_error != type(exc).__name__:
                    level = logging.INFO if isinstance(exc, NodeTimeout) else logging.WARNING
                    logger.log(level, "Bitmessage node poll failed: %s", exc)
                self.node_error = type(exc).__name__
            except Exception:
                logger.exception("Bitmessage poll failed")
            await asyncio.sleep(self.poll_interval)

    async def health(self) -> dict[str, Any]:
        """ok, busy (a call of ours is at the node, or it left one unanswered) or backend_unavailable.

        No URL is shown: /health needs no auth. A busy node or one in the pause after refusing the
        credentials is not asked (the node would keep the caller waiting, or sleep 2 s per refusal).
        """
        assert self.client is not None
        busy = await self.wait_idle()
        if busy is not None:
            return {"status": "busy", "node": {"error": f"the node is busy: {busy}"}}
        try:
            self.client.check_refusal()
            with node_errors():
                status = await asyncio.wait_for(self.client.call("clientStatus"), HEALTH_TIMEOUT)
        except TimeoutError:
            return {"status": "busy", "node": {"error": self.client.busy() or "the node did not answer in time"}}
        except (RPCError, NodeAuthError) as exc:
            state = "busy" if isinstance(exc, RPCError) and exc.code == NODE_TIMEOUT else "backend_unavailable"
            return {"status": state, "node": {"error": exc.message if isinstance(exc, RPCError) else str(exc)}}
        node = {key: status.get(key) for key in ("networkStatus", "networkConnections", "softwareVersion")}
        return {"status": "ok", "node": {"variant": self.client.variant, **node}}

    async def wait_idle(self) -> str | None:
        """Wait while short calls of ours are at the node; why it is busy once one is long (or none)."""
        assert self.client is not None
        deadline = asyncio.get_running_loop().time() + HEALTH_TIMEOUT
        while (busy := self.client.busy(longer_than=LONG_CALL)) is None and self.client.busy() is not None:
            if asyncio.get_running_loop().time() > deadline:
                return self.client.busy()
            await asyncio.sleep(0.05)
        return busy

    # -- identities ------------------------------------------------------------------------------

    def wallet_key(self, identity: WalletIdentity) -> str:
        """The address with its BM- prefix, as the node writes it in messages (it accepts both forms)."""
        key = identity.key.strip()
        return key if key.startswith("BM-") else "BM-" + key

    def keeps_watching(self, key: str, wallet: Any) -> bool:
        """The node's own addresses are few and their messages must not be missed: never unloaded."""
        return True

    async def load_wallet(self, identity: WalletIdentity) -> BitmessageIdentity:
        address = self.wallet_key(identity)
        addresses = await self.node_call("listAddresses")
        own = {row.get("address") for row in addresses.get("addresses", [])}
        if address not in own:
            raise RPCError(WALLET_LOAD_FAILED, f"{address} is not one of the Bitmessage node's addresses")
        return BitmessageIdentity(address)

    # -- calling the node ------------------------------------------------------------------------

    async def node_call(self, name: str, *args: Any, raw: bool = False, **kwargs: Any) -> Any:
        assert self.client is not None
        with node_errors():
            return await self.client.call(name, *args, raw=raw, **kwargs)

    async def run_command(self, name: str, values: dict[str, Any], raw: bool, wallet: Any) -> Any:
        """One node command with the identity applied: default fromAddress, scoped inbox, tracking."""
        cmd = bmc.BY_NAME[name]
        given = {key: value for key, value in values.items() if not isinstance(value, Missing)}
        if wallet is not None and "fromAddress" in {p.name for p in cmd.params}:
            given.setdefault("fromAddress", wallet.address)
        if wallet is not None and name in INBOX_SCOPED:
            return await self.scoped_inbox(name, wallet.address, raw)
        if cmd.name in SEND_COMMANDS:
            check_addresses(given)
        names = [p.name for p in cmd.params]
        if raw and list(given) == names[: len(given)]:
            result = await self.node_call(name, *given.values(), raw=True)  # sent as given, even too few
        else:
            result = await self.node_call(name, raw=raw, **given)
        if cmd.name in SEND_COMMANDS and isinstance(result, str):
            first = "broadcastqueued" if cmd.name == "sendBroadcast" else "msgqueued"  # as helper_sent.insert
            await self.track(result, given.get("fromAddress"), first)
        if wallet is not None and cmd.name == "getInboxMessageById" and not raw:
            rows = (result or {}).get("inboxMessage") or []
            if rows and rows[0].get("toAddress") != wallet.address:
                return None
        return result

    async def scoped_inbox(self, name: str, address: str, raw: bool) -> Any:
        result = await self.node_call("getInboxMessagesByReceiver", address, raw=raw)
        if name == "getAllInboxMessages" or raw:
            return result
        return {"inboxMessageIds": [{"msgid": row["msgid"]} for row in result["inboxMessages"]]}

    async def track(self, ackdata: str, from_address: str | None, status: str) -> None:
        assert self.watcher is not None
        await self.watcher.track(ackdata, from_address, status)

    # -- the node's commands as methods ----------------------------------------------------------

    def find_dynamic_method(self, name: str) -> RPCMethod | None:
        cmd = bmc.find(name)
        if cmd is None:
            return None
        return RPCMethod(name=name, func=self.command_function(name, cmd), doc=command_doc(name, cmd))

    def list_dynamic_methods(self) -> list[str]:
        return sorted(bmc.BY_NAME)

    def command_function(self, name: str, cmd: bmc.Command) -> Any:
        """A callable whose signature is the command's documented parameters, plus raw and wallet."""
        names = [param.name for param in cmd.params]

        async def command(*args: Any, raw: bool = False, wallet: Any = None, **kwargs: Any) -> Any:
            values = dict(zip(names, args, strict=False)) | kwargs
            return await self.run_command(name, values, raw, wallet)

        params = [
            inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=Missing(p.default))
            for p in cmd.params
        ]
        params += [
            inspect.Parameter("raw", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool),
            inspect.Parameter("wallet", inspect.Parameter.KEYWORD_ONLY, default=None),
        ]
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {"raw": bool}
        return command

    # -- plain methods ---------------------------------------------------------------------------

    @rpc
    async def send_message(
        self,
        toAddress: str,
        subject: str,
        message: str,
        fromAddress: str | None = None,
        encodingType: int = 2,
        TTL: int = bmc.DEFAULT_TTL,
        wallet: BitmessageIdentity | None = None,
    ) -> str:
        """Send a message (plain text subject and body) from fromAddress or the identity; returns its ackdata."""
        sender = fromAddress or (wallet.address if wallet else None)
        if sender is None:
            raise RPCError(INVALID_PARAMS, "send_message needs fromAddress or an identity (xpub)")
        values = {"toAddress": toAddress, "fromAddress": sender, "subject": subject, "message": message,
                  "encodingType": encodingType, "TTL": TTL}  # fmt: skip
        return await self.run_command("sendMessage", values, False, None)

    @rpc
    async def inbox(self, unread_only: bool = False, wallet: BitmessageIdentity | None = None) -> list[dict]:
        """Inbox messages, decoded; only those to the identity's address when one is given."""
        if wallet is not None:
            result = await self.node_call("getInboxMessagesByReceiver", wallet.address)
        else:
            result = await self.node_call("getAllInboxMessages")
        return [row for row in result["inboxMessages"] if not (unread_only and row.get("read"))]

    @rpc
    async def sent(self, wallet: BitmessageIdentity | None = None) -> list[dict]:
        """Sent messages, decoded; only those from the identity's address when one is given."""
        if wallet is not None:
            return (await self.node_call("getSentMessagesByAddress", wallet.address))["sentMessages"]
        return (await self.node_call("getAllSentMessages"))["sentMessages"]

    @rpc
    async def message_status(self, ackdata: str) -> str:
        """The status of a sent message: msgqueued ... ackreceived, or notfound."""
        return await self.node_call("getStatus", ackdata)


def check_addresses(values: dict[str, Any]) -> None:
    """The node's address rules on a send command's addresses, before the node sees them."""
    for parameter in CHECKED_ADDRESSES:
        address = values.get(parameter)
        if isinstance(address, str):
            try:
                bitmessage_address.check(address, parameter)
            except bitmessage_address.AddressError as exc:
                raise RPCError(API_ERROR_BASE - exc.number, f"API Error {exc.number:04d}: {exc.text}") from exc


def command_doc(name: str, cmd: bmc.Command) -> str:
    alias = "" if name == cmd.name else f" (alias of {cmd.name})"
    encoded = [p.name for p in cmd.params if p.base64]
    note = f" Plain text for {', '.join(encoded)}: the daemon base64-encodes it." if encoded else ""
    return f"Bitmessage API {cmd.name}{alias}. {cmd.doc}{note} raw=true: values as the node takes and gives them."
