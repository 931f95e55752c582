"""DATA_PATH is owner-only whatever the umask, and an unusable one stops start-up by name (issue 12, item 13)."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemons.settings import SettingsError
from tests.sample_daemon import SampleDaemon
from tests.support import NO_ENV_FILE, ROOT, free_port, prefixed, running_daemon
from tests.test_core_connections import daemon_process, xmrig_env


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


async def test_everything_under_data_path_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    with umask(0):
        async with running_daemon(SampleDaemon, data_path=data) as d:
            await d.call("emit", "X", 3)  # writes the WAL
            files = {path.name: mode(path) for path in data.iterdir()}
    assert mode(data) == 0o700
    assert files == {"events.sqlite3": 0o600, "events.sqlite3-wal": 0o600, "events.sqlite3-shm": 0o600}, files


async def test_what_an_older_version_left_readable_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "wallets").mkdir(parents=True)
    (data / "wallets" / "w1").write_text("{}")
    for path, bits in ((data, 0o755), (data / "wallets", 0o755), (data / "wallets" / "w1", 0o644)):
        path.chmod(bits)
    async with running_daemon(SampleDaemon, data_path=data):
        pass
    assert (mode(data), mode(data / "wallets"), mode(data / "wallets" / "w1")) == (0o700, 0o700, 0o600)


@pytest.mark.parametrize("bits", [0o777, 0o775, 0o757])
async def test_a_data_path_others_can_write_to_is_refused(tmp_path: Path, bits: int) -> None:
    data = tmp_path / "shared"
    data.mkdir()
    data.chmod(bits)
    with pytest.raises(SettingsError) as refused:
        async with running_daemon(SampleDaemon, data_path=data):
            pass
    assert "SAMPLE_DATA_PATH" in str(refused.value) and "writable by other users" in str(refused.value)
    assert not (data / "events.sqlite3").exists()


async def test_a_data_path_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SettingsError) as refused:
        async with running_daemon(SampleDaemon, data_path=blocker / "data"):
            pass
    assert "SAMPLE_DATA_PATH" in str(refused.value) and str(blocker / "data") in str(refused.value)


def run_xmrig(data: Path, **popen: object) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        **prefixed("XMRIG", {"DATA_PATH": str(data), "PORT": str(free_port())}),
    }
    return subprocess.run(
        [sys.executable, "-m", "daemons", "xmrig"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        **popen,
    )


def test_the_real_daemon_names_an_unusable_data_path_without_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_xmrig(blocker / "data")
    assert result.returncode == 2, result.stderr
    assert "XMRIG_DATA_PATH" in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the daemon as another user")
def test_a_data_path_owned_by_another_user_is_named() -> None:
    with tempfile.TemporaryDirectory() as parent:  # in /tmp, which every user may search
        data = Path(parent) / "root-owned"
        data.mkdir()
        for path in (Path(parent), data):
            path.chmod(0o755)
        result = run_xmrig(data, user=65534, group=65534)  # nobody: like a root-owned bind mount in a container
    assert result.returncode == 2, result.stderr
    assert "XMRIG_DATA_PATH" in result.stderr and "not writable" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_settings_are_checked_before_the_data_path_is_touched(tmp_path: Path) -> None:
    # A daemon object alone creates nothing: DATA_PATH is made at start-up, with its checks.
    SampleDaemon(environ={"SAMPLE_DATA_PATH": str(tmp_path / "later")}, env_file=NO_ENV_FILE)
    assert not (tmp_path / "later").exists()


async def test_the_real_daemon_creates_owner_only_files_under_umask_000(tmp_path: Path) -> None:
    port, data = free_port(), tmp_path / "data"
    argv = [sys.executable, "-m", "daemons", "xmrig"]
    async with daemon_process(argv, xmrig_env(data, port), port, tmp_path / "log", preexec_fn=lambda: os.umask(0)):
        pass
    modes = {str(path.relative_to(data)): mode(path) for path in data.rglob("*")}
    assert mode(data) == 0o700 and "xmrig.sqlite3" in modes and "events.sqlite3" in modes, modes
    assert all(bits == (0o700 if (data / name).is_dir() else 0o600) for name, bits in modes.items()), modes
