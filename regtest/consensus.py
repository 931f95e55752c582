"""Regtest consensus constants and the transaction checks shared by the mempool and block connection.

Mirrors Bitcoin Core's CheckTransaction / Consensus::CheckTxInputs / IsFinalTx (reject reasons spelled as Core
spells them, since Electrum matches on them), minus script and signature verification.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from .errors import rejected
from .serialize import Tx

COIN = 100_000_000
MAX_MONEY = 21_000_000 * COIN
REGTEST_BITS = 0x207FFFFF
COINBASE_MATURITY = 100
HALVING_INTERVAL = 150  # regtest's nSubsidyHalvingInterval
MAX_BLOCK_WEIGHT = 4_000_000
LOCKTIME_THRESHOLD = 500_000_000
MIN_STANDARD_TX_NONWITNESS_SIZE = 65


@dataclass(frozen=True)
class Coin:
    """An unspent output, as Core's coins view keeps it."""

    value: int
    script: bytes
    height: int  # -1 (MEMPOOL_HEIGHT) for an output of an unconfirmed transaction
    coinbase: bool = False


def btc(sats: int) -> Decimal:
    """Satoshis -> a Decimal in BTC with 8 places, as Core prints amounts."""
    return (Decimal(sats) / COIN).quantize(Decimal("0.00000001"))


def format_money(sats: int) -> str:
    """Core's FormatMoney: 8 decimals with trailing zeros trimmed down to two."""
    text = f"{sats // COIN}.{sats % COIN:08d}"
    return text[:-6] + text[-6:].rstrip("0")


def block_subsidy(height: int) -> int:
    halvings = height // HALVING_INTERVAL
    return 0 if halvings >= 64 else (50 * COIN) >> halvings


def check_transaction(tx: Tx) -> None:
    """Context-free checks (Core's CheckTransaction)."""
    if not tx.inputs:
        raise rejected("bad-txns-vin-empty")
    if not tx.outputs:
        raise rejected("bad-txns-vout-empty")
    if len(tx.serialize(with_witness=False)) * 4 > MAX_BLOCK_WEIGHT:
        raise rejected("bad-txns-oversize")
    total = 0
    for txout in tx.outputs:
        if txout.value < 0:
            raise rejected("bad-txns-vout-negative")
        if txout.value > MAX_MONEY:
            raise rejected("bad-txns-vout-toolarge")
        total += txout.value
        if total > MAX_MONEY:
            raise rejected("bad-txns-txouttotal-toolarge")
    if len({txin.outpoint for txin in tx.inputs}) != len(tx.inputs):
        raise rejected("bad-txns-inputs-duplicate")
    if tx.is_coinbase():
        if not 2 <= len(tx.inputs[0].script_sig) <= 100:
            raise rejected("bad-cb-length")
    elif any(txin.is_null() for txin in tx.inputs):
        raise rejected("bad-txns-prevout-null")


def is_final(tx: Tx, height: int, median_time: int) -> bool:
    """Core's IsFinalTx for a transaction to be included at `height`."""
    if tx.locktime == 0:
        return True
    limit = height if tx.locktime < LOCKTIME_THRESHOLD else median_time
    if tx.locktime < limit:
        return True
    return all(txin.sequence == 0xFFFFFFFF for txin in tx.inputs)


def check_tx_inputs(tx: Tx, coins: list[Coin], spend_height: int) -> int:
    """Amount and maturity checks (Core's Consensus::CheckTxInputs); returns the fee in satoshis."""
    value_in = 0
    for coin in coins:
        if coin.coinbase and spend_height - coin.height < COINBASE_MATURITY:
            raise rejected(
                f"bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth {spend_height - coin.height}"
            )
        value_in += coin.value
        if value_in > MAX_MONEY:
            raise rejected("bad-txns-inputvalues-outofrange")
    value_out = sum(txout.value for txout in tx.outputs)
    if value_in < value_out:
        raise rejected(
            f"bad-txns-in-belowout, value in ({format_money(value_in)}) < value out ({format_money(value_out)})"
        )
    return value_in - value_out


CoinLookup = Callable[[tuple[str, int]], "Coin | None"]
