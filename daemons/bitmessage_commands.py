"""The PyBitmessage API's commands as data: names, aliases, parameters, and which values are base64.

This is the one place that knows the node's API surface (shared/seeds/pybitmessage-api.txt). The
client uses it to turn named arguments into the positional list the node needs (the node spreads
a JSON-RPC object's keys, not its values, so named arguments must never reach it), to base64-encode
the text fields it wants encoded and to decode them in results; the daemon uses it to publish every
command under its documented names.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

REQUIRED: Any = object()
DEFAULT_TTL = 4 * 24 * 60 * 60

# Where results carry base64 text: lists of messages (subject, message) and of labelled addresses.
MESSAGE_LISTS = ("inboxMessages", "inboxMessage", "sentMessages", "sentMessage")
LABEL_LISTS = ("addresses", "subscriptions")
# Times in message rows, integer seconds on the daemon's wire. The node's inbox keeps `received` in
# a text column, so it answers receivedTime as a string ("1795938274"); lastActionTime is an integer.
TIME_FIELDS = ("receivedTime", "lastActionTime")


@dataclass(frozen=True)
class Param:
    name: str
    default: Any = REQUIRED
    base64: bool = False
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    """One node command. `structured`: the result is an object (a JSON string on legacy nodes)."""

    name: str
    params: tuple[Param, ...] = ()
    doc: str = ""
    aliases: tuple[str, ...] = ()
    legacy_aliases: tuple[str, ...] = ()
    structured: bool = False
    decoded: tuple[str, ...] = field(default=())

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases, *self.legacy_aliases)


def _p(name: str, default: Any = REQUIRED, b64: bool = False, aliases: tuple[str, ...] = ()) -> Param:
    return Param(name, default, b64, aliases)


_ADDRESS = _p("address")
_MSG = ("subject", "message")
_SEND_TAIL = (_p("subject", b64=True), _p("message", b64=True), _p("encodingType", 2), _p("TTL", DEFAULT_TTL))

COMMANDS: tuple[Command, ...] = (
    Command("decodeAddress", (_ADDRESS,), "Decode an address: status, addressVersion, streamNumber, ripe (base64).",
            structured=True),
    Command("listAddresses", (), "The node's own addresses with label, stream, enabled, chan.", structured=True),
    Command("listAddresses2", (), "As listAddresses, with base64 labels (decoded here).", structured=True,
            decoded=("label",)),
    Command("listAddressBookEntries", (_p("label", None),), "Address book entries (address, label).",
            legacy_aliases=("listAddressbook",), structured=True, decoded=("label",)),
    Command("addAddressBookEntry", (_ADDRESS, _p("label", b64=True)), "Add an address book entry.",
            legacy_aliases=("addAddressbook",)),
    Command("deleteAddressBookEntry", (_ADDRESS,), "Delete an address book entry.",
            legacy_aliases=("deleteAddressbook",)),
    Command("createRandomAddress",
            (_p("label", b64=True), _p("eighteenByteRipe", False), _p("totalDifficulty", 0),
             _p("smallMessageDifficulty", 0)),
            "Create one random address; returns it."),
    Command("createDeterministicAddresses",
            (_p("passphrase", b64=True), _p("numberOfAddresses", 1), _p("addressVersionNumber", 0),
             _p("streamNumber", 0), _p("eighteenByteRipe", False), _p("totalDifficulty", 0),
             _p("smallMessageDifficulty", 0)),
            "Create up to 999 addresses from a passphrase; returns {addresses}.", structured=True),
    Command("getDeterministicAddress",
            (_p("passphrase", b64=True), _p("addressVersionNumber"), _p("streamNumber")),
            "The address a passphrase gives, without adding it to the node."),
    Command("createChan", (_p("passphrase", b64=True),), "Create a chan; returns its address."),
    Command("joinChan", (_p("passphrase", b64=True), _p("suppliedAddress")), "Join a chan; returns 'success'."),
    Command("leaveChan", (_ADDRESS,), "Leave a chan; returns 'success'."),
    Command("deleteAddress", (_ADDRESS,), "Delete one of the node's addresses; returns 'success'."),
    Command("enableAddress", (_ADDRESS, _p("enable", True)), "Enable or disable one of the node's addresses."),
    Command("getAllInboxMessages", (), "All inbox messages.", structured=True, decoded=_MSG),
    Command("getAllInboxMessageIds", (), "The msgids of the inbox.", aliases=("getAllInboxMessageIDs",),
            structured=True),
    Command("getInboxMessageById", (_p("hid", aliases=("msgid",)), _p("readStatus", None)),
            "One inbox message by msgid (hex); readStatus sets its read flag. None when not found.",
            aliases=("getInboxMessageByID",), structured=True, decoded=_MSG),
    Command("getAllSentMessages", (), "All sent messages.", structured=True, decoded=_MSG),
    Command("getAllSentMessageIds", (), "The msgids of sent messages.", aliases=("getAllSentMessageIDs",),
            structured=True),
    Command("getInboxMessagesByReceiver", (_p("toAddress"),), "Inbox messages sent to one address.",
            legacy_aliases=("getInboxMessagesByAddress",), structured=True, decoded=_MSG),
    Command("getSentMessageById", (_p("hid", aliases=("msgid",)),), "One sent message by msgid (hex).",
            aliases=("getSentMessageByID",), structured=True, decoded=_MSG),
    Command("getSentMessagesByAddress", (_p("fromAddress"),), "Sent messages from one address.",
            aliases=("getSentMessagesBySender",), structured=True, decoded=_MSG),
    Command("getSentMessageByAckData", (_p("ackData", aliases=("ackdata",)),), "One sent message by ackdata (hex).",
            structured=True, decoded=_MSG),
    Command("trashMessage", (_p("msgid"),), "Trash an inbox or sent message by msgid (hex)."),
    Command("trashInboxMessage", (_p("msgid"),), "Trash an inbox message by msgid (hex)."),
    Command("trashSentMessage", (_p("msgid"),), "Trash a sent message by msgid (hex)."),
    Command("trashSentMessageByAckData", (_p("ackdata", aliases=("ackData",)),), "Trash a sent message by ackdata."),
    Command("sendMessage", (_p("toAddress"), _p("fromAddress"), *_SEND_TAIL),
            "Send a message; returns its ackdata (hex). TTL in seconds, clamped to 1 hour..28 days."),
    Command("sendBroadcast", (_p("fromAddress"), *_SEND_TAIL), "Send a broadcast; returns its ackdata (hex)."),
    Command("getStatus", (_p("ackdata", aliases=("ackData",)),), "The status of a sent message by ackdata."),
    Command("addSubscription", (_ADDRESS, _p("label", "", b64=True)), "Subscribe to an address's broadcasts."),
    Command("deleteSubscription", (_ADDRESS,), "Unsubscribe from an address."),
    Command("listSubscriptions", (), "All subscriptions (label, address, enabled).", structured=True,
            decoded=("label",)),
    Command("disseminatePreEncryptedMsg",
            (_p("encryptedPayload"), _p("requiredAverageProofOfWorkNonceTrialsPerByte", 1000,
                                        aliases=("nonceTrialsPerByte",)),
             _p("requiredPayloadLengthExtraBytes", 1000, aliases=("payloadLengthExtraBytes",))),
            "Send out an already encrypted object (hex); returns its inventory hash.",
            aliases=("disseminatePreparedObject",)),
    Command("disseminatePubkey", (_p("payload"),), "Send out a pubkey object (hex); returns nothing.",
            structured=True),
    Command("getMessageDataByDestinationHash", (_p("requestedHash"),), "Message objects by destination tag (hex).",
            aliases=("getMessageDataByDestinationTag",), structured=True),
    Command("clientStatus", (), "Network status, connection count and counters of the node.", structured=True),
    Command("listConnections", (), "The node's inbound and outbound peers.", structured=True),
    Command("helloWorld", (_p("a"), _p("b")), "Test: returns a-b."),
    Command("add", (_p("a"), _p("b")), "Test: returns a+b."),
    Command("statusBar", (_p("message"),), "Show a message in the node's status bar."),
    Command("deleteAndVacuum", (), "Empty the trash and vacuum the node's database."),
    Command("shutdown", (), "Shut the node down."),
)  # fmt: skip

BY_NAME: dict[str, Command] = {name: cmd for cmd in COMMANDS for name in cmd.names}

# The statuses after which a sent message no longer changes.
FINAL_STATUSES = frozenset({"ackreceived", "msgsentnoackexpected", "broadcastsent", "badkey", "notfound"})


class BindError(TypeError):
    """Arguments that do not fit a command's parameters."""


