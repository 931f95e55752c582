"""The node's own block checks, for the Bitcoin Cash mode only (the Bitcoin mode asks Bitcoin Core's kernel).

Link, proof of work at the regtest target, time past the median, merkle root, weight, coinbase position and
BIP34 height, witness data (none allowed without segwit), per-transaction context-free checks, finality,
input existence, amounts, coinbase maturity and the coinbase value, with Core's reject reasons. Scripts and
signatures are not verified: nothing here can run Bitcoin Cash's script rules.
"""

from __future__ import annotations

from typing import Protocol

from .blocks import BlockError, bip34_prefix, find_commitment, witness_commitment
from .consensus import MAX_BLOCK_WEIGHT, REGTEST_BITS, Coin, block_subsidy, check_transaction, check_tx_inputs, is_final
from .serialize import Block, bits_to_target


class ChainState(Protocol):
    """What the checks read of the chain (regtest.chain.Chain provides it)."""

    segwit: bool

    @property
    def tip(self) -> Block: ...

    def median_time_past(self, height: int | None = None) -> int: ...

    def coin(self, outpoint: tuple[str, int]) -> Coin | None: ...


def check_block(chain: ChainState, block: Block, height: int) -> None:
    """Every rule above for `block` at `height` on the chain's tip; BlockError names the first one broken."""
    header = block.header
    if header.prev_hash != chain.tip.hash:
        raise BlockError("prev-blk-not-found")
    if header.bits != REGTEST_BITS or int.from_bytes(block.hash, "little") > bits_to_target(header.bits):
        raise BlockError("high-hash")
    if header.time <= chain.median_time_past():
        raise BlockError("time-too-old")
    if not block.txs or header.merkle_root != block.computed_merkle_root():
        raise BlockError("bad-txnmrklroot")
    if block.weight > MAX_BLOCK_WEIGHT:
        raise BlockError("bad-blk-weight")
    coinbase = block.txs[0]
    if not coinbase.is_coinbase() or any(tx.is_coinbase() for tx in block.txs[1:]):
        raise BlockError("bad-cb-missing")
    if not coinbase.inputs[0].script_sig.startswith(bip34_prefix(height)):
        raise BlockError("bad-cb-height")
    _check_witness(chain.segwit, block)
    fees = _check_block_txs(chain, block, height)
    if sum(o.value for o in coinbase.outputs) > block_subsidy(height) + fees:
        raise BlockError("bad-cb-amount")


def _check_witness(segwit: bool, block: Block) -> None:
    commitment = find_commitment(block.txs[0]) if segwit else None
    if commitment is None:
        if any(tx.has_witness() for tx in block.txs):
            raise BlockError("unexpected-witness")
        return
    if block.txs[0].inputs[0].witness != [bytes(32)]:
        raise BlockError("bad-witness-nonce-size")
    if commitment != witness_commitment(block.txs):
        raise BlockError("bad-witness-merkle-match")


def _check_block_txs(chain: ChainState, block: Block, height: int) -> int:
    created: dict[tuple[str, int], Coin] = {}
    spent: set[tuple[str, int]] = set()
    mtp, fees = chain.median_time_past(), 0
    for tx in block.txs:
        try:
            check_transaction(tx)
        except Exception as e:
            raise BlockError(str(e)) from e
        if not tx.is_coinbase():
            if not is_final(tx, height, mtp):
                raise BlockError("bad-txns-nonfinal")
            coins = []
            for txin in tx.inputs:
                coin = created.get(txin.outpoint) or chain.coin(txin.outpoint)
                if coin is None or txin.outpoint in spent:
                    raise BlockError("bad-txns-inputs-missingorspent")
                spent.add(txin.outpoint)
                coins.append(coin)
            try:
                fees += check_tx_inputs(tx, coins, height)
            except Exception as e:
                raise BlockError(str(e)) from e
        for n, txout in enumerate(tx.outputs):
            created[(tx.txid, n)] = Coin(txout.value, txout.script, height, tx.is_coinbase())
    return fees
