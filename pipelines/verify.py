"""`vocaloom verify DIR`: every shard's bytes, schema and rows against the manifest, and the accounting. A dataset in
a bucket is read through the reader's own layer (loader/remote.py): each shard's size checked before a byte is
read, its sha256 as it streams into a scratch copy, then the same checks as a local shard."""

from __future__ import annotations

import pyarrow as pa

from vocaloom.loader.remote import IntegrityProblem, scratch_dataset
from vocaloom.schemas.digest import stream_sha256
from vocaloom.schemas.local_files import open_regular
from vocaloom.schemas.manifest import Manifest, ShardEntry, accounting_errors
from vocaloom.schemas.manifest import read_manifest as manifest_at
from vocaloom.schemas.paths import is_local
from vocaloom.schemas.shard import RowLimits, ShardProblem, checked_table, local_file_problem, row_limits


def read_manifest(directory: str) -> Manifest:
    if is_local(directory):
        return manifest_at(directory)
    remote, scratch = scratch_dataset(directory)
    with scratch:
        return remote_manifest(remote)


def remote_manifest(remote) -> Manifest:
    return manifest_at(remote.url, remote.read)


def shard_problems(directory: str, length: int, entry: ShardEntry, limits: RowLimits) -> list[str]:
    """The size is checked before a byte is read, the sha256 before the bytes are parsed, and every row before the
    shard is called good."""
    path = f"{directory.rstrip('/')}/{entry['path']}"
    problem = local_file_problem(directory, entry["path"], entry["bytes"])
    if problem:
        return [f"{entry['path']}: {problem}"]
    with open_regular(path) as f:  # streamed: a shard of gigabytes is never held whole
        digest, size = stream_sha256(f), f.tell()
    if size != entry["bytes"]:
        return [f"{entry['path']}: {size} bytes read, manifest says {entry['bytes']}"]
    try:  # mapped, so that its pages are the page cache's, not this process's memory
        with pa.memory_map(path) as mapped:
            checked_table(mapped, length, entry, limits, digest.hex())
    except ShardProblem as e:
        return [f"{entry['path']}: {e}"]
    except OSError as e:
        return [f"{entry['path']}: cannot be mapped ({e})"]
    return []


def remote_shard_problems(remote, length: int, entry: ShardEntry, limits: RowLimits) -> list[str]:
    """A shard in a bucket: fetched (size first, sha256 as it arrives) into the scratch folder, checked, removed."""
    try:
        local = remote.local(entry)
    except IntegrityProblem as e:
        return [f"{entry['path']}: {e}"]
    except FileNotFoundError:
        return [f"{entry['path']}: missing"]
    except OSError as e:
        return [f"{entry['path']}: cannot be read: {e}"]
    try:
        return shard_problems(str(local.parent), length, {**entry, "path": local.name}, limits)
    finally:
        local.unlink(missing_ok=True)


def verify(directory: str) -> list[str]:
    """Problems found; empty for a dataset that is exactly what its manifest says."""
    remote, scratch = (None, None) if is_local(directory) else scratch_dataset(directory)
    manifest = manifest_at(directory) if remote is None else remote_manifest(remote)
    problems = [f"accounting: {e}" for e in accounting_errors(manifest["counts"])]
    limits = row_limits(manifest)
    try:
        for bucket in manifest["buckets"]:
            for entry in bucket["shards"]:
                problems += (
                    shard_problems(directory, bucket["length"], entry, limits)
                    if remote is None
                    else remote_shard_problems(remote, bucket["length"], entry, limits)
                )
    finally:
        if scratch is not None:
            scratch.cleanup()
    return problems
