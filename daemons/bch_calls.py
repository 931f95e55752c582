"""Calling Electron Cash from the daemon's loop: worker threads, catchable errors, JSON-safe results.

Electron Cash blocks (its wallets and network are threaded) and often raises bare ``BaseException``;
every BCH module calls it through these helpers, so no call stalls the loop or escapes the core's
error mapping. Nothing here imports Electron Cash: the helpers take its objects as arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any


class ElectronCashError(Exception):
    """An error Electron Cash raised as a bare BaseException (it often does), made catchable."""


@contextlib.contextmanager
def electron_errors() -> Iterator[None]:
    """Turn Electron Cash's ``raise BaseException(msg)`` into an Exception with the same message.

    The core turns Exceptions into JSON-RPC errors; a bare BaseException would escape it.
    """
    try:
        yield
    except (KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError):
        raise
    except Exception:
        raise
    except BaseException as exc:
        raise ElectronCashError(str(exc) or type(exc).__name__) from exc


async def in_thread(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking Electron Cash call in a worker thread, with its errors made catchable."""

    def call() -> Any:
        with electron_errors():
            return func(*args, **kwargs)

    return await asyncio.to_thread(call)


def to_json(value: Any) -> Any:
    """Electron Cash results made JSON-safe: Address objects (namedtuples) become CashAddr strings."""
    if hasattr(value, "to_ui_string"):
        return value.to_ui_string()
    if isinstance(value, dict):
        return {str(to_json(k)): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value
