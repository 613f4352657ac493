"""Where a path lives: the one test of "is this on this machine's disk", for builds, verify and the reader alike
(no Beam import: the reader-only install uses it).

A plain path, or one written `file://...`, is local; anything else with a scheme (`gs://`, `s3://`, `hdfs://`) is
reached through a filesystem: Beam's FileSystems in builds and verify, pyarrow's in the reader. Each object store's
filesystem for builds comes with one of vocaloom's extras.
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
LOCAL_SCHEME = "file"
# A nightly root's pointer to its newest build (pipelines/nightly_root.py): a symlink on disk, an object in a bucket.
LATEST = "LATEST"
_BUILD_TARGET = re.compile(r"builds/[A-Za-z0-9][A-Za-z0-9._-]*")
# The extra that brings Beam's filesystem for each object store (`pip install 'vocaloom[pipeline,gcp]'`).
EXTRAS = {"gs": "gcp", "s3": "aws"}


def scheme(path: str) -> str | None:
    """`gs` for gs://bucket/x, None for a plain path."""
    match = _SCHEME.match(path)
    return match.group(1).lower() if match else None


def is_local(path: str) -> bool:
    return scheme(path) in (None, LOCAL_SCHEME)


def plain(path: str) -> str:
    """A local path without `file://` (Beam's FileSystems and the os module know only the plain form); any other
    path as it is."""
    return path[len(LOCAL_SCHEME) + 3 :] if scheme(path) == LOCAL_SCHEME else path


def missing_filesystem(path: str) -> str:
    """One line saying what to install for `path`'s filesystem."""
    name = scheme(path)
    extra = EXTRAS.get(name or "")
    if extra:
        return f"{path}: {name}:// needs vocaloom's {extra} extra: pip install 'vocaloom[pipeline,{extra}]'"
    return f"{path}: no filesystem for {name}:// is installed (vocaloom reads local paths, gs:// and s3://)"


def latest_target(text: bytes) -> str:
    """The build a LATEST object names (`builds/<stamp>`, relative to its root); ValueError for anything else, so a
    planted pointer cannot lead a reader outside the root."""
    target = text.decode("utf-8", "replace").strip()
    if not _BUILD_TARGET.fullmatch(target):
        raise ValueError(f"{LATEST} names {target[:80]!r}, not builds/<stamp>")
    return target
