"""``python -m daemons <name>``: start one daemon in the foreground."""

from __future__ import annotations

import sys

from . import DAEMONS, daemon_class
from .base import StartupError
from .settings import SettingsError
from .spec import SpecError


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(f"usage: python -m daemons <name>   (known daemons: {', '.join(sorted(DAEMONS))})", file=sys.stderr)
        return 2
    try:
        daemon = daemon_class(args[0])()
        daemon.run()
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    except (StartupError, SettingsError, SpecError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
