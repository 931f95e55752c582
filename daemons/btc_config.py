"""Parsing and checking the BTC daemon's network settings, without importing Electrum.

These run in ``load_settings`` (before the Electrum library is loaded), so a mistyped server,
proxy or network stops start-up with a message naming the variable instead of surfacing later
as a connection that never happens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

NETWORKS = ("mainnet", "testnet", "regtest", "signet", "simnet")
PROXY_MODES = ("socks5", "socks4", "http")
_SERVER = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[^:\s]+):(?P<port>\d{1,5}):(?P<protocol>[ts])$")


def parse_network(value: str, valid: tuple[str, ...] = NETWORKS) -> str:
    """The network name, lower-cased; anything else lists the valid ones."""
    network = value.strip().lower()
    if network not in valid:
        raise ValueError(f"unknown network {value!r}; valid networks are: {', '.join(valid)}")
    return network


def parse_server(value: str) -> str:
    """An Electrum server as ``host:port:t`` (TCP) or ``host:port:s`` (TLS); empty means automatic."""
    server = value.strip()
    if not server:
        return ""
    match = _SERVER.match(server)
    if match is None or not 0 < int(match["port"]) <= 65535:
        raise ValueError("expected host:port:t (plain TCP) or host:port:s (TLS), for example 127.0.0.1:51001:t")
    return server


@dataclass(frozen=True)
class Proxy:
    """A proxy in the shape Electrum's network.serialize_proxy takes (all strings)."""

    mode: str
    host: str
    port: str
    user: str = ""
    password: str = ""

    def __repr__(self) -> str:
        # The proxy password must not reach a log.
        return f"Proxy(mode={self.mode!r}, host={self.host!r}, port={self.port!r})"

    def as_electrum_dict(self) -> dict[str, str]:
        return {"mode": self.mode, "host": self.host, "port": self.port, "user": self.user, "password": self.password}


def parse_proxy_url(value: str) -> Proxy | None:
    """``socks5://[user:pass@]host:port``, ``socks4://...`` or ``http://...``; empty means no proxy."""
    text = value.strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme.lower() not in PROXY_MODES:
        raise ValueError(f"the scheme must be one of {', '.join(PROXY_MODES)}, as in socks5://127.0.0.1:9050")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from exc
    if not parts.hostname or port is None:
        raise ValueError("a proxy URL needs a host and a port, as in socks5://127.0.0.1:9050")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("a proxy URL has no path, query or fragment")
    return Proxy(parts.scheme.lower(), parts.hostname, str(port), parts.username or "", parts.password or "")
