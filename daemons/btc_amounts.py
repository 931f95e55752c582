"""Coin amounts as they cross the wire: decimal strings in coin units, never floats."""

from __future__ import annotations

from decimal import Decimal

SATOSHIS = Decimal(10) ** 8


def format_amount(satoshis: int | None, decimals: int = 8) -> str | None:
    """Satoshis as a plain decimal string in coin units ('0.0001', never '1E-4' or a float)."""
    if satoshis is None:
        return None
    text = format(Decimal(satoshis).scaleb(-decimals), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
