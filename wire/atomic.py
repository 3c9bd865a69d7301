"""Crash-safe file writes: temp file, fsync, rename, directory fsync.

A crash at any point leaves either the old or the new content at `path`, never a torn
file. Used by the directory store, key files, the agent's local state and drivers, and
the controller's local state.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

TMP_PREFIX = ".tmp-"  # temp files start with this (the directory store never lists them)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `data` to `path` atomically with permissions `mode` (for a new file)."""
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        try:
            view = memoryview(data)
            while view:  # a write may be short (a full disk, a signal): never rename it torn
                done = os.write(fd, view)
                if done <= 0:
                    raise OSError(f"{tmp}: write made no progress")
                view = view[done:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)  # the umask may have narrowed it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # the old file stays; no temp file is left behind
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
