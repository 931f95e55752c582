"""daemons.urls: credentials come out of backend URLs, and a bad URL setting is never echoed."""

from __future__ import annotations

import pytest

from daemons.settings import Settings, SettingsError
from daemons.urls import BackendURL, parse_backend_url
from tests.support import NO_ENV_FILE


@pytest.mark.parametrize(
    ("given", "url", "user", "password"),
    [
        ("http://user:p%40ss@127.0.0.1:8442/", "http://127.0.0.1:8442/", "user", "p@ss"),
        ("https://:only-pw@[::1]:8443/rpc?x=1", "https://[::1]:8443/rpc?x=1", "", "only-pw"),
        (" http://127.0.0.1:8442/ ", "http://127.0.0.1:8442/", "", ""),
    ],
)
def test_credentials_leave_the_url(given: str, url: str, user: str, password: str) -> None:
    parsed = parse_backend_url(given)
    assert (parsed.url, parsed.user, parsed.password) == (url, user, password)
    assert not password or password not in repr(parsed)


def test_credentials_come_from_one_place() -> None:
    assert parse_backend_url("http://a:b@h/").credentials("", "") == ("a", "b")
    assert parse_backend_url("http://h/").credentials("c", "d") == ("c", "d")
    with pytest.raises(ValueError, match="both"):
        parse_backend_url("http://a:b@h/").credentials("c", "")
    assert not BackendURL("http://h/").has_credentials


@pytest.mark.parametrize(
    "bad", ["ftp://u:s3cret@h/", "http://", "s3cret", "http://u:s3cret@h:99999/", "http://u:s3cret@h:x/"]
)
def test_bad_url_setting_is_refused_without_echo(bad: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings("sample", {"SAMPLE_NODE_URL": bad}, NO_ENV_FILE).get("NODE_URL", cast=parse_backend_url)
    assert "SAMPLE_NODE_URL" in str(refused.value) and "s3cret" not in str(refused.value)
