#!/usr/bin/env bash
# Build the image and run docker-compose.yml for real with podman, then check what an operator relies on.
# Slow (minutes, CPU heavy) and needs root: never part of `make test` or CI. Run it as `make smoke`.
#
# Needs podman, buildah, runc and debootstrap (Debian: apt-get install podman buildah debootstrap runc); it
# installs podman-compose from PyPI into its own virtualenv under $SMOKE_WORK. Without a local
# debian:bookworm-slim image it makes one with debootstrap from the Debian mirror apt uses here, with this
# machine's CA bundle for pip (a TLS-intercepting registry mirror needs it). The build runs with host
# networking under `nice -n 10`. Containers and volumes it starts are removed at the end; the images stay.
#
# Environment: SMOKE_WORK (default /var/tmp/coin-daemons-smoke), DEBIAN_MIRROR (default: the first
# deb.debian.org-like URI of /etc/apt/sources*), SMOKE_KEEP=1 to leave the containers running.
set -euo pipefail

cd "$(dirname "$0")/.."
WORK=${SMOKE_WORK:-/var/tmp/coin-daemons-smoke}
PROJECT=coin-daemons-smoke
mkdir -p "$WORK"

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'SMOKE FAILED: %s\n' "$*" >&2; exit 1; }

for tool in podman buildah debootstrap runc; do
  command -v "$tool" >/dev/null || fail "$tool is missing: apt-get install podman buildah debootstrap runc"
done

# crun, podman's default runtime here, can reject the cgroup setup of nested or rootful-in-container hosts;
# podman's default limits for containers (1048576 open files, nproc at the host's maximum) can be above what
# the runtime may set here without CAP_SYS_RESOURCE: ask for the host's open-files limit and 4096 processes.
cat > "$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=4096:4096"]

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$WORK/containers.conf"
podman --version

step "base image debian:bookworm-slim"
if podman image exists debian:bookworm-slim; then
  echo "present"
else
  mirror=${DEBIAN_MIRROR:-$(grep -rhoE 'https?://[^ ]+/debian/?$' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | head -n1 || true)}
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs="$WORK/rootfs"
  if [ ! -x "$rootfs/usr/bin/apt-get" ]; then
    rm -rf "$rootfs"
    nice -n 10 debootstrap --variant=minbase bookworm "$rootfs" "$mirror"
  fi
  # pip inside the build trusts what pip trusts here; apt uses plain http to the mirror.
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$rootfs/etc/ssl"
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/host-ca-bundle.crt"
    printf '[global]\ncert = /etc/ssl/host-ca-bundle.crt\n' > "$rootfs/etc/pip.conf"
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import - debian:bookworm-slim
fi

step "build coin-daemons:latest"
started=$(date +%s)
# --format docker: the OCI image format has no HEALTHCHECK.
nice -n 10 podman build --format docker --network=host --target runtime -t coin-daemons:latest .
echo "built in $(( $(date +%s) - started )) s; size: $(podman image inspect coin-daemons:latest --format '{{.Size}}' | numfmt --to=iec)"

ELECTRON_CASH_TARBALL=${ELECTRON_CASH_TARBALL:-deploy/electron-cash/Electron-Cash.tar.gz}
export ELECTRON_CASH_TARBALL
if [ -f "$ELECTRON_CASH_TARBALL" ]; then
  step "build coin-daemons-bch:latest from $ELECTRON_CASH_TARBALL"
  started=$(date +%s)
  nice -n 10 podman build --format docker --network=host --target bch \
    --build-arg ELECTRON_CASH_TARBALL="$ELECTRON_CASH_TARBALL" -t coin-daemons-bch:latest .
  echo "built in $(( $(date +%s) - started )) s"
  WITH_BCH=1
else
  echo "(no $ELECTRON_CASH_TARBALL: the bch image and service are skipped)"
  WITH_BCH=0
fi

step "the image holds no conf/.env, no virtualenv, no .git"
podman run --rm --entrypoint sh coin-daemons:latest -c \
  'ls -A /app; test ! -e /app/conf && test ! -e /app/.venv && test ! -e /app/.git && test ! -e /app/tests && echo clean'
[ "$(podman run --rm --entrypoint id coin-daemons:latest -un)" = daemon-user ] || fail "the image does not run unprivileged"

step "podman-compose"
if [ ! -x "$WORK/compose-venv/bin/podman-compose" ]; then
  python3 -m venv "$WORK/compose-venv"
  "$WORK/compose-venv/bin/pip" install -q podman-compose
