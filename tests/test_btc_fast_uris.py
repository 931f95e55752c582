"""Payment URIs (daemons/btc_fast_uris.py) are Electrum's own create_bip21_uri's, first time and remembered."""

from __future__ import annotations

from typing import Any

from tests.btc_support import btc_daemon, key_pair


def uri_calls() -> list[tuple[Any, ...]]:
    """(address, amount, message, extra) of every kind: kept, not kept, refused by Electrum."""
    address = key_pair(58, "p2wpkh").first_address()
    legacy = key_pair(58, "standard").first_address()
    stamps = {"time": "1795957277", "exp": "3600"}
    return [
        (address, 100_000, "order 1", stamps),
        (address, None, "", {}),
        (address, 0, None, None),
        (address, 100_000, "order 1", {"exp": "3600", "time": "1795957277"}),  # the fields' order counts
        (legacy, 1, "café & co / 100%?=#", stamps),
        (address, 150_000_000, "x" * 3000, stamps),  # too long to keep: built each time
        ("not an address", 5, "m", None),  # Electrum's "" (not kept either way: the same text)
        (address, True, "a bool amount", None),  # not a plain int: built each time
        (address, 5, "m", {"bad key": "v"}),  # Electrum refuses the key: the same exception
    ]


def outcome(create: Any, call: tuple[Any, ...]) -> tuple[str, Any]:
    address, amount, message, extra = call
    try:
        return "uri", create(address, amount, message, extra_query_params=extra)
    except Exception as exc:
        return type(exc).__name__, str(exc)


async def test_bip21_uris_are_electrums_for_each_network_first_time_and_remembered():
    async with btc_daemon():
        from electrum import constants, util

        remembered = util.create_bip21_uri
        original = remembered.__wrapped__
        calls = uri_calls()  # regtest addresses, asked about on mainnet too below
        before = set(remembered.answers.results)  # the memo is the process's: other tests add to it too
        expected = [outcome(original, call) for call in calls]
        assert {kind for kind, _ in expected} == {"uri", "Exception"} and ("uri", "") in expected
        for _ in range(2):
            assert [outcome(remembered, call) for call in calls] == expected
        added = set(remembered.answers.results) - before
        assert len(added) == 6  # all but the long message, the bool amount and the refusal
        # The network is part of what is kept: on mainnet a regtest address is no address ("").
        previous = constants.net
        constants.set_mainnet()
        try:
            mainnet = [outcome(original, call) for call in calls]
            assert [outcome(remembered, call) for call in calls] == mainnet != expected
        finally:
            constants.net = previous
