"""A test double of a PyBitmessage node's API, for the Bitmessage adapter's tests only.

PyBitmessage is in no package registry this project reaches, so the adapter is tested against this
in-process aiohttp server instead. It copies PyBitmessage 0.6.3.2 (the v0.6 branch of
github.com/Bitmessage/PyBitmessage), as documented in shared/seeds/pybitmessage-api.txt and as its
sources do it (read, not copied; each behaviour names its file below), checked against that node:

* transport (src/api.py, singleAPI and BMXMLRPCRequestHandler): one HTTP endpoint (paths ``/``
  and ``/RPC2``, anything else is 404), one request served at a time (SimpleXMLRPCServer's
  handle_request in a loop: a second caller waits until the first is answered), HTTP Basic auth
  checked on every POST (missing or wrong credentials: 401 with an empty body after
  ``auth_delay``, 2 s as the node's time.sleep(2) in do_POST, twice that without a header, which
  APIAuthenticateClient sleeps too; an unparseable header: 500). Tests may shorten the delays;
  ``address_delay`` is the time one deterministic address takes (0.4 s, measured on the node:
  10 addresses in 4 s);
* ``apivariant``: ``xml`` (XML-RPC; an APIError is an XML-RPC fault whose faultCode is the error
  number; a ``None`` result cannot be marshalled and becomes fault 1), ``json`` (jsonrpclib's
  server: APIErrors are wrapped into -32603 errors whose message is ``"<class 'api.APIError'>:API
  Error 00NN: ..."`` with a null id; an object ``params`` is spread as its keys, so named arguments
  do not work), ``legacy`` (XML-RPC where every result that is not an int or a string is a JSON
  string, and errors are returned as the string ``"API Error 00NN: ..."`` instead of a fault;
  legacy-only aliases such as ``listAddressbook`` exist only there);
* the commands of the seed's list and of the source (``enableAddress``, ``listConnections``), with
  their parameter names, defaults, base64 fields (labels, passphrases, subjects, messages), hex ids
  and the APIError numbers 0000-0027 with the node's message texts, checked in the node's order;
  a TypeError inside a command is turned into 0000 or 0021 as src/api.py _handle_request does
  (so a sendMessage to a mistyped toAddress, whose ackdata helper_sent.insert leaves None, answers
  "0000: Command sendMessage takes at least 5 parameters (4 given)", and with legacy's wrapper
  "takes at most 0 parameters");
* the inbox's receivedTime is a string (src/class_sqlThread.py: the inbox's ``received`` column is
  text), the sent rows' lastActionTime an integer;
* sent messages move through the statuses src/class_singleWorker.py (sendMsg, requestPubKey),
  src/class_objectProcessor.py (a pubkey or an ack arrives), src/class_singleCleaner.py (resendMsg,
  resendPubkeyRequest) and bitmessageqt (the user forces a too difficult PoW) give them, one step
  per ``advance_sent``; the route depends on what the node knows of the recipient (``peer``):
  to one of its own addresses msgqueued, doingmsgpow, msgsentnoackexpected (and a copy in its own
  inbox); pubkey unknown msgqueued, doingpubkeypow, awaitingpubkey, doingmsgpow, msgsent,
  ackreceived; a demand above its maximum difficulty toodifficult (``force_pow``: forcepow, then
  msgsent); a recipient that sends no acks msgsentnoackexpected; a failed encryption badkey;
  ``resend`` is the cleaner's resend (msgsent or awaitingpubkey back to msgqueued);
* Bitmessage addresses: base58 of varint version + varint stream + ripe + 4 checksum bytes of a
  double SHA-512, decoded with the node's statuses (checksum, characters, version, varint...).

What it does not copy: no real cryptography or proof of work (addresses are derived from hashes,
disseminated objects are stored as given), no peers, no clock for the worker and cleaner threads.
The test controls what the network would do: ``deliver`` puts a message into the inbox,
``advance_sent``/``resend``/``force_pow`` move sent messages on, ``set_network`` changes the
connection count, ``stop``/``start`` take the node away and back with its state kept.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import inspect
import json
import os
import re
import socket
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.listening import stop_accepting

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BROADCAST_TO = "[Broadcast subscribers]"
ANNOUNCEMENTS = "BM-GtovgYdgs7qXPkoYaRgrLFuFKz1SFpsw"  # the subscription a fresh node has
SOFTWARE_VERSION = "0.6.3.2"
MAX_MESSAGE = 2**18 - 500
AUTH_DELAY = 2.0  # src/api.py do_POST: time.sleep(2) before each 401 (and 2 s more without a header)
ADDRESS_DELAY = 0.4  # seconds per deterministic address, measured on the node (idle: 10 in 4 s; loaded: 1.2 s each)
# src/api.py HandleSendMessage: helper_sent.insert returns None for an undecodable toAddress
NONE_ACKDATA = "b2a_hex() argument 1 must be string or buffer, not None"


# --- the address format ------------------------------------------------------------------------


class VarintError(ValueError):
    """A varint that is truncated or not minimally encoded (the node calls it malformed)."""


def encode_varint(value: int) -> bytes:
    if value < 253:
        return bytes([value])
    if value < 1 << 16:
        return b"\xfd" + value.to_bytes(2, "big")
    if value < 1 << 32:
        return b"\xfe" + value.to_bytes(4, "big")
    return b"\xff" + value.to_bytes(8, "big")


def decode_varint(data: bytes) -> tuple[int, int]:
    """Return (value, size); the node rejects non-minimal encodings as malformed."""
    if not data:
        return 0, 0
    sizes = {253: (2, 253), 254: (4, 1 << 16), 255: (8, 1 << 32)}
    if data[0] not in sizes:
        return data[0], 1
    width, minimum = sizes[data[0]]
    if len(data) < width + 1:
        raise VarintError(f"varint needs {width + 1} bytes, has {len(data)}")
    value = int.from_bytes(data[1 : width + 1], "big")
    if value < minimum:
        raise VarintError("varint is not minimally encoded")
    return value, width + 1


def double_sha512(data: bytes) -> bytes:
    return hashlib.sha512(hashlib.sha512(data).digest()).digest()


def b58encode(raw: bytes) -> str:
    num, out = int.from_bytes(raw, "big"), ""
    while num:
        num, rem = divmod(num, 58)
        out = ALPHABET[rem] + out
    return out or ALPHABET[0]


def encode_address(version: int, stream: int, ripe: bytes) -> str:
    """The node's encoding: v4 strips all leading zero bytes of the ripe, v2/v3 at most two."""
    if version == 4:
        ripe = ripe.lstrip(b"\x00")
    elif ripe[:2] == b"\x00\x00":
        ripe = ripe[2:]
    elif ripe[:1] == b"\x00":
        ripe = ripe[1:]
    data = encode_varint(version) + encode_varint(stream) + ripe
    return "BM-" + b58encode(data + double_sha512(data)[:4])


