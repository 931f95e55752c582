"""Changing a miner's config: merging, masking its token, and knowing when XMRig really runs the change.

XMRig replaces its whole config on a write, so a partial change is merged into the current config and sent
whole. What happens next depends on how the miner was started (XMRig 6.26.0, src/base/kernel/Base.cpp
``Base::reload``): without a config file the new config is live before the 204 answer; with ``-c file`` and
``watch`` on, XMRig only saves the file, answers 204, and its file watcher (src/base/io/Watcher.cpp, 500 ms
after the last change) loads it. A change of the ``http`` section restarts XMRig's HTTP server with the new
token, host and port (src/base/api/Httpd.cpp ``onConfigChanged``), so the daemon must follow it there.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

from yarl import URL

from daemons.xmrig_client import MinerEndpoint, MinerRestricted, MinerUnavailable, XMRigClient, XMRigError

REDACTED = "********"  # stands for the miner's access token in configs this daemon returns
WILDCARD_HOSTS = {"", "0.0.0.0", "::"}  # a miner bound to every address keeps the address we reach it by
READ_BACK_PAUSE = 0.1


def redact(config: dict[str, Any]) -> dict[str, Any]:
    """The config as returned to callers: the miner's own access token is replaced by a placeholder."""
    http = config.get("http")
    if isinstance(http, dict) and http.get("access-token") is not None:
        return {**config, "http": {**http, "access-token": REDACTED}}
    return config


def unredact(update: dict[str, Any]) -> dict[str, Any]:
    """A config sent back as ``config`` returned it keeps the miner's token instead of the placeholder."""
    http = update.get("http")
    if isinstance(http, dict) and http.get("access-token") == REDACTED:
        return {**update, "http": {k: v for k, v in http.items() if k != "access-token"}}
    return update


def deep_merge(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` laid over ``current``: objects merge key by key, anything else (lists too) replaces."""
    merged = dict(current)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def endpoint_after(endpoint: MinerEndpoint, old_http: dict[str, Any], new_http: dict[str, Any]) -> MinerEndpoint:
    """Where, and with which token, the miner's API answers once XMRig runs ``new_http``.

    A new port replaces ours; a new host too unless it is a wildcard bind (0.0.0.0, ::), which still
    answers on the address we use now.
    """
    url = URL(endpoint.base_url)
    host, port = new_http.get("host"), new_http.get("port")
    if host != old_http.get("host") and isinstance(host, str) and host not in WILDCARD_HOSTS:
        url = url.with_host(host)
    if port != old_http.get("port") and isinstance(port, int) and 0 < port < 65536:
        url = url.with_port(port)
    token = new_http.get("access-token") or None
    moved = str(url) if str(url) != endpoint.base_url else endpoint.url  # keep the URL as configured
    return dataclasses.replace(endpoint, url=moved, token=token if isinstance(token, str) else None)


class LockedOut(ValueError):
    """The config would leave the miner's API unusable, so it is not written."""


def lockout_reason(http: Any) -> str | None:
    """Why an ``http`` section would shut the daemon out of the miner, if it would (XMRig 6.26.0,
    src/base/net/http/Http.h: an unrestricted API without a token requires auth nobody can give)."""
    if not isinstance(http, dict):
        return "a config without an http section switches the miner's API off"
    if http.get("enabled") is False:
        return "http.enabled false would switch off the API this daemon manages the miner through"
    if http.get("restricted") is False and not http.get("access-token"):
        return "an unrestricted API without access-token answers 401 to every request (XMRig requires auth then)"
    return None


@dataclass(frozen=True)
class ConfigOutcome:
    """What a config write led to: whether the miner runs it, the config it runs, and where it answers."""

    applied: bool
    config: dict[str, Any] | None  # None when the new config makes /2/config unreadable (restricted mode)
    endpoint: MinerEndpoint  # where the miner answers now
    pending: MinerEndpoint | None = None  # where it will answer once it applies the change, if elsewhere


async def apply_config(client: XMRigClient, update: dict[str, Any], wait: float) -> ConfigOutcome:
    """Merge ``update`` into the miner's config, write it, and wait (at most ``wait`` seconds) until the
    miner serves a changed config where the new ``http`` settings say it answers. LockedOut for a config
    that would leave its API unusable."""
    before = await client.config()
    merged = deep_merge(before, unredact(update))
    reason = lockout_reason(merged.get("http"))
    if reason:
        raise LockedOut(reason)
    unanswered: MinerUnavailable | None = None
    try:
        await client.put_config(merged)
    except MinerUnavailable as exc:
        if merged.get("http") == before.get("http"):
            raise
        # A miner without a config file applies the new http section at once: Httpd::onConfigChanged
        # deletes its HTTP server, whose destructor closes every connection, this one before its 204.
        unanswered = exc
    target = endpoint_after(client.endpoint, before.get("http") or {}, merged.get("http") or {})
    reader = client if target == client.endpoint else XMRigClient(target, client.timeout)
    if merged == before:
        return ConfigOutcome(True, before, client.endpoint)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        answered, current = await _read_back(reader)
        if answered and current != before:
            return ConfigOutcome(True, current, target)
        if loop.time() >= deadline:
            break
        await asyncio.sleep(READ_BACK_PAUSE)
    if reader is not client:
        answered, current = await _read_back(client)
    if unanswered is not None and not answered:  # neither the old nor the new settings reach it
        raise MinerUnavailable(
            f"miner {client.name} closed the connection without answering the config write and has not answered "
            "since, with the old or the new http settings (XMRig 6.26 run without a config file can abort when "
            "its http section changes)"
        ) from unanswered
    pending = target if target != client.endpoint else None
    return ConfigOutcome(False, current if answered else None, client.endpoint, pending)


async def _read_back(client: XMRigClient) -> tuple[bool, dict[str, Any] | None]:
    """(answered, config): config is None when the miner answers but, now restricted, hides it."""
    try:
        return True, await client.config()
    except MinerRestricted:
        return True, None
    except XMRigError:
        # Not (yet) answering there: its HTTP server restarts, or still runs the old settings. A 403 can
        # even be read as "not restricted, yet forbidden" when the watcher swaps tokens between the two
        # requests that tell a bad token from restricted mode.
        return False, None
