"""The mempool: accepts broadcast transactions with Bitcoin Core's checks and error codes, feeds the miner.

Acceptance follows Core's sendrawtransaction / AcceptToMemoryPool order and reject reasons: decode, context-free
checks, coinbase, standard version and size, finality, already-in-mempool, conflicts, missing or spent inputs,
amounts and coinbase maturity, the minimum relay fee, then the caller's maxfeerate. Not done: script and
signature verification, BIP68 relative locks, replacement (a conflicting transaction is always refused with
"txn-mempool-conflict", as Core did for transactions not signalling BIP125 before full RBF), package relay.
A transaction whose outputs are already in the UTXO set gets -27 "Transaction already in block chain": Core's
wording before v28 (later "Transaction outputs already in utxo set"), kept because Electrum 4.3.4 recognises it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from .consensus import COIN, Coin, check_transaction, check_tx_inputs, is_final
from .errors import RPC_DESERIALIZATION_ERROR, RPC_VERIFY_ALREADY_IN_CHAIN, RPC_VERIFY_ERROR, RPCError, rejected
from .serialize import Block, Tx

if TYPE_CHECKING:
    from .chain import Chain

log = logging.getLogger(__name__)

MEMPOOL_HEIGHT = 0x7FFFFFFF  # Core's height marker for coins created by unconfirmed transactions
MIN_RELAY_FEE_PER_KVB = 1000  # satoshis per 1000 vbytes, Core's -minrelaytxfee default
DEFAULT_MAX_FEE_RATE = Decimal("0.10")  # BTC/kvB, sendrawtransaction's maxfeerate default


@dataclass
class Entry:
    tx: Tx
    txid: str
    fee: int
    vsize: int
    time: int


class Mempool:
    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.entries: dict[str, Entry] = {}  # insertion order keeps parents before children
        self.spends: dict[tuple[str, int], str] = {}  # outpoint -> txid of the mempool tx spending it

    def __contains__(self, txid: str) -> bool:
        return txid in self.entries

    def coin(self, outpoint: tuple[str, int]) -> Coin | None:
        """The coins view a new transaction sees: chain UTXOs plus mempool outputs."""
        coin = self.chain.coin(outpoint)
        if coin is not None:
            return coin
        entry = self.entries.get(outpoint[0])
        if entry is not None and outpoint[1] < len(entry.tx.outputs):
            out = entry.tx.outputs[outpoint[1]]
            return Coin(out.value, out.script, MEMPOOL_HEIGHT)
        return None

    # ---- acceptance ----
    def broadcast(self, tx: Tx, max_fee_rate: Decimal = DEFAULT_MAX_FEE_RATE) -> str:
        """sendrawtransaction semantics: idempotent for mempool txs, -27 for confirmed ones, else accept."""
        txid = tx.txid
        if txid in self.entries:
            return txid
        if any(self.chain.coin((txid, n)) for n in range(len(tx.outputs))):
            raise RPCError(RPC_VERIFY_ALREADY_IN_CHAIN, "Transaction already in block chain")
        entry = self.check(tx)
        if max_fee_rate and entry.fee > int(max_fee_rate * COIN) * entry.vsize // 1000:
            raise RPCError(RPC_VERIFY_ERROR, "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)")
        self.add(entry)
        return txid

    def check(self, tx: Tx) -> Entry:
        """Every acceptance rule, without changing anything (also serves testmempoolaccept)."""
        if tx.has_witness() and not self.chain.segwit:
            raise RPCError(RPC_DESERIALIZATION_ERROR, "TX decode failed")  # a chain without segwit cannot parse it
        check_transaction(tx)
        if tx.is_coinbase():
            raise rejected("coinbase")
        if not 1 <= tx.version <= 3:
            raise rejected("version")
        if len(tx.serialize(with_witness=False)) < 65:
            raise rejected("tx-size-small")
        next_height = self.chain.height + 1
        if not is_final(tx, next_height, self.chain.median_time_past()):
            raise rejected("non-final")
        txid = tx.txid
        if txid in self.entries:
            raise rejected("txn-already-in-mempool")
        if any(txin.outpoint in self.spends for txin in tx.inputs):
            raise rejected("txn-mempool-conflict")
        coins = [self.coin(txin.outpoint) for txin in tx.inputs]
        if any(c is None for c in coins):
            if any(self.chain.coin((txid, n)) for n in range(len(tx.outputs))):
                raise rejected("txn-already-known")
            raise RPCError(RPC_VERIFY_ERROR, "bad-txns-inputs-missingorspent")
        fee = check_tx_inputs(tx, coins, next_height)  # type: ignore[arg-type]
        vsize = tx.vsize
        min_fee = MIN_RELAY_FEE_PER_KVB * vsize // 1000
        if fee < min_fee:
            raise rejected(f"min relay fee not met, {fee} < {min_fee}")
        return Entry(tx, txid, fee, vsize, int(time.time()))

    def add(self, entry: Entry) -> None:
        self.entries[entry.txid] = entry
        for txin in entry.tx.inputs:
            self.spends[txin.outpoint] = entry.txid
        self.save()

    # ---- mining ----
    def block_candidates(self, max_weight: int) -> tuple[list[Tx], int]:
        """Mempool transactions in dependency order that fit in a block, and their total fee."""
        txs: list[Tx] = []
        skipped: set[str] = set()
        weight = fees = 0
        for txid, entry in self.entries.items():
            parents = {txin.outpoint[0] for txin in entry.tx.inputs}
            if parents & skipped or weight + entry.tx.weight > max_weight:
                skipped.add(txid)
                continue
            txs.append(entry.tx)
            weight += entry.tx.weight
            fees += entry.fee
        return txs, fees

    def remove_for_block(self, block: Block) -> None:
        """Drop the mined transactions, then anything left that conflicts with them (and its descendants)."""
        changed = False
        for tx in block.txs[1:]:
            if tx.txid in self.entries:
                self._remove(tx.txid)
                changed = True
        for tx in block.txs[1:]:
            for txin in tx.inputs:
                conflict = self.spends.get(txin.outpoint)
                if conflict is not None:
                    self._remove_with_descendants(conflict)
                    changed = True
        if changed:
            self.save()

    def _remove(self, txid: str) -> None:
        entry = self.entries.pop(txid)
        for txin in entry.tx.inputs:
            if self.spends.get(txin.outpoint) == txid:
                del self.spends[txin.outpoint]

    def _remove_with_descendants(self, txid: str) -> None:
        entry = self.entries.get(txid)
        if entry is None:
            return
        self._remove(txid)
        for n in range(len(entry.tx.outputs)):
            child = self.spends.get((txid, n))
            if child is not None:
                self._remove_with_descendants(child)

    # ---- persistence (Core keeps a mempool.dat too) ----
    def save(self) -> None:
        datadir = self.chain.datadir
        if not datadir:
            return
        tmp = datadir / "mempool.dat.tmp"
        tmp.write_text(json.dumps([e.tx.hex() for e in self.entries.values()]))
        os.replace(tmp, datadir / "mempool.dat")

    def load(self) -> None:
        path = self.chain.datadir / "mempool.dat" if self.chain.datadir else None
        if not path or not path.exists():
            return
        for raw in json.loads(path.read_text() or "[]"):
            try:
                self.add(self.check(Tx.from_hex(raw)))
            except (RPCError, ValueError) as e:
                log.info("mempool.dat: dropping a transaction no longer valid (%s)", e)
        self.save()
