"""Settings: ``<NAME>_<SETTING>`` from the environment, then ``conf/.env``, then the default.

python-decouple parses the ``.env`` file and casts booleans; this module adds the per-daemon
prefix, an explicit environment for tests, and errors that name the variable so a bad value
stops start-up with a message an operator can act on.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decouple import RepositoryEmpty, RepositoryEnv, strtobool

DEFAULT_ENV_FILE = Path(__file__).resolve().parent.parent / "conf" / ".env"
DEFAULT_LOGIN = "electrum"
DEFAULT_PASSWORD = "electrumz"
MIN_EXPOSED_PASSWORD = 16  # characters of PASSWORD required off loopback
_MISSING: Any = object()


class SettingsError(Exception):
    """A setting is missing or has a value that cannot be used; start-up stops with this message."""


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return bool(strtobool(str(value).strip()))


def parse_port(value: Any) -> int:
    port = int(str(value).strip())
    if not 0 <= port <= 65535:
        raise ValueError("a port is a number from 0 to 65535")
    return port


def parse_positive_int(value: Any) -> int:
    number = int(str(value).strip())
    if number <= 0:
        raise ValueError("must be a positive whole number")
    return number


def parse_positive_float(value: Any) -> float:
    number = float(str(value).strip())
    if not number > 0:
        raise ValueError("must be a positive number")
    return number


def parse_non_negative_float(value: Any) -> float:
    number = float(str(value).strip())
    if not number >= 0 or number == float("inf"):
        raise ValueError("must be zero or a positive number")
    return number


# URL: a backend URL may carry user:password@ (daemons.urls takes it out, but a bad value is never parsed).
SECRET_WORDS = ("PASSWORD", "TOKEN", "SECRET", "KEY", "SEED", "MINERS", "AUTH", "CREDENTIAL", "LOGIN", "URL")


def is_secret_name(name: str) -> bool:
    """Settings whose values must never be echoed back, even in an error message."""
    return any(word in name.upper() for word in SECRET_WORDS)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_data_root() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "coin-daemons"


class Settings:
    """Reads one daemon's settings. ``environ`` replaces ``os.environ`` (tests use it)."""

    def __init__(self, prefix: str, environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> None:
        self.prefix = prefix.upper()
        self.environ = os.environ if environ is None else environ
        env_file = DEFAULT_ENV_FILE if env_file is None else env_file
        # decouple's repository parses the .env file (quotes, comments, export lines).
        self._file = RepositoryEnv(str(env_file)) if env_file.is_file() else RepositoryEmpty()

    def variable(self, key: str) -> str:
        return f"{self.prefix}_{key.upper()}"

    def raw(self, key: str) -> str | None:
        name = self.variable(key)
        if name in self.environ:
            return self.environ[name]
        if name in self._file:
            return self._file[name]
        return None

    def get(self, key: str, cast: Callable[[Any], Any] = str, default: Any = _MISSING) -> Any:
        """The setting's value, cast; a value that does not cast raises SettingsError naming the variable."""
        name = self.variable(key)
        value = self.raw(key)
        if value is None:
            if default is _MISSING:
                raise SettingsError(f"{name} is required but not set")
            return default
        if cast is bool:
            cast = parse_bool
        try:
            return cast(value)
        except (ValueError, TypeError) as exc:
            if is_secret_name(name):
                # Neither the value nor the parser's message (which may quote it) is shown.
                raise SettingsError(f"Invalid value for {name} (value hidden: it may hold a secret)") from None
            raise SettingsError(f"Invalid value for {name}: {value!r} ({exc})") from exc


@dataclass(frozen=True)
class CommonSettings:
    """The settings every daemon has (CONTRACT.md, "Settings")."""

    host: str
    port: int
    login: str
    password: str
    data_path: Path
    network: str
    debug: bool
    max_body_size: int
    events_retention_count: int
    events_retention_days: float
    ws_queue_size: int
    ws_send_timeout: float
    max_batch_length: int = 200
    max_batch_response_size: int = 16 * 1024 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 4096
    max_connections_per_peer: int = 2048
    allowed_origins: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        # The password must never reach a log through repr().
        return f"CommonSettings(host={self.host!r}, port={self.port}, data_path={str(self.data_path)!r})"

    @classmethod
    def read(cls, settings: Settings, name: str, default_port: int) -> CommonSettings:
        in_docker = parse_bool(settings.environ.get("IN_DOCKER", "false") or "false")
        common = cls(
            host=settings.get("HOST", default="0.0.0.0" if in_docker else "127.0.0.1"),
            port=settings.get("PORT", cast=parse_port, default=default_port),
            login=settings.get("LOGIN", default=DEFAULT_LOGIN),
            password=settings.get("PASSWORD", default=DEFAULT_PASSWORD),
            data_path=settings.get("DATA_PATH", cast=Path, default=default_data_root() / name.lower()),
            network=settings.get("NETWORK", default="mainnet").strip().lower(),
            debug=settings.get("DEBUG", cast=bool, default=False),
            max_body_size=settings.get("MAX_BODY_SIZE", cast=parse_positive_int, default=1024 * 1024),
            events_retention_count=settings.get("EVENTS_RETENTION_COUNT", cast=parse_positive_int, default=100_000),
            events_retention_days=settings.get("EVENTS_RETENTION_DAYS", cast=parse_positive_float, default=30.0),
            ws_queue_size=settings.get("WS_QUEUE_SIZE", cast=parse_positive_int, default=1000),
            ws_send_timeout=settings.get("WS_SEND_TIMEOUT", cast=parse_positive_float, default=30.0),
            max_batch_length=settings.get("MAX_BATCH_LENGTH", cast=parse_positive_int, default=200),
            max_batch_response_size=settings.get(
                "MAX_BATCH_RESPONSE_SIZE", cast=parse_positive_int, default=16 * 1024 * 1024
            ),
            header_timeout=settings.get("HEADER_TIMEOUT", cast=parse_positive_float, default=10.0),
            body_timeout=settings.get("BODY_TIMEOUT", cast=parse_positive_float, default=30.0),
            max_connections=settings.get("MAX_CONNECTIONS", cast=parse_positive_int, default=4096),
            max_connections_per_peer=settings.get("MAX_CONNECTIONS_PER_PEER", cast=parse_positive_int, default=2048),
            allowed_origins=settings.get("ALLOWED_ORIGINS", cast=parse_origins, default=frozenset()),
        )
        common.check_exposure(settings)
        return common

    def check_exposure(self, settings: Settings) -> None:
        """Refuse to serve a wallet daemon to the network behind a guessable login.

        Off loopback anyone who reaches the port can try passwords: a login and a password of at
        least MIN_EXPOSED_PASSWORD characters (not the well-known default) are required."""
        if is_loopback(self.host):
            return
        weak = not self.login or len(self.password) < MIN_EXPOSED_PASSWORD or self.password == DEFAULT_PASSWORD
        if weak:
            raise SettingsError(
                f"Refusing to bind {settings.variable('HOST')}={self.host} (not loopback) with a weak login: set "
                f"{settings.variable('LOGIN')} to a non-empty name and {settings.variable('PASSWORD')} to a secret "
                f"of at least {MIN_EXPOSED_PASSWORD} characters (not the default one)"
            )


def parse_origins(value: Any) -> frozenset[str]:
    """ALLOWED_ORIGINS: browser origins (``scheme://host[:port]``) separated by commas or spaces."""
    origins = set()
    for item in str(value).replace(",", " ").split():
        origin = item.rstrip("/").lower()
        scheme, sep, rest = origin.partition("://")
        if not sep or scheme not in ("http", "https") or not rest or "/" in rest:
            raise ValueError(f"{item!r} is not an origin such as https://shop.example.com")
        origins.add(origin)
    return frozenset(origins)
