"""Bitcoin Core's JSON shapes for transactions, blocks and headers (decoderawtransaction, getblock, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .address import script_to_address, script_type
from .consensus import btc
from .serialize import Block, Tx, bits_to_target, hash_hex

if TYPE_CHECKING:
    from .chain import Chain

_OPCODES = {
    0x00: "0", 0x4F: "-1", 0x61: "OP_NOP", 0x63: "OP_IF", 0x64: "OP_NOTIF", 0x67: "OP_ELSE", 0x68: "OP_ENDIF",
    0x69: "OP_VERIFY", 0x6A: "OP_RETURN", 0x75: "OP_DROP", 0x76: "OP_DUP", 0x87: "OP_EQUAL",
    0x88: "OP_EQUALVERIFY", 0xA9: "OP_HASH160", 0xA8: "OP_SHA256", 0xAC: "OP_CHECKSIG",
    0xAD: "OP_CHECKSIGVERIFY", 0xAE: "OP_CHECKMULTISIG", 0xAF: "OP_CHECKMULTISIGVERIFY",
    0xB1: "OP_CHECKLOCKTIMEVERIFY", 0xB2: "OP_CHECKSEQUENCEVERIFY", 0xBA: "OP_CHECKSIGADD",
}  # fmt: skip


def script_asm(script: bytes) -> str:
    """A disassembly close to Core's ScriptToAsmStr (pushes as hex, small ints as numbers)."""
    out, i = [], 0
    while i < len(script):
        op = script[i]
        i += 1
        if 0x01 <= op <= 0x4E:
            size_len = {0x4C: 1, 0x4D: 2, 0x4E: 4}.get(op, 0)
            size = int.from_bytes(script[i : i + size_len], "little") if size_len else op
            i += size_len
            if i + size > len(script):
                out.append("[error]")
                break
            out.append(script[i : i + size].hex())
            i += size
        elif 0x51 <= op <= 0x60:
            out.append(str(op - 0x50))
        else:
            out.append(_OPCODES.get(op, "OP_UNKNOWN"))
    return " ".join(out)


def script_pubkey_json(script: bytes) -> dict:
    d = {"asm": script_asm(script), "hex": script.hex(), "type": script_type(script)}
    address = script_to_address(script)
    if address:
        d["address"] = address
    return d


def tx_json(tx: Tx) -> dict:
    vin = []
    for txin in tx.inputs:
        if tx.is_coinbase():
            item: dict = {"coinbase": txin.script_sig.hex()}
        else:
            item = {
                "txid": hash_hex(txin.prev_hash),
                "vout": txin.prev_index,
                "scriptSig": {"asm": script_asm(txin.script_sig), "hex": txin.script_sig.hex()},
            }
        if txin.witness:
            item["txinwitness"] = [w.hex() for w in txin.witness]
        item["sequence"] = txin.sequence
        vin.append(item)
    vout = [
        {"value": btc(o.value), "n": n, "scriptPubKey": script_pubkey_json(o.script)} for n, o in enumerate(tx.outputs)
    ]
    return {
        "txid": tx.txid,
        "hash": tx.wtxid,
        "version": tx.version,
        "size": tx.size,
        "vsize": tx.vsize,
        "weight": tx.weight,
        "locktime": tx.locktime,
        "vin": vin,
        "vout": vout,
    }


def difficulty(bits: int) -> float:
    """Core's GetDifficulty (4.656542373906925e-10 at the regtest target)."""
    shift, diff = (bits >> 24) & 0xFF, 0x0000FFFF / (bits & 0x00FFFFFF)
    while shift < 29:
        diff, shift = diff * 256.0, shift + 1
    while shift > 29:
        diff, shift = diff / 256.0, shift - 1
    return diff


def chainwork(chain: Chain, height: int) -> str:
    work = sum((1 << 256) // (bits_to_target(b.header.bits) + 1) for b in chain.blocks[: height + 1])
    return f"{work:064x}"


def header_json(chain: Chain, block: Block) -> dict:
    height = chain.tree_heights[block.hash]
    active = chain.is_active(block.hash)
    h = block.header
    d = {
        "hash": block.hash_hex,
        "confirmations": chain.height - height + 1 if active else -1,  # Core's -1: not on the active chain
        "height": height,
        "version": h.version,
        "versionHex": f"{h.version & 0xFFFFFFFF:08x}",
        "merkleroot": hash_hex(h.merkle_root),
        "time": h.time,
        "mediantime": chain.median_time_past(height),
        "nonce": h.nonce,
        "bits": f"{h.bits:08x}",
        "target": f"{bits_to_target(h.bits):064x}",
        "difficulty": difficulty(h.bits),
        "chainwork": chainwork(chain, height),
        "nTx": len(block.txs),
    }
    if height > 0:
        d["previousblockhash"] = hash_hex(h.prev_hash)
    if active and height < chain.height:
        d["nextblockhash"] = chain.blocks[height + 1].hash_hex
    return d


def block_json(chain: Chain, block: Block, verbosity: int) -> dict:
    d = header_json(chain, block)
    d["strippedsize"] = len(block.header.serialize()) + sum(len(tx.serialize(False)) for tx in block.txs) + 1
    d["size"] = len(block.serialize())
    d["weight"] = block.weight
    if verbosity == 1:
        d["tx"] = [tx.txid for tx in block.txs]
    else:
        d["tx"] = [_block_tx_json(chain, tx) for tx in block.txs]
    return d


def _block_tx_json(chain: Chain, tx: Tx) -> dict:
    d = tx_json(tx)
    if not tx.is_coinbase():
        fee = _fee_of_confirmed(chain, tx)
        if fee is not None:
            d["fee"] = btc(fee)
    d["hex"] = tx.hex()
    return d


def _fee_of_confirmed(chain: Chain, tx: Tx) -> int | None:
    value_in = 0
    for txin in tx.inputs:
        found = chain.confirmed_tx(hash_hex(txin.prev_hash))
        if found is None:
            return None
        value_in += found[0].outputs[txin.prev_index].value
    return value_in - sum(o.value for o in tx.outputs)
