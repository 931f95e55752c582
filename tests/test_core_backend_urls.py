"""Credentials written into XMR's and XMRig's backend URLs move into the auth they belong to (issue 12, item 14).

The shared helper is ``daemons.urls.parse_backend_url`` (tests/test_core_urls.py); here the daemons'
settings use it: the URL they keep, show and log holds no secret.
"""

from __future__ import annotations

import json

import pytest

from daemons.settings import SettingsError
from daemons.xmr import XMRDaemon
from daemons.xmrig import XMRigDaemon
from tests.support import NO_ENV_FILE, prefixed


def xmr(**env: str) -> XMRDaemon:
    return XMRDaemon(environ=prefixed("XMR", env), env_file=NO_ENV_FILE)


def test_xmr_urls_give_their_credentials_to_the_digest_login() -> None:
    daemon = xmr(MONEROD_URL="http://node:s3cret@127.0.0.1:18081/", WALLET_RPC_URL="http://w:p%23w@127.0.0.1:18083")
    assert (daemon.monerod_url, daemon.monerod_login) == ("http://127.0.0.1:18081", "node:s3cret")
    assert (daemon.wallet_rpc_url, daemon.wallet_rpc_login) == ("http://127.0.0.1:18083", "w:p#w")
    plain = xmr(MONEROD_URL="http://127.0.0.1:18081", MONEROD_LOGIN="op:pw")
    assert (plain.monerod_url, plain.monerod_login) == ("http://127.0.0.1:18081", "op:pw")
    assert (xmr().monerod_url, xmr().monerod_login, xmr().wallet_rpc_url) == ("http://127.0.0.1:18081", "", "")


def test_xmr_credentials_in_both_places_stop_start_up_without_showing_them() -> None:
    with pytest.raises(SettingsError) as refused:
        xmr(MONEROD_URL="http://node:s3cret@127.0.0.1:18081", MONEROD_LOGIN="op:other")
    assert "XMR_MONEROD_URL" in str(refused.value) and "s3cret" not in str(refused.value)


def xmrig_miners(miners: list[dict]) -> dict:
    daemon = XMRigDaemon(environ=prefixed("XMRIG", {"MINERS": json.dumps(miners)}), env_file=NO_ENV_FILE)
    return {miner.name: miner for miner in daemon.configured_miners}


def test_an_xmrig_url_gives_its_credential_to_the_bearer_token() -> None:
    miners = xmrig_miners(
        [
            {"name": "a", "url": "http://:tok-a@10.0.0.5:8080"},
            {"name": "b", "url": "tok-b@10.0.0.6:8080", "tls": True},
            {"name": "c", "url": "http://10.0.0.7:8080", "token": "tok-c"},
        ]
    )
    assert (miners["a"].url, miners["a"].token) == ("http://10.0.0.5:8080", "tok-a")
    assert (miners["b"].url, miners["b"].token, miners["b"].base_url) == (
        "10.0.0.6:8080",
        "tok-b",
        "https://10.0.0.6:8080",
    )
    assert (miners["c"].url, miners["c"].token) == ("http://10.0.0.7:8080", "tok-c")
    assert all("tok" not in repr(miner) for miner in miners.values())


def test_an_xmrig_token_in_both_places_is_refused() -> None:
    with pytest.raises(SettingsError) as refused:
        xmrig_miners([{"name": "a", "url": "http://:tok@10.0.0.5:8080", "token": "other"}])
    assert "XMRIG_MINERS" in str(refused.value) and "tok" not in str(refused.value).replace("token", "")
