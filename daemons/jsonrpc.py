"""The extended JSON-RPC 2.0 protocol, as plain functions and no transport.

The daemons accept a superset of JSON-RPC 2.0 (see CONTRACT.md): a list of params whose last
element is an object carries named arguments too, and the named argument ``xpub`` is the wallet
identity rather than an argument of the method. Everything here works on already-decoded JSON
values, so it can be tested without a server and reused by any transport.
"""

from __future__ import annotations

import json
import json.encoder
import json.scanner
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# Error codes every daemon shares (CONTRACT.md, "Error codes every daemon shares").
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
WALLET_REQUIRED = -32000
WALLET_LOAD_FAILED = -32005

IDENTITY_FLAGS = ("diskless", "quiet_mode")
# The longest wallet key or key-like argument. Longer strings are refused before any parsing: base58
# decoding (what recognising an xpub or an address costs) grows with the square of the length and
# runs on the event loop. The longest real key (a 25-word Monero mnemonic in a wide script, a list of
# a few private keys) stays far below; 1,000 characters decode in about a millisecond.
MAX_KEY_LENGTH = 1000
# The JSON types an id may have (but bool), as a tuple: ``str | int | float`` in a call builds a new union per request.
ID_TYPES = (str, int, float)


class RPCError(Exception):
    """An error that reaches the client as a JSON-RPC error object with this code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class WalletIdentity:
    """Who a request speaks for: the ``xpub`` named argument, in either of its two forms.

    ``key`` is the main secret or public string (an xpub, a seed, a view key, an address, a miner's
    name); ``fields`` holds the other identity fields of the object form (for example the primary
    ``address`` of an XMR view-only wallet). ``diskless`` and ``quiet_mode`` are flags, not identity.
    """

    key: str
    fields: dict[str, Any] = field(default_factory=dict)
    diskless: bool = False
    quiet_mode: bool = False

    def __repr__(self) -> str:
        # The key may be a seed or a private key: never let it reach a log through repr().
        return f"WalletIdentity(fields={sorted(self.fields)}, diskless={self.diskless})"


@dataclass(slots=True)
class Request:
    """One parsed call. ``id`` is absent (``is_notification``) when the client wants no answer."""

    method: str
    args: list[Any]
    kwargs: dict[str, Any]
    id: Any = None
    is_notification: bool = False
    identity: WalletIdentity | None = None


def check_key_text(name: str, value: str) -> str:
    """A key-like string as it may reach a parser: at most MAX_KEY_LENGTH characters, valid Unicode.

    A lone surrogate (JSON allows ``"\\ud800"``) cannot be encoded, hashed or stored: -32602 here,
    not an internal error wherever it is first encoded.
    """
    if len(value) > MAX_KEY_LENGTH:
        raise RPCError(INVALID_PARAMS, f"'{name}' is too long: at most {MAX_KEY_LENGTH} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RPCError(INVALID_PARAMS, f"'{name}' is not valid Unicode text (it holds a lone surrogate)") from None
    return value


def parse_identity(value: Any) -> WalletIdentity:
    """Turn the ``xpub`` argument (a string or an object) into a WalletIdentity."""
    if isinstance(value, str):
        if not check_key_text("xpub", value).strip():
            raise RPCError(WALLET_LOAD_FAILED, "Wallet key is empty")
        return WalletIdentity(key=value.strip())
    if isinstance(value, dict):
        key = value.get("xpub")
        if isinstance(key, str):
            check_key_text("xpub", key)
        if not isinstance(key, str) or not key.strip():
            raise RPCError(WALLET_LOAD_FAILED, "Wallet object needs a non-empty string 'xpub'")
        flags = {}
        for flag in IDENTITY_FLAGS:
            flag_value = value.get(flag, False)
            if not isinstance(flag_value, bool):
                raise RPCError(INVALID_PARAMS, f"'{flag}' must be true or false")
            flags[flag] = flag_value
        fields = {k: v for k, v in value.items() if k != "xpub" and k not in IDENTITY_FLAGS}
        for name, field_value in fields.items():  # such as XMR's primary address: decoded like a key
            if isinstance(field_value, str):
                check_key_text(name, field_value)
        return WalletIdentity(key=key.strip(), fields=fields, **flags)
    raise RPCError(INVALID_PARAMS, "'xpub' must be a string or an object")


def split_params(params: Any) -> tuple[list[Any], dict[str, Any]]:
    """Split ``params`` into positional and named arguments, the extended way."""
    if params is None:
        return [], {}
    if isinstance(params, dict):
        return [], dict(params)
    if isinstance(params, list):
        if params and isinstance(params[-1], dict):
            return list(params[:-1]), dict(params[-1])
        return list(params), {}
    raise RPCError(INVALID_REQUEST, "'params' must be an array or an object")


def parse_request(obj: Any) -> Request:
    """Validate one request object. Raises RPCError; its ``id`` is best-effort for the answer."""
    if not isinstance(obj, dict):
        raise RPCError(INVALID_REQUEST, "Invalid request: expected an object")
    method = obj.get("method")
    if not isinstance(method, str) or not method:
        raise RPCError(INVALID_REQUEST, "Invalid request: 'method' must be a non-empty string")
    if "jsonrpc" in obj and obj["jsonrpc"] != "2.0":
        raise RPCError(INVALID_REQUEST, "Invalid request: 'jsonrpc' must be \"2.0\"")
    request_id = obj.get("id")
    valid_id = request_id is None or (isinstance(request_id, ID_TYPES) and not isinstance(request_id, bool))
    if not valid_id:
        raise RPCError(INVALID_REQUEST, "Invalid request: 'id' must be a string, a number or null")
    params = obj.get("params")
    if type(params) is list and (not params or type(params[-1]) is not dict):  # the usual call: positional only
        args, kwargs = list(params), {}
    else:
        args, kwargs = split_params(params)
    identity = None
    if "xpub" in kwargs:
        raw = kwargs.pop("xpub")
        if raw is not None:
            identity = parse_identity(raw)
    return Request(method, args, kwargs, request_id, "id" not in obj, identity)


def request_id_of(obj: Any) -> Any:
    """The id to answer a request with, even one that failed to parse."""
    if isinstance(obj, dict):
        value = obj.get("id")
        if isinstance(value, ID_TYPES) and not isinstance(value, bool):
            return value
    return None


def result_response(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_response(request_id: Any, error: RPCError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_dict()}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):  # such as 1e400: it would come back as Infinity
        raise ValueError(f"{text} is out of range")
    return number


def decode_body(body: bytes) -> Any:
    """Decode a request body; anything but UTF-8 JSON is a parse error (-32700).

    Python's parser also accepts NaN and Infinity, which would come back in answers as invalid JSON.
    What ``json.JSONDecoder.decode`` does (skip JSON whitespace, scan one value, refuse anything after
    it), with the decoder's C scanner called directly: the Python layers around it cost as much as
    scanning a small request.
    """
    try:
        text = body.decode("utf-8").strip(JSON_WHITESPACE)
        value, end = _SCAN(text, 0)
        if end != len(text):
            raise ValueError("extra data after the JSON value")
        return value
    except (UnicodeDecodeError, ValueError, RecursionError, StopIteration) as exc:  # StopIteration: no value
        raise RPCError(PARSE_ERROR, "Parse error: body is not valid JSON") from exc


def json_default(value: Any) -> Any:
    """Encode what the standard encoder cannot: Decimals as strings (amounts are never floats)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Built once: json.dumps/json.loads with any option build a new encoder or decoder on every call.
JSON_WHITESPACE = " \t\n\r"
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_SCAN = json.scanner.make_scanner(_DECODER)
_ENCODERS = {
    allow_nan: json.JSONEncoder(default=json_default, separators=(",", ":"), allow_nan=allow_nan)
    for allow_nan in (True, False)
}
# JSONEncoder.encode builds its C encoder again on every call; these are built once, the same but for
# the cycle check (none: a cyclic value fails with RecursionError rather than ValueError).
_C_ENCODERS = {
    allow_nan: json.encoder.c_make_encoder(
        None, json_default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, allow_nan
    )
    for allow_nan in (True, False)
} if json.encoder.c_make_encoder is not None else None  # fmt: skip


def dumps(value: Any, allow_nan: bool = True) -> str:
    if _C_ENCODERS is None:  # a Python without json's C accelerator
        return _ENCODERS[allow_nan].encode(value)
    return "".join(_C_ENCODERS[allow_nan](value, 0))
