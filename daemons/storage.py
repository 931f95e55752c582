"""Whether DATA_PATH can be written: a full, read-only or failing disk seen as one clear condition.

A write that fails for want of storage (ENOSPC, EDQUOT, EROFS, EIO, or SQLite's "database or disk is
full") is the daemon's ``storage_unavailable`` condition, not a bug: the call fails with
``STORAGE_UNAVAILABLE`` and ``/health`` answers 503 until a real write succeeds again. The check costs
nothing while all is well: only after a failed write, or with less than ``MIN_FREE_BYTES`` left on
DATA_PATH's filesystem, does ``problem()`` probe with a small fsynced write.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
from pathlib import Path

from .jsonrpc import RPCError

logger = logging.getLogger(__name__)

STORAGE_UNAVAILABLE = -32050  # spec/base.json: StorageUnavailableError
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
SQLITE_STORAGE_MESSAGES = ("database or disk is full", "disk i/o error", "attempt to write a readonly database")
MIN_FREE_BYTES = 1024 * 1024
PROBE_BYTES = 4096  # one filesystem block: what the next write needs at the least
PROBE_NAME = ".storage-probe"


def storage_failure(exc: BaseException, depth: int = 4) -> str | None:
    """What a write failure says about the storage ("No space left on device"), or None if it is no storage failure.

    Libraries wrap the OSError: as a cause, or as an argument (Electrum's StorageReadWriteError(OSError(e)))."""
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        return os.strerror(exc.errno)
    if isinstance(exc, sqlite3.Error) and any(m in str(exc).lower() for m in SQLITE_STORAGE_MESSAGES):
        return str(exc)
    if depth == 0:
        return None
    inner = [exc.__cause__, exc.__context__, *(arg for arg in exc.args if isinstance(arg, BaseException))]
    for wrapped in inner:
        if wrapped is not None and (reason := storage_failure(wrapped, depth - 1)) is not None:
            return reason
    return None


class StorageMonitor:
    """DATA_PATH's writability, as /health and failed calls report it."""

    def __init__(self, path: Path, min_free: int = MIN_FREE_BYTES) -> None:
        self.path = path
        self.min_free = min_free
        self.failure: str | None = None  # the last write failure, until a probe write succeeds

    def error(self, exc: BaseException) -> RPCError | None:
        """The call's error when ``exc`` is a storage failure (remembered for /health), else None."""
        reason = storage_failure(exc)
        if reason is None:
            return None
        if self.failure is None:
            logger.error("DATA_PATH cannot be written: %s", reason)
        self.failure = reason
        return RPCError(STORAGE_UNAVAILABLE, f"Storage unavailable: the daemon cannot write its data ({reason})")

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        # root may write into the blocks a filesystem reserves for it: count them for root only
        blocks = stats.f_bfree if os.geteuid() == 0 else stats.f_bavail
        return blocks * stats.f_frsize

    def problem(self) -> str | None:
        """Why DATA_PATH cannot be written now, or None: probed only after a failure or when space is low."""
        try:
            low = self.free_bytes() < self.min_free
        except OSError as exc:
            return os.strerror(exc.errno) if exc.errno else str(exc)
        if self.failure is None and not low:
            return None
        reason = self.probe()
        if reason is None and self.failure is not None:
            logger.info("DATA_PATH can be written again")
        self.failure = reason
        return reason

    def probe(self) -> str | None:
        """Write, fsync and delete a small file in DATA_PATH: None if that worked, else why not."""
        probe = self.path / PROBE_NAME
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"\0" * PROBE_BYTES)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            return os.strerror(exc.errno) if exc.errno else str(exc)
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
        return None