def find(name: str) -> Command | None:
    return BY_NAME.get(name)


def bind(cmd: Command, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None) -> list[Any]:
    """Positional values for the node: named ones put in place, gaps filled with documented defaults.

    Trailing parameters left at their defaults are not sent, so the node applies its own defaults.
    """
    values = list(args)
    if len(values) > len(cmd.params):
        raise BindError(f"{cmd.name} takes at most {len(cmd.params)} arguments ({len(values)} given)")
    named = dict(kwargs or {})
    slots: list[Any] = values + [REQUIRED] * (len(cmd.params) - len(values))
    for index, param in enumerate(cmd.params):
        for key in (param.name, *param.aliases):
            if key in named:
                if index < len(values) or slots[index] is not REQUIRED:
                    raise BindError(f"{cmd.name} got multiple values for {param.name!r}")
                slots[index] = named.pop(key)
    if named:
        raise BindError(f"{cmd.name} got unexpected arguments: {', '.join(sorted(named))}")
    while slots and slots[-1] is REQUIRED:
        if cmd.params[len(slots) - 1].default is REQUIRED:
            break
        slots.pop()
    for index, value in enumerate(slots):
        if value is REQUIRED:
            default = cmd.params[index].default
            if default is REQUIRED:
                raise BindError(f"{cmd.name} is missing its argument {cmd.params[index].name!r}")
            slots[index] = default
    return slots


