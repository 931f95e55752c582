"""set_config as XMRig 6.26 really applies it (issue 15, items 2 and 3), against tests/xmrig_double.py.

A new ``http`` section restarts XMRig's HTTP server with the new token and port; a miner started with
``-c config.json`` loads a written config only when its file watcher fires, 0.5 s after the 204 answer.
"""

from __future__ import annotations

import json
from pathlib import Path

from daemons.jsonrpc import RPCError
from daemons.xmrig import MINER_UNAVAILABLE, XMRigDaemon
from tests.support import DaemonClient, running_daemon
from tests.test_xmrig_daemon import FAST, events, eventually, more_polls, rpc_error
from tests.xmrig_double import XMRigDouble, free_port

TOKEN = "token-one"


def setting(double: XMRigDouble, token: str = TOKEN, url: str | None = None) -> str:
    return json.dumps([{"name": "rig1", "url": url or double.url, "token": token}])


async def test_rotating_the_token_and_moving_the_port(tmp_path: Path) -> None:
    """Item 2: the daemon follows the miner to its new token and port, keeps them, and says so."""
    async with XMRigDouble("rig1", TOKEN) as rig:
        first_url = rig.url
        env = {**FAST, "MINERS": setting(rig)}
        async with running_daemon(XMRigDaemon, env=env, data_path=tmp_path) as d:
            await eventually(lambda: events(d, "rig1", "miner_online"), "rig1 online")
            changed = await d.call("set_config", {"http": {"access-token": "rotated-token"}}, xpub="rig1")
            assert changed["applied"] is True and changed["config"]["http"]["access-token"] == "********"
            assert rig.token == "rotated-token"
            assert (await d.call("summary", xpub="rig1"))["worker_id"] == "rig1"

            new_port = free_port()
            changed = await d.call("set_config", {"http": {"port": new_port}}, xpub="rig1")
            assert changed["applied"] is True and changed["config"]["http"]["port"] == new_port
            assert rig.port == new_port
            assert (await d.call("summary", xpub="rig1"))["worker_id"] == "rig1"
            await more_polls(d, "rig1")
            listed = (await d.call("list_miners"))[0]
            assert listed["url"] == f"http://127.0.0.1:{new_port}" and listed["overridden"] is True
            assert listed["state"] == "ok" and listed["online"] is True
            assert await events(d, "rig1", "miner_offline") == []
            assert "rotated-token" not in json.dumps(listed)

        # a restart with the same XMRIG_MINERS keeps what set_config changed
        async with running_daemon(XMRigDaemon, env={**env, "POLL_INTERVAL": "3600"}, data_path=tmp_path) as d:
            assert (await d.call("summary", xpub="rig1"))["worker_id"] == "rig1"
            assert (await d.call("list_miners"))[0]["overridden"] is True

        # a changed XMRIG_MINERS entry wins over the old override
        changed_env = {**env, "MINERS": setting(rig, "rotated-token", first_url), "POLL_INTERVAL": "3600"}
        async with running_daemon(XMRigDaemon, env=changed_env, data_path=tmp_path) as d:
            listed = (await d.call("list_miners"))[0]
            assert listed["overridden"] is False and listed["url"] == first_url


async def test_a_miner_with_a_config_file_runs_the_change_after_its_watcher() -> None:
    """Item 3: set_config returns the config the miner runs once its file watcher has loaded it."""
    async with (
        XMRigDouble("rig1", TOKEN, config_file=True) as rig,
        running_daemon(XMRigDaemon, env={**FAST, "MINERS": setting(rig)}) as d,
    ):
        changed = await d.call("set_config", {"print-time": 30}, xpub="rig1")
        assert changed == {"applied": True, "config": {**changed["config"], "print-time": 30}}
        assert rig.config["print-time"] == 30


async def test_a_change_not_seen_in_time_is_pending_and_followed_later() -> None:
    """Item 3: within XMRIG_APPLY_TIMEOUT the watcher has not fired: applied false with the config still run;
    a token written meanwhile is picked up by the poller once the miner uses it."""
    async with XMRigDouble("rig1", TOKEN, config_file=True) as rig:
        env = {**FAST, "MINERS": setting(rig), "APPLY_TIMEOUT": "0.01"}
        async with running_daemon(XMRigDaemon, env=env) as d:
            await eventually(lambda: events(d, "rig1", "miner_online"), "rig1 online")
            pending = await d.call("set_config", {"print-time": 30, "http": {"access-token": "later"}}, xpub="rig1")
            assert pending["applied"] is False and pending["config"]["print-time"] == 60
            await eventually(lambda: _answers_with(d, "later", rig), "the poller following the new token")
            assert (await d.call("config", xpub="rig1"))["print-time"] == 30
            await more_polls(d, "rig1")
            assert (await d.call("list_miners"))[0]["state"] == "ok"


async def _answers_with(d: DaemonClient, token: str, rig: XMRigDouble) -> bool:
    """The miner uses ``token`` and the daemon reaches it (RPCError until the poller has followed)."""
    if rig.token != token:
        return False
    try:
        return (await d.call("summary", xpub="rig1"))["worker_id"] == "rig1"
    except RPCError:
        return False


async def test_a_config_that_locks_the_daemon_out_is_refused() -> None:
    """Switching the API off, or leaving it unrestricted without a token (XMRig then answers 401 to all)."""
    async with (
        XMRigDouble("rig1", TOKEN) as rig,
        running_daemon(XMRigDaemon, env={**FAST, "MINERS": setting(rig)}) as d,
    ):
        err = await rpc_error(d.call("set_config", {"http": {"enabled": False}}, xpub="rig1"))
        assert err.code == -32602 and "http.enabled" in err.message
        err = await rpc_error(d.call("set_config", {"http": {"access-token": None}}, xpub="rig1"))
        assert err.code == -32602 and "401" in err.message
        assert rig.config["http"]["enabled"] is True and rig.token == TOKEN
        assert not [r for r in rig.requests if r[0] == "PUT"]


async def test_a_miner_that_dies_on_an_http_change_is_reported_down() -> None:
    """XMRig 6.26.0 without a config file aborted on most http changes: no answer, then nothing listens."""
    async with XMRigDouble("rig1", TOKEN) as rig:
        rig.abort_on_http_restart = True
        env = {**FAST, "MINERS": setting(rig), "APPLY_TIMEOUT": "0.5"}
        async with running_daemon(XMRigDaemon, env=env) as d:
            err = await rpc_error(d.call("set_config", {"http": {"access-token": "rotated"}}, xpub="rig1"))
            assert err.code == MINER_UNAVAILABLE and "without answering the config write" in err.message
            await eventually(lambda: events(d, "rig1", "miner_offline"), "miner_offline")
