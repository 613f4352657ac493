"""`vocaloom verify DIR`: every shard's bytes, schema and rows against the manifest, and the accounting."""
from __future__ import annotations

import hashlib

import vocaloom.transforms  # noqa: F401  (first: it imports Beam quietly)
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from vocaloom.schemas.manifest import accounting_errors
from vocaloom.schemas.manifest import read_manifest as manifest_at
from vocaloom.schemas.paths import is_local
from vocaloom.schemas.shard import local_file_problem, rows_problem


def read_manifest(directory: str) -> dict:
    return manifest_at(directory) if is_local(directory) else manifest_at(directory, read_remote)


def read_remote(path: str, limit: int) -> bytes:
    if not FileSystems.exists(path):
        raise FileNotFoundError(path)
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read(limit)


def shard_problems(directory: str, length: int, entry: dict, vocab_size: int) -> list[str]:
    """The size is checked before a byte is read, the sha256 before the bytes are parsed, and every row before the
    shard is called good."""
    path = FileSystems.join(directory, entry["path"])
    problem = file_problem(directory, entry)
    if problem:
        return [f"{entry['path']}: {problem}"]
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        data = f.read(entry["bytes"] + 1)
    if len(data) != entry["bytes"]:
        return [f"{entry['path']}: {len(data)} bytes read, manifest says {entry['bytes']}"]
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        return [f"{entry['path']}: sha256 mismatch"]
    try:
        table = pa.ipc.open_file(pa.py_buffer(data)).read_all()
    except (pa.ArrowException, OSError) as e:
        return [f"{entry['path']}: not an Arrow IPC file ({e})"]
    problem = rows_problem(table, length, entry["rows"], vocab_size)
    return [f"{entry['path']}: {problem}"] if problem else []


def file_problem(directory: str, entry: dict) -> str | None:
    if is_local(directory):
        return local_file_problem(directory, entry["path"], entry["bytes"])
    matched = FileSystems.match([FileSystems.join(directory, entry["path"])])[0].metadata_list
    if not matched:
        return "missing"
    if matched[0].size_in_bytes != entry["bytes"]:
        return f"{matched[0].size_in_bytes} bytes, manifest says {entry['bytes']}"
    return None


def verify(directory: str) -> list[str]:
    """Problems found; empty for a dataset that is exactly what its manifest says."""
    manifest = read_manifest(directory)
    problems = [f"accounting: {e}" for e in accounting_errors(manifest["counts"])]
    vocab_size = manifest["vocab"]["size"]
    for bucket in manifest["buckets"]:
        for entry in bucket["shards"]:
            problems += shard_problems(directory, bucket["length"], entry, vocab_size)
    return problems
