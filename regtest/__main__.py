"""`python -m regtest --datadir D --rpcport P --rpcuser U --rpcpassword W`: a bitcoind-like regtest node."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from decimal import Decimal

from .node import RegtestNode


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m regtest", description=__doc__)
    p.add_argument("--datadir", help="where blocks.dat and mempool.dat live (omit for a throw-away chain)")
    p.add_argument("--rpcbind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--rpcport", type=int, default=18443, help="RPC port (default 18443, 0 = any free port)")
    p.add_argument("--rpcuser", default="rpcuser")
    p.add_argument("--rpcpassword", default="rpcpassword")
    p.add_argument("--feerate", type=Decimal, default=Decimal("0.00002"), help="estimatesmartfee answer, BTC/kvB")
    p.add_argument("--no-segwit", action="store_true", help="Bitcoin Cash style blocks: no witness data or commitment")
    p.add_argument("--debug", action="store_true")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    node = RegtestNode(
        args.datadir,
        host=args.rpcbind,
        port=args.rpcport,
        user=args.rpcuser,
        password=args.rpcpassword,
        fee_rate=args.feerate,
        segwit=not args.no_segwit,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, node.stopped.set)
    async with node:
        # the one line a launcher waits for: it names the port actually bound
        print(f"regtest node listening on {node.host}:{node.port} height {node.chain.height}", flush=True)
        await node.stopped.wait()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
