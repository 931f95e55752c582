#!/bin/sh
# monerod for the compose service `monerod`: its network follows XMR_NETWORK (from conf/.env), its RPC
# listens on 18081 inside the container whatever the network, so XMR_MONEROD_URL=http://monerod:18081 holds.
# mainnet, testnet and stagenet sync the public chain (mainnet: roughly 100 GB pruned and a day or more, see README);
# regtest is a private chain of this container (offline, difficulty 1), for trying the stack out.
set -eu
case "${XMR_NETWORK:-mainnet}" in
  mainnet) network="" ;;
  testnet) network="--testnet" ;;
  stagenet) network="--stagenet" ;;
  regtest) network="--regtest --offline --fixed-difficulty 1" ;;
  *) echo "monerod: unknown XMR_NETWORK '${XMR_NETWORK}' (mainnet, testnet, stagenet or regtest)" >&2; exit 2 ;;
esac
echo "monerod: ${XMR_NETWORK:-mainnet}, data in /data/monerod"
# shellcheck disable=SC2086 # $network is a list of flags
exec monerod $network --non-interactive --data-dir /data/monerod --max-log-files 2 \
  --rpc-bind-ip 0.0.0.0 --rpc-bind-port 18081 --confirm-external-bind --no-igd --prune-blockchain "$@"
