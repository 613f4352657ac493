"""Where `vocaloom nightly` keeps its builds: ROOT on this machine's disk or in a bucket, one layout, one set of
promises (pipelines/nightly.py runs them).

    ROOT/builds/<UTC stamp>/   one build each run
    ROOT/LATEST                the newest verified build, replaced in one step: on disk a relative symlink to
                               builds/<stamp>; in a bucket an object holding that same text, which readers resolve
                               once (schemas/paths.py)
    ROOT/cache/                the inference cache every nightly build reads and extends
    ROOT/nightly.lock          held while a run is in progress: flock(2) on disk, a lock object in a bucket
                               (pipelines/bucket_lock.py)

A build that failed or did not verify is set aside: on disk renamed builds/<stamp>.failed; in a bucket, where a rename
copies every byte, marked by an object builds/<stamp>.failed beside it. Either stays until the next successful run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from datetime import datetime
from pathlib import Path

from vocaloom.pipelines.lock import LockHeld, hold_lock
from vocaloom.schemas.manifest import MANIFEST
from vocaloom.schemas.paths import LATEST, is_local, latest_target, plain

BUILDS, CACHE, LOCK = "builds", "cache", "nightly.lock"
FAILED_SUFFIX = ".failed"


def build_name(now: datetime, taken: set[str]) -> str:
    """<UTC stamp>; stamps sort in time order, and a second run within one second gets a suffix."""
    stamp = now.strftime("%Y-%m-%dT%H%M%SZ")
    name, n = stamp, 0
    while name in taken or name + FAILED_SUFFIX in taken:
        n += 1
        name = f"{stamp}.{n}"
    return name


def to_prune(names: set[str], complete: set[str], latest: str | None, keep: int) -> list[str]:
    """The builds (and failure marks) to remove: all but the `keep` newest complete builds and LATEST's."""
    newest = sorted((name for name in names if name in complete), reverse=True)
    kept = set(newest[:keep]) | {latest}
    return sorted(name for name in names if name not in kept)


class LocalRoot:
    def __init__(self, path: str):
        self.path = Path(os.path.realpath(plain(path)))
        self.builds = self.path / BUILDS
        self.cache = str(self.path / CACHE)

    def __str__(self) -> str:
        return str(self.path)

    def lock(self):
        self.builds.mkdir(parents=True, exist_ok=True)
        try:
            return hold_lock(str(self.path / LOCK))
        except LockHeld as e:
            raise e.naming(f"{self.path / LOCK} is held by another run ({e.holder})") from None

    def new_build(self, now: datetime) -> str:
        return str(self.builds / build_name(now, {d.name for d in self.builds.iterdir()}))

    def latest(self) -> str | None:
        link = self.path / LATEST
        return str(link.resolve()) if link.is_symlink() else None

    def publish(self, build: str) -> None:
        """A new symlink under a temporary name renamed over the old one."""
        temp = self.path / (LATEST + ".tmp")
        temp.unlink(missing_ok=True)
        temp.symlink_to(Path(build).relative_to(self.path))
        os.replace(temp, self.path / LATEST)

    def mark_failed(self, build: str) -> str:
        if not os.path.exists(build):
            return build
        os.rename(build, build + FAILED_SUFFIX)
        return build + FAILED_SUFFIX

    def prune(self, keep: int) -> list[str]:
        folders = {d.name for d in self.builds.iterdir() if d.is_dir()}
        complete = {name for name in folders if (self.builds / name / MANIFEST).exists()} - {
            name for name in folders if name.endswith(FAILED_SUFFIX)
        }
        latest = self.latest()
        removed = to_prune(folders, complete, latest and Path(latest).name, keep)
        for name in removed:
            shutil.rmtree(self.builds / name)
        return [str(self.builds / name) for name in removed]


class BucketRoot:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.builds = f"{self.url}/{BUILDS}"
        self.cache = f"{self.url}/{CACHE}"

    def __str__(self) -> str:
        return self.url

    def lock(self):
        from vocaloom.pipelines.bucket_lock import BucketLock

        try:
            return contextlib.closing(BucketLock(f"{self.url}/{LOCK}").acquire())
        except LockHeld as e:
            raise e.naming(f"{self.url}/{LOCK} is held by another run ({e.holder})") from None

    def _names(self) -> set[str]:
        """What is under builds/: build folders and failure marks."""
        from apache_beam.io.filesystems import FileSystems

        prefix = self.builds + "/"
        return {meta.path[len(prefix) :].split("/")[0] for meta in FileSystems.match([prefix + "**"])[0].metadata_list}

    def new_build(self, now: datetime) -> str:
        return f"{self.builds}/{build_name(now, self._names())}"

    def latest(self) -> str | None:
        from apache_beam.io.filesystems import FileSystems

        pointer = f"{self.url}/{LATEST}"
        if not FileSystems.exists(pointer):  # no build published yet
            return None
        with FileSystems.open(pointer) as f:
            return f"{self.url}/{latest_target(f.read(4096))}"

    def publish(self, build: str) -> None:
        """One object, written in one upload: readers see the old text or the new."""
        from vocaloom.transforms.io.atomic import write_atomically

        write_atomically(f"{self.url}/{LATEST}", (build[len(self.url) + 1 :] + "\n").encode())

    def mark_failed(self, build: str) -> str:
        from vocaloom.transforms.io.atomic import write_atomically

        if build.rsplit("/", 1)[1] not in self._names():
            return build
        write_atomically(build + FAILED_SUFFIX, b"this build failed or did not verify: see the nightly log\n")
        return build + FAILED_SUFFIX

    def prune(self, keep: int) -> list[str]:
        from apache_beam.io.filesystems import FileSystems

        from vocaloom.transforms.io.objects import remove

        names = self._names()
        failed = {name[: -len(FAILED_SUFFIX)] for name in names if name.endswith(FAILED_SUFFIX)}
        folders = names - {name + FAILED_SUFFIX for name in failed}
        complete = {name for name in folders - failed if FileSystems.exists(f"{self.builds}/{name}/{MANIFEST}")}
        latest = self.latest()
        removed = to_prune(folders, complete, latest and latest.rsplit("/", 1)[1], keep)
        for name in removed:
            remove(f"{self.builds}/{name}")
        for name in failed - (folders - set(removed)):  # marks of builds now gone
            remove(f"{self.builds}/{name}{FAILED_SUFFIX}")
        return [f"{self.builds}/{name}" for name in removed]


def root_at(path: str) -> LocalRoot | BucketRoot:
    return LocalRoot(path) if is_local(path) else BucketRoot(path)