fi
compose() { "$WORK/compose-venv/bin/podman-compose" -p "$PROJECT" "$@"; }
compose version 2>/dev/null | grep -i version

# Settings the way an operator gives them: one env file (conf/.env normally; a scratch one here, so a
# developer's own conf/.env is left alone). Ports: free ones on the host's loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
BTC_HOST_PORT=$(free_port); XMR_HOST_PORT=$(free_port); XMRIG_HOST_PORT=$(free_port); BCH_HOST_PORT=$(free_port)
BITMESSAGE_PORT=$(free_port); NODE_PORT=$(free_port)
export BTC_HOST_PORT XMR_HOST_PORT XMRIG_HOST_PORT BCH_HOST_PORT
BTC_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
XMR_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
XMRIG_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
export COIN_DAEMONS_ENV_FILE="$WORK/smoke.env"
cat > "$COIN_DAEMONS_ENV_FILE" <<EOF
BTC_PASSWORD=$BTC_PASSWORD
BTC_NETWORK=testnet
BTC_OFFLINE=true
XMR_PASSWORD=$XMR_PASSWORD
XMR_NETWORK=regtest
XMRIG_PASSWORD=$XMRIG_PASSWORD
XMRIG_METRICS_AUTH=false
XMRIG_MINERS=[{"name": "rig-from-env-file", "url": "http://127.0.0.1:9", "token": "t"}]
BCH_PASSWORD=$BTC_PASSWORD
BCH_NETWORK=testnet
BCH_OFFLINE=true
BITMESSAGE_PORT=$BITMESSAGE_PORT
BITMESSAGE_NODE_URL=http://127.0.0.1:$NODE_PORT/
BITMESSAGE_NODE_USER=bmuser
BITMESSAGE_NODE_PASSWORD=bmpass
EOF
chmod 600 "$COIN_DAEMONS_ENV_FILE"

