"""Coin amounts as they cross the wire: decimal strings in coin units, never floats.

Client amounts are checked here before they reach Electrum, whose ``satoshis()`` truncates what
it cannot represent (``"0.000000001"`` became a request for ``"0."``) and fails deep inside on
what no coin can hold (more than the supply): every such input is the client's error, -32602.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from .jsonrpc import INVALID_PARAMS, RPCError

SATOSHIS = Decimal(10) ** 8
COIN_SUPPLY = Decimal(21_000_000)  # Bitcoin's and Bitcoin Cash's: no amount can exceed it
MAX_EXPIRY = 10 * 366 * 86400  # seconds: ten years, far beyond any payment request's life
# Electrum's "spend the maximum" forms of an amount: "!" or a weight such as "2!" (parse_max_spend).
MAX_SPEND = re.compile(r"^[0-9]*!$")


def format_amount(satoshis: int | None, decimals: int = 8) -> str | None:
    """Satoshis as a plain decimal string in coin units ('0.0001', never '1E-4' or a float)."""
    if satoshis is None:
        return None
    text = format(Decimal(satoshis).scaleb(-decimals), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def parse_amount(name: str, value: Any, decimals: int = 8, supply: Decimal = COIN_SUPPLY) -> Decimal:
    """A client's amount in coin units: a number or decimal string, zero or positive, with at most
    ``decimals`` decimals and at most ``supply``; -32602 naming ``name`` otherwise. "-0" is 0."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise RPCError(INVALID_PARAMS, f"'{name}' must be an amount in coin units (a decimal string)")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else str(value))
    except (InvalidOperation, ValueError):
        raise RPCError(INVALID_PARAMS, f"'{name}' is not a decimal amount") from None
    if not amount.is_finite():
        raise RPCError(INVALID_PARAMS, f"'{name}' must be a finite amount")
    if amount < 0:
        raise RPCError(INVALID_PARAMS, f"'{name}' must not be negative")
    if amount > supply:
        raise RPCError(INVALID_PARAMS, f"'{name}' exceeds the coin's supply of {supply}")
    if amount != amount.quantize(Decimal(1).scaleb(-decimals)):
        raise RPCError(INVALID_PARAMS, f"'{name}' has more than {decimals} decimals")
    return abs(amount).quantize(Decimal(1).scaleb(-decimals)).normalize() + 0


def amount_text(amount: Decimal) -> str:
    """A checked amount as Electrum parses it: plain notation, no exponent ('0.00000001', '1')."""
    return format(amount, "f")


def check_expiry(name: str, value: Any) -> int | None:
    """Seconds until a request expires: None or 0 (never), else 1 to MAX_EXPIRY; -32602 otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RPCError(INVALID_PARAMS, f"'{name}' must be a number of seconds")
    if not 0 <= value <= MAX_EXPIRY:
        raise RPCError(INVALID_PARAMS, f"'{name}' must be between 0 (never expires) and {MAX_EXPIRY} seconds")
    return int(value) or None


def check_fee_rate(name: str, value: Any, supply: Decimal = COIN_SUPPLY) -> Any:
    """A fee rate (per byte or per kilobyte): a non-negative finite number no larger than the supply in
    its smallest units; -32602 otherwise. Returned unchanged for the library to parse."""
    if value is None:
        return None
    try:
        rate = Decimal(value.strip() if isinstance(value, str) else str(value))
    except (InvalidOperation, ValueError):
        raise RPCError(INVALID_PARAMS, f"'{name}' is not a number") from None
    if isinstance(value, bool) or not rate.is_finite() or not 0 <= rate <= supply * SATOSHIS:
        raise RPCError(INVALID_PARAMS, f"'{name}' must be a non-negative fee rate")
    return value
