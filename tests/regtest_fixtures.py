"""Fixtures and helpers for tests on the regtest stack (our regtest node + real ElectrumX).

Plugged in by tests/conftest.py's pytest_plugins. Transactions are signed for real with the Electrum library
(Debian's python3-electrum), switched to regtest only while a test that asks for `electrum_regtest` runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from regtest.stack import RegtestStack

COINBASE_VALUE = 50 * 100_000_000  # regtest subsidy below height 150


@pytest.fixture(scope="module")
def regtest_stack() -> Iterator[RegtestStack]:
    """A node + ElectrumX shared by one test module (tests must not stop it: use fresh_regtest_stack)."""
    with RegtestStack() as stack:
        yield stack


@pytest.fixture(scope="module")
def bch_regtest_stack() -> Iterator[RegtestStack]:
    """A Bitcoin Cash chain (node with --no-segwit, ElectrumX COIN=BitcoinCash) shared by one test module.

    Mine to legacy base58 addresses: the node does not decode CashAddr."""
    with RegtestStack(coin="BitcoinCash") as stack:
        yield stack


@pytest.fixture
def fresh_regtest_stack() -> Iterator[RegtestStack]:
    """A stack of the test's own, for tests that stop, kill or restart parts of it."""
    with RegtestStack() as stack:
        yield stack


@pytest.fixture
def electrum_regtest() -> Iterator[Any]:
    """Electrum's constants set to regtest for the test, restored after (they are process-global)."""
    from electrum import constants

    previous = constants.net
    constants.set_regtest()
    try:
        yield constants.net
    finally:
        constants.net = previous


@dataclass(frozen=True)
class Key:
    """A regtest key pair and its p2wpkh address (Electrum must be on regtest when it is made)."""

    secret: bytes
    pubkey: str
    address: str

    @classmethod
    def from_int(cls, n: int, script_type: str = "p2wpkh") -> Key:
        from electrum import bitcoin, ecc

        secret = n.to_bytes(32, "big")
        pubkey = ecc.ECPrivkey(secret).get_public_key_hex(compressed=True)
        return cls(secret, pubkey, bitcoin.pubkey_to_address(script_type, pubkey))


@dataclass(frozen=True)
class Utxo:
    txid: str
    vout: int
    value: int
    key: Key


def sign_tx(
    inputs: list[Utxo], outputs: list[tuple[str, int]], locktime: int = 0, sequence: int = 0xFFFFFFFE
) -> tuple[str, str]:
    """A signed p2wpkh transaction spending `inputs` to (address, satoshis) outputs: (raw hex, txid).

    `sequence` on every input: 0xfffffffd or lower signals BIP125 replaceability."""
    from electrum.transaction import PartialTransaction, PartialTxInput, PartialTxOutput, TxOutpoint, TxOutput

    txins = []
    for utxo in inputs:
        txin = PartialTxInput(prevout=TxOutpoint(txid=bytes.fromhex(utxo.txid), out_idx=utxo.vout))
        txin.script_type = "p2wpkh"
        txin.pubkeys = [bytes.fromhex(utxo.key.pubkey)]
        txin.num_sig = 1
        txin.witness_utxo = TxOutput.from_address_and_value(utxo.key.address, utxo.value)
        txin.nsequence = sequence
        txins.append(txin)
    txouts = [PartialTxOutput.from_address_and_value(address, value) for address, value in outputs]
    tx = PartialTransaction.from_io(txins, txouts, locktime=locktime)
    tx.sign({u.key.pubkey: (u.key.secret, True) for u in inputs})
    assert tx.is_complete()
    return tx.serialize(), tx.txid()


def coinbase_utxo(rpc: Any, block_hash: str, key: Key) -> Utxo:
    """The first output of a block's coinbase, looked up through the node's RPC (`rpc(method, *params)`)."""
    block = rpc("getblock", block_hash, 2)
    cb = block["tx"][0]
    return Utxo(cb["txid"], 0, sats(cb["vout"][0]["value"]), key)


def sats(btc_amount: Any) -> int:
    """A Core RPC amount (a float over HTTP, a Decimal in-process) in satoshis."""
    return round(Decimal(str(btc_amount)) * 100_000_000)
