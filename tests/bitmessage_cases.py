"""What the Bitmessage tests do to a node, shared by the client tests and the daemon tests.

`exercise_all` calls every command of the seed's list (and of the source) under every name, with
named arguments and non-ASCII text in every base64 field, through any `call(name, **kwargs)`;
`error_cases` gives one call per numbered error the double can produce.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.bitmessage_double import (
    ANNOUNCEMENTS,
    MAX_MESSAGE,
    BitmessageDouble,
    b58encode,
    double_sha512,
    encode_address,
    encode_varint,
    ripe_from,
)

TEXT = "Grüße, 世界 ✓ — ok"
Call = Callable[..., Awaitable[Any]]


def raw_address(data: bytes) -> str:
    """An address of arbitrary content with a valid checksum, to reach the node's decode errors."""
    return "BM-" + b58encode(data + double_sha512(data)[:4])


RIPE = ripe_from(b"cases")
V1_ADDRESS = raw_address(encode_varint(1) + encode_varint(1) + RIPE)
V5_ADDRESS = raw_address(encode_varint(5) + encode_varint(1) + RIPE)
STREAM2_ADDRESS = encode_address(4, 2, RIPE)
NON_MINIMAL_VARINT_ADDRESS = raw_address(b"\xfd\x00\x04" + encode_varint(1) + RIPE)
LEADING_ZERO_V4_ADDRESS = raw_address(encode_varint(4) + encode_varint(1) + b"\x00" + RIPE[:19])
GOOD_ADDRESS = encode_address(4, 1, RIPE)
REMOTE = encode_address(4, 1, ripe_from(b"a remote address"))  # valid, and not one of a double's own
BAD_CHECKSUM_ADDRESS = GOOD_ADDRESS[:-1] + ("2" if GOOD_ADDRESS[-1] != "2" else "3")


def object_payload(object_type: int = 2, body: bytes = b"payload") -> str:
    """An unsent object: zero nonce, expiry, type, version and stream varints, then the body (hex)."""
    header = bytes(8) + (2**31).to_bytes(8, "big") + object_type.to_bytes(4, "big")
    return (header + encode_varint(1) + encode_varint(1) + body).hex()


@dataclass
class ErrorCase:
    number: int
    command: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    raw: bool = False
    prepare: list[tuple[str, list[Any]]] = field(default_factory=list)


ERROR_NODE_WITHOUT = ("listConnections",)  # the error node predates listConnections: 0020


def error_cases(node: BitmessageDouble) -> list[ErrorCase]:
    """One call per APIError number 0000-0027, against a node built with ERROR_NODE_WITHOUT."""
    me = node.add_identity("me")
    disabled = node.add_identity("off", enabled=False)
    not_utf8 = base64.b64encode(b"\xff\xfe label").decode()
    return [
        ErrorCase(0, "helloWorld", ["only one"], raw=True),
        ErrorCase(1, "createDeterministicAddresses", [""]),
        ErrorCase(2, "createDeterministicAddresses", ["seed", 1, 2]),
        ErrorCase(3, "createDeterministicAddresses", ["seed", 1, 4, 2]),
        ErrorCase(4, "createDeterministicAddresses", ["seed", 0]),
        ErrorCase(5, "createDeterministicAddresses", ["seed", 1000]),
        ErrorCase(6, "sendMessage", [me, me, "s", "m"], {"encodingType": 1}),
        ErrorCase(7, "decodeAddress", [LEADING_ZERO_V4_ADDRESS]),
        ErrorCase(8, "decodeAddress", [BAD_CHECKSUM_ADDRESS]),
        ErrorCase(9, "decodeAddress", ["BM-0OIl"]),
        ErrorCase(10, "decodeAddress", [V5_ADDRESS]),
        ErrorCase(11, "decodeAddress", [V1_ADDRESS]),
        ErrorCase(12, "decodeAddress", [STREAM2_ADDRESS]),
        ErrorCase(13, "sendMessage", [me, GOOD_ADDRESS, "s", "m"]),  # a valid fromAddress, not the node's
        ErrorCase(14, "sendMessage", [me, disabled, "s", "m"]),
        ErrorCase(15, "getStatus", ["abcd"]),
        ErrorCase(16, "addSubscription", [ANNOUNCEMENTS]),
        ErrorCase(17, "createRandomAddress", [not_utf8], raw=True),
        ErrorCase(18, "joinChan", ["some chan", GOOD_ADDRESS]),
        ErrorCase(19, "getMessageDataByDestinationHash", ["abcd"]),
        ErrorCase(20, "listConnections"),
        ErrorCase(21, "add", ["text", 1]),
        ErrorCase(22, "trashMessage", ["not hex"]),
        ErrorCase(23, "createRandomAddress", ["label"], {"eighteenByteRipe": "yes"}),
        ErrorCase(24, "createChan", ["twice"], prepare=[("createChan", ["twice"])]),
        ErrorCase(25, "leaveChan", [me]),
        ErrorCase(26, "decodeAddress", [NON_MINIMAL_VARINT_ADDRESS]),
        ErrorCase(27, "sendMessage", [me, me, "s", "x" * MAX_MESSAGE]),
    ]


