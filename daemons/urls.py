"""Backend URLs from settings: credentials taken out of them once, when the settings are read.

Users paste URLs such as ``http://user:pass@127.0.0.1:8442/`` (the form PyBitmessage's docs
show). Credentials belong in an Authorization header, never in a URL that a log line, an error
message or ``/health`` could show; so a daemon parses such a setting with ``parse_backend_url``,
keeps only the bare ``url`` and sends ``user``/``password`` as HTTP Basic auth. ``/health`` needs
no auth, so it shows no backend URL at all, bare or not: where a backend listens is not public.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yarl


@dataclass(frozen=True)
class BackendURL:
    """A backend's URL without userinfo, and the (percent-decoded) user and password it held."""

    url: str
    user: str = ""
    password: str = field(default="", repr=False)

    @property
    def has_credentials(self) -> bool:
        return bool(self.user or self.password)

    def credentials(self, user: str, password: str) -> tuple[str, str]:
        """The credentials, from the URL or from the separate settings (`user`, `password`), not both.

        Given in both places they could disagree, and which one wins would be a guess: ValueError.
        """
        if self.has_credentials and (user or password):
            raise ValueError("credentials are given both inside the URL and as separate settings")
        return (self.user, self.password) if self.has_credentials else (user, password)


def parse_backend_url(value: str) -> BackendURL:
    """A settings cast: an http(s) URL with a host; ``user:password@`` is moved out of it.

    The error messages never quote the value, which may hold a password.
    """
    try:
        url = yarl.URL(str(value).strip())
        host, scheme = url.host, url.scheme
        url.port  # noqa: B018 - yarl checks the port's range only when asked
    except ValueError:
        raise ValueError("not a URL") from None
    if scheme not in ("http", "https") or not host:
        raise ValueError("expected an http:// or https:// URL with a host")
    return BackendURL(str(url.with_user(None)), url.user or "", url.password or "")
