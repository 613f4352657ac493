"""The one way a build opens a local file it reads and writes a local file it owns (no Beam import: the reader-only
install and the nightly command use it too).

Reads take regular files only, never waiting on a FIFO or reading a device without end, and refuse one larger than
the reader can hold before reading it. Writes never follow a symbolic link: the link could name any file the user
may write (nightly runs as root under cron), so a link where vocaloom writes is refused, as is anything that is not a
regular file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from typing import IO


class FileRefused(OSError):
    """A file that is not one vocaloom may read or write there; the message is one line naming it."""

    def __str__(self) -> str:
        return self.strerror or ""


def kind(mode: int) -> str:
    """What a file that is not a regular one is, in words."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str, limit: int | None = None, what: str = "file") -> IO[bytes]:
    """`path` opened for reading if it is a regular file of at most `limit` bytes. O_NONBLOCK makes opening a FIFO
    return at once (it is then refused), where a plain open waits for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise FileRefused(e.errno, f"{what} {path} cannot be read: {e.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(errno.EINVAL, f"{what} {path} is {kind(info.st_mode)}, not a regular file")
        if limit is not None and info.st_size > limit:
            raise FileRefused(
                errno.EFBIG, f"{what} {path} is {info.st_size:,} bytes, more than the {limit:,} vocaloom reads of one"
            )
        return os.fdopen(_blocking(fd), "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes (one that grows past it while read is refused too)."""
    with open_regular(path, limit, what) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(errno.EFBIG, f"{what} {path} grew past the {limit:,} bytes vocaloom reads of one")
    return data


def check_tree(path: str, what: str) -> None:
    """Every file under a local folder (a model's, an embedder's) is a regular file or a link to one; a folder link
    loop or an unreadable subfolder is refused too, so that nothing under it is skipped or waited on."""

    def refuse(error: OSError):
        raise FileRefused(error.errno or errno.EIO, f"{what} {path}: {error.filename} cannot be read: {error.strerror}")

    for root, _, names in os.walk(path, onerror=refuse):
        for name in names:
            full = os.path.join(root, name)
            try:
                mode = os.stat(full).st_mode
            except OSError as e:
                raise FileRefused(e.errno, f"{what} {path}: {full} cannot be read: {e.strerror}") from None
            if not stat.S_ISREG(mode):
                raise FileRefused(errno.EINVAL, f"{what} {path}: {full} is {kind(mode)}, not a regular file")


def open_owned(path: str, mode: int = 0o644) -> IO[str]:
    """`path` opened for reading and appending text, created if absent, never through a symbolic link and only if
    it is a regular file: what vocaloom writes into a folder it owns (a lock, a marker)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise FileRefused(
                e.errno, f"{path} is a symbolic link: vocaloom never writes through one (remove it)"
            ) from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise FileRefused(
            errno.EINVAL,
            f"{path} is {kind(info.st_mode)}, not a regular file: vocaloom writes only regular files (remove it)",
        )
    return os.fdopen(_blocking(fd), "a+")


def _blocking(fd: int) -> int:
    """`fd` with O_NONBLOCK cleared: it was set only so that opening a FIFO could not wait."""
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    return fd
