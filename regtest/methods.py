"""The RPC methods: Bitcoin Core's names, parameters, results and errors, over a Chain (no transport here).

The set is what ElectrumX calls (getnetworkinfo, getindexinfo, getblockcount, getblockhash, getblock,
getblockheader, getrawmempool, getrawtransaction, gettxspendingprevout, sendrawtransaction, testmempoolaccept,
estimatesmartfee, getmempoolinfo) plus what a developer needs to drive a regtest chain (generatetoaddress,
getblockchaininfo, getbestblockhash, gettxout, decoderawtransaction, getmempoolentry, uptime, stop) and to
reorganise it (invalidateblock, reconsiderblock, submitblock).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from .address import AddressError, address_to_script
from .blocks import BlockError
from .chain import Chain
from .consensus import btc
from .describe import block_json, chainwork, difficulty, header_json, script_pubkey_json, tx_json
from .errors import (
    RPC_DESERIALIZATION_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_METHOD_NOT_FOUND,
    RPC_MISC_ERROR,
    RPC_TYPE_ERROR,
    RPC_VERIFY_ERROR,
    RPCError,
)
from .mempool import DEFAULT_MAX_FEE_RATE, MIN_RELAY_FEE_PER_KVB
from .serialize import Block, DecodeError, Tx, hex_hash

CORE_VERSION = 310000  # what ElectrumX 2 requires (Bitcoin Core >= 31.0 for txospenderindex)
NO_TX = "No such mempool or blockchain transaction. Use gettransaction for wallet transactions."


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RPCError(
            RPC_TYPE_ERROR, f"JSON value of type {type(value).__name__} for {name} is not of expected type number"
        )
    return value


def _hash(value: Any, name: str) -> bytes:
    try:
        return hex_hash(value)
    except (ValueError, TypeError):
        raise RPCError(
            RPC_INVALID_PARAMETER, f"{name} must be of length 64 (not {len(str(value))}, for '{value}')"
        ) from None


def _verbosity(value: Any) -> int:
    """getblock/getrawtransaction take a bool or a number."""
    if isinstance(value, bool):
        return int(value)
    return _int(value, "verbosity")


def _decode_tx(raw: Any) -> Tx:
    try:
        return Tx.from_hex(raw)
    except DecodeError:
        raise RPCError(
            RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input."
        ) from None


class NodeMethods:
    """Dispatches Core RPC calls to a Chain; `fee_rate` is what estimatesmartfee answers (BTC/kvB)."""

    def __init__(self, chain: Chain, fee_rate: Decimal = Decimal("0.00002"), on_stop: Callable[[], None] | None = None):
        self.chain = chain
        self.fee_rate = fee_rate
        self.on_stop = on_stop
        self.started = time.time()

    def names(self) -> list[str]:
        return sorted(n[4:] for n in dir(self) if n.startswith("rpc_"))

    def call(self, method: str, params: list | dict | None) -> Any:
        func = getattr(self, "rpc_" + method, None) if isinstance(method, str) else None
        if func is None:
            raise RPCError(RPC_METHOD_NOT_FOUND, "Method not found")
        params = params if params is not None else []
        try:
            bound = (
                inspect.signature(func).bind(**params)
                if isinstance(params, dict)
                else inspect.signature(func).bind(*params)
            )
        except TypeError:
            raise RPCError(RPC_MISC_ERROR, f"{method}: wrong number or names of parameters") from None
        return func(*bound.args, **bound.kwargs)

    # ---- node / network ----
    def rpc_getnetworkinfo(self) -> dict:
        relay = btc(MIN_RELAY_FEE_PER_KVB)
        return {
            "version": CORE_VERSION,
            "subversion": "/Satoshi:31.0.0/",
            "protocolversion": 70016,
            "localservices": "0000000000000c09",
            "localservicesnames": ["NETWORK", "WITNESS", "NETWORK_LIMITED", "P2P_V2"],
            "localrelay": True,
            "timeoffset": 0,
            "networkactive": True,
            "connections": 0,
            "connections_in": 0,
            "connections_out": 0,
            "networks": [],
            "relayfee": relay,
            "incrementalfee": relay,
            "localaddresses": [],
            "warnings": [],
        }

    def rpc_getindexinfo(self, index_name: str | None = None) -> dict:
        info = {"synced": True, "best_block_height": self.chain.height}
        indexes = {"txindex": info, "txospenderindex": info}
        return {k: v for k, v in indexes.items() if index_name in (None, k)}

    def rpc_uptime(self) -> int:
        return int(time.time() - self.started)

    def rpc_stop(self) -> str:
        if self.on_stop:
            self.on_stop()
        return "Bitcoin Core stopping"

    def rpc_help(self, command: str | None = None) -> str:
        return "\n".join(self.names())

    # ---- chain ----
    def rpc_getblockcount(self) -> int:
        return self.chain.height

    def rpc_getbestblockhash(self) -> str:
        return self.chain.tip.hash_hex

    def rpc_getdifficulty(self) -> float:
        return difficulty(self.chain.tip.header.bits)

    def rpc_getblockchaininfo(self) -> dict:
        tip = self.chain.tip
        return {
            "chain": "regtest",
            "blocks": self.chain.height,
            "headers": self.chain.height,
            "bestblockhash": tip.hash_hex,
            "bits": f"{tip.header.bits:08x}",
            "difficulty": difficulty(tip.header.bits),
            "time": tip.header.time,
            "mediantime": self.chain.median_time_past(),
            "verificationprogress": 1,
            "initialblockdownload": False,
            "chainwork": chainwork(self.chain, self.chain.height),
            "size_on_disk": sum(len(b.serialize()) for b in self.chain.blocks),
            "pruned": False,
            "warnings": [],
        }

    def rpc_getblockhash(self, height: Any) -> str:
        height = _int(height, "height")
        if not 0 <= height <= self.chain.height:
            raise RPCError(RPC_INVALID_PARAMETER, "Block height out of range")
        return self.chain.blocks[height].hash_hex

    def _block(self, blockhash: Any) -> Block:
        block = self.chain.known.get(_hash(blockhash, "blockhash"))
        if block is None:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
        return block

    def rpc_getblock(self, blockhash: Any, verbosity: Any = 1) -> Any:
        block = self._block(blockhash)
        level = _verbosity(verbosity)
        if level <= 0:
            return block.serialize().hex()
        return block_json(self.chain, block, min(level, 2))

    def rpc_getblockheader(self, blockhash: Any, verbose: Any = True) -> Any:
        block = self._block(blockhash)
        if not verbose:
            return block.header.serialize().hex()
        return header_json(self.chain, block)

    def rpc_invalidateblock(self, blockhash: Any) -> None:
        """Core's invalidateblock: the block and its descendants leave the active chain, their transactions
        return to the mempool, and the best remaining branch becomes active."""
        self.chain.invalidate(self._block(blockhash).hash)

    def rpc_reconsiderblock(self, blockhash: Any) -> None:
        """Core's reconsiderblock: undoes invalidateblock on the block, its ancestors and descendants."""
        self.chain.reconsider(self._block(blockhash).hash)

    def rpc_submitblock(self, hexdata: Any, dummy: Any = None) -> str | None:
        """Core's submitblock: null when accepted, else the reject reason as the result (BIP22)."""
        try:
            block = Block.from_bytes(bytes.fromhex(hexdata))
        except (ValueError, TypeError):
            raise RPCError(RPC_DESERIALIZATION_ERROR, "Block decode failed") from None
        try:
            self.chain.connect_block(block)
        except BlockError as e:
            return str(e)
        return None

    # ---- transactions ----
    def rpc_getrawtransaction(self, txid: Any, verbose: Any = 0, blockhash: Any = None) -> Any:
        key = _hash(txid, "parameter 1")[::-1].hex()
        entry = self.chain.mempool.entries.get(key)
        found = self.chain.confirmed_tx(key)
        if entry is None and found is None:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, NO_TX)
        tx = entry.tx if entry is not None else found[0]
        if not _verbosity(verbose):
            return tx.hex()
        d = tx_json(tx)
        d["hex"] = tx.hex()
        if found is not None:
            block = self.chain.blocks[found[1]]
            d["blockhash"] = block.hash_hex
            d["confirmations"] = self.chain.height - found[1] + 1
            d["time"] = d["blocktime"] = block.header.time
        return d

    def rpc_decoderawtransaction(self, hexstring: Any, iswitness: Any = None) -> dict:
        return tx_json(_decode_tx(hexstring))

    def rpc_gettxout(self, txid: Any, n: Any, include_mempool: bool = True) -> dict | None:
        outpoint = (_hash(txid, "txid")[::-1].hex(), _int(n, "n"))
        if include_mempool:
            if outpoint in self.chain.mempool.spends:
                return None
            coin = self.chain.mempool.coin(outpoint)
        else:
            coin = self.chain.coin(outpoint)
        if coin is None:
            return None
        confirmations = 0 if coin.height > self.chain.height else self.chain.height - coin.height + 1
        return {
            "bestblock": self.chain.tip.hash_hex,
            "confirmations": confirmations,
            "value": btc(coin.value),
            "scriptPubKey": script_pubkey_json(coin.script),
            "coinbase": coin.coinbase,
        }

    def rpc_gettxspendingprevout(self, outputs: Any, options: Any = None) -> list[dict]:
        mempool_only = bool((options or {}).get("mempool_only", False)) if isinstance(options, dict) else False
        if not isinstance(outputs, list) or not outputs:
            raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, outputs are missing")
        result = []
        for item in outputs:
            if not isinstance(item, dict) or "txid" not in item or "vout" not in item:
                raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, expected object with txid and vout")
            vout = _int(item["vout"], "vout")
            if vout < 0:
                raise RPCError(RPC_INVALID_PARAMETER, "Invalid parameter, vout cannot be negative")
            outpoint = (_hash(item["txid"], "txid")[::-1].hex(), vout)
            d: dict = {"txid": outpoint[0], "vout": vout}
            spender = self.chain.mempool.spends.get(outpoint)
            if spender is not None:
                d["spendingtxid"] = spender
            elif not mempool_only and outpoint in self.chain.spenders:
                txid, height = self.chain.spenders[outpoint]
                d["spendingtxid"] = txid
                d["blockhash"] = self.chain.blocks[height].hash_hex
            result.append(d)
        return result

    def rpc_sendrawtransaction(self, hexstring: Any, maxfeerate: Any = None, maxburnamount: Any = None) -> str:
        tx = _decode_tx(hexstring)
        rate = DEFAULT_MAX_FEE_RATE if maxfeerate is None else _amount(maxfeerate, "maxfeerate")
        return self.chain.mempool.broadcast(tx, rate)

    def rpc_testmempoolaccept(self, rawtxs: Any, maxfeerate: Any = None) -> list[dict]:
        if not isinstance(rawtxs, list) or not 1 <= len(rawtxs) <= 25:
            raise RPCError(RPC_INVALID_PARAMETER, "Array must contain between 1 and 25 transactions.")
        results = []
        for raw in rawtxs:
            tx = _decode_tx(raw)
            d: dict = {"txid": tx.txid, "wtxid": tx.wtxid}
            try:
                entry = self.chain.mempool.check(tx)
            except RPCError as e:
                d.update({"allowed": False, "reject-reason": e.message.split(",")[0]})
            else:
                d.update({"allowed": True, "vsize": entry.vsize, "fees": {"base": btc(entry.fee)}})
            results.append(d)
        return results

    # ---- mempool ----
    def rpc_getrawmempool(self, verbose: Any = False, mempool_sequence: Any = False) -> Any:
        if not verbose:
            return list(self.chain.mempool.entries)
        return {txid: self._entry_json(txid) for txid in self.chain.mempool.entries}

    def rpc_getmempoolentry(self, txid: Any) -> dict:
        key = _hash(txid, "txid")[::-1].hex()
        if key not in self.chain.mempool.entries:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Transaction not in mempool")
        return self._entry_json(key)

    def _entry_json(self, txid: str) -> dict:
        e = self.chain.mempool.entries[txid]
        return {
            "vsize": e.vsize,
            "weight": e.tx.weight,
            "time": e.time,
            "height": self.chain.height,
            "wtxid": e.tx.wtxid,
            "fees": {"base": btc(e.fee)},
            "depends": sorted({i.outpoint[0] for i in e.tx.inputs if i.outpoint[0] in self.chain.mempool.entries}),
        }

    def rpc_getmempoolinfo(self) -> dict:
        entries = self.chain.mempool.entries.values()
        relay = btc(MIN_RELAY_FEE_PER_KVB)
        return {
            "loaded": True,
            "size": len(entries),
            "bytes": sum(e.vsize for e in entries),
            "usage": sum(e.tx.size for e in entries),
            "total_fee": btc(sum(e.fee for e in entries)),
            "maxmempool": 300_000_000,
            "mempoolminfee": relay,
            "minrelaytxfee": relay,
            "incrementalrelayfee": relay,
            "unbroadcastcount": 0,
            "fullrbf": False,
        }

    def rpc_estimatesmartfee(self, conf_target: Any, estimate_mode: Any = "conservative") -> dict:
        target = _int(conf_target, "conf_target")
        if not 1 <= target <= 1008:
            raise RPCError(RPC_INVALID_PARAMETER, "Invalid conf_target, must be between 1 and 1008")
        return {"feerate": self.fee_rate, "blocks": max(target, 2)}

    # ---- mining ----
    def rpc_generatetoaddress(self, nblocks: Any, address: Any, maxtries: Any = 1_000_000) -> list[str]:
        count = _int(nblocks, "nblocks")
        try:
            script = address_to_script(address)
        except AddressError:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address") from None
        return [self.chain.mine(script).hash_hex for _ in range(max(count, 0))]

    def rpc_generateblock(self, output: Any, transactions: Any, submit: Any = True) -> dict:
        """Core's generateblock: one block with exactly `transactions` (mempool txids or raw hex), e.g. none,
        to grow a branch that leaves the mempool alone."""
        try:
            script = address_to_script(output)
        except AddressError:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address") from None
        block = self.chain.build_block(script, txs=_block_txs(self.chain, transactions))
        try:
            self.chain.connect_block(block)
        except BlockError as e:
            raise RPCError(RPC_VERIFY_ERROR, f"TestBlockValidity failed: {e}") from None
        return {"hash": block.hash_hex}


def _block_txs(chain: Chain, transactions: Any) -> list[Tx]:
    """generateblock's list: mempool txids or raw transactions, in block order."""
    if not isinstance(transactions, list):
        raise RPCError(RPC_TYPE_ERROR, "JSON value of type not array for transactions is not of expected type array")
    txs = []
    for item in transactions:
        entry = chain.mempool.entries.get(item) if isinstance(item, str) and len(item) == 64 else None
        if entry is not None:
            txs.append(entry.tx)
        elif isinstance(item, str) and len(item) == 64:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, f"Transaction {item} not in mempool.")
        else:
            txs.append(_decode_tx(item))
    return txs


def _amount(value: Any, name: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise RPCError(RPC_TYPE_ERROR, f"Invalid amount for {name}") from None
    if amount < 0:
        raise RPCError(RPC_TYPE_ERROR, "Amount out of range")
    return amount
