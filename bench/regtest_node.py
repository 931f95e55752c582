"""Regtest node throughput with Bitcoin Core's kernel against the node's own checks (the node before the kernel).

Same run, same machine: mines BLOCKS blocks and accepts TXS signed p2wpkh spends through sendrawtransaction,
once on a Chain validating with Core (py-bitcoinkernel) and once on a Chain with core=False (the old
behaviour: structure, amounts, maturity, no scripts). Prints blocks/s, sendrawtransaction/s and the ratios.

    PYTHONPATH=. .venv/bin/python bench/regtest_node.py [--blocks 300] [--txs 140]
"""

from __future__ import annotations

import argparse
import time

from electrum import constants

from regtest.chain import Chain
from regtest.methods import NodeMethods
from tests.regtest_fixtures import COINBASE_VALUE, Key, coinbase_utxo, sign_tx


def run(core: bool, blocks: int, txs: int) -> tuple[float, float]:
    key, other = Key.from_int(901), Key.from_int(902)
    chain = Chain(core=core)
    methods = NodeMethods(chain)

    def rpc(method, *params):
        return methods.call(method, list(params))

    start = time.perf_counter()
    hashes = rpc("generatetoaddress", blocks, key.address)
    blocks_per_s = blocks / (time.perf_counter() - start)
    raws = [sign_tx([coinbase_utxo(rpc, h, key)], [(other.address, COINBASE_VALUE - 10_000)])[0] for h in hashes[:txs]]
    start = time.perf_counter()
    for raw in raws:
        rpc("sendrawtransaction", raw)
    tx_per_s = txs / (time.perf_counter() - start)
    chain.close()
    return blocks_per_s, tx_per_s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--blocks", type=int, default=300)
    p.add_argument("--txs", type=int, default=140)
    args = p.parse_args()
    assert args.txs <= min(args.blocks - 100, 149), "spends need mature coinbases of 50 BTC (below height 150)"
    constants.set_regtest()
    old = run(False, args.blocks, args.txs)
    new = run(True, args.blocks, args.txs)
    print(f"blocks/s:             own checks {old[0]:8.1f}   Core kernel {new[0]:8.1f}   ratio {new[0] / old[0]:.2f}")
    print(f"sendrawtransaction/s: own checks {old[1]:8.1f}   Core kernel {new[1]:8.1f}   ratio {new[1] / old[1]:.2f}")


if __name__ == "__main__":
    main()
