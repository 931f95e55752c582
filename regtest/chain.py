"""The block chain: a tree of known blocks, the active chain with its UTXO/tx/spender indexes, mining, reorgs.

Who decides validity: with segwit (the Bitcoin mode) every block goes through Bitcoin Core's consensus engine
(regtest/kernel.py) before it joins the active chain, and Core's reject reason is the error. In the Bitcoin
Cash mode (`segwit=False`) no such library exists, so the node's own checks in regtest/block_checks.py judge
(link, proof of work, merkle root, BIP34 height, coinbase value, inputs, amounts, maturity, finality; never
scripts or signatures).

Every accepted block is kept, on any branch; the active chain is the valid branch with the most work (all
regtest blocks weigh the same, so the longest), first seen winning a tie, as in Core. invalidateblock and
reconsiderblock mark blocks and re-select; switching branches disconnects blocks with their undo data,
replays the new active chain into a fresh kernel (it has no invalidateblock of its own) and connects the new
branch through Core. Blocks are persisted as one hex block per line in <datadir>/blocks.dat (every branch, in
arrival order) and the invalidated hashes in <datadir>/invalid.json; both are replayed and re-validated on
start.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

from .block_checks import check_block
from .blocks import BlockError, assemble_block, genesis_block
from .consensus import MAX_BLOCK_WEIGHT, Coin, block_subsidy
from .errors import RPCError, rejected
from .mempool import Mempool
from .serialize import Block, Tx, bits_to_target, hash_hex

log = logging.getLogger(__name__)

Outpoint = tuple[str, int]


class Chain:
    """One regtest node's chain state and mempool; every mutation goes through accept_block or the mempool."""

    def __init__(self, datadir: Path | str | None = None, segwit: bool = True, core: bool = True) -> None:
        """`core=False` judges with the node's own checks even with segwit (what the node did before Core's
        kernel: no scripts verified); only bench/regtest_node.py uses it, as the baseline."""
        self.datadir = Path(datadir) if datadir else None
        self.segwit = segwit  # False: Bitcoin Cash rules here (no witness data, no commitment), for ElectrumX's BCH
        self.blocks: list[Block] = []  # the active chain, genesis first
        self.heights: dict[bytes, int] = {}  # active blocks only
        self.txindex: dict[str, tuple[int, int]] = {}  # txid -> (height, position in block)
        self.utxos: dict[Outpoint, Coin] = {}
        self.spenders: dict[Outpoint, tuple[str, int]] = {}  # outpoint -> (spending txid, height)
        self.known: dict[bytes, Block] = {}  # every accepted block, any branch
        self.tree_heights: dict[bytes, int] = {}
        self.arrival: dict[bytes, int] = {}  # first seen wins among equal work
        self.invalid: set[bytes] = set()  # invalidateblock'd, or refused when its branch was connected
        self.refused: set[bytes] = set()  # blocks refused on arrival (never stored): "duplicate-invalid" again
        self._undo: dict[bytes, list[tuple[Outpoint, Coin]]] = {}
        self._script_errors: dict[tuple[str, bytes], str] = {}
        self.mempool = Mempool(self)
        self.kernel = self._make_kernel() if segwit and core else None
        genesis = genesis_block()
        self._remember(genesis, persist=False)
        self._connect(genesis)
        if self.datadir:
            self.datadir.mkdir(parents=True, exist_ok=True)
            self._load()

    def _make_kernel(self):
        from .kernel import CoreKernel

        workdir = None
        if self.datadir:
            workdir = self.datadir / "kernel"
            shutil.rmtree(workdir, ignore_errors=True)  # scratch files of a previous run
        return CoreKernel(workdir)

    def close(self) -> None:
        if self.kernel is not None:
            self.kernel.close()

    # ---- queries ----
    @property
    def height(self) -> int:
        return len(self.blocks) - 1

    @property
    def tip(self) -> Block:
        return self.blocks[-1]

    def median_time_past(self, height: int | None = None) -> int:
        height = self.height if height is None else height
        times = [b.header.time for b in self.blocks[max(0, height - 10) : height + 1]]
        return sorted(times)[len(times) // 2]

    def confirmed_tx(self, txid: str) -> tuple[Tx, int] | None:
        where = self.txindex.get(txid)
        if where is None:
            return None
        height, pos = where
        return self.blocks[height].txs[pos], height

    def coin(self, outpoint: Outpoint) -> Coin | None:
        return self.utxos.get(outpoint)

    def is_active(self, block_hash: bytes) -> bool:
        return block_hash in self.heights

    # ---- mining ----
    def mine(self, script: bytes, now: int | None = None) -> Block:
        """Build a block paying `script` with every mempool transaction, grind it, connect it."""
        block = self.build_block(script, now)
        self.connect_block(block)
        return block

    def build_block(self, script: bytes, now: int | None = None, txs: list[Tx] | None = None) -> Block:
        """A block on the tip with `txs` (default: what the mempool offers) and a coinbase taking their fees.

        An explicit `txs` gets a coinbase of the subsidy alone (always within the limit, fees unknown)."""
        height = self.height + 1
        if txs is None:
            txs, fees = self.mempool.block_candidates(MAX_BLOCK_WEIGHT - 4000)
        else:
            fees = 0
        block_time = max(int(now if now is not None else time.time()), self.median_time_past() + 1)
        return assemble_block(self.tip, height, txs, block_subsidy(height) + fees, script, block_time, self.segwit)

    # ---- script checks for the mempool ----
    def verify_scripts(self, tx: Tx, coins: list[Coin], ancestors: list[Tx]) -> None:
        """Core's kernel verifies every input against its spent output; a failure is Core's sendrawtransaction
        error (-26 "mandatory-script-verify-flag-failed (<Core's script error>)"). `ancestors`: the unconfirmed
        transactions `tx` builds on, needed to let Core name the error (see CoreKernel.script_error)."""
        if self.kernel is None:
            return  # Bitcoin Cash mode: no script interpreter
        if self.kernel.verify_inputs(tx, [(c.value, c.script) for c in coins]) is None:
            return
        key = (tx.wtxid, self.tip.hash)  # Core remembers a failed block: the same probe twice gets no reason
        error = self._script_errors.get(key)
        if error is None:
            probe = self.build_block(b"\x51", txs=[*ancestors, tx])  # OP_TRUE payee: the block is never kept
            error = self.kernel.script_error(probe)
            if error is None:  # Core connected it after all: put the kernel back on our tip
                self.kernel.reset(self.blocks[1:])
                error = "script verification failed"
            self._script_errors[key] = error
        raise rejected(f"mandatory-script-verify-flag-failed ({error})")

    # ---- accepting blocks ----
    def connect_block(self, block: Block, persist: bool = True) -> None:
        """Accept a block (Core's submitblock): it extends the tip, or joins a side branch that may win."""
        block_hash = block.hash
        if block_hash in self.refused:
            raise BlockError("duplicate-invalid")
        if block_hash in self.known:
            raise BlockError("duplicate-invalid" if self._descends_from_invalid(block_hash) else "duplicate")
        prev = block.header.prev_hash
        if prev not in self.known:
            raise BlockError("prev-blk-not-found")
        if self._descends_from_invalid(prev):
            raise BlockError("bad-prevblk")
        if prev == self.tip.hash:
            try:
                self._validate_and_connect(block)
            except BlockError:
                self.refused.add(block_hash)
                raise
            self._remember(block, persist)
            self.mempool.remove_for_block(block)
            return
        if int.from_bytes(block_hash, "little") > bits_to_target(block.header.bits):
            raise BlockError("high-hash")
        if block.header.merkle_root != block.computed_merkle_root():
            raise BlockError("bad-txnmrklroot")
        self._remember(block, persist)  # a side branch: fully checked if it ever becomes the best one
        self.activate_best_chain()

    def _validate_and_connect(self, block: Block) -> None:
        """Core (or, without segwit, block_checks) judges `block` on the tip; then it joins the active chain."""
        if self.kernel is not None:
            from .kernel import KernelRejected

            try:
                self.kernel.connect(block)
            except KernelRejected as e:
                raise BlockError(str(e)) from None
        else:
            check_block(self, block, self.height + 1)
        self._connect(block)

    def _remember(self, block: Block, persist: bool) -> None:
        block_hash = block.hash
        self.known[block_hash] = block
        self.tree_heights[block_hash] = self.tree_heights.get(block.header.prev_hash, -1) + 1
        self.arrival[block_hash] = len(self.arrival)
        if persist and self.datadir:
            with open(self.datadir / "blocks.dat", "a") as f:
                f.write(block.serialize().hex() + "\n")
                f.flush()
                os.fsync(f.fileno())

    # ---- branch selection (invalidateblock / reconsiderblock / a better side branch) ----
    def invalidate(self, block_hash: bytes) -> None:
        """Core's invalidateblock: the block and its descendants leave the active chain for good."""
        if block_hash not in self.known:
            raise RPCError(-5, "Block not found")
        if self.tree_heights[block_hash] == 0:
            raise RPCError(-8, "Genesis block cannot be invalidated")
        self.invalid.add(block_hash)
        self._save_invalid()
        self.activate_best_chain()

    def reconsider(self, block_hash: bytes) -> None:
        """Core's reconsiderblock: clears the marks on the block, its ancestors and its descendants."""
        if block_hash not in self.known:
            raise RPCError(-5, "Block not found")
        ancestors = set(self._ancestors(block_hash))
        self.invalid = {h for h in self.invalid if h not in ancestors and block_hash not in self._ancestors(h)}
        self._save_invalid()
        self.activate_best_chain()

    def _ancestors(self, block_hash: bytes) -> list[bytes]:
        """The block and its ancestors, back to genesis."""
        chain = []
        while block_hash in self.known:
            chain.append(block_hash)
            block_hash = self.known[block_hash].header.prev_hash
        return chain

    def _descends_from_invalid(self, block_hash: bytes) -> bool:
        return any(h in self.invalid for h in self._ancestors(block_hash))

    def best_tip(self) -> bytes:
        """The valid block with the most work, first seen winning a tie."""
        valid: dict[bytes, bool] = {}
        for block_hash in sorted(self.known, key=self.tree_heights.__getitem__):
            prev = self.known[block_hash].header.prev_hash
            valid[block_hash] = block_hash not in self.invalid and valid.get(prev, self.tree_heights[block_hash] == 0)
        candidates = [h for h, ok in valid.items() if ok]
        return max(candidates, key=lambda h: (self.tree_heights[h], -self.arrival[h]))

    def activate_best_chain(self) -> None:
        """Switch the active chain to the best valid branch; a block Core refuses there is marked invalid."""
        disconnected: list[Block] = []
        while (best := self.best_tip()) != self.tip.hash:
            branch = [h for h in reversed(self._ancestors(best)) if h not in self.heights]
            fork_height = self.tree_heights[branch[0]] - 1 if branch else self.tree_heights[best]
            while self.height > fork_height:
                disconnected.append(self._disconnect())
            if self.kernel is not None:
                self.kernel.reset(self.blocks[1:])
            for block_hash in branch:
                block = self.known[block_hash]
                try:
                    self._validate_and_connect(block)
                except BlockError as e:
                    log.warning("block %s refused on reorg: %s", block.hash_hex, e)
                    self.invalid.add(block_hash)
                    self._save_invalid()
                    break
        if disconnected:
            log.info("reorg: %d block(s) disconnected, tip %s at %d", len(disconnected), self.tip.hash_hex, self.height)
            resurrected = [tx for block in reversed(disconnected) for tx in block.txs[1:]]
            self.mempool.update_for_reorg(resurrected)

    # ---- index updates ----
    def _connect(self, block: Block) -> None:
        height = len(self.blocks)
        self.blocks.append(block)
        self.heights[block.hash] = height
        undo: list[tuple[Outpoint, Coin]] = []
        self._undo[block.hash] = undo
        if height == 0:  # the genesis coinbase is not spendable nor indexed, as in Core
            return
        for pos, tx in enumerate(block.txs):
            txid = tx.txid
            self.txindex[txid] = (height, pos)
            if not tx.is_coinbase():
                for txin in tx.inputs:
                    undo.append((txin.outpoint, self.utxos.pop(txin.outpoint)))
                    self.spenders[txin.outpoint] = (txid, height)
            for n, txout in enumerate(tx.outputs):
                if txout.script[:1] != b"\x6a":  # OP_RETURN outputs never enter the UTXO set
                    self.utxos[(txid, n)] = Coin(txout.value, txout.script, height, tx.is_coinbase())

    def _disconnect(self) -> Block:
        """Undo the tip block's effect on the indexes (Core's DisconnectBlock) and return it."""
        block = self.blocks.pop()
        del self.heights[block.hash]
        for tx in reversed(block.txs):
            txid = tx.txid
            for n in range(len(tx.outputs)):
                self.utxos.pop((txid, n), None)
            self.txindex.pop(txid, None)
            if not tx.is_coinbase():
                for txin in tx.inputs:
                    self.spenders.pop(txin.outpoint, None)
        for outpoint, coin in self._undo.pop(block.hash):
            self.utxos[outpoint] = coin
        return block

    # ---- persistence ----
    def _save_invalid(self) -> None:
        if self.datadir:
            tmp = self.datadir / "invalid.json.tmp"
            tmp.write_text(json.dumps(sorted(hash_hex(h) for h in self.invalid)))
            os.replace(tmp, self.datadir / "invalid.json")

    def _load(self) -> None:
        marks = self.datadir / "invalid.json"
        if marks.exists():
            self.invalid = {bytes.fromhex(h)[::-1] for h in json.loads(marks.read_text() or "[]")}
        path = self.datadir / "blocks.dat"
        if path.exists():
            lines = path.read_text().splitlines()
            for n, line in enumerate(lines):
                try:
                    block = Block.from_bytes(bytes.fromhex(line))
                    if block.header.prev_hash not in self.known:
                        raise BlockError("prev-blk-not-found")
                except ValueError as e:  # a torn last write after a crash: keep what is valid
                    log.warning("blocks.dat: dropping block line %d and after (%s)", n + 1, e)
                    path.write_text("".join(x + "\n" for x in lines[:n]))
                    break
                if block.hash not in self.known:
                    self._remember(block, persist=False)
        self.activate_best_chain()  # replays the best branch through Core (or block_checks)
        self.mempool.load()