def rows_by(result: dict, key: str, field_name: str) -> dict[str, dict]:
    return {row[field_name]: row for row in result[key]}


async def exercise_all(call: Call, node: BitmessageDouble) -> set[str]:
    """Call every command under every name with named arguments; return the names called."""
    called: set[str] = set()

    async def c(name: str, **kwargs: Any) -> Any:
        called.add(name)
        return await call(name, **kwargs)

    await _node_commands(c, node)
    me, peer = node.add_identity("me"), node.add_identity("peer")
    await _address_commands(c, node)
    await _book_commands(c, peer)
    await _message_commands(c, node, me, peer)
    await _object_commands(c, node)
    assert await c("shutdown") == "done"
    return called


async def _node_commands(c: Call, node: BitmessageDouble) -> None:
    assert await c("helloWorld", a="x", b="y") == "x-y"
    assert await c("add", a=2, b=3) == 5
    node.set_network(2)
    status = await c("clientStatus")
    assert (status["networkStatus"], status["networkConnections"]) == (
        "connectedButHaveNotReceivedIncomingConnections",
        2,
    )
    assert len((await c("listConnections"))["outbound"]) == 2
    assert await c("statusBar", message=TEXT) == "success"
    assert node.state.status_bar == TEXT


async def _address_commands(c: Call, node: BitmessageDouble) -> None:
    new = await c("createRandomAddress", label=TEXT)
    assert node.state.identities[new].label == TEXT.encode()
    decoded = await c("decodeAddress", address=new)
    assert (decoded["status"], decoded["addressVersion"], decoded["streamNumber"]) == ("success", 4, 1)
    for name in ("listAddresses", "listAddresses2"):
        assert rows_by(await c(name), "addresses", "address")[new]["label"] == TEXT
    made = await c("createDeterministicAddresses", passphrase=TEXT, numberOfAddresses=2, addressVersionNumber=4)
    assert len(made["addresses"]) == 2 and all(a in node.state.identities for a in made["addresses"])
    one = await c("getDeterministicAddress", passphrase=TEXT, addressVersionNumber=4, streamNumber=1)
    assert one == made["addresses"][0]
    chan = await c("createChan", passphrase=TEXT + " chan")
    assert node.state.identities[chan].chan
    assert await c("leaveChan", address=chan) == "success"
    assert await c("joinChan", passphrase=TEXT + " chan", suppliedAddress=chan) == "success"
    assert await c("enableAddress", address=new, enable=False) == "success"
    assert not node.state.identities[new].enabled
    assert await c("deleteAddress", address=new) == "success"
    assert new not in node.state.identities


async def _book_commands(c: Call, peer: str) -> None:
    for add, listing, delete in (
        ("addAddressBookEntry", "listAddressBookEntries", "deleteAddressBookEntry"),
        ("addAddressbook", "listAddressbook", "deleteAddressbook"),  # the legacy aliases
    ):
        assert await c(add, address=peer, label=TEXT) == f"Added address {peer} to address book"
        assert {"address": peer, "label": TEXT} in (await c(listing))["addresses"]
        assert (await c(listing, label=TEXT))["addresses"] == [{"address": peer, "label": TEXT}]
        await c(delete, address=peer)
        assert (await c(listing))["addresses"] == []
    assert await c("addSubscription", address=peer, label=TEXT) == "Added subscription."
    assert {"label": TEXT, "address": peer, "enabled": True} in (await c("listSubscriptions"))["subscriptions"]
    assert await c("deleteSubscription", address=peer) == "Deleted subscription if it existed."


