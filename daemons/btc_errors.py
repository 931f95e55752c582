"""Errors of the BTC daemon: the codes of spec/btc.json it raises itself, and Electrum's messages made useful."""

from __future__ import annotations

from typing import Any

from .jsonrpc import Request, RPCError
from .spec import map_message

# Codes of spec/btc.json that the daemon raises itself (Electrum's own messages are mapped there).
TX_HASH_INVALID = -32001
TX_NOT_FOUND = -32002
REQUEST_NOT_FOUND = -32003
ADDRESS_INVALID = -32004
INVOICE_NOT_FOUND = -32012
NETWORK_OFFLINE = -32013
NOT_SYNCHRONIZED = -32014
INVALID_TRANSACTION = -32017
WATCH_ONLY = -32019
LIGHTNING_UNSUPPORTED = -32011


class ElectrumErrorsMixin:
    """Turns Electrum's exceptions into JSON-RPC errors by the spec's message map."""

    spec: dict[str, Any]

    def exception_message(self, exc: BaseException) -> str:
        """Electrum hides server errors behind generic wrappers: surface the useful text."""
        original = getattr(exc, "original_exception", None)
        if original is not None:
            return self.exception_message(original)
        server_message = getattr(exc, "message", None)  # aiorpcx's RPCError: str() is a (code, message) tuple
        if isinstance(server_message, str) and server_message:
            return server_message
        gui_message = getattr(exc, "get_message_for_gui", None)
        if callable(gui_message):
            try:
                return str(gui_message())
            except Exception:  # TxBroadcastError's own base raises NotImplementedError
                pass
        return str(exc) or type(exc).__name__

    def error_from_exception(self, request: Request, exc: Exception) -> RPCError:
        message = self.exception_message(exc)
        code = map_message(self.spec, message)
        if code is not None:
            return RPCError(code, message)
        return super().error_from_exception(request, exc)