NODE_PID=""
cleanup() {
  [ -z "$NODE_PID" ] || kill "$NODE_PID" 2>/dev/null || true
  if [ "${SMOKE_KEEP:-0}" != 1 ]; then
    step "compose down"
    compose --profile bch down -v >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

step "compose config: one daemon's settings are enough"
compose config >/dev/null && echo "config ok"

step "compose up -d btc"
compose up -d btc
step "compose up -d monerod xmr xmrig"
compose up -d monerod xmr xmrig

rpc() {  # rpc PORT PASSWORD METHOD [PARAMS]
  curl -sS --max-time 60 -u "electrum:$2" -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$3\",\"params\":${4:-[]}}" \
    "http://127.0.0.1:$1/"
}
wait_health() {  # wait_health NAME PORT: until /health answers (any status), at most 3 minutes
  for _ in $(seq 1 90); do
    if body=$(curl -sS --max-time 10 "http://127.0.0.1:$2/health" 2>/dev/null) && [ -n "$body" ]; then
      echo "$1 /health: $body"; return 0
    fi
    sleep 2
  done
  compose logs "$1" | tail -n 30
  fail "$1 never answered /health"
}

step "btc"
wait_health btc "$BTC_HOST_PORT"
curl -sS "http://127.0.0.1:$BTC_HOST_PORT/health" | grep -q '"network":"testnet"' \
  || fail "BTC_NETWORK from the env file did not reach the daemon"
echo "BTC_NETWORK=testnet from the env file reached the daemon"
status=$(curl -s -o /dev/null -w '%{http_code}' -d '{"jsonrpc":"2.0","id":1,"method":"help"}' "http://127.0.0.1:$BTC_HOST_PORT/")
[ "$status" = 401 ] || fail "RPC without credentials answered $status"
seed=$(rpc "$BTC_HOST_PORT" "$BTC_PASSWORD" make_seed | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"])')
rpc "$BTC_HOST_PORT" "$BTC_PASSWORD" getunusedaddress "{\"xpub\":\"$seed\"}"; echo
rpc "$BTC_HOST_PORT" "$BTC_PASSWORD" add_request "{\"amount\":\"0.001\",\"force\":true,\"xpub\":\"$seed\"}" \
  | grep -q '"result"' || fail "add_request failed"
echo "add_request on a seed wallet: ok (wallet written to the btc_data volume as daemon-user)"
curl -sS -u "electrum:$BTC_PASSWORD" "http://127.0.0.1:$BTC_HOST_PORT/metrics" \
  | grep -E '^coin_daemon_(rpc_calls_total\{code="ok",method="add_request"\}|wallets_loaded|events_newest_id|backend_status\{status="ok"\})'

step "xmr on a regtest monerod"
wait_health xmr "$XMR_HOST_PORT"
for _ in $(seq 1 60); do
  curl -sS "http://127.0.0.1:$XMR_HOST_PORT/health" | grep -q '"monerod":"ok"' && break
  sleep 2
done
curl -sS "http://127.0.0.1:$XMR_HOST_PORT/health" | grep -q '"monerod":"ok"' || fail "xmr cannot reach monerod"
echo "xmr reaches monerod (regtest from XMR_NETWORK)"
compose logs monerod 2>&1 | grep -m1 'monerod: regtest' || fail "monerod did not follow XMR_NETWORK"
rpc "$XMR_HOST_PORT" "$XMR_PASSWORD" getinfo; echo

curl -sS -u "electrum:$XMR_PASSWORD" "http://127.0.0.1:$XMR_HOST_PORT/metrics" \
  | grep -E '^coin_daemon_(xmr_wallet_rpc|backend_height|backend_status\{status="ok"\})'

step "xmrig: XMRIG_MINERS from the env file, /metrics without auth"
wait_health xmrig "$XMRIG_HOST_PORT"
rpc "$XMRIG_HOST_PORT" "$XMRIG_PASSWORD" list_miners | grep -q rig-from-env-file \
  || fail "XMRIG_MINERS from the env file did not reach the daemon"
echo "XMRIG_MINERS from the env file reached the daemon"
curl -sS "http://127.0.0.1:$XMRIG_HOST_PORT/metrics" | grep -E '^coin_daemon_xmrig_miners'

# A PyBitmessage API on the host's loopback, as README's keys.dat has it: the test double of its API
# (tests/bitmessage_double.py) stands in for the node, which is on no registry.
step "bitmessage on the host network reaches a node API on the host's 127.0.0.1"
PYTHON=${PYTHON:-.venv/bin/python}
"$PYTHON" -c "
import asyncio
from tests.bitmessage_double import BitmessageDouble
async def main():
    await BitmessageDouble(auth_delay=0).start($NODE_PORT)
    await asyncio.Event().wait()
asyncio.run(main())" &
NODE_PID=$!
compose up -d bitmessage
wait_health bitmessage "$BITMESSAGE_PORT"
for _ in $(seq 1 30); do
  curl -sS "http://127.0.0.1:$BITMESSAGE_PORT/health" | grep -q '"status":"ok"' && break
  sleep 2
done
curl -sS "http://127.0.0.1:$BITMESSAGE_PORT/health" | grep -q '"status":"ok"' || fail "bitmessage cannot reach the node API"
echo "bitmessage reaches the node API at 127.0.0.1:$NODE_PORT"
SERVICES="btc xmr xmrig monerod bitmessage"

if [ "$WITH_BCH" = 1 ]; then
  step "bch (profile bch)"
  compose --profile bch up -d bch
  wait_health bch "$BCH_HOST_PORT"
  rpc "$BCH_HOST_PORT" "$BTC_PASSWORD" validateaddress '["bitcoincash:qp3wjpa3tjlj042z2wv7hahsldgwhwy0rq9sywjpyy"]'; echo
  SERVICES="$SERVICES bch"
fi

step "container health checks"
sleep 5
for service in $SERVICES; do
  container=$(podman ps --format '{{.Names}}' | grep -E "^${PROJECT}[_-]${service}[_-]1$" | head -n1)
  [ -n "$container" ] || fail "no container for $service"
  if podman healthcheck run "$container" >/dev/null 2>&1; then echo "$service: healthy"
  else echo "$service: unhealthy ($(podman exec "$container" python -m daemons.healthcheck 2>&1 | tail -n1))"; fi
done

step "volumes"
podman volume ls --format '{{.Name}}' | grep "^${PROJECT}_" | sort
anonymous=$(podman inspect --format '{{range .Mounts}}{{.Type}}:{{.Name}} {{end}}' \
  $(podman ps --format '{{.Names}}' | grep "^${PROJECT}[_-]") | tr ' ' '\n' | grep -c '^volume:[0-9a-f]\{64\}$' || true)
[ "$anonymous" = 0 ] || fail "$anonymous anonymous volume(s)"
echo "no anonymous volumes"

step "SMOKE PASSED"
