"""The block chain: regtest genesis, block validation and connection, mining, the UTXO/tx/spender indexes.

Blocks are fully checked when connected (link, proof of work at the regtest target, merkle root, BIP34 height,
witness commitment, coinbase value, input existence, amounts, maturity, finality) with one exception: scripts
and signatures are not verified. The chain is append-only (no reorgs) and is persisted as one hex block per
line in <datadir>/blocks.dat, replayed and re-validated on start.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from .consensus import (
    MAX_BLOCK_WEIGHT,
    REGTEST_BITS,
    Coin,
    block_subsidy,
    check_transaction,
    check_tx_inputs,
    is_final,
)
from .mempool import Mempool
from .serialize import Block, BlockHeader, Tx, TxIn, TxOut, bits_to_target, merkle_root, script_num, sha256d

log = logging.getLogger(__name__)

GENESIS_HASH = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
_GENESIS_SCRIPT_SIG = bytes.fromhex(
    "04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b"
    "206f66207365636f6e64206261696c6f757420666f722062616e6b73"
)
_GENESIS_PUBKEY_SCRIPT = bytes.fromhex(
    "4104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c"
    "384df7ba0b8d578a4c702b6bf11d5fac"
)
WITNESS_COMMITMENT_HEADER = bytes.fromhex("6a24aa21a9ed")
BLOCK_VERSION = 0x20000000


class BlockError(ValueError):
    """A block that breaks a consensus rule (only our own bugs or a corrupted blocks.dat can produce one)."""


def genesis_block() -> Block:
    """Bitcoin Core's regtest genesis (CreateGenesisBlock(1296688602, 2, 0x207fffff, 1, 50 * COIN))."""
    coinbase = Tx(
        1, [TxIn(bytes(32), 0xFFFFFFFF, _GENESIS_SCRIPT_SIG)], [TxOut(50 * 100_000_000, _GENESIS_PUBKEY_SCRIPT)]
    )
    header = BlockHeader(1, bytes(32), coinbase.hash, 1296688602, REGTEST_BITS, 2)
    return Block(header, [coinbase])


def bip34_prefix(height: int) -> bytes:
    """`CScript() << height`: OP_0/OP_1..OP_16 for small heights, else a minimal CScriptNum push."""
    if height == 0:
        return b"\x00"
    if 1 <= height <= 16:
        return bytes([0x50 + height])
    num = script_num(height)
    return bytes([len(num)]) + num


def witness_commitment(txs: list[Tx]) -> bytes:
    """BIP141 commitment: sha256d(witness merkle root || 32-byte reserved value of zeros)."""
    hashes = [bytes(32)] + [sha256d(tx.serialize()) for tx in txs[1:]]
    return sha256d(merkle_root(hashes) + bytes(32))


def find_commitment(coinbase: Tx) -> bytes | None:
    """The last output carrying the witness commitment header wins, as in Core."""
    found = None
    for txout in coinbase.outputs:
        if len(txout.script) >= 38 and txout.script[:6] == WITNESS_COMMITMENT_HEADER:
            found = txout.script[6:38]
    return found


def grind(header: BlockHeader) -> BlockHeader:
    """Find a nonce meeting the target (about two tries at regtest difficulty)."""
    target = bits_to_target(header.bits)
    while int.from_bytes(header.hash, "little") > target:
        header.nonce += 1
        if header.nonce > 0xFFFFFFFF:
            header.nonce, header.time = 0, header.time + 1
    return header