async def _message_commands(c: Call, node: BitmessageDouble, me: str, peer: str) -> None:
    ack = await c("sendMessage", toAddress=peer, fromAddress=me, subject=TEXT, message=TEXT + "\n2", TTL=7200)
    assert await c("getStatus", ackdata=ack) == "msgqueued"
    sent = (await c("getSentMessageByAckData", ackData=ack))["sentMessage"][0]
    assert (sent["subject"], sent["message"], sent["toAddress"]) == (TEXT, TEXT + "\n2", peer)
    msgid = sent["msgid"]
    for name in ("getSentMessageById", "getSentMessageByID"):
        assert (await c(name, hid=msgid))["sentMessage"][0]["ackData"] == ack
    assert msgid in rows_by(await c("getAllSentMessages"), "sentMessages", "msgid")
    for name in ("getSentMessagesByAddress", "getSentMessagesBySender"):
        assert rows_by(await c(name, fromAddress=me), "sentMessages", "ackData")[ack]["subject"] == TEXT
    for name in ("getAllSentMessageIds", "getAllSentMessageIDs"):
        assert {"msgid": msgid} in (await c(name))["sentMessageIds"]
    cast = await c("sendBroadcast", fromAddress=me, subject=TEXT, message=TEXT)
    assert await c("getStatus", ackdata=cast) == "broadcastqueued"
    inbound = node.deliver(me, peer, TEXT, TEXT + " body")
    assert rows_by(await c("getAllInboxMessages"), "inboxMessages", "msgid")[inbound]["subject"] == TEXT
    for name in ("getInboxMessagesByReceiver", "getInboxMessagesByAddress"):
        assert rows_by(await c(name, toAddress=me), "inboxMessages", "msgid")[inbound]["message"] == TEXT + " body"
    for name in ("getAllInboxMessageIds", "getAllInboxMessageIDs"):
        assert {"msgid": inbound} in (await c(name))["inboxMessageIds"]
    for name, read in (("getInboxMessageById", True), ("getInboxMessageByID", False)):
        row = (await c(name, hid=inbound, readStatus=read))["inboxMessage"][0]
        assert row["fromAddress"] == peer and node.state.inbox[-1].read is read
    await _trash_commands(c, inbound, msgid, cast)


async def _trash_commands(c: Call, inbound: str, msgid: str, cast: str) -> None:
    assert await c("trashInboxMessage", msgid=inbound) == "Trashed inbox message (assuming message existed)."
    assert (await c("getAllInboxMessageIds"))["inboxMessageIds"] == []
    assert await c("trashMessage", msgid=msgid) == "Trashed message (assuming message existed)."
    assert await c("trashSentMessage", msgid=msgid) == "Trashed sent message (assuming message existed)."
    assert await c("trashSentMessageByAckData", ackdata=cast) == "Trashed sent message (assuming message existed)."
    assert (await c("getAllSentMessageIds"))["sentMessageIds"] == []
    assert await c("deleteAndVacuum") == "done"
    assert await c("getSentMessageById", hid=msgid) is None
    assert await c("getInboxMessageById", hid=inbound) is None


async def _object_commands(c: Call, node: BitmessageDouble) -> None:
    first = await c("disseminatePreEncryptedMsg", encryptedPayload=object_payload())
    second = await c(
        "disseminatePreparedObject",
        encryptedPayload=object_payload(body=b"other"),
        requiredAverageProofOfWorkNonceTrialsPerByte=1000,
        requiredPayloadLengthExtraBytes=1000,
    )
    assert {bytes.fromhex(first), bytes.fromhex(second)} <= set(node.state.inventory)
    assert await c("disseminatePubkey", payload="00" * 40) is None
    assert len(node.state.inventory) == 3
    for name in ("getMessageDataByDestinationHash", "getMessageDataByDestinationTag"):
        assert await c(name, requestedHash="ab" * 16) == {"receivedMessageDatas": []}
