"""Settings: prefix, .env file, defaults, and start-up refusals with messages naming the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemons.settings import DEFAULT_PASSWORD, Settings, SettingsError
from tests.sample_daemon import SampleDaemon
from tests.support import NO_ENV_FILE, ROOT


def make(env: dict[str, str], env_file: Path = NO_ENV_FILE) -> SampleDaemon:
    return SampleDaemon(environ=env, env_file=env_file)


def test_defaults_and_prefix(tmp_path):
    daemon = make({"SAMPLE_DATA_PATH": str(tmp_path), "BTC_PORT": "1"})
    s = daemon.settings
    assert (s.host, s.port, s.login, s.password) == ("127.0.0.1", 5999, "electrum", DEFAULT_PASSWORD)
    assert (s.network, s.debug, s.max_body_size) == ("mainnet", False, 1024 * 1024)
    assert s.data_path == tmp_path
    assert "electrumz" not in repr(s)


def test_environment_wins_over_env_file_which_wins_over_default(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nSAMPLE_PORT=6001\nSAMPLE_NETWORK=regtest\nSAMPLE_LOAD_DELAY='0.5'\n")
    daemon = make({"SAMPLE_PORT": "6002"}, env_file)
    assert daemon.settings.port == 6002
    assert daemon.settings.network == "regtest"
    assert daemon.load_delay == 0.5


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SAMPLE_PORT", "abc"),
        ("SAMPLE_PORT", "70000"),
        ("SAMPLE_DEBUG", "maybe"),
        ("SAMPLE_MAX_BODY_SIZE", "-1"),
        ("SAMPLE_WS_QUEUE_SIZE", "0"),
        ("SAMPLE_LOAD_DELAY", "soon"),  # a daemon's own setting, read through self.env
    ],
)
def test_bad_value_names_the_variable(variable, value):
    with pytest.raises(SettingsError) as refused:
        make({variable: value})
    assert variable in str(refused.value)
    assert repr(value) in str(refused.value)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.org", "::"])
def test_non_loopback_host_with_default_password_refuses(host):
    with pytest.raises(SettingsError) as refused:
        make({"SAMPLE_HOST": host})
    message = str(refused.value)
    assert "SAMPLE_HOST" in message and "SAMPLE_PASSWORD" in message and "16 characters" in message
    make({"SAMPLE_HOST": host, "SAMPLE_PASSWORD": "a-strong-secret-16"})  # fine with a real password


def test_bad_secret_value_is_not_echoed():
    with pytest.raises(SettingsError) as refused:
        Settings("sample", {"SAMPLE_API_TOKEN": "hunter2-secret"}, NO_ENV_FILE).get("API_TOKEN", cast=int)
    assert "SAMPLE_API_TOKEN" in str(refused.value)
    assert "hunter2" not in str(refused.value) and refused.value.__cause__ is None


def test_in_docker_binds_everywhere_but_needs_a_password():
    with pytest.raises(SettingsError):
        make({"IN_DOCKER": "1"})
    assert make({"IN_DOCKER": "1", "SAMPLE_PASSWORD": "s3cret-of-16-chars"}).settings.host == "0.0.0.0"
    for host in ("127.0.0.1", "localhost", "::1", "127.5.5.5"):
        assert make({"SAMPLE_HOST": host}).settings.host == host


def test_required_setting_message():
    with pytest.raises(SettingsError, match="SAMPLE_THING is required"):
        Settings("sample", {}, NO_ENV_FILE).get("THING")


def run_entry(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemons", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_unknown_daemon_lists_the_known_ones():
    result = run_entry("nosuchcoin")
    assert result.returncode == 2
    assert "unknown daemon 'nosuchcoin'" in result.stderr
    for name in ("btc", "bch", "xmr", "bitmessage", "xmrig"):
        assert name in result.stderr
    assert "usage" in run_entry().stderr


@pytest.mark.parametrize(
    "credentials",
    [{"SAMPLE_PASSWORD": ""}, {"SAMPLE_PASSWORD": "a"}, {"SAMPLE_PASSWORD": "x" * 15}, {"SAMPLE_LOGIN": ""}],
    ids=["empty-password", "one-char", "15-chars", "empty-login"],
)
def test_off_loopback_a_login_and_a_16_character_password_are_required(credentials):
    strong = {"SAMPLE_HOST": "0.0.0.0", "SAMPLE_LOGIN": "shop", "SAMPLE_PASSWORD": "x" * 16}
    assert make(strong).settings.host == "0.0.0.0"
    with pytest.raises(SettingsError) as refused:
        make({**strong, **credentials})
    message = str(refused.value)
    assert "SAMPLE_LOGIN" in message and "SAMPLE_PASSWORD" in message and "at least 16 characters" in message
    assert make({**strong, **credentials, "SAMPLE_HOST": "127.0.0.1"}).settings.host == "127.0.0.1"  # loopback: allowed


def test_allowed_origins_are_parsed_and_checked():
    origins = make({"SAMPLE_ALLOWED_ORIGINS": "https://Shop.example.com/, http://localhost:8080"}).settings
    assert origins.allowed_origins == {"https://shop.example.com", "http://localhost:8080"}
    assert make({}).settings.allowed_origins == frozenset()
    with pytest.raises(SettingsError) as refused:
        make({"SAMPLE_ALLOWED_ORIGINS": "shop.example.com"})
    assert "SAMPLE_ALLOWED_ORIGINS" in str(refused.value)
