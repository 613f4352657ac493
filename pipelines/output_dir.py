"""What a build may do to its --output: only touch a directory that is vocaloom's, one build at a time, and replace a
dataset only once the new one is complete.

A directory is vocaloom's if it does not exist, is empty, holds a dataset (manifest.json) or holds the marker
`.vocaloom-lock` that every build writes before anything else; anything else is the user's and is refused. On a
local filesystem the marker is also the lock (flock(2): the kernel drops it when the build's process dies).
`--overwrite` builds the new dataset in a hidden folder beside the old one and exchanges the two folders at the end
(renameat2 RENAME_EXCHANGE: one step), so the old dataset stays complete and readable until the new one is.

In a bucket (gs://, s3://) the marker is a lock object created only where none exists, renewed while the build runs
and deleted at its end (pipelines/bucket_lock.py). Folders cannot be exchanged there, so an --overwrite build writes
its files under a new generation, DIR/generations/<n>/, beside the old dataset's, and its manifest.json (whose paths
name that generation) replaces the old one in one write; only then are the old generation's files removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
from dataclasses import dataclass
from typing import IO

import vocaloom.transforms  # noqa: F401  (first: it imports Beam quietly)

# isort: split
from apache_beam.io.filesystems import FileSystems

from vocaloom.pipelines.bucket_lock import BucketLock, has_locks
from vocaloom.pipelines.lock import LockHeld, hold_lock, holder
from vocaloom.schemas.config import ConfigError
from vocaloom.schemas.local_files import FileRefused
from vocaloom.schemas.manifest import MANIFEST, MAX_GENERATION, MAX_MANIFEST_BYTES, ManifestError, parse_manifest
from vocaloom.schemas.paths import is_local
from vocaloom.schemas.shard import (
    DATA_DIR,
    DEAD_LETTER_DIR,
    FIGURES_DIR,
    GENERATIONS_DIR,
    REJECTS_DIR,
    REPORT,
    TEMP_DIR,
    generation_dir,
)
from vocaloom.transforms.io.dataset_card import CARD
from vocaloom.transforms.io.objects import remove

MARKER = ".vocaloom-lock"
# Everything a build writes into its output, and so everything a crashed build may have left there.
WRITTEN = (DATA_DIR, REJECTS_DIR, DEAD_LETTER_DIR, FIGURES_DIR, REPORT, GENERATIONS_DIR, TEMP_DIR, CARD, MANIFEST)


@dataclass
class OutputClaim:
    output: str  # the user's --output
    write_dir: str  # where this build writes: the output, or the folder beside it that replaces it at the end
    lock: IO | BucketLock | None  # the flock'd marker (local outputs) or the lock object (buckets)
    generation: int = 0  # > 0: a replacement in a bucket, written under generations/<n>/

    def publish(self) -> None:
        """Puts the finished build in place (if it was built beside the old dataset), removes the old dataset's files
        and drops the lock."""
        if self.write_dir != self.output:
            exchange(self.write_dir, self.output)
            shutil.rmtree(self.write_dir)  # now the old dataset
        elif self.generation:  # its manifest is in place: the old dataset's files are nobody's now
            clear_leftovers(self.output, keep=self.generation)
        self.release()

    def abandon(self) -> None:
        """After a failed build: a replacement built beside the old dataset is removed; the lock is dropped."""
        if self.lock and self.write_dir != self.output:
            shutil.rmtree(self.write_dir, ignore_errors=True)
        elif self.lock and self.generation:
            remove(FileSystems.join(self.output, generation_dir(self.generation)))
            remove(FileSystems.join(self.output, TEMP_DIR))
        self.release()

    def release(self) -> None:
        if self.lock:
            self.lock.close()
            self.lock = None


def staging_dir(output: str) -> str:
    """The hidden folder beside `output` an --overwrite build is written to."""
    parent, name = os.path.split(os.path.abspath(output))
    return os.path.join(parent, f".{name}.vocaloom-next")


def claim_output(output: str, overwrite: bool) -> OutputClaim:
    """Checks that `output` may be written, locks it and clears what a crashed build left; raises ConfigError (or
    LockHeld) in one line otherwise. Returns where the build writes."""
    if not is_local(output):
        return claim_remote(output, overwrite)
    if os.path.islink(output):  # an --overwrite would exchange the link, not the dataset it names
        raise ConfigError(
            f"--output {output} is a symbolic link (to {os.readlink(output)}): give the directory "
            f"itself, {os.path.realpath(output)}"
        )
    if os.path.exists(output) and not os.path.isdir(output):
        raise ConfigError(f"--output {output} is not a directory")
    try:
        entries = set(os.listdir(output)) if os.path.isdir(output) else set()
    except OSError as e:
        raise ConfigError(f"--output {output} cannot be listed: {e.strerror}") from None
    check_owned(output, entries)
    try:
        os.makedirs(output, exist_ok=True)
        lock = hold_lock(os.path.join(output, MARKER))
    except FileRefused as e:
        raise ConfigError(f"--output {output}: {e}") from None
    except OSError as e:
        raise ConfigError(f"--output {output} cannot be written: {e.strerror}") from None
    except LockHeld as e:
        raise locked(output, e) from None
    claim = OutputClaim(output, output, lock)
    with contextlib.ExitStack() as undo:
        undo.callback(claim.release)
        if MANIFEST in entries:
            if not overwrite:
                raise ConfigError(f"{output} already holds a complete dataset (pass --overwrite to replace it)")
            foreign = sorted(entries - set(WRITTEN) - {MARKER})
            if foreign:  # the exchange would take them away with the old dataset
                raise ConfigError(
                    f"{output} holds files that are not the dataset's ({', '.join(foreign[:3])}"
                    f"{', ...' if len(foreign) > 3 else ''}): move them out before --overwrite"
                )
            claim.write_dir = staging_dir(output)
            shutil.rmtree(claim.write_dir, ignore_errors=True)  # a crashed replacement's
            try:
                os.mkdir(claim.write_dir)
            except OSError as e:
                raise ConfigError(
                    f"--overwrite builds beside {output}, and {os.path.dirname(claim.write_dir)} "
                    f"cannot be written: {e.strerror}"
                ) from None
            open(os.path.join(claim.write_dir, MARKER), "w").close()
        else:
            clear_leftovers(output)
        undo.pop_all()
    return claim


def locked(output: str, held: LockHeld) -> LockHeld:
    return held.naming(
        f"--output {output} is being written by another build ({held.holder}); wait for it or choose another directory"
    )


def check_owned(output: str, entries: set[str]) -> None:
    if entries and not entries & {MANIFEST, MARKER}:
        shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
        raise ConfigError(
            f"--output {output} is not empty and holds no vocaloom dataset ({shown}): choose a new or empty directory"
        )


def clear_leftovers(output: str, keep: int | None = None) -> None:
    """Removes what builds wrote into `output`; all of it, or all but the manifest, the card and the files of
    generation `keep` (0: those outside generations/)."""
    stays = set() if keep is None else {MANIFEST, CARD} if keep else set(WRITTEN) - {GENERATIONS_DIR, TEMP_DIR}
    for name in (name for name in WRITTEN if name not in stays):  # WRITTEN's order: the manifest last
        if name == GENERATIONS_DIR and keep:
            for folder in generation_folders(output) - {keep}:
                remove(FileSystems.join(output, generation_dir(folder)))
        else:
            remove(FileSystems.join(output, name))


def generation_folders(output: str) -> set[int]:
    """The generation numbers that have files under output/generations/."""
    prefix = FileSystems.join(output, GENERATIONS_DIR) + "/"
    found = set()
    for meta in FileSystems.match([prefix + "**"])[0].metadata_list:
        folder = meta.path[len(prefix) :].split("/")[0]
        if folder.isdigit():
            found.add(int(folder))
    return found


def live_generation(output: str) -> int | None:
    """The generation output/manifest.json names (0 for one before generations), or None if it cannot be read."""
    try:
        with FileSystems.open(FileSystems.join(output, MANIFEST)) as f:
            manifest = parse_manifest(f.read(MAX_MANIFEST_BYTES + 1))
    except (OSError, ManifestError):
        return None
    return manifest.get("generation", 0)


def claim_remote(output: str, overwrite: bool) -> OutputClaim:
    """A bucket: the marker is the lock object (pipelines/bucket_lock.py), taken before anything is cleared."""
    entries = {
        meta.path[len(output.rstrip("/")) + 1 :].split("/")[0]
        for meta in FileSystems.match([FileSystems.join(output, "**")])[0].metadata_list
    }
    check_owned(output, entries)
    lock = None
    if has_locks(output):
        try:
            lock = BucketLock(FileSystems.join(output, MARKER)).acquire()
        except LockHeld as e:
            raise locked(output, e) from None
    claim = OutputClaim(output, output, lock)
    with contextlib.ExitStack() as undo:
        undo.callback(claim.release)
        if MANIFEST in entries and not overwrite:
            raise ConfigError(f"{output} already holds a complete dataset (pass --overwrite to replace it)")
        if MANIFEST in entries:  # the old dataset stays as it is until the new manifest replaces its own
            live = live_generation(output)
            if live is not None:  # a crashed replacement's files go; an unreadable dataset's stay until publish
                clear_leftovers(output, keep=live)
            claim.generation = max(generation_folders(output) | {live or 0}) + 1
            if claim.generation > MAX_GENERATION:
                raise ConfigError(f"{output} has been replaced {MAX_GENERATION} times: build into a new prefix")
        else:
            clear_leftovers(output)
        if lock is None:  # a store without conditional writes: the marker only marks the directory
            with FileSystems.create(FileSystems.join(output, MARKER)) as marker:
                marker.write(holder().encode())  # not empty: Beam's S3 writer cannot finish an upload of no bytes
        undo.pop_all()
    return claim


def exchange(a: str, b: str) -> None:
    """Swaps two directories in one step where the kernel and filesystem can (Linux renameat2); elsewhere in two
    renames, between which `b` is briefly absent."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        at_fdcwd, rename_exchange = -100, 2
        if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), b)
    aside = a + ".old"
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)
