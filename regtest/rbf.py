"""BIP125 replace-by-fee as Bitcoin Core applies it (opt-in signalling, -mempoolfullrbf=0), as plain checks.

Core's rules (doc/policy/mempool-replacements.md, policy/rbf.cpp), with its reject reasons and messages:
1. every directly conflicting transaction signals replaceability (an input with nSequence <= 0xfffffffd, or
   an unconfirmed ancestor that does), else "txn-mempool-conflict";
2. the replacement adds no unconfirmed input that no conflicting transaction spent
   ("replacement-adds-unconfirmed");
3. it pays at least the fees of everything it evicts, 4. plus its own size at the incremental relay fee
   ("insufficient fee");
5. it evicts at most 100 transactions ("too many potential replacements");
and its feerate beats each direct conflict's ("insufficient fee"), and it spends no output of a transaction
it would evict ("bad-txns-spends-conflicting-tx").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .consensus import format_money
from .errors import RPCError, rejected
from .serialize import Tx

MAX_BIP125_RBF_SEQUENCE = 0xFFFFFFFD
MAX_REPLACEMENT_CANDIDATES = 100
INCREMENTAL_RELAY_FEE_PER_KVB = 1000  # Core's -incrementalrelayfee default, satoshis per 1000 vbytes


@dataclass(frozen=True)
class Original:
    """A mempool transaction a replacement would evict: what the rules read of it."""

    txid: str
    tx: Tx
    fee: int
    vsize: int


def signals_rbf(tx: Tx) -> bool:
    return any(txin.sequence <= MAX_BIP125_RBF_SEQUENCE for txin in tx.inputs)


def fee_rate_text(fee: int, vsize: int) -> str:
    """CFeeRate::ToString: satoshis per 1000 vbytes written as BTC/kvB with 8 decimals."""
    per_kvb = fee * 1000 // vsize if vsize else 0
    return f"{per_kvb // 100_000_000}.{per_kvb % 100_000_000:08d} BTC/kvB"


def check_replaceable(direct: Iterable[Original], ancestors_of: Callable[[str], list[Tx]]) -> None:
    """Rule 1: every direct conflict opts in, by itself or through an unconfirmed ancestor."""
    for original in direct:
        if not (signals_rbf(original.tx) or any(signals_rbf(a) for a in ancestors_of(original.txid))):
            raise rejected("txn-mempool-conflict")


def check_replacement(
    tx: Tx, fee: int, vsize: int, direct: list[Original], evicted: list[Original], unconfirmed_inputs: set[str]
) -> None:
    """Rules 2 to 5 and the feerate rule for `tx` (fee, vsize) evicting `evicted` (direct conflicts included)."""
    txid = tx.txid
    for original in direct:
        if fee * original.vsize <= original.fee * vsize:
            raise _insufficient(
                f"rejecting replacement {txid}; new feerate {fee_rate_text(fee, vsize)} <= "
                f"old feerate {fee_rate_text(original.fee, original.vsize)}"
            )
    if len(evicted) > MAX_REPLACEMENT_CANDIDATES:
        raise RPCError(
            -26,
            f"too many potential replacements, rejecting replacement {txid}; too many potential replacements "
            f"({len(evicted)} > {MAX_REPLACEMENT_CANDIDATES})",
        )
    evicted_ids = {o.txid for o in evicted}
    for txin in tx.inputs:
        if txin.outpoint[0] in evicted_ids:
            raise RPCError(
                -26, f"bad-txns-spends-conflicting-tx, {txid} spends conflicting transaction {txin.outpoint[0]}"
            )
    spent_by_direct = {txin.outpoint[0] for o in direct for txin in o.tx.inputs}
    for index, txin in enumerate(tx.inputs):
        if txin.outpoint[0] in unconfirmed_inputs and txin.outpoint[0] not in spent_by_direct:
            raise RPCError(-26, f"replacement-adds-unconfirmed, replacement {txid} adds unconfirmed input, idx {index}")
    original_fees = sum(o.fee for o in evicted)
    if fee < original_fees:
        raise _insufficient(
            f"rejecting replacement {txid}, less fees than conflicting txs; "
            f"{format_money(fee)} < {format_money(original_fees)}"
        )
    relay = INCREMENTAL_RELAY_FEE_PER_KVB * vsize // 1000
    if fee - original_fees < relay:
        raise _insufficient(
            f"rejecting replacement {txid}, not enough additional fees to relay; "
            f"{format_money(fee - original_fees)} < {format_money(relay)}"
        )


def _insufficient(detail: str) -> RPCError:
    return rejected(f"insufficient fee, {detail}")