class Chain:
    """One regtest node's chain state and mempool; every mutation goes through connect_block or the mempool."""

    def __init__(self, datadir: Path | str | None = None, segwit: bool = True) -> None:
        self.datadir = Path(datadir) if datadir else None
        self.segwit = segwit  # False: Bitcoin Cash rules here (no witness data, no commitment), for ElectrumX's BCH
        self.blocks: list[Block] = []
        self.heights: dict[bytes, int] = {}
        self.txindex: dict[str, tuple[int, int]] = {}  # txid -> (height, position in block)
        self.utxos: dict[tuple[str, int], Coin] = {}
        self.spenders: dict[tuple[str, int], tuple[str, int]] = {}  # outpoint -> (spending txid, height)
        self.mempool = Mempool(self)
        self._connect(genesis_block(), persist=False)
        if self.datadir:
            self.datadir.mkdir(parents=True, exist_ok=True)
            self._load()

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

    def coin(self, outpoint: tuple[str, int]) -> Coin | None:
        return self.utxos.get(outpoint)

    # ---- mining ----
    def mine(self, script: bytes, now: int | None = None) -> Block:
        """Build a block paying `script` with every mempool transaction, grind it, connect it."""
        block = self.build_block(script, now)
        self.connect_block(block)
        return block

    def build_block(self, script: bytes, now: int | None = None) -> Block:
        height = self.height + 1
        txs, fees = self.mempool.block_candidates(MAX_BLOCK_WEIGHT - 4000)
        coinbase = Tx(
            2,
            [
                TxIn(
                    bytes(32),
                    0xFFFFFFFF,
                    bip34_prefix(height) + b"\x00",
                    0xFFFFFFFF,
                    [bytes(32)] if self.segwit else [],
                )
            ],
            [TxOut(block_subsidy(height) + fees, script)],
        )
        all_txs = [coinbase, *txs]
        if self.segwit:  # Core's miner always commits once segwit is active
            coinbase.outputs.append(TxOut(0, WITNESS_COMMITMENT_HEADER + witness_commitment(all_txs)))
        block_time = max(int(now if now is not None else time.time()), self.median_time_past() + 1)
        header = BlockHeader(
            BLOCK_VERSION, self.tip.hash, merkle_root([tx.hash for tx in all_txs]), block_time, REGTEST_BITS, 0
        )
        return Block(grind(header), all_txs)

    # ---- connection ----
    def connect_block(self, block: Block, persist: bool = True) -> None:
        self.validate_block(block)
        self._connect(block, persist)
        self.mempool.remove_for_block(block)

    def validate_block(self, block: Block) -> None:
        height = self.height + 1
        header = block.header
        if header.prev_hash != self.tip.hash:
            raise BlockError("prev-blk-not-found")
        if header.bits != REGTEST_BITS or int.from_bytes(block.hash, "little") > bits_to_target(header.bits):
            raise BlockError("high-hash")
        if header.time <= self.median_time_past():
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
        self._check_witness(block)
        fees = self._check_block_txs(block, height)
        if sum(o.value for o in coinbase.outputs) > block_subsidy(height) + fees:
            raise BlockError("bad-cb-amount")

    def _check_witness(self, block: Block) -> None:
        if not self.segwit:
            if any(tx.has_witness() for tx in block.txs):
                raise BlockError("unexpected-witness")
            return
        commitment = find_commitment(block.txs[0])
        if commitment is None:
            if any(tx.has_witness() for tx in block.txs):
                raise BlockError("unexpected-witness")
            return
        if block.txs[0].inputs[0].witness != [bytes(32)]:
            raise BlockError("bad-witness-nonce-size")
        if commitment != witness_commitment(block.txs):
            raise BlockError("bad-witness-merkle-match")

    def _check_block_txs(self, block: Block, height: int) -> int:
        created: dict[tuple[str, int], Coin] = {}
        spent: set[tuple[str, int]] = set()
        mtp, fees = self.median_time_past(), 0
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
                    coin = created.get(txin.outpoint) or self.utxos.get(txin.outpoint)
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

    def _connect(self, block: Block, persist: bool) -> None:
        height = len(self.blocks)
        self.blocks.append(block)
        self.heights[block.hash] = height
        if height == 0:  # the genesis coinbase is not spendable nor indexed, as in Core
            return
        for pos, tx in enumerate(block.txs):
            txid = tx.txid
            self.txindex[txid] = (height, pos)
            if not tx.is_coinbase():
                for txin in tx.inputs:
                    del self.utxos[txin.outpoint]
                    self.spenders[txin.outpoint] = (txid, height)
            for n, txout in enumerate(tx.outputs):
                if txout.script[:1] != b"\x6a":  # OP_RETURN outputs never enter the UTXO set
                    self.utxos[(txid, n)] = Coin(txout.value, txout.script, height, tx.is_coinbase())
        if persist and self.datadir:
            with open(self.datadir / "blocks.dat", "a") as f:
                f.write(block.serialize().hex() + "\n")
                f.flush()
                os.fsync(f.fileno())

    # ---- persistence ----
    def _load(self) -> None:
        path = self.datadir / "blocks.dat"
        if path.exists():
            lines = path.read_text().splitlines()
            for n, line in enumerate(lines):
                try:
                    block = Block.from_bytes(bytes.fromhex(line))
                    self.validate_block(block)
                except ValueError as e:  # a torn last write after a crash: keep what is valid
                    log.warning("blocks.dat: dropping block line %d and after (%s)", n + 1, e)
                    path.write_text("".join(x + "\n" for x in lines[:n]))
                    break
                self._connect(block, persist=False)
        self.mempool.load()
