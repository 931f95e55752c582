"""DATA_PATH: owner-only, whatever the umask, and usable, or start-up stops saying why.

It holds every customer's xpubs, payment events and, for spending wallets, seeds. Folders are
made 0700 and files 0600; what an older version left readable by others is tightened at start-up.
A DATA_PATH that others can write to is refused: they could have replaced what is in it. One that
cannot be created or written to (a read-only or root-owned mount) stops start-up with its name.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .settings import SettingsError

DIR_MODE = 0o700
OTHERS = 0o077  # the permission bits of group and others


def prepare_data_path(path: Path, variable: str) -> None:
    """Create ``path`` owner-only or check it, and make what it holds owner-only; SettingsError if unusable."""
    try:
        existed = path.is_dir()
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise SettingsError(f"{variable}={path} cannot be created: {exc.strerror or exc}") from None
    if existed and mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SettingsError(
            f"{variable}={path} is writable by other users (mode {mode:04o}): its files may have been replaced. "
            f"Check them, then make it owner-only: chmod 700 {path}"
        )
    check_writable(path, variable)
    make_owner_only(path)


def check_writable(path: Path, variable: str) -> None:
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise SettingsError(f"{variable}={path} is not writable by this user: {exc.strerror or exc}") from None


def make_owner_only(root: Path) -> None:
    """Take every permission of group and others from ``root`` and what it holds; symlinks are left alone."""
    os.chmod(root, DIR_MODE)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            tighten(os.path.join(folder, name))


def tighten(path: str) -> None:
    try:
        info = os.lstat(path)
        if not stat.S_ISLNK(info.st_mode) and stat.S_IMODE(info.st_mode) & OTHERS:
            os.chmod(path, stat.S_IMODE(info.st_mode) & ~OTHERS)
    except OSError:  # gone meanwhile, or not ours: start-up goes on, the daemon only needs its own files
        pass
