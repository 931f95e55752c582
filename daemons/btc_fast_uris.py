"""Payment URIs (BIP21) built once per set of arguments (issue 18).

get_request and add_request export the request with its URI, which Electrum builds again on every call
(``util.create_bip21_uri``): it checks the address, formats the amount and percent-encodes the message and
each extra field (time, exp) in pure Python, a fifth of what get_request costs the coin side. The URI is a
function of those arguments and the network alone (the scheme is a constant; the address check is the
network's), so its answers are kept per (arguments, network), bounded. Nothing about a payment is kept: the
request's status and transactions are read from the wallet on every call.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

from .btc_fast_calls import PureResults

# Characters of address, message and extra field texts together above which a URI is built each time (kept
# answers stay small whatever a client writes in a request's message).
LONGEST_URI_ARGUMENTS = 2048


def uri_arguments(addr: Any, amount_sat: Any, message: Any, extra: Any) -> tuple[Any, ...] | None:
    """The arguments as a key, or None when they are not plain texts and integers of a bounded size."""
    if type(addr) is not str or (amount_sat is not None and type(amount_sat) is not int):
        return None
    if message is not None and type(message) is not str:
        return None
    size = len(addr) + (len(message) if message else 0)
    fields: tuple[tuple[str, str], ...] = ()
    if extra is not None:
        if type(extra) is not dict:
            return None
        fields = tuple(extra.items())  # in their order: the URI's query follows it
        for key, value in fields:
            if type(key) is not str or type(value) is not str:
                return None
            size += len(key) + len(value)
    if size > LONGEST_URI_ARGUMENTS:
        return None
    return addr, amount_sat, message, extra is None, fields


def remember_bip21_uris(util: ModuleType, constants: ModuleType) -> None:
    """Make Electrum's ``util.create_bip21_uri`` keep its answers per (arguments, network), 8,192 at most (once
    per process; the original stays as ``__wrapped__``). ``Invoice.get_bip21_URI`` imports it from ``util`` on
    each call, so it gets this one; a module that imported the original by name keeps it."""
    original = util.create_bip21_uri
    if getattr(original, "answers", None) is not None:
        return
    answers = PureResults(8192)
    lock = threading.Lock()

    def create_bip21_uri(
        addr: Any, amount_sat: Any, message: Any, *, extra_query_params: dict[str, str] | None = None
    ) -> str:
        arguments = uri_arguments(addr, amount_sat, message, extra_query_params)
        if arguments is None:
            return original(addr, amount_sat, message, extra_query_params=extra_query_params)
        key = (arguments, constants.net)
        known = answers.results.get(key)
        if known is None:  # a URI is never None: the original returns a text or raises (not kept)
            known = original(addr, amount_sat, message, extra_query_params=extra_query_params)
            with lock:  # Electrum also runs this in worker threads (wallets are built off the loop)
                answers.put(key, known)
        return known

    create_bip21_uri.__wrapped__ = original  # type: ignore[attr-defined]
    create_bip21_uri.answers = answers  # type: ignore[attr-defined]
    util.create_bip21_uri = create_bip21_uri
