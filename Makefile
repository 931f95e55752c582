# Two commands for a fresh machine: `make run` and `make test`. Both set the machine up first,
# idempotently: Debian packages, the virtualenv .venv (with system site packages, for Debian's
# Electrum), and the project with its test extras and the regtest node's (py-bitcoinkernel).

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := python3-venv python3-pip python3-electrum monero sqlite3
DAEMON ?= btc

.PHONY: setup apt venv electrumx-venv test run lint format bench clean smoke

setup: apt venv electrumx-venv

# apt-get runs only when a package is missing, so repeated runs cost nothing.
apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

# The stamp is rebuilt when setup.cfg changes, so a new dependency is installed by the next make.
$(VENV)/.installed: setup.cfg pyproject.toml
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,regtest]'
	@touch $@

venv: apt $(VENV)/.installed

# ElectrumX (PyPI e-x, with LevelDB) for the regtest stack, in a virtualenv of its own without system site
# packages: it needs a newer aiorpcX than Debian's Electrum. regtest/stack.py runs .venv-electrumx/bin/electrumx_server.
ELECTRUMX_VENV := .venv-electrumx
$(ELECTRUMX_VENV)/.installed:
	@test -x $(ELECTRUMX_VENV)/bin/python || /usr/bin/python3 -m venv $(ELECTRUMX_VENV)
	$(ELECTRUMX_VENV)/bin/pip install -q 'e-x[leveldb]==2.0.0'
	@touch $@

electrumx-venv: apt $(ELECTRUMX_VENV)/.installed

test: setup
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check daemons regtest tests bench
	$(VENV)/bin/ruff format --check daemons regtest tests bench

format: venv
	$(VENV)/bin/ruff format daemons regtest tests bench
	$(VENV)/bin/ruff check --fix daemons regtest tests bench

# The regtest daemon's wallets, headers and events live beside the chain: deleting data/regtest resets both
# (wallets of an old chain would show its coins and payments on the new one).
REGTEST_DAEMON_DATA := $(CURDIR)/data/regtest/btc-daemon

# BTC on regtest. By default the daemon runs online on the bundled regtest stack (regtest/: a regtest node on 127.0.0.1:18443 and
# ElectrumX on :50001, chain kept in data/regtest; README "Regtest stack"). REGTEST=0 runs it offline without
# the stack; `make run REGTEST=0 BTC_OFFLINE=false BTC_SERVER=host:port:t` points it at another Electrum server.
run: setup
	@echo "Starting the BTC daemon on $${BTC_NETWORK:-regtest}$$( [ "$${REGTEST:-1}" = 0 ] && [ "$${BTC_OFFLINE:-true}" = true ] && echo ', offline' ) at http://$${BTC_HOST:-127.0.0.1}:$${BTC_PORT:-5000} (Ctrl-C stops it). Try:"
	@echo "  curl -s -u electrum:electrumz -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"help\"}' http://127.0.0.1:$${BTC_PORT:-5000}/"
	@echo "  curl -s -u electrum:electrumz -d '{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"add_request\",\"params\":{\"amount\":\"0.001\",\"force\":true,\"xpub\":\"<vpub or seed>\"}}' http://127.0.0.1:$${BTC_PORT:-5000}/"
	@[ "$${REGTEST:-1}" = 0 ] || echo "  mine: curl -s -u rpcuser:rpcpassword -d '{\"method\":\"generatetoaddress\",\"params\":[1,\"<bcrt1 address>\"],\"id\":1}' http://127.0.0.1:$${REGTEST_RPCPORT:-18443}/"
	@if [ "$${REGTEST:-1}" = 0 ]; then \
	  BTC_NETWORK=$${BTC_NETWORK:-regtest} BTC_OFFLINE=$${BTC_OFFLINE:-true} exec $(PY) -m daemons btc; \
	else \
	  exec $(PY) -m regtest.stack -- env BTC_NETWORK=regtest BTC_OFFLINE=false BTC_ONESERVER=true \
	    BTC_SERVER=127.0.0.1:$${REGTEST_ELECTRUMX_PORT:-50001}:t BTC_DATA_PATH=$${BTC_DATA_PATH:-$(REGTEST_DAEMON_DATA)} \
	    $(PY) -m daemons btc; \
	fi

# Build the image and run docker-compose.yml for real with podman (root, minutes of CPU): README, "Docker".
# Not part of `make test` or CI.
smoke:
	deploy/smoke.sh

bench: setup
	$(PY) bench/dispatch.py

clean:
	rm -rf $(VENV) .venv-* *.egg-info .pytest_cache .ruff_cache .hypothesis
