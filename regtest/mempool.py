"""The mempool: accepts broadcast transactions with Bitcoin Core's checks and error codes, feeds the miner.

Acceptance follows Core's sendrawtransaction / AcceptToMemoryPool order and reject reasons: decode, context-free
checks, coinbase, standard version and size, finality, already-in-mempool, conflicts (BIP125 replacement,
regtest/rbf.py), missing or spent inputs, amounts and coinbase maturity, the minimum relay fee, replacement
rules, then scripts and signatures (the chain's verify_scripts: Bitcoin Core's kernel, or nothing in the
Bitcoin Cash mode), then the caller's maxfeerate. Not done: BIP68 relative locks, Core's policy-only script
flags, package relay, ancestor/descendant limits.
A transaction whose outputs are already in the UTXO set gets -27 "Transaction already in block chain": Core's
wording before v28 (later "Transaction outputs already in utxo set"), kept because Electrum 4.3.4 recognises it.
"""

from __future__ import annotations

import json
import logging
import os
import time
import weakref
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from .consensus import COIN, Coin, check_transaction, check_tx_inputs, is_final
from .errors import RPC_DESERIALIZATION_ERROR, RPC_VERIFY_ALREADY_IN_CHAIN, RPC_VERIFY_ERROR, RPCError, rejected
from .rbf import Original, check_replaceable, check_replacement
from .serialize import Block, Tx

log = logging.getLogger(__name__)

MEMPOOL_HEIGHT = 0x7FFFFFFF  # Core's height marker for coins created by unconfirmed transactions
MIN_RELAY_FEE_PER_KVB = 1000  # satoshis per 1000 vbytes, Core's -minrelaytxfee default
DEFAULT_MAX_FEE_RATE = Decimal("0.10")  # BTC/kvB, sendrawtransaction's maxfeerate default


class ChainView(Protocol):
    """What the mempool needs of the chain (regtest.chain.Chain); declared here so mempool imports no chain."""

    segwit: bool
    datadir: Path | None

    @property
    def height(self) -> int: ...

    def median_time_past(self, height: int | None = None) -> int: ...

    def coin(self, outpoint: tuple[str, int]) -> Coin | None: ...

    def verify_scripts(self, tx: Tx, coins: list[Coin], ancestors: list[Tx]) -> None: ...


@dataclass
class Entry:
    tx: Tx
    txid: str
    fee: int
    vsize: int
    time: int
    replaces: tuple[str, ...] = ()  # what accepting it evicts (BIP125): direct conflicts and their descendants


class Mempool:
    def __init__(self, chain: ChainView) -> None:
        # A weak proxy: the chain owns its mempool, so a strong reference back would make every dropped node
        # cyclic garbage, and its Core kernel would then be destroyed by a collection at any allocation, even
        # inside the kernel's own log callback (see regtest/kernel.py _gc_paused). Reference counting frees it.
        self.chain: ChainView = weakref.proxy(chain)
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
        conflicting = dict.fromkeys(self.spends[i.outpoint] for i in tx.inputs if i.outpoint in self.spends)
        direct = [self._original(t) for t in conflicting]
        check_replaceable(direct, self.ancestors)
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
        evicted: list[Original] = []
        if direct:
            evicted = [self._original(t) for t in self._with_descendants([o.txid for o in direct])]
            check_replacement(tx, fee, vsize, direct, evicted, set(self.entries))
        self.chain.verify_scripts(tx, coins, self.ancestors_of_tx(tx))  # type: ignore[arg-type]
        return Entry(tx, txid, fee, vsize, int(time.time()), tuple(o.txid for o in evicted))

    def _original(self, txid: str) -> Original:
        entry = self.entries[txid]
        return Original(txid, entry.tx, entry.fee, entry.vsize)

    def _with_descendants(self, txids: list[str]) -> list[str]:
        """`txids` and every mempool transaction spending from them, each once."""
        found: dict[str, None] = {}
        todo = list(txids)
        while todo:
            txid = todo.pop()
            if txid in found:
                continue
            found[txid] = None
            for n in range(len(self.entries[txid].tx.outputs)):
                child = self.spends.get((txid, n))
                if child is not None:
                    todo.append(child)
        return list(found)

    def ancestors(self, txid: str) -> list[Tx]:
        """The unconfirmed ancestors of a mempool transaction, parents before children."""
        return self.ancestors_of_tx(self.entries[txid].tx)

    def ancestors_of_tx(self, tx: Tx) -> list[Tx]:
        seen: set[str] = set()
        todo = [txin.outpoint[0] for txin in tx.inputs]
        while todo:
            txid = todo.pop()
            if txid in self.entries and txid not in seen:
                seen.add(txid)
                todo += [txin.outpoint[0] for txin in self.entries[txid].tx.inputs]
        return [e.tx for t, e in self.entries.items() if t in seen]  # insertion order: parents first

    def add(self, entry: Entry) -> None:
        for txid in entry.replaces:
            if txid in self.entries:
                self._remove(txid)
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

    def update_for_reorg(self, resurrected: list[Tx]) -> None:
        """After a reorg: the disconnected blocks' transactions come back, then everything is checked again
        against the new chain, so what the new branch confirmed or conflicts with leaves (Core's
        MaybeUpdateMempoolForReorg); replacements are not applied here (each keeps what it had)."""
        candidates = resurrected + [e.tx for e in self.entries.values()]
        self.entries.clear()
        self.spends.clear()
        for tx in candidates:
            try:
                entry = self.check(tx)
            except RPCError as e:
                log.info("reorg: %s leaves the mempool (%s)", tx.txid, e.message)
                continue
            if not entry.replaces:
                self.add(entry)
        self.save()

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
