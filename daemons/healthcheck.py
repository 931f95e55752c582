"""``python -m daemons.healthcheck [URL]``: the image's HEALTHCHECK, without curl or wget in the image.

Without a URL it asks the daemon of this container: the one PID 1 runs (``python -m daemons <name>``), on
``<NAME>_PORT`` or its default port, path ``/health``. Exit 0 when the daemon answers ``ok``, ``syncing`` or
``busy`` (it serves requests; a chain that is catching up, or a Bitmessage node working through a long call, is
no reason to call the container broken), 1 otherwise
(``backend_unavailable``, no answer). With a URL (such as monerod's ``/get_info``) any 200 is healthy.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import DAEMONS

HEALTHY = {"ok", "syncing", "busy"}
TIMEOUT = 8.0


def daemon_name(cmdline: Sequence[str]) -> str | None:
    """The daemon a ``python -m daemons <name>`` command line starts."""
    return next((arg for arg in cmdline if arg in DAEMONS), None)


def health_url(name: str, environ: Mapping[str, str]) -> str:
    from . import daemon_class  # the daemon's module, never its backend library

    port = environ.get(f"{name.upper()}_PORT") or str(daemon_class(name).DEFAULT_PORT)
    return f"http://127.0.0.1:{port}/health"


def healthy(url: str, own_daemon: bool) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:  # 503 while syncing or unavailable: the body says which
        status, body = exc.code, exc.read()
    except (OSError, ValueError) as exc:
        return False, f"{url}: {exc}"
    if not own_daemon:
        return status == 200, f"{url}: HTTP {status}"
    try:
        state = json.loads(body).get("status")
    except (ValueError, AttributeError):
        return False, f"{url}: not a health answer"
    return state in HEALTHY, f"{url}: {state}"


def main(argv: Sequence[str]) -> int:
    if argv:
        ok, detail = healthy(argv[0], own_daemon=False)
    else:
        cmdline = Path("/proc/1/cmdline").read_bytes().decode(errors="replace").split("\0")
        name = daemon_name(cmdline)
        if name is None:
            print(f"not a daemon's container: PID 1 runs {' '.join(cmdline)!r}", file=sys.stderr)
            return 1
        ok, detail = healthy(health_url(name, os.environ), own_daemon=True)
    print(detail)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
