"""The core's caps on the real BTC daemon (issue 12, items 1 and 6): Electrum's base58 never sees a
long key, and a lone surrogate is a client error, on POST / and on /ws."""

from __future__ import annotations

import json

from tests.btc_support import btc_daemon
from tests.test_core_hostile_input import rpc_error, ws_error
from tests.test_core_websocket import Listener

LONG = "xpub" + "a" * 899_000  # inside the 1 MiB body limit
SCOPE = "xpub" + "a" * 60_000  # inside the websocket's 64 KiB message limit


async def test_long_and_broken_keys_are_invalid_params_before_electrum_sees_them() -> None:
    async with btc_daemon() as d:
        for method, params in (
            ("getbalance", {"xpub": LONG}),
            ("validatekey", [LONG]),
            ("getbalance", {"xpub": "\ud800"}),
            ("validatekey", ["vpub\udfff"]),
            ("validateaddress", [LONG]),
        ):
            error = await rpc_error(d, method, params)
            assert error["code"] == -32602, (method, error)
        assert d.daemon.wallet_loads == 0
        listener = Listener(await d.ws_connect())
        assert (await ws_error(listener, json.dumps({"xpub": SCOPE})))["code"] == -32602
        assert (await ws_error(listener, json.dumps({"xpubs": ["\ud800"]})))["code"] == -32602
        assert (await ws_error(listener, "[" * 60_000))["code"] == -32700
        assert await d.call("validatekey", "not a key") is False  # the socket and the daemon still serve
