"""Multi-coin payment daemons behind one JSON-RPC, websocket and spec interface.

Importing this package imports no coin library: daemons are named here as ``module:Class``
strings and imported only when one is started.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import BaseDaemon

__version__ = "0.1.0"

DAEMONS: dict[str, str] = {
    "btc": "daemons.btc:BTCDaemon",
    "bch": "daemons.bch:BCHDaemon",
    "xmr": "daemons.xmr:XMRDaemon",
    "bitmessage": "daemons.bitmessage:BitmessageDaemon",
    "xmrig": "daemons.xmrig:XMRigDaemon",
}


def daemon_class(name: str) -> type[BaseDaemon]:
    """The daemon class registered under ``name`` (case-insensitive); KeyError lists the known ones."""
    try:
        target = DAEMONS[name.lower()]
    except KeyError:
        known = ", ".join(sorted(DAEMONS)) or "none"
        raise KeyError(f"unknown daemon {name!r}; known daemons: {known}") from None
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)