def decode_address(address: str) -> tuple[str, int, int, bytes]:
    """(status, version, stream, 20-byte ripe) with the node's status words."""
    text = str(address).strip()
    text = text[3:] if text.startswith("BM-") else text
    num = 0
    for char in text:
        if char not in ALPHABET:
            return "invalidcharacters", 0, 0, b""
        num = num * 58 + ALPHABET.index(char)
    if num == 0:
        return "invalidcharacters", 0, 0, b""
    data = num.to_bytes((num.bit_length() + 7) // 8, "big")
    if double_sha512(data[:-4])[:4] != data[-4:]:
        return "checksumfailed", 0, 0, b""
    try:
        version, used = decode_varint(data[:9])
        if version == 0 or version > 4:
            return "versiontoohigh", 0, 0, b""
        stream, used_stream = decode_varint(data[used:])
    except VarintError:
        return "varintmalformed", 0, 0, b""
    ripe = data[used + used_stream : -4]
    if version == 1:
        return "success", 1, stream, data[-24:-4]
    if version == 4 and ripe[:1] == b"\x00":
        return "encodingproblem", 0, 0, b""
    low = 4 if version == 4 else 18
    if len(ripe) < low:
        return "ripetooshort", 0, 0, b""
    if len(ripe) > 20:
        return "ripetoolong", 0, 0, b""
    return "success", version, stream, ripe.rjust(20, b"\x00")


def add_bm(address: str) -> str:
    text = str(address).strip()
    return text if text.startswith("BM-") else "BM-" + text


def ripe_from(seed: bytes) -> bytes:
    """A stand-in for RIPEMD-160(SHA-512(keys)): the double has no keys, only a stable 20-byte hash."""
    ripe = hashlib.sha512(seed).digest()[:20]
    return b"\x01" + ripe[1:] if ripe[0] == 0 else ripe


# --- errors ------------------------------------------------------------------------------------


class APIError(Exception):
    """The node's numbered error: an XML-RPC fault whose code is the number."""

    def __init__(self, number: int, text: str) -> None:
        super().__init__(text)
        self.number = number
        self.text = text

    def __str__(self) -> str:
        return f"API Error {self.number:04d}: {self.text}"


def command(*names: str) -> Callable[[Callable], Callable]:
    def mark(func: Callable) -> Callable:
        func._commands = names  # type: ignore[attr-defined]
        return func

    return mark


def unb64(text: Any) -> bytes:
    try:
        return base64.b64decode(text)
    except Exception as exc:
        raise APIError(22, f"Decode error - {exc}. Had trouble while decoding string: {text!r}") from exc


def unhex(text: Any) -> bytes:
    try:
        return binascii.unhexlify(text)
    except Exception as exc:
        raise APIError(22, f"Decode error - {exc}. Had trouble while decoding string: {text!r}") from exc


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def text_of(data: bytes) -> bytes:
    """The node re-encodes stored bytes that are not valid UTF-8 before answering."""
    return data.decode("utf-8", "replace").encode("utf-8")


@dataclass
class Identity:
    label: bytes
    enabled: bool = True
    chan: bool = False


@dataclass
class Message:
    msgid: bytes
    to_address: str
    from_address: str
    subject: bytes
    message: bytes
    encoding: int
    when: int
    folder: str = "inbox"
    read: bool = False
    status: str = ""
    ackdata: bytes = b""
    route: list[str] = field(default_factory=list)  # the statuses still to come, one per advance_sent


@dataclass
class Peer:
    """What the node knows of a remote address: whether it has its pubkey, and what the pubkey says."""

    pubkey: bool = False
    acks: bool = True  # the pubkey's behaviour bitfield has DOESACK (protocol.BITFIELD_DOESACK)
    too_difficult: bool = False  # it demands more than maxacceptablenoncetrialsperbyte
    bad_key: bool = False  # highlevelcrypto.encrypt fails on it


@dataclass
class NodeState:
    """Everything a node keeps in keys.dat and messages.dat; it survives stop()/start()."""

    identities: dict[str, Identity] = field(default_factory=dict)
    addressbook: list[tuple[bytes, str]] = field(default_factory=list)
    subscriptions: list[tuple[bytes, str, bool]] = field(
        default_factory=lambda: [(b"Bitmessage new releases/announcements", ANNOUNCEMENTS, True)]
    )
    inbox: list[Message] = field(default_factory=list)
    sent: list[Message] = field(default_factory=list)
    inventory: dict[bytes, tuple[int, int, bytes, int, bytes]] = field(default_factory=dict)
    peers: dict[str, Peer] = field(default_factory=dict)
    connections: int = 0
    incoming: bool = False
    status_bar: str = ""
    processed: int = 0


# --- the commands ------------------------------------------------------------------------------


class Dispatcher:
    """The node's command table for one apivariant, and the commands themselves."""

    def __init__(self, state: NodeState, variant: str, without: tuple[str, ...] = ()) -> None:
        self.state = state
        self.variant = variant
        self.method = ""
        self.shutdown_requested = False
        self.work = 0.0  # seconds the last command keeps the node busy before it answers
        self.address_delay = ADDRESS_DELAY
        self.handlers: dict[str, Callable] = {}
        for _, func in inspect.getmembers(self, predicate=inspect.ismethod):
            for name in getattr(func, "_commands", ()):
                prefix, _, alias = name.rpartition(":")
                if (not prefix or prefix == variant) and alias not in without:
                    self.handlers[alias] = func

    def dispatch(self, method: str, params: list[Any]) -> Any:
        """Run one command; any failure becomes an APIError, as in the node's _dispatch."""
        self.method = method
        self.work = 0.0
        func = self.handlers.get(method)
        if func is None:
            raise APIError(20, f"Invalid method: {method}")
        try:
            inspect.signature(func).bind(*params)  # Python 2 raises this TypeError on the call itself
            return func(*params)
        except APIError:
            raise
        except TypeError as exc:
            raise self._type_error(method, func, len(params), exc) from exc
        except VarintError as exc:
            raise APIError(26, f"Data contains a malformed varint. Some details: {exc}") from exc
        except Exception as exc:
            raise APIError(21, f"Unexpected API Failure - {exc}") from exc

    def _type_error(self, method: str, func: Callable, given: int, exc: TypeError) -> APIError:
        """src/api.py _handle_request: any TypeError mentioning an argument is 0000, worded by counts.

        The counts come from the handler's code object, `self` included; legacy's wrapper(*args)
        has none, so there every such error "takes at most 0 parameters".
        """
        message = f"Unexpected API Failure - {exc}"
        if "argument" not in str(exc):
            return APIError(21, message)
        params = inspect.signature(func).parameters.values()
        most = 0 if self.variant == "legacy" else len(params) + 1
        least = 0 if self.variant == "legacy" else most - sum(1 for p in params if p.default is not p.empty)
        if given > most:
            message = f"Command {method} takes at most {most} parameters ({given} given)"
        elif given < least:
            message = f"Command {method} takes at least {least} parameters ({given} given)"
        return APIError(0, message)

    # addresses

    def verify(self, address: str) -> tuple[str, int, int, bytes]:
        status, version, stream, ripe = decode_address(address)
        if status != "success":
            simple = {"checksumfailed": (8, "Checksum failed for address: "),
                      "invalidcharacters": (9, "Invalid characters in address: "),
                      "versiontoohigh": (10, "Address version number too high (or zero) in address: "),
                      "varintmalformed": (26, "Malformed varint in address: ")}  # fmt: skip
            if status in simple:
                number, text = simple[status]
                raise APIError(number, text + address)
            raise APIError(7, f"Could not decode address: {address} : {status}")
        if not 2 <= version <= 4:
            raise APIError(
                11,
                "The address version number currently must be 2, 3 or 4. Others aren't supported. Check the address.",
            )
        if stream != 1:
            raise APIError(12, "The stream number must be 1. Others aren't supported. Check the address.")
        return status, version, stream, ripe

    @command("decodeAddress")
    def decode(self, address: str) -> dict:
        status, version, stream, ripe = self.verify(address)
        return {"status": status, "addressVersion": version, "streamNumber": stream, "ripe": b64(ripe)}

    @command("listAddresses", "listAddresses2")
    def list_addresses(self) -> dict:
        rows = []
        for address, ident in self.state.identities.items():
            label = b64(ident.label) if self.method == "listAddresses2" else ident.label.decode("utf-8", "replace")
            rows.append({"label": label, "address": address, "stream": 1, "enabled": ident.enabled, "chan": ident.chan})
        return {"addresses": rows}

    @command("listAddressBookEntries", "legacy:listAddressbook")
    def list_addressbook(self, label: Any = None) -> dict:
        wanted = label.encode("utf-8") if isinstance(label, str) else label
        rows = [(lab, addr) for lab, addr in self.state.addressbook if not label or lab == wanted]
        return {"addresses": [{"label": b64(text_of(lab)), "address": addr} for lab, addr in rows]}

    @command("addAddressBookEntry", "legacy:addAddressbook")
    def add_addressbook(self, address: str, label: str) -> str:
        raw = unb64(label)
        address = add_bm(address)
        self.verify(address)
        if any(addr == address for _, addr in self.state.addressbook):
            raise APIError(16, "You already have this address in your address book.")
        self.state.addressbook.append((raw, address))
        return f"Added address {address} to address book"

    @command("deleteAddressBookEntry", "legacy:deleteAddressbook")
    def delete_addressbook(self, address: str) -> str:
        address = add_bm(address)
        self.verify(address)
        self.state.addressbook = [(lab, addr) for lab, addr in self.state.addressbook if addr != address]
        return f"Deleted address book entry for {address} if it existed"

    @command("createRandomAddress")
    def create_random(
        self, label: str, eighteenByteRipe: Any = False, totalDifficulty: int = 0, smallMessageDifficulty: int = 0
    ) -> str:
        if not isinstance(eighteenByteRipe, bool):
            raise APIError(23, f"Bool expected in eighteenByteRipe, saw {type(eighteenByteRipe)} instead")
        raw = unb64(label)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise APIError(17, "Label is not valid UTF-8 data.") from exc
        address = encode_address(4, 1, ripe_from(os.urandom(32)))
        self.state.identities[address] = Identity(label=raw)
        return address

    @staticmethod
    def _derive(passphrase: bytes, version: int, index: int = 0) -> str:
        return encode_address(version, 1, ripe_from(passphrase + index.to_bytes(4, "big")))

    @command("createDeterministicAddresses")
    def create_deterministic(
        self,
        passphrase: str,
        numberOfAddresses: int = 1,
        addressVersionNumber: int = 0,
        streamNumber: int = 0,
        eighteenByteRipe: Any = False,
        totalDifficulty: int = 0,
        smallMessageDifficulty: int = 0,
    ) -> dict:
        if not passphrase:
            raise APIError(1, "The specified passphrase is blank.")
        if not isinstance(eighteenByteRipe, bool):
            raise APIError(23, f"Bool expected in eighteenByteRipe, saw {type(eighteenByteRipe)} instead")
        raw = unb64(passphrase)
        version = addressVersionNumber or 4
        if version not in (3, 4):
            raise APIError(
                2, f"The address version number currently must be 3, 4, or 0 (which means auto-select). "
                f"{version} isn't supported."
            )  # fmt: skip
        if (streamNumber or 1) != 1:
            raise APIError(3, "The stream number must be 1 (or 0 which means auto-select). Others aren't supported.")
        if numberOfAddresses == 0:
            raise APIError(4, "Why would you ask me to generate 0 addresses for you?")
        if numberOfAddresses > 999:
            raise APIError(5, TOO_MANY)
        made = [self._derive(raw, version, i) for i in range(numberOfAddresses)]
        self.work = numberOfAddresses * self.address_delay
        for address in made:
            self.state.identities.setdefault(address, Identity(label=b"unused API address"))
        return {"addresses": made}

    @command("getDeterministicAddress")
    def get_deterministic(self, passphrase: str, addressVersionNumber: int, streamNumber: int) -> str:
        if not passphrase:
            raise APIError(1, "The specified passphrase is blank.")
        raw = unb64(passphrase)
        if addressVersionNumber not in (3, 4):
            raise APIError(
                2, f"The address version number currently must be 3 or 4. {addressVersionNumber} isn't supported."
            )
        if streamNumber != 1:
            raise APIError(3, " The stream number must be 1. Others aren't supported.")
        return self._derive(raw, addressVersionNumber)

    @staticmethod
    def _chan_label(raw: bytes) -> bytes:
        try:
            return b"[chan] " + raw.decode("utf-8").encode("utf-8")
        except UnicodeDecodeError:
            return b"[chan] " + repr(raw).encode()

    @command("createChan")
    def create_chan(self, passphrase: str) -> str:
        raw = unb64(passphrase)
        if not raw:
            raise APIError(1, "The specified passphrase is blank.")
        address = self._derive(raw, 4)
        if address in self.state.identities:
            raise APIError(24, "Chan address is already present.")
        self.state.identities[address] = Identity(label=self._chan_label(raw), chan=True)
        return address

    @command("joinChan")
    def join_chan(self, passphrase: str, suppliedAddress: str) -> str:
        raw = unb64(passphrase)
        if not raw:
            raise APIError(1, "The specified passphrase is blank.")
        _, version, _, _ = self.verify(suppliedAddress)
        address = add_bm(suppliedAddress)
        if self._derive(raw, version) != address:
            raise APIError(18, "Chan name does not match address.")
        if address in self.state.identities:
            raise APIError(24, "Chan address is already present.")
        self.state.identities[address] = Identity(label=self._chan_label(raw), chan=True)
        return "success"

    @command("leaveChan")
    def leave_chan(self, address: str) -> str:
        self.verify(address)
        address = add_bm(address)
        ident = self.state.identities.get(address)
        if ident is None or not ident.chan:
            raise APIError(25, "Specified address is not a chan address. Use deleteAddress API call instead.")
        del self.state.identities[address]
        return "success"

    @command("deleteAddress")
    def delete_address(self, address: str) -> str:
        self.verify(address)
        # src/api.py HandleDeleteAddress catches NoSectionError, but Python 2's remove_section
        # returns False instead of raising it: an address the node lacks is "deleted" too.
        self.state.identities.pop(add_bm(address), None)
        return "success"

    @command("enableAddress")
    def enable_address(self, address: str, enable: bool = True) -> str:
        self.verify(address)
        address = add_bm(address)
        if address not in self.state.identities:
            raise KeyError(f"No section: {address!r}")  # the config parser's failure, reported as 0021
        self.state.identities[address].enabled = bool(enable)
        return "success"

    # messages

    @staticmethod
    def _inbox_row(msg: Message) -> dict:
        return {"msgid": msg.msgid.hex(), "toAddress": msg.to_address, "fromAddress": msg.from_address,
                "subject": b64(text_of(msg.subject)), "message": b64(text_of(msg.message)),
                "encodingType": msg.encoding, "receivedTime": str(msg.when), "read": int(msg.read)}  # fmt: skip

    @staticmethod
    def _sent_row(msg: Message) -> dict:
        return {"msgid": msg.msgid.hex(), "toAddress": msg.to_address, "fromAddress": msg.from_address,
                "subject": b64(text_of(msg.subject)), "message": b64(text_of(msg.message)),
                "encodingType": msg.encoding, "lastActionTime": msg.when, "status": msg.status,
                "ackData": msg.ackdata.hex()}  # fmt: skip

    def _inbox(self) -> list[Message]:
        return sorted((m for m in self.state.inbox if m.folder == "inbox"), key=lambda m: m.when)

    def _sent(self) -> list[Message]:
        return sorted((m for m in self.state.sent if m.folder == "sent"), key=lambda m: m.when)

    @command("getAllInboxMessages")
    def all_inbox(self) -> dict:
        return {"inboxMessages": [self._inbox_row(m) for m in self._inbox()]}

    @command("getAllInboxMessageIds", "getAllInboxMessageIDs")
    def all_inbox_ids(self) -> dict:
        return {"inboxMessageIds": [{"msgid": m.msgid.hex()} for m in self._inbox()]}

    @command("getInboxMessageById", "getInboxMessageByID")
    def inbox_by_id(self, hid: str, readStatus: Any = None) -> dict | None:
        msgid = unhex(hid)
        found = [m for m in self.state.inbox if m.msgid == msgid]
        if readStatus is not None:
            if not isinstance(readStatus, bool):
                raise APIError(23, f"Bool expected in readStatus, saw {type(readStatus)} instead.")
            for msg in found:
                msg.read = readStatus
        return {"inboxMessage": [self._inbox_row(found[0])]} if found else None

    @command("getAllSentMessages")
    def all_sent(self) -> dict:
        return {"sentMessages": [self._sent_row(m) for m in self._sent()]}

    @command("getAllSentMessageIds", "getAllSentMessageIDs")
    def all_sent_ids(self) -> dict:
        return {"sentMessageIds": [{"msgid": m.msgid.hex()} for m in self._sent()]}

    @command("getInboxMessagesByReceiver", "legacy:getInboxMessagesByAddress")
    def inbox_by_receiver(self, toAddress: str) -> dict:
        rows = [m for m in self.state.inbox if m.folder == "inbox" and m.to_address == toAddress]
        return {"inboxMessages": [self._inbox_row(m) for m in rows]}

    @command("getSentMessageById", "getSentMessageByID")
    def sent_by_id(self, hid: str) -> dict | None:
        msgid = unhex(hid)
        found = [m for m in self.state.sent if m.msgid == msgid]
        return {"sentMessage": [self._sent_row(found[0])]} if found else None

    @command("getSentMessagesByAddress", "getSentMessagesBySender")
    def sent_by_address(self, fromAddress: str) -> dict:
        return {"sentMessages": [self._sent_row(m) for m in self._sent() if m.from_address == fromAddress]}

    @command("getSentMessageByAckData")
    def sent_by_ackdata(self, ackData: str) -> dict | None:
        raw = unhex(ackData)
        found = [m for m in self.state.sent if m.ackdata == raw]
        return {"sentMessage": [self._sent_row(found[0])]} if found else None

    def _trash(self, box: list[Message], attr: str, value: bytes) -> None:
        for msg in box:
            if getattr(msg, attr) == value:
                msg.folder = "trash"

    @command("trashMessage")
    def trash_message(self, msgid: str) -> str:
        raw = unhex(msgid)
        self._trash(self.state.inbox, "msgid", raw)
        self._trash(self.state.sent, "msgid", raw)
        return "Trashed message (assuming message existed)."

    @command("trashInboxMessage")
    def trash_inbox(self, msgid: str) -> str:
        self._trash(self.state.inbox, "msgid", unhex(msgid))
        return "Trashed inbox message (assuming message existed)."

    @command("trashSentMessage")
    def trash_sent(self, msgid: str) -> str:
        self._trash(self.state.sent, "msgid", unhex(msgid))
        return "Trashed sent message (assuming message existed)."

    @command("trashSentMessageByAckData")
    def trash_sent_ackdata(self, ackdata: str) -> str:
        self._trash(self.state.sent, "ackdata", unhex(ackdata))
        return "Trashed sent message (assuming message existed)."

    def _check_outgoing(self, fromAddress: str, subject: str, message: str, encodingType: Any) -> tuple:
        if encodingType not in (2, 3):
            raise APIError(6, "The encoding type must be 2 or 3.")
        subject_raw, message_raw = unb64(subject), unb64(message)
        if len(subject_raw + message_raw) > MAX_MESSAGE:
            raise APIError(27, "Message is too long.")
        fromAddress = add_bm(fromAddress)
        self.verify(fromAddress)
        ident = self.state.identities.get(fromAddress)
        if ident is None:
            raise APIError(13, "Could not find your fromAddress in the keys.dat file.")
        if not ident.enabled:
            raise APIError(14, "Your fromAddress is disabled. Cannot send.")
        return fromAddress, subject_raw, message_raw

    def _store_sent(self, to: str, sender: str, subject: bytes, message: bytes, encoding: int, status: str) -> str:
        msg = Message(os.urandom(16), to, sender, subject, message, encoding, int(time.time()),
                      folder="sent", status=status, ackdata=os.urandom(38), route=self.route(to))  # fmt: skip
        self.state.sent.append(msg)
        return msg.ackdata.hex()

    def route(self, to: str) -> list[str]:
        """The statuses a message to `to` will go through after its first (see the module's docstring)."""
        if to == BROADCAST_TO:
            return ["doingbroadcastpow", "broadcastsent"]
        if to in self.state.identities:  # sendMsg: config.has_section(toaddress), no ack expected
            return ["doingmsgpow", "msgsentnoackexpected"]
        peer = self.state.peers.get(to, Peer())
        fetch = [] if peer.pubkey else ["doingpubkeypow", "awaitingpubkey"]
        return [*fetch, "doingmsgpow", *self.pow_outcome(peer)]

    @staticmethod
    def pow_outcome(peer: Peer, forced: bool = False) -> list[str]:
        if peer.too_difficult and not forced:
            return ["toodifficult"]
        if peer.bad_key:
            return ["badkey"]
        return ["msgsent", "ackreceived"] if peer.acks else ["msgsentnoackexpected"]

    @command("sendMessage")
    def send_message(
        self, toAddress: str, fromAddress: str, subject: str, message: str, encodingType: Any = 2, TTL: int = 345600
    ) -> str:
        sender, subject_raw, message_raw = self._check_outgoing(fromAddress, subject, message, encodingType)
        toAddress = add_bm(toAddress)
        if decode_address(toAddress)[0] != "success":
            # helper_sent.insert stores nothing and returns None, which hexlify refuses.
            raise TypeError(NONE_ACKDATA)
        return self._store_sent(toAddress, sender, subject_raw, message_raw, encodingType, "msgqueued")

    @command("sendBroadcast")
    def send_broadcast(
        self, fromAddress: str, subject: str, message: str, encodingType: Any = 2, TTL: int = 345600
    ) -> str:
        sender, subject_raw, message_raw = self._check_outgoing(fromAddress, subject, message, encodingType)
        return self._store_sent(BROADCAST_TO, sender, subject_raw, message_raw, encodingType, "broadcastqueued")

    @command("getStatus")
    def get_status(self, ackdata: str) -> str:
        if len(ackdata) < 76:
            raise APIError(15, "Invalid ackData object size.")
        raw = unhex(ackdata)
        return next((m.status for m in self.state.sent if m.ackdata == raw), "notfound")

    # subscriptions

    @command("addSubscription")
    def add_subscription(self, address: str, label: str = "") -> str:
        raw = b""
        if label:
            raw = unb64(label)
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise APIError(17, "Label is not valid UTF-8 data.") from exc
        self.verify(address)
        address = add_bm(address)
        if any(addr == address for _, addr, _ in self.state.subscriptions):
            raise APIError(16, "You are already subscribed to that address.")
        self.state.subscriptions.append((raw, address, True))
        return "Added subscription."

    @command("deleteSubscription")
    def delete_subscription(self, address: str) -> str:
        address = add_bm(address)
        self.state.subscriptions = [s for s in self.state.subscriptions if s[1] != address]
        return "Deleted subscription if it existed."

    @command("listSubscriptions")
    def list_subscriptions(self) -> dict:
        return {"subscriptions": [{"label": b64(text_of(lab)), "address": addr, "enabled": on}
                                  for lab, addr, on in self.state.subscriptions]}  # fmt: skip

    # objects

    @command("disseminatePreEncryptedMsg", "disseminatePreparedObject")
    def disseminate_msg(
        self, encryptedPayload: str, nonceTrialsPerByte: int = 1000, payloadLengthExtraBytes: int = 1000
    ) -> str:
        payload = unhex(encryptedPayload)
        expires = int.from_bytes(payload[8:16], "big")
        object_type = int.from_bytes(payload[16:20], "big")
        _, used = decode_varint(payload[20:29])
        stream, _ = decode_varint(payload[20 + used : 29 + used])
        if payload[:8] == b"\x00" * 8:  # the node would do the proof of work here; the double fakes a nonce
            payload = b"\x00" * 7 + b"\x01" + payload[8:]
        inv_hash = double_sha512(payload)[:32]
        self.state.inventory[inv_hash] = (object_type, stream, payload, expires, b"")
        return inv_hash.hex()

    @command("disseminatePubkey")
    def disseminate_pubkey(self, payload: str) -> None:
        raw = b"\x00" * 7 + b"\x01" + unhex(payload)
        self.state.inventory[double_sha512(raw)[:32]] = (1, 1, raw, int(time.time()) + 28 * 86400, b"")
        return None  # the node's handler returns nothing

    @command("getMessageDataByDestinationHash", "getMessageDataByDestinationTag")
    def message_data(self, requestedHash: str) -> dict:
        if len(requestedHash) != 32:  # the node checks the hex string's length against 32
            raise APIError(19, "The length of hash should be 32 bytes (encoded in hex thus 64 characters).")
        tag = unhex(requestedHash)
        found = [p for kind, _, p, _, t in self.state.inventory.values() if kind == 2 and t == tag]
        return {"receivedMessageDatas": [{"data": p.hex()} for p in found]}

    # node

    def network_status(self) -> str:
        if self.state.connections == 0:
            return "notConnected"
        if self.state.incoming:
            return "connectedAndReceivingIncomingConnections"
        return "connectedButHaveNotReceivedIncomingConnections"

    @command("clientStatus")
    def client_status(self) -> dict:
        return {"networkConnections": self.state.connections, "numberOfMessagesProcessed": self.state.processed,
                "numberOfBroadcastsProcessed": 0, "numberOfPubkeysProcessed": 0, "pendingDownload": 0,
                "networkStatus": self.network_status(), "softwareName": "PyBitmessage",
                "softwareVersion": SOFTWARE_VERSION}  # fmt: skip

    @command("listConnections")
    def list_connections(self) -> dict:
        agent = f"/PyBitmessage:{SOFTWARE_VERSION}/"
        peers = [
            {"host": f"127.0.0.{i + 2}", "port": 8444, "fullyEstablished": True, "userAgent": agent}
            for i in range(self.state.connections)
        ]
        return {"inbound": [], "outbound": peers}

    @command("helloWorld")
    def hello_world(self, a: Any, b: Any) -> Any:
        return a + "-" + b

    @command("add")
    def add(self, a: Any, b: Any) -> Any:
        return a + b

    @command("statusBar")
    def status_bar(self, message: str) -> str:
        self.state.status_bar = message
        return "success"

    @command("deleteAndVacuum")
    def delete_and_vacuum(self) -> str:
        self.state.inbox = [m for m in self.state.inbox if m.folder != "trash"]
        self.state.sent = [m for m in self.state.sent if m.folder != "trash"]
        return "done"

    @command("shutdown")
    def shutdown(self) -> str:
        self.shutdown_requested = True
        return "done"


TOO_MANY = (
    "You have (accidentally?) specified too many addresses to make. Maximum 999. This check only exists to "
    "prevent mischief; if you really want to create more addresses than this, contact the Bitmessage developers "
    "and we can modify the check or you can do it yourself by searching the source code for this message."
)


# --- the transports ----------------------------------------------------------------------------


def xml_fault(code: int, text: str) -> str:
    return xmlrpc.client.dumps(xmlrpc.client.Fault(code, text), methodresponse=True, encoding="UTF-8")


def exc_repr(exc: BaseException) -> str:
    """How Python 2's servers format an unexpected exception: "<type 'exceptions.X'>:message"."""
    name = type(exc).__name__
    qual = f"exceptions.{name}" if type(exc).__module__ == "builtins" else f"{type(exc).__module__}.{name}"
    return f"<type '{qual}'>:{exc}"


class XMLTransport:
    """SimpleXMLRPCServer's marshalling (allow_none off), plus the legacy variant's string results."""

    content_type = "text/xml"

    def __init__(self, dispatcher: Dispatcher, legacy: bool) -> None:
        self.dispatcher = dispatcher
        self.legacy = legacy

    def handle(self, body: bytes) -> str:
        try:
            params, method = xmlrpc.client.loads(body)
        except Exception as exc:
            return xml_fault(1, exc_repr(exc))
        if method == "system.listMethods":
            return self._dump(sorted(self.dispatcher.handlers))
        try:
            result = self.dispatcher.dispatch(method, list(params))
        except APIError as exc:
            if self.legacy:
                return self._dump(str(exc))
            return xml_fault(exc.number, exc.text)
        if self.legacy and not isinstance(result, int | str):
            result = json.dumps(result, indent=4)
        return self._dump(result)

    @staticmethod
    def _dump(result: Any) -> str:
        try:
            return xmlrpc.client.dumps((result,), methodresponse=True, encoding="UTF-8")
        except Exception as exc:
            return xml_fault(1, exc_repr(exc))


class JSONTransport:
    """jsonrpclib's SimpleJSONRPCServer in front of the node's dispatcher."""

    content_type = "application/json-rpc"

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    @staticmethod
    def _error(code: int, message: str, rpcid: Any = None) -> dict:
        return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": rpcid}

    def handle(self, body: bytes) -> str:
        try:
            request = json.loads(body)
        except Exception as exc:
            return json.dumps(self._error(-32700, f"Request {body!r} invalid. ({exc})"))
        if not request:
            return json.dumps(self._error(-32600, "Request invalid -- no request data."))
        if isinstance(request, list):
            answers = [a for a in (self._single(r) for r in request) if a is not None]
            return json.dumps(answers) if answers else ""
        answer = self._single(request)
        return "" if answer is None else json.dumps(answer)

    def _single(self, request: Any) -> dict | None:
        if not isinstance(request, dict):
            return self._error(-32600, f"Request must be {{}}, not {type(request)}.")
        rpcid = request.get("id")
        if "jsonrpc" not in request and "id" not in request:
            return self._error(-32600, f"Request {request} invalid.", rpcid)
        method, params = request.get("method"), request.setdefault("params", [])
        if not method or not isinstance(method, str) or not isinstance(params, list | dict):
            return self._error(-32600, "Invalid request parameters or method.", rpcid)
        try:
            # The node spreads params positionally: an object's keys become the arguments.
            result = self.dispatcher.dispatch(method, list(params))
        except APIError as exc:
            return self._error(-32603, f"<class 'api.APIError'>:{exc}")
        if rpcid is None:
            return None
        return {"jsonrpc": "2.0", "result": result, "id": rpcid}


BASIC = re.compile(r"^\S+\s+(\S+)")


class BitmessageDouble:
    """A running node: `await start()`, use `url`, drive it with deliver/advance_sent/set_network."""

    def __init__(
        self,
        variant: str = "xml",
        username: str = "bmuser",
        password: str = "bmpass",
        auth_delay: float = AUTH_DELAY,
        without: tuple[str, ...] = (),
        address_delay: float = ADDRESS_DELAY,
    ) -> None:
        """`without`: commands this node lacks, as an older PyBitmessage release would.

        `auth_delay` and `address_delay` are the node's (see the module's docstring); tests that do
        not look at them make them 0.
        """
        if variant not in ("xml", "json", "legacy"):
            raise ValueError(f"unknown apivariant {variant!r}")
        self.variant = variant
        self.username = username
        self.password = password
        self.auth_delay = auth_delay
        self.state = NodeState()
        self.dispatcher = Dispatcher(self.state, variant, without)
        self.dispatcher.address_delay = address_delay
        self.requests = 0
        self.refused = 0
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._socket: socket.socket | None = None  # the listening socket while running
        self._serving = asyncio.Lock()  # the node's one API thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self, port: int = 0) -> BitmessageDouble:
        """Listen on `port` (the previous one after a stop, else a free one); state is kept."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port or self.port))
        listener.listen(128)
        await web.SockSite(self._runner, listener).start()
        self._socket = listener
        self.port = listener.getsockname()[1]
        return self

    async def stop(self) -> None:
        """Go away as a killed node does: the port refuses, and no connection is left open unanswered."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            if self._socket is not None:
                await stop_accepting([self._socket])
            self._socket = None
            await runner.cleanup()

    async def __aenter__(self) -> BitmessageDouble:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _authorized(self, header: str | None) -> bool:
        """The node's check; a header it cannot split raises, which it answers with a 500."""
        if header is None:
            return False
        encoded = BASIC.match(header)
        if encoded is None:
            raise ValueError("malformed Authorization header")
        user, password = base64.b64decode(encoded.group(1)).decode("utf-8").split(":")
        return user == self.username and password == self.password

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        async with self._serving:  # a caller that comes meanwhile waits, as at the node's backlog
            return await self._serve(request)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST" or request.path not in ("/", "/RPC2"):
            return web.Response(status=404 if request.method == "POST" else 501)
        self.requests += 1
        body = await request.read()
        header = request.headers.get("Authorization")
        try:
            authorized = self._authorized(header)
        except Exception:
            return web.Response(status=500)
        if not authorized:
            self.refused += 1
            await asyncio.sleep(self.auth_delay * (2 if header is None else 1))
            return web.Response(status=401)
        transport: XMLTransport | JSONTransport
        if self.variant == "json":
            transport = JSONTransport(self.dispatcher)
        else:
            transport = XMLTransport(self.dispatcher, legacy=self.variant == "legacy")
        text = transport.handle(body)
        await asyncio.sleep(self.dispatcher.work)
        response = web.Response(text=text, content_type=transport.content_type, headers={"Connection": "close"})
        if self.dispatcher.shutdown_requested:
            self.dispatcher.shutdown_requested = False
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.stop()))
        return response

    # --- what the network would do ---------------------------------------------------------------

    def add_identity(self, label: str = "", enabled: bool = True) -> str:
        address = encode_address(4, 1, ripe_from(os.urandom(32)))
        self.state.identities[address] = Identity(label=label.encode("utf-8"), enabled=enabled)
        return address

    def deliver(self, to_address: str, from_address: str, subject: str, message: str, encoding: int = 2) -> str:
        """A message arrives from the network; returns its msgid (hex)."""
        msg = Message(os.urandom(32), to_address, from_address, subject.encode("utf-8"), message.encode("utf-8"),
                      encoding, int(time.time()))  # fmt: skip
        self.state.inbox.append(msg)
        self.state.processed += 1
        return msg.msgid.hex()

    def peer(self, address: str, **known: bool) -> None:
        """What the node knows of a remote address from now on (Peer's fields), for messages sent after."""
        self.state.peers[address] = Peer(**known)

    def _sent(self, ackdata: str | None) -> list[Message]:
        return [m for m in self.state.sent if ackdata is None or m.ackdata.hex() == ackdata]

    def _set_status(self, msg: Message, status: str, route: list[str]) -> None:
        msg.status, msg.route, msg.when = status, route, int(time.time())
        if status == "msgsentnoackexpected" and msg.to_address in self.state.identities:
            # class_singleWorker.sendMsg puts a message to one of the node's own addresses in its inbox
            self.deliver(msg.to_address, msg.from_address, msg.subject.decode(), msg.message.decode(), msg.encoding)

    def advance_sent(self, ackdata: str | None = None) -> None:
        """Move sent messages (or the one with this ackdata) one status further along their route."""
        for msg in self._sent(ackdata):
            if msg.route:
                self._set_status(msg, msg.route[0], msg.route[1:])

    def resend(self, ackdata: str | None = None) -> None:
        """class_singleCleaner: no ack (msgsent) or no pubkey (awaitingpubkey) in time: msgqueued again."""
        for msg in self._sent(ackdata):
            peer = self.state.peers.get(msg.to_address, Peer())
            if msg.status == "msgsent":
                self._set_status(msg, "msgqueued", ["doingmsgpow", *self.dispatcher.pow_outcome(peer, forced=True)])
            elif msg.status == "awaitingpubkey":
                route = self.dispatcher.route(msg.to_address)
                if decode_address(msg.to_address)[1] >= 4:
                    # resendPubkeyRequest deletes neededPubkeys[address], but a v4 address is kept
                    # there by its tag: sendMsg finds the request "sent earlier" and sends none.
                    route = route[1:]
                self._set_status(msg, "msgqueued", route)

    def force_pow(self, ackdata: str) -> None:
        """The user sends a toodifficult message anyway (bitmessageqt sets forcepow; sendMsg does the work)."""
        for msg in self._sent(ackdata):
            if msg.status == "toodifficult":
                peer = self.state.peers.get(msg.to_address, Peer())
                self._set_status(msg, "forcepow", self.dispatcher.pow_outcome(peer, forced=True))

    def set_network(self, connections: int, incoming: bool = False) -> None:
        self.state.connections = connections
        self.state.incoming = incoming
