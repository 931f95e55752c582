"""A self-contained Bitcoin regtest stack: a small regtest node and the launcher that puts ElectrumX on it.

Modules: serialize (wire formats), address (regtest address <-> script), consensus (shared tx checks),
chain (blocks, UTXO/tx/spender indexes, mining, persistence), mempool (acceptance with Core's errors),
methods (Bitcoin Core's RPC subset), rpc (bitcoind's HTTP JSON-RPC dialect), node / __main__ (running it),
electrum_client (a bare Electrum-protocol client), stack (node + ElectrumX processes), electrumx_launch.

Scripts and signatures are never verified: the node checks structure, amounts, maturity, finality and
double spends, which is what a payment daemon's tests exercise. ElectrumX uses getnetworkinfo,
getindexinfo, getblockcount, getblockhash, getblock, getrawmempool, getrawtransaction, estimatesmartfee,
sendrawtransaction, and for newer protocol clients getmempoolinfo, gettxspendingprevout, testmempoolaccept
(seen with REGTEST_DEBUG=1, which logs every call).
"""
