"""Keys, raw transactions and a running BTC daemon for the BTC tests and benchmarks.

Keys are made with the real Electrum library while the daemon has it on regtest (Electrum's
network constants are process-global), from fixed seeds so that failures are reproducible.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemons.btc import BTCDaemon
from tests.support import DaemonClient, running_daemon

OFFLINE_REGTEST = {"NETWORK": "regtest", "OFFLINE": "true"}
# Mainnet keys (BIP-32 test vector 1 and the BIP-84 test vector's account key): of another network on regtest.
MAINNET_XPUB = (
    "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8"
)
MAINNET_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs"
)


@contextlib.asynccontextmanager
async def btc_daemon(
    env: Mapping[str, str] | None = None, data_path: Path | None = None
) -> AsyncIterator[DaemonClient]:
    """A real BTCDaemon on regtest, offline unless ``env`` says otherwise."""
    async with running_daemon(BTCDaemon, env={**OFFLINE_REGTEST, **(env or {})}, data_path=data_path) as client:
        yield client


@dataclass(frozen=True)
class KeyPair:
    """An account's extended private and public key of one script type (regtest headers)."""

    xprv: str
    xpub: str
    xtype: str

    def first_address(self) -> str:
        """Receiving address 0 (m/0/0 below the account), derived independently of the wallet."""
        from electrum import bip32, bitcoin

        node = bip32.BIP32Node.from_xkey(self.xpub).subkey_at_public_derivation([0, 0])
        txin_type = "p2pkh" if self.xtype == "standard" else self.xtype
        return bitcoin.pubkey_to_address(txin_type, node.eckey.get_public_key_hex())


def key_pair(n: int, xtype: str) -> KeyPair:
    """Keys for xtype 'standard' (tprv/tpub), 'p2wpkh-p2sh' (uprv/upub) or 'p2wpkh' (vprv/vpub)."""
    from electrum import bip32

    node = bip32.BIP32Node.from_rootseed(n.to_bytes(32, "big"), xtype=xtype)
    return KeyPair(node.to_xprv(), node.to_xpub(), xtype)


def random_vpub() -> str:
    from electrum import bip32

    return bip32.BIP32Node.from_rootseed(os.urandom(32), xtype="p2wpkh").to_xpub()


def make_seed(seed_type: str = "segwit") -> str:
    from electrum.mnemonic import Mnemonic

    return Mnemonic("en").make_seed(seed_type=seed_type)


def raw_payment(address: str, satoshis: int, prev_txid: bytes | None = None) -> str:
    """A legacy-serialized transaction paying ``satoshis`` to ``address`` from an unknown outpoint.

    Electrum accepts it as a local (unbroadcast) wallet transaction, which is enough to drive its
    payment-request and new-transaction logic without a chain.
    """
    from electrum import bitcoin

    prev = prev_txid or os.urandom(32)
    script = bytes.fromhex(bitcoin.address_to_script(address))
    parts = [
        (2).to_bytes(4, "little"),  # version
        b"\x01",
        prev,
        (0).to_bytes(4, "little"),
        b"\x00",  # empty scriptSig
        b"\xff\xff\xff\xff",
        b"\x01",
        satoshis.to_bytes(8, "little"),
        bytes([len(script)]),
        script,
        (0).to_bytes(4, "little"),  # locktime
    ]
    return b"".join(parts).hex()


async def call_error(client: DaemonClient, method: str, *args: Any, **kwargs: Any) -> tuple[int, str]:
    """The (code, message) of a call expected to fail; fails the test if it succeeds."""
    from daemons.jsonrpc import RPCError

    try:
        result = await client.call(method, *args, **kwargs)
    except RPCError as error:
        return error.code, error.message
    raise AssertionError(f"{method} succeeded with {result!r}")
