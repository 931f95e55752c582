"""A self-contained Bitcoin regtest stack: a small regtest node and the launcher that puts ElectrumX on it.

Modules: serialize (wire formats), address (regtest address <-> script), consensus (shared tx checks),
blocks (genesis, BIP34, witness commitment, block assembly), kernel (Bitcoin Core's libbitcoinkernel through
py-bitcoinkernel), block_checks (our own block rules, Bitcoin Cash mode only), chain (block tree, active chain,
UTXO/tx/spender indexes, mining, reorgs, persistence), mempool (acceptance with Core's errors), rbf (BIP125),
methods (Bitcoin Core's RPC subset), rpc (bitcoind's HTTP JSON-RPC dialect), node / __main__ (running it),
electrum_client (a bare Electrum-protocol client), stack (node + ElectrumX processes), electrumx_launch.

In the Bitcoin mode Bitcoin Core's kernel validates every block and every mempool input's scripts; in the
Bitcoin Cash mode (no segwit) scripts and signatures are never verified. ElectrumX uses getnetworkinfo,
getindexinfo, getblockcount, getblockhash, getblock, getrawmempool, getrawtransaction, estimatesmartfee,
sendrawtransaction, and for newer protocol clients getmempoolinfo, gettxspendingprevout, testmempoolaccept
(seen with REGTEST_DEBUG=1, which logs every call).
"""
