import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from tests.loader.conftest import build_dataset, read_rows
from vocaloom.loader import BucketLoader, ManifestError, ShardIntegrityError
from vocaloom.loader.shards import BucketRows, ShardCache
from vocaloom.schemas.shard import row_limits

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    directory = tmp_path_factory.mktemp("shards") / "ds"
    return directory, build_dataset(directory)


@pytest.fixture
def copy(dataset, tmp_path):
    """A private copy of the dataset (new paths, so its shards are hashed afresh), to damage."""
    target = tmp_path / "ds"
    shutil.copytree(dataset[0], target)
    return target


def in_shard(array: np.ndarray) -> bool:
    """A view of the shard's bytes as the loader read them (not a copy Arrow made)."""
    owner: object = array
    while isinstance(owner, np.ndarray):
        owner = owner.base
    return isinstance(owner, bytearray) or (isinstance(owner, memoryview) and isinstance(owner.obj, bytearray))


def compress(directory, bucket: dict) -> None:
    """Rewrites a bucket's shards with zstd buffers (as `--compression zstd` writes them) and their manifest entries."""
    manifest = json.loads((directory / "manifest.json").read_text())
    for entry in next(b for b in manifest["buckets"] if b["length"] == bucket["length"])["shards"]:
        path = directory / entry["path"]
        table = pa.ipc.open_file(str(path)).read_all()
        with pa.ipc.new_file(str(path), table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
            writer.write_table(table)
        data = path.read_bytes()
        entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (directory / "manifest.json").write_text(json.dumps(manifest))
    bucket.update(manifest["buckets"][[b["length"] for b in manifest["buckets"]].index(bucket["length"])])


@pytest.mark.parametrize("compressed", [False, True])
def test_rows_across_shards_and_past_the_last_row(dataset, copy, compressed):
    directory, manifest = dataset
    truth = read_rows(directory, manifest)
    bucket = manifest["buckets"][0].copy()
    if compressed:
        compress(copy, bucket)
    rows = BucketRows(bucket, ShardCache(copy, 4, True, row_limits(manifest)))
    ids, starts, offsets = rows.take([(rows.rows - 50, 50), (0, 70)])  # many shards, then past the last row to row 0
    expected = np.concatenate([np.arange(rows.rows - 50, rows.rows), np.arange(70)])
    np.testing.assert_array_equal(ids, truth[32][0][expected])
    assert [starts[offsets[r] : offsets[r + 1]].tolist() for r in range(120)] == [truth[32][1][r] for r in expected]
    one_shard, _, _ = rows.take([(0, 3)])
    np.testing.assert_array_equal(one_shard, truth[32][0][:3])
    # Uncompressed rows in one shard are a view of the shard's bytes; zstd buffers are decompressed (a copy).
    assert in_shard(one_shard) != compressed


def test_writes_to_a_view_never_reach_the_file(dataset):
    directory, manifest = dataset
    bucket = manifest["buckets"][2]
    ids, _, _ = BucketRows(bucket, ShardCache(directory, 4, True, row_limits(manifest))).take([(0, 2)])
    assert in_shard(ids) and ids.flags.writeable
    ids[0, 0] = -1  # the loader's own copy
    entry = bucket["shards"][0]
    assert hashlib.sha256((directory / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]


def test_a_corrupt_shard_is_named_when_first_read(copy, dataset):
    entry = dataset[1]["buckets"][1]["shards"][5]
    path = copy / entry["path"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    reader = BucketLoader(copy, tokens_per_batch=128)  # shards are checked when read, not up front
    with pytest.raises(ShardIntegrityError, match=f"shard {path}: sha256 differs from the manifest"):
        for _ in reader:
            pass


def test_a_truncated_shard_is_named(copy, dataset):
    entry = dataset[1]["buckets"][0]["shards"][0]
    path = copy / entry["path"]
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ShardIntegrityError, match=f"shard {path}: {entry['bytes'] - 10} bytes, manifest says"):
        for _ in BucketLoader(copy, tokens_per_batch=128):
            pass


def test_a_shard_truncated_in_place_while_read_is_an_integrity_error_not_sigbus(copy):
    """A mapped shard truncated under the reader killed it with SIGBUS; the loader's own copy cannot be cut."""
    script = f"""
import os
from pathlib import Path
from vocaloom.loader import BucketLoader
from vocaloom.loader.shards import ShardIntegrityError
loader = BucketLoader({str(copy)!r}, tokens_per_batch=128, max_open_shards=64)
batches = iter(loader)
first = next(batches)
for shard in Path({str(copy)!r}).rglob("*.arrow"):
    with open(shard, "r+b") as f:
        f.truncate(64)  # in place: the same inode, as a writer gone wrong would
total = int(first["input_ids"].sum())  # rows already handed out stay readable
try:
    for batch in batches:
        total += int(batch["input_ids"].sum())
except ShardIntegrityError as e:
    print("integrity:", e)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "integrity:" in result.stdout or result.stdout == ""


def test_each_shard_is_hashed_once_per_process(copy, dataset, monkeypatch):
    hashed, real = [], hashlib.sha256

    def counting(data=b""):
        if isinstance(data, bytearray):  # a shard's bytes as the loader read them
            hashed.append(len(data))
        return real(data)

    monkeypatch.setattr(hashlib, "sha256", counting)
    reader = BucketLoader(copy, tokens_per_batch=512, max_open_shards=2)  # shards are reopened often
    for _ in range(2):
        for _ in reader:
            pass
    BucketLoader(copy, tokens_per_batch=512).load_state_dict(reader.state_dict())
    assert len(hashed) == sum(len(b["shards"]) for b in dataset[1]["buckets"])


def test_an_unknown_format_or_no_manifest_is_refused(copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps(manifest | {"format": "vocaloom/2"}))
    with pytest.raises(ManifestError, match="unknown format 'vocaloom/2', this version reads 'vocaloom/1'"):
        BucketLoader(copy, tokens_per_batch=128)
    (copy / "manifest.json").unlink()
    with pytest.raises(ManifestError, match=r"no manifest\.json"):
        BucketLoader(copy, tokens_per_batch=128)
