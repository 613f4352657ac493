"""Models and tokenizers as workers get them: by reference and sha256, never by a path only the launcher had.

An Artifact is a file or a directory named by where it is (a `bundled:` reference, or any path Beam's FileSystems
reaches: local, gs://, s3://) and the sha256 (schemas/digest.py) that the launcher computed when it read it once.
Each worker's setup() asks `localize` for a local copy: a bundled reference resolves in the worker's own installed
package, a local path is used where it is, anything else is copied once into a local cache named by the sha256.
Either way the bytes are checked against the sha256 first, a cached copy on every use (anyone who can write the cache
could have put other bytes under the name), and a mismatch fails in one line naming the artifact.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import uuid
from pathlib import Path
from typing import NamedTuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from vocaloom import assets
from vocaloom.schemas.digest import local_sha256, stream_sha256, tree_sha256
from vocaloom.schemas.local_files import FileRefused
from vocaloom.schemas.paths import is_local
from vocaloom.transforms.io.objects import open_to_read

# Where workers keep their copies of remote artifacts: $VOCALOOM_ARTIFACT_CACHE/vocaloom-artifacts, else a folder of
# this user's alone, <temp dir>/vocaloom-artifacts-<uid>.
CACHE_ENV = "VOCALOOM_ARTIFACT_CACHE"


class ArtifactError(RuntimeError):
    """An artifact that cannot be found or read, or whose bytes are not the launcher's: one line."""


class Artifact(NamedTuple):
    location: str  # a `bundled:` reference or a FileSystems path, as the user gave it: the manifest records it
    sha256: str


def _where(location: str) -> str:
    if not assets.is_bundled(location):
        return location
    try:
        return str(assets.bundled_path(location))
    except ValueError as e:
        raise ArtifactError(str(e)) from None


def list_files(location: str) -> list[tuple[str, str]]:
    """(relative name, path) of the artifact's files, in name order; a file is [("", its path)]."""
    where = _where(location)
    try:
        inside = FileSystems.match([FileSystems.join(where, "**")])[0].metadata_list
        if inside:
            prefix = where.rstrip("/") + "/"
            return sorted((m.path[len(prefix) :], m.path) for m in inside)
        itself = FileSystems.match([where])[0].metadata_list
    except Exception as e:  # Beam raises BeamIOError with the cause inside
        raise ArtifactError(f"{location}: cannot be listed: {str(e).splitlines()[0]}") from None
    if not itself:
        raise ArtifactError(f"{location}: no such file or directory")
    if is_local(where) and os.path.isdir(where):
        raise ArtifactError(f"{location}: an empty directory")
    return [("", itself[0].path)]


def _sha256(files: list[tuple[str, str]], limit: int | None) -> str:
    digests = []
    for name, path in files:
        with open_to_read(path, limit) as f:
            digests.append((name, stream_sha256(f)))
    return tree_sha256(digests)


def read_artifact(location: str, limit: int | None = None) -> Artifact:
    """The launcher's one read of an artifact: its sha256. Each of its files must be at most `limit` bytes."""
    try:
        return Artifact(location, _sha256(list_files(location), limit))
    except ArtifactError:
        raise
    except FileRefused as e:
        raise ArtifactError(str(e)) from None
    except Exception as e:
        raise ArtifactError(f"{location}: cannot be read: {type(e).__name__}: {str(e).splitlines()[0]}") from None


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "vocaloom-artifacts"
    root = Path(tempfile.gettempdir()) / f"vocaloom-artifacts-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(root)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise ArtifactError(
            f"the artifact cache {root} is not a folder of this user's alone: remove it, or set {CACHE_ENV}"
        )
    return root


def localize(artifact: Artifact) -> str:
    """A local path holding exactly the artifact's bytes (checked), for this worker's libraries to open."""
    where = _where(artifact.location)
    if is_local(where):
        if not os.path.exists(where):
            raise ArtifactError(f"{artifact.location}: not found on this worker ({where})")
        _check(artifact, _local_sha256(where))
        return where
    files = list_files(artifact.location)
    single = [name for name, _ in files] == [""]
    cached = cache_root() / artifact.sha256
    local = cached / (where.rstrip("/").rsplit("/", 1)[-1] if single else "")
    if cached.is_dir():
        if os.path.exists(local) and _local_sha256(str(local)) == artifact.sha256:
            return str(local).rstrip("/")
        try:  # other bytes under the artifact's name: fetched again
            shutil.rmtree(cached)
        except OSError as e:
            raise ArtifactError(
                f"{artifact.location}: the cached copy {cached} is not the artifact and cannot be "
                f"removed ({e.strerror})"
            ) from None
    temp = cached.with_name(f"{artifact.sha256}.{uuid.uuid4().hex}.tmp")
    try:
        for name, path in files:
            target = temp / (local.name if single else name)
            target.parent.mkdir(parents=True, exist_ok=True)
            with (
                FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as source,
                open(target, "wb") as copy,
            ):
                shutil.copyfileobj(source, copy, 1 << 22)
        _check(artifact, _local_sha256(str(temp / local.name) if single else str(temp)))
        try:
            os.rename(temp, cached)
        except OSError:  # another process of this machine put the same bytes there first
            if not cached.is_dir():
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return str(local).rstrip("/")


def _local_sha256(path: str) -> str:
    try:
        return local_sha256(path)
    except FileRefused as e:
        raise ArtifactError(str(e)) from None


def _check(artifact: Artifact, found: str) -> None:
    if found != artifact.sha256:
        raise ArtifactError(
            f"{artifact.location}: sha256 {found[:16]}... differs from the launcher's "
            f"{artifact.sha256[:16]}... (changed since the build started, or another vocaloom here)"
        )
