"""`vocaloom verify DIR`: every shard's bytes, schema and rows against the manifest, and the accounting."""
from __future__ import annotations

import hashlib

import vocaloom.transforms  # noqa: F401  (first: it imports Beam quietly)
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from vocaloom.schemas.manifest import MANIFEST, ManifestError, accounting_errors, parse_manifest
from vocaloom.schemas.shard import shard_schema


def read_manifest(directory: str) -> dict:
    path = FileSystems.join(directory, MANIFEST)
    if not FileSystems.exists(path):
        raise ManifestError(f"{directory}: no {MANIFEST} (not a complete dataset)")
    with FileSystems.open(path) as f:
        return parse_manifest(f.read(), path)


def shard_problems(directory: str, length: int, entry: dict, vocab_size: int) -> list[str]:
    path = FileSystems.join(directory, entry["path"])
    if not FileSystems.exists(path):
        return [f"{entry['path']}: missing"]
    with FileSystems.open(path) as f:
        data = f.read()
    problems = []
    if len(data) != entry["bytes"]:
        problems.append(f"{entry['path']}: {len(data)} bytes, manifest says {entry['bytes']}")
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        return problems + [f"{entry['path']}: sha256 mismatch"]
    try:
        table = pa.ipc.open_file(pa.py_buffer(data)).read_all()
    except pa.ArrowException as e:
        return problems + [f"{entry['path']}: not an Arrow IPC file ({e})"]
    if not table.schema.equals(shard_schema(length)):
        problems.append(f"{entry['path']}: schema differs from bucket {length}'s")
        return problems
    if table.num_rows != entry["rows"] or table.num_rows == 0:
        problems.append(f"{entry['path']}: {table.num_rows} rows, manifest says {entry['rows']}")
    tokens = table.column("input_ids").combine_chunks().values.to_numpy()
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
        problems.append(f"{entry['path']}: token ids outside [0, {vocab_size})")
    for starts, ids in zip(table.column("doc_starts").to_pylist(), table.column("doc_ids").to_pylist()):
        if not starts or starts[0] != 0 or len(starts) != len(ids) or np.any(np.diff(starts) <= 0) \
                or starts[-1] > length:
            problems.append(f"{entry['path']}: bad doc_starts {starts} / doc_ids {ids}")
            break
    return problems


def verify(directory: str) -> list[str]:
    """Problems found; empty for a dataset that is exactly what its manifest says."""
    manifest = read_manifest(directory)
    problems = [f"accounting: {e}" for e in accounting_errors(manifest["counts"])]
    vocab_size = manifest["vocab"]["size"]
    for bucket in manifest["buckets"]:
        length = bucket["length"]
        rows = sum(s["rows"] for s in bucket["shards"])
        if rows != bucket["rows"] or bucket["tokens"] != bucket["rows"] * (length + 1):
            problems.append(f"bucket {length}: rows/tokens do not add up")
        for entry in bucket["shards"]:
            problems += shard_problems(directory, length, entry, vocab_size)
    if sum(b["tokens"] for b in manifest["buckets"]) != manifest["counts"]["tokens_written"]:
        problems.append("counts.tokens_written differs from the buckets' tokens")
    return problems
