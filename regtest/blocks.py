"""Block construction rules shared by the miner and the checks: regtest genesis, BIP34 heights, BIP141
witness commitments, proof-of-work grinding. Plain functions over the wire types, no chain state.
"""

from __future__ import annotations

from .consensus import REGTEST_BITS
from .serialize import Block, BlockHeader, Tx, TxIn, TxOut, bits_to_target, merkle_root, script_num, sha256d

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
    """A block that breaks a consensus rule; the message is the reject reason (Core's when Core judged it)."""


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


def assemble_block(
    prev: Block, height: int, txs: list[Tx], value: int, script: bytes, block_time: int, segwit: bool
) -> Block:
    """A ground block on `prev` whose coinbase pays `value` to `script`, with a witness commitment if segwit."""
    coinbase_in = TxIn(bytes(32), 0xFFFFFFFF, bip34_prefix(height) + b"\x00", 0xFFFFFFFF, [bytes(32)] if segwit else [])
    coinbase = Tx(2, [coinbase_in], [TxOut(value, script)])
    all_txs = [coinbase, *txs]
    if segwit:  # Core's miner always commits once segwit is active
        coinbase.outputs.append(TxOut(0, WITNESS_COMMITMENT_HEADER + witness_commitment(all_txs)))
    root = merkle_root([tx.hash for tx in all_txs])
    header = BlockHeader(BLOCK_VERSION, prev.hash, root, block_time, REGTEST_BITS, 0)
    return Block(grind(header), all_txs)
