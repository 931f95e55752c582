"""Two BTC daemons as Lightning nodes on the regtest stack: a merchant (subprocess) and a payer (in-process).

Shared by tests/test_btc_lightning.py and bench/lightning_latency.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.btc_payment_support import PAYER_SEED, EventFeed, eventually, fund_payer, online_daemon, online_env
from tests.support import DaemonClient, free_port, spawned_daemon

MERCHANT_SEED = "whale slogan napkin hammer rotate evidence ecology text cushion rocket frog lunar"
CHANNEL = Decimal("0.05")
PRICE = Decimal("0.001")
TO_SELF_DELAY = 12  # blocks the payer's own funds wait after it force-closes (the merchant's setting)
PR_EXPIRED, PR_PAID = 1, 3


class Merchant:
    """The merchant's daemon as a subprocess on fixed ports, so that it can be stopped and started again."""

    def __init__(self, stack: Any, tmp_path: Path) -> None:
        self.data_path = tmp_path / "merchant"
        self.data_path.mkdir()
        self.port, self.ln_port = free_port(), free_port()
        self.env = online_env(
            stack,
            LIGHTNING="true",
            LIGHTNING_LISTEN=f"127.0.0.1:{self.ln_port}",
            LIGHTNING_TO_SELF_DELAY=str(TO_SELF_DELAY),
        )

    @contextlib.asynccontextmanager
    async def running(self, crash_before: str = "") -> AsyncIterator[DaemonClient]:
        """The merchant's daemon; ``crash_before`` an event name: it SIGKILLs itself right before storing
        its first wallet event of that name, once Electrum saved the wallet (tests/btc_crash_daemon.py)."""
        module = "tests.btc_crash_daemon" if crash_before else "daemons"
        crash = {"CRASH_BEFORE_EVENT": crash_before}
        async with spawned_daemon("btc", self.env, self.data_path, self.port, module=module, extra_env=crash) as (
            client,
            self.process,
        ):
            yield client


async def fund(payer: DaemonClient, stack: Any, miner: int, blocks: int = 101) -> None:
    """Mature coins for the payer, and MINER set to an address of nobody's wallet (``Key.from_int(miner)``)."""
    from tests.regtest_fixtures import Key

    await fund_payer(payer, stack, blocks)
    MINER[:] = [Key.from_int(miner).address]


def payer_daemon(stack: Any) -> Any:
    return online_daemon(stack, LIGHTNING="true", LIGHTNING_TO_SELF_DELAY=str(TO_SELF_DELAY))


MINER: list[str] = []  # an address of nobody's wallet (made once Electrum is on regtest)


async def mine(stack: Any, blocks: int) -> None:
    await stack.amine(blocks, MINER[0])


async def channel_of(payer: DaemonClient, point: str) -> dict:
    return next(c for c in await payer.call("list_channels", xpub=PAYER_SEED) if c["channel_point"] == point)


async def usable(payer: DaemonClient, point: str) -> bool:
    channel = await channel_of(payer, point)
    return channel["state"] == "OPEN" and channel["peer_state"] == "GOOD"


async def open_channel(stack: Any, payer: DaemonClient, merchant: DaemonClient, feed: EventFeed) -> str:
    node = await merchant.call("nodeid", xpub=MERCHANT_SEED)
    assert await payer.call("add_peer", node, xpub=PAYER_SEED) is True
    point = await payer.call("open_channel", node, str(CHANNEL), xpub=PAYER_SEED)
    await mine(stack, 3)  # Electrum's minimum_depth
    await eventually(lambda: usable(payer, point))
    opened = await feed.wait_for(lambda e: e["event"] == "channel_opened" and e["channel_point"] == point)
    payer_node = await payer.call("nodeid", xpub=PAYER_SEED)
    assert Decimal(opened["capacity"]) == CHANNEL and opened["remote_pubkey"] == payer_node
    return point
