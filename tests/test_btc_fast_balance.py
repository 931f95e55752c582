"""getbalance's kept answer (daemons/btc_fast_balance.py) is Electrum's own command's on the same wallet, before and
after the wallet's balance changes on the regtest chain: a payment seen unconfirmed, then in a block."""

from __future__ import annotations

from typing import Any

from tests.btc_payment_support import PAYER_SEED, eventually, fund_payer, online_daemon, pay
from tests.btc_support import key_pair
from tests.support import DaemonClient


async def electrum_from_scratch(d: DaemonClient, wallet: Any) -> dict[str, str]:
    """Electrum's getbalance computed anew: its balance cache set aside for the call, then put back as it was."""
    adb = wallet.adb
    cache, adb._get_balance_cache = adb._get_balance_cache, {}
    try:
        return await d.daemon.commands.getbalance(wallet=wallet)
    finally:
        adb._get_balance_cache = cache


async def fast_and_electrum(d: DaemonClient, wallet: Any) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """The daemon's getbalance, Electrum's command and Electrum's from scratch, in one step of the loop."""
    method = d.daemon.get_method("getbalance")
    fast = await d.daemon.run_library_command(method, {"wallet": wallet})
    return fast, await d.daemon.commands.getbalance(wallet=wallet), await electrum_from_scratch(d, wallet)


async def test_getbalance_is_electrums_as_a_payment_arrives_and_confirms(regtest_stack):
    async with online_daemon(regtest_stack) as d:
        payer = await fund_payer(d, regtest_stack)  # its own wait reads getbalance through the kept answers too
        merchant = key_pair(120, "p2wpkh")
        assert await d.call("getbalance", xpub=merchant.xpub) == {"confirmed": "0"}
        wallet = d.daemon.wallets[merchant.xpub]
        kept = d.daemon.balance_answers[id(wallet)]
        assert await d.call("getbalance", xpub=merchant.xpub) == {"confirmed": "0"}
        assert d.daemon.balance_answers[id(wallet)] is kept  # given again, not recomputed
        assert await fast_and_electrum(d, wallet) == ({"confirmed": "0"},) * 3

        await pay(d, merchant.first_address(), "0.25")

        async def unconfirmed() -> bool:
            return "unconfirmed" in await d.call("getbalance", xpub=merchant.xpub)

        await eventually(unconfirmed, timeout=60)
        fast, own, scratch = await fast_and_electrum(d, wallet)
        assert fast == own == scratch == {"confirmed": "0", "unconfirmed": "0.25"}

        await regtest_stack.amine(1, payer)

        async def confirmed() -> bool:
            return await d.call("getbalance", xpub=merchant.xpub) == {"confirmed": "0.25"}

        await eventually(confirmed, timeout=60)
        fast, own, scratch = await fast_and_electrum(d, wallet)
        assert fast == own == scratch == {"confirmed": "0.25"}
        assert d.daemon.balance_answers[id(wallet)] is not kept

        # The payer's balance (a seed wallet, no Lightning in this daemon) is kept and Electrum's too.
        payer_wallet = next(w for k, w in d.daemon.wallets.items() if k != merchant.xpub)
        fast, own, scratch = await fast_and_electrum(d, payer_wallet)
        assert fast == own == scratch and id(payer_wallet) in d.daemon.balance_answers
        assert await d.call("getbalance", xpub=PAYER_SEED) == own


async def test_a_new_address_or_another_wallet_kind_is_not_answered_from_what_was_kept(regtest_stack):
    async with online_daemon(regtest_stack) as d:
        merchant = key_pair(121, "p2wpkh")
        assert await d.call("getbalance", xpub=merchant.xpub) == {"confirmed": "0"}
        wallet = d.daemon.wallets[merchant.xpub]
        kept = d.daemon.balance_answers[id(wallet)]
        assert kept.holds(wallet)
        wallet.create_new_address(False)  # the key's domain changes while Electrum's cache stays as it was
        assert not kept.holds(wallet)
        assert await d.call("getbalance", xpub=merchant.xpub) == {"confirmed": "0"}
        assert d.daemon.balance_answers[id(wallet)] is not kept
        # An address wallet (Electrum's Imported_Wallet: its addresses can be deleted) is never kept.
        watched = key_pair(122, "p2wpkh").first_address()
        assert await d.call("getbalance", xpub=watched) == {"confirmed": "0"}
        imported = next(w for w in d.daemon.wallets.values() if w is not wallet)
        assert id(imported) not in d.daemon.balance_answers
        # Unloading forgets the wallet's answer (and the wallet object it holds).
        assert await d.call("close_wallet", xpub=merchant.xpub) is True
        assert id(wallet) not in d.daemon.balance_answers


async def test_a_lightning_wallets_balance_is_never_kept():
    """Its Lightning balance changes with its channels, outside Electrum's balance cache: Electrum answers each time."""
    from tests.btc_support import btc_daemon, make_seed

    async with btc_daemon({"LIGHTNING": "true"}) as d:
        seed = make_seed("segwit")
        for _ in range(2):
            assert await d.call("getbalance", xpub=seed) == {"confirmed": "0"}
        wallet = next(iter(d.daemon.wallets.values()))
        assert wallet.lnworker is not None and id(wallet) not in d.daemon.balance_answers
