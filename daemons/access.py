"""Who may talk to a daemon: HTTP Basic credentials, and no web page in the operator's browser.

A daemon on 127.0.0.1 is reachable from any page the operator's browser opens: through DNS
rebinding (``attacker.example`` resolving to 127.0.0.1) the page's requests even look same-origin
to the browser, and the default credentials do the rest. Two checks close that, before any
authentication: a request that carries a browser ``Origin`` not listed in ``ALLOWED_ORIGINS`` is
refused, and a daemon bound to loopback refuses a ``Host`` that is not a loopback name (a rebound
name reaches it with the attacker's ``Host``). Clients that are no browser (the SDK, curl,
websocket listeners) send no ``Origin`` and a loopback ``Host``, and pass.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
from typing import Any

from aiohttp import web

from .settings import is_loopback


def check_basic_auth(header: str | None, login: str, password: str) -> bool:
    """True only for a well-formed ``Basic`` header with these credentials, compared in constant time."""
    if not header:
        return False
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    user, colon, secret = decoded.partition(":")  # the password itself may contain ':'
    if not colon:
        return False
    user_ok = hmac.compare_digest(user.encode(), login.encode())
    password_ok = hmac.compare_digest(secret.encode(), password.encode())
    return user_ok & password_ok


def host_name(header: str) -> str:
    """The name of a ``Host`` header, without its port: ``[::1]:5000`` -> ``::1``."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@functools.lru_cache(maxsize=256)  # clients send the same Host on every request: parse it once (bounded)
def is_loopback_name(header: str) -> bool:
    name = host_name(header).rstrip(".")
    return name == "localhost" or name.endswith(".localhost") or is_loopback(name)


def refusal(
    request: web.BaseRequest, allowed_origins: frozenset[str], check_host: bool, origins_setting: str
) -> str | None:
    """Why this request may not be served, or None."""
    headers = request.headers
    return refusal_of(headers.get("Origin"), headers.get("Host"), allowed_origins, check_host, origins_setting)


def refusal_of(
    origin: str | None, host: str | None, allowed_origins: frozenset[str], check_host: bool, origins_setting: str
) -> str | None:
    """``refusal`` for a request's ``Origin`` and ``Host`` values (None: the header is absent)."""
    if origin is not None and origin.strip().rstrip("/").lower() not in allowed_origins:
        return f"Forbidden: requests from web pages (Origin {origin[:100]!r}) need the origin in {origins_setting}"
    if check_host and host is not None and not is_loopback_name(host):
        return f"Forbidden: Host {host[:100]!r} is not a loopback name, and this daemon listens on loopback only"
    return None


def public_health(facts: dict[str, Any]) -> dict[str, Any]:
    """What ``/health`` (no auth) may show: status and plain facts, never where a backend listens.

    A daemon's ``health`` may report its backend as it sees it; any URL (a key named ``url`` or
    ``..._url``, or a text with ``://``, which may also carry credentials) is left out here."""
    return {
        key: value
        for key, value in ((k, public_value(v)) for k, v in facts.items() if not is_url_key(k))
        if value is not OMIT
    }


OMIT: Any = object()


def is_url_key(key: Any) -> bool:
    name = str(key).lower()
    return name in ("url", "uri", "server", "endpoint") or name.endswith(("_url", "_uri"))


def public_value(value: Any) -> Any:
    if isinstance(value, dict):
        return public_health(value)
    if isinstance(value, list):
        return [item for item in (public_value(v) for v in value) if item is not OMIT]
    if isinstance(value, str) and "://" in value:
        return OMIT
    return value
