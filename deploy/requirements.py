"""Print setup.cfg's install_requires, one per line: the image installs them before copying the code."""

from __future__ import annotations

import configparser
import sys


def requirements(setup_cfg: str) -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    lines = (line.strip() for line in parser["options"]["install_requires"].splitlines())
    return [line for line in lines if line and not line.startswith("#")]


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1] if len(sys.argv) > 1 else "setup.cfg")))