def b64encode_text(value: Any) -> Any:
    """UTF-8 then base64, for the fields the node wants encoded; non-strings go as they are."""
    if isinstance(value, str):
        return base64.b64encode(value.encode("utf-8")).decode("ascii")
    return value


def b64decode_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return base64.b64decode(value).decode("utf-8", "replace")
    except ValueError:
        return value


def encode_args(cmd: Command, values: list[Any]) -> list[Any]:
    """Base64-encode the values of the command's base64 parameters (default values included)."""
    out = list(values)
    for index, param in enumerate(cmd.params[: len(out)]):
        if param.base64 and out[index] != "":
            out[index] = b64encode_text(out[index])
    return out


def decode_result(cmd: Command, result: Any) -> Any:
    """Decode the base64 text fields of a structured result and make its times integers, on a copy."""
    if not cmd.decoded or not isinstance(result, dict):
        return result
    out = dict(result)
    for key in (*MESSAGE_LISTS, *LABEL_LISTS):
        rows = out.get(key)
        if isinstance(rows, list):
            out[key] = [_decode_row(row, cmd.decoded) for row in rows]
    return out


def _decode_row(row: Any, fields: tuple[str, ...]) -> Any:
    if not isinstance(row, dict):
        return row
    return {k: b64decode_text(v) if k in fields else seconds(v) if k in TIME_FIELDS else v for k, v in row.items()}


def seconds(value: Any) -> int | None:
    """A Unix time the node gave as an integer or a string of one; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = value.strip() if isinstance(value, str) else ""
    return int(text) if text.isascii() and text.isdigit() else None
