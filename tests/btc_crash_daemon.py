"""``python -m tests.btc_crash_daemon btc``: the BTC daemon with a fault injected for crash tests.

With ``CRASH_BEFORE_EVENT=<event>[,<event>...]`` in its environment, the daemon SIGKILLs itself at the
moment it is about to store its first wallet event of one of those names, after saving every loaded wallet
as Electrum does at its save points (its commands save before their callbacks reach the loop): the wallet
file holds the fact, the event log does not.
That is the window a power cut or an OOM kill can hit; a restart must still deliver the event once.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import daemons
from daemons.__main__ import main
from daemons.btc import BTCDaemon


class CrashingBTCDaemon(BTCDaemon):
    async def notify(self, event: str, fields: dict[str, Any], wallet: str | None = None, also: Any = None) -> int:
        if wallet is not None and event in os.environ.get("CRASH_BEFORE_EVENT", "").split(","):
            for loaded in self.wallets.values():  # what Electrum does itself at its next save point
                loaded.save_db()
            os.kill(os.getpid(), signal.SIGKILL)
        return await super().notify(event, fields, wallet, also)


if __name__ == "__main__":
    daemons.DAEMONS["btc"] = f"{__name__}:CrashingBTCDaemon"
    sys.exit(main())
