"""onchain_history's fast path (daemons/btc_fast_history.py) answers exactly Electrum's own command on the same
wallet: with confirmed and unconfirmed payments, for each of the command's filters."""

from __future__ import annotations

import asyncio
import datetime
import json
from decimal import Decimal
from typing import Any

from tests.btc_payment_support import eventually, fund_payer, online_daemon, pay
from tests.btc_support import key_pair
from tests.support import DaemonClient


def same(a: Any, b: Any) -> bool:
    """Equal values with their keys in the same order (the order the daemon's JSON answer has them in)."""
    return a == b and json.dumps(a, default=repr) == json.dumps(b, default=repr)


async def electrums_own(d: DaemonClient, wallet: Any, arguments: dict[str, Any]) -> Any:
    """Electrum's onchain_history with its own json_normalize (the commands module's, put back after)."""
    from electrum import commands

    faster = commands.json_normalize
    commands.json_normalize = faster.__wrapped__
    try:
        return await d.daemon.commands.onchain_history(wallet=wallet, **arguments)
    finally:
        commands.json_normalize = faster


async def fast_and_electrum(d: DaemonClient, wallet: Any, arguments: dict[str, Any]) -> tuple[Any, Any]:
    """The daemon's answer and Electrum's command's, in one step of the loop."""
    method = d.daemon.get_method("onchain_history")
    fast = await d.daemon.run_library_command(method, {"wallet": wallet, **arguments})
    assert "get_utxos" not in vars(wallet)  # the skipped lookups were this call's only
    return fast, await electrums_own(d, wallet, arguments)


async def test_onchain_history_is_electrums_for_each_filter(regtest_stack):
    async with online_daemon(regtest_stack) as d:
        payer = await fund_payer(d, regtest_stack)
        merchant = key_pair(130, "p2wpkh")
        address = merchant.first_address()
        assert (await d.call("onchain_history", xpub=merchant.xpub)) == {"summary": {}, "transactions": []}
        wallet = d.daemon.wallets[merchant.xpub]
        await pay(d, address, "0.5")
        await regtest_stack.amine(1, payer)
        mined = await regtest_stack.arpc("getblockcount")
        await pay(d, address, "0.25")  # stays unconfirmed

        async def both_seen() -> bool:
            history = await d.call("onchain_history", xpub=merchant.xpub)
            return [item["height"] for item in history["transactions"]] == [mined, 0]

        await eventually(both_seen, timeout=60)
        year = datetime.datetime.now().year
        filters: list[dict[str, Any]] = [
            {},
            {"show_addresses": True},
            {"from_height": mined},
            {"to_height": mined + 1},
            {"from_height": 1, "to_height": mined + 1},
            {"year": year},
            {"year": 2000},  # nothing in it: an empty summary
        ]
        for arguments in filters:
            fast, own = await fast_and_electrum(d, wallet, arguments)
            assert same(fast, own), arguments
            assert fast["transactions"] or arguments == {"year": 2000}
        summary = (await fast_and_electrum(d, wallet, {}))[0]["summary"]
        assert summary["end"]["BTC_balance"] == "0.75" and summary["flow"]["BTC_incoming"] == "0.75"
        # Through the daemon's HTTP answer too (JSON of the same value).
        assert await d.call("onchain_history", xpub=merchant.xpub) == (await electrums_own(d, wallet, {}))
        # A filter Electrum refuses is refused the same way.
        method = d.daemon.get_method("onchain_history")
        errors = []
        for run in (
            d.daemon.run_library_command(method, {"wallet": wallet, "year": year, "from_height": 1}),
            electrums_own(d, wallet, {"year": year, "from_height": 1}),
        ):
            try:
                await run
            except Exception as exc:
                errors.append(str(exc))
        assert len(errors) == 2 and errors[0] == errors[1]
        assert "get_utxos" not in vars(wallet)


async def test_faster_json_normalize_gives_electrums_values():
    from tests.btc_support import btc_daemon

    async with btc_daemon():
        from electrum import commands, transaction, util

        faster, original = commands.json_normalize, commands.json_normalize.__wrapped__
        output = transaction.TxOutput(scriptpubkey=bytes.fromhex("0014" + "11" * 20), value=5)
        values = [
            {"b": util.Satoshis(150_000_000), "a": [Decimal("0.1"), util.Satoshis(-5)], "3": None, "c": 1.5},
            {3: "int and text keys cannot be sorted", "a": 1},  # a TypeError: Electrum's repr fallback
            {"date": datetime.datetime(2026, 11, 29, 13, 3, 7), "raw": b"\x00\x01", "out": output, "set": {7}},
            {"fiat": util.Fiat(Decimal("12.5"), "USD"), "nested": {"z": {"y": [True, False, ""]}}},
            [object()],  # not JSON: the repr fallback again
            "text",
        ]
        for value in values:
            assert same(faster(value), original(value)), value
        assert faster(values[0])["b"] == "1.5" and list(faster(values[0])) == ["3", "a", "b", "c"]
        assert isinstance(faster(values[1]), str)


async def test_a_coroutine_that_suspends_is_not_run_in_one_step():
    from daemons.btc_fast_history import NOT_FINISHED, run_in_one_step

    async def finishes() -> int:
        return 1

    steps = []

    async def suspends() -> int:
        steps.append("started")
        await asyncio.sleep(0)
        steps.append("resumed")
        return 2

    assert run_in_one_step(finishes()) == 1
    assert run_in_one_step(suspends()) is NOT_FINISHED
    assert steps == ["started"]  # closed where it suspended: never resumed
