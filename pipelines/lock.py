"""One process at a time: an exclusive flock(2) on a file, for a build's --output and for nightly's root (no Beam
import here: `vocaloom --version` and the reader-only install import the nightly command's module)."""

from __future__ import annotations

import fcntl
import os
import time
from typing import IO

from vocaloom.schemas.local_files import open_owned


class LockHeld(RuntimeError):
    """A lock another process or build holds, a file's flock or an object in a bucket: `holder` is what the holder
    wrote in it (pid, start). The lock's owner restates it with what is locked (`naming`), in one line."""

    def __init__(self, holder: str, message: str | None = None):
        super().__init__(message or holder)
        self.holder = holder

    def naming(self, message: str) -> LockHeld:
        return LockHeld(self.holder, message)


def hold_lock(path: str) -> IO:
    """An open file holding an exclusive flock on `path`. The kernel drops the lock when its process dies, so a lock
    file left by a killed process is never stale; its text (pid, start) is only for people. A symbolic link or
    anything but a regular file at `path` is refused (FileRefused), never written through."""
    handle = open_owned(path)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        held_by = handle.read().strip() or "unknown"
        handle.close()
        raise LockHeld(held_by) from None
    handle.truncate(0)
    handle.write(holder())
    handle.flush()
    return handle


def holder() -> str:
    """What a lock or marker says about the process that holds it, for people."""
    return f"pid={os.getpid()} since={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
