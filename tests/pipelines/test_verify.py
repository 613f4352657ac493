"""Every branch of `vocaloom verify` (pipelines/verify.py), each on one damage to a small real dataset."""

import hashlib
import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard

from tests.loader.conftest import build_dataset
from vocaloom import assets
from vocaloom.loader import BucketLoader
from vocaloom.pipelines.verify import verify
from vocaloom.schemas.manifest import MANIFEST, ManifestError
from vocaloom.schemas.shard import shard_schema

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("verify")
    with zstandard.open(assets.bundled_path("bundled:sample"), "rt") as f:
        (folder / "corpus.jsonl").write_text("".join(line for _, line in zip(range(200), f)))
    build_dataset(folder / "ds", "--input", str(folder / "corpus.jsonl"))
    return folder / "ds"


def edit_manifest(directory: Path, change) -> None:
    manifest = json.loads((directory / MANIFEST).read_text())
    change(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def first_shard(directory: Path) -> tuple[Path, int]:
    bucket = json.loads((directory / MANIFEST).read_text())["buckets"][0]
    return directory / bucket["shards"][0]["path"], bucket["length"]


def rewrite_first_shard(directory: Path, table: pa.Table | None = None, data: bytes | None = None) -> None:
    """Replaces the first shard and re-hashes it in the manifest: only the checks after the sha256 can catch it."""
    path, _ = first_shard(directory)
    if table is not None:
        with pa.ipc.new_file(path, table.schema) as writer:
            writer.write_table(table)
    else:
        assert data is not None, "a table or the bytes to write"
        path.write_bytes(data)
    written = path.read_bytes()
    edit_manifest(
        directory,
        lambda m: m["buckets"][0]["shards"][0].update(bytes=len(written), sha256=hashlib.sha256(written).hexdigest()),
    )


def with_column(directory: Path, name: str, values) -> pa.Table:
    path, _ = first_shard(directory)
    table = pa.ipc.open_file(path).read_all()
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(index), pa.array(values, table.schema.field(index).type))


def shard_of_other_bucket(directory: Path) -> pa.Table:
    """The first shard's rows, as rows of the next bucket's length."""
    path, length = first_shard(directory)
    table = pa.ipc.open_file(path).read_all()
    row = [1] * (2 * length + 1)
    return pa.table(
        {
            "input_ids": pa.array([row] * table.num_rows, pa.list_(pa.int32(), len(row))),
            "doc_starts": table.column("doc_starts"),
            "doc_ids": table.column("doc_ids"),
            "source": table.column("source"),
        },
        schema=shard_schema(2 * length),
    )


def add_to_first(key: str, n: int):
    return lambda m: m["buckets"][0]["shards"][0].update({key: m["buckets"][0]["shards"][0][key] + n})


DAMAGES = {
    "missing": (lambda d: first_shard(d)[0].unlink(), "missing"),
    "size": (lambda d: first_shard(d)[0].write_bytes(first_shard(d)[0].read_bytes()[:-1]), "bytes, manifest says"),
    "sha256": (lambda d: first_shard(d)[0].write_bytes(b"x" + first_shard(d)[0].read_bytes()[1:]), "sha256 differs"),
    "not-arrow": (lambda d: rewrite_first_shard(d, data=b"not arrow at all"), "not an Arrow IPC file"),
    "schema": (lambda d: rewrite_first_shard(d, shard_of_other_bucket(d)), "schema differs from bucket"),
    "rows": (
        lambda d: rewrite_first_shard(d, pa.ipc.open_file(first_shard(d)[0]).read_all().slice(1)),
        "rows, manifest says",
    ),
    "token-range": (
        lambda d: rewrite_first_shard(
            d,
            with_column(
                d,
                "input_ids",
                [[8_000_000] * (first_shard(d)[1] + 1)] * pa.ipc.open_file(first_shard(d)[0]).read_all().num_rows,
            ),
        ),
        "token ids outside",
    ),
    "source-range": (
        lambda d: rewrite_first_shard(
            d, with_column(d, "source", [1] * pa.ipc.open_file(first_shard(d)[0]).read_all().num_rows)
        ),
        "source indices outside [0, 1)",
    ),
    "doc-starts": (
        lambda d: rewrite_first_shard(
            d,
            with_column(
                d,
                "doc_starts",
                [[5, *s[1:]] for s in pa.ipc.open_file(first_shard(d)[0]).read_all().column("doc_starts").to_pylist()],
            ),
        ),
        "doc_starts not 0 then rising",
    ),
    "accounting": (
        lambda d: edit_manifest(d, lambda m: m["counts"].update(records_read=m["counts"]["records_read"] + 1)),
        "accounting: records_read",
    ),
}

# A manifest whose own figures disagree is not read at all (verify and BucketLoader alike): no shard is opened.
INCONSISTENT = {
    "shard-rows": (add_to_first("rows", 1), "rows/tokens do not add up"),
    "bucket-tokens": (
        lambda m: m["buckets"][0].update(tokens=m["buckets"][0]["tokens"] + 1),
        "rows/tokens do not add up",
    ),
    "bucket-left-out": (lambda m: m["buckets"].pop(), "counts.tokens_written differs from the buckets' tokens"),
    "tokens-written": (
        lambda m: m["counts"].update(
            tokens_written=m["counts"]["tokens_written"] + 1, tokens_dropped=m["counts"]["tokens_dropped"] - 1
        ),
        "counts.tokens_written differs from the buckets' tokens",
    ),
    "source-name": (lambda m: m["sources"].update({"Not A Name": {"tokens_written": 0}}), "sources is malformed"),
}


def test_the_clean_dataset_verifies(clean):
    assert verify(str(clean)) == []


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_each_damage_is_named(clean, tmp_path, damage):
    directory = tmp_path / "ds"
    shutil.copytree(clean, directory)
    change, expected = DAMAGES[damage]
    change(directory)
    problems = verify(str(directory))
    assert problems and all("\n" not in p for p in problems)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("damage", sorted(INCONSISTENT))
def test_a_manifest_that_does_not_add_up_is_refused(clean, tmp_path, damage):
    directory = tmp_path / "ds"
    shutil.copytree(clean, directory)
    change, expected = INCONSISTENT[damage]
    edit_manifest(directory, change)
    with pytest.raises(ManifestError, match=re.escape(expected)):
        verify(str(directory))
    with pytest.raises(ManifestError, match=re.escape(expected)):
        BucketLoader(str(directory), tokens_per_batch=1024)


def test_a_dataset_from_before_named_sources_verifies_and_loads(clean, tmp_path):
    """Its shards have no source column and its manifest no sources block: every row is the source "default"."""
    directory = tmp_path / "ds"
    shutil.copytree(clean, directory)
    manifest = json.loads((directory / MANIFEST).read_text())
    for bucket in manifest["buckets"]:
        for entry in bucket["shards"]:
            path = directory / entry["path"]
            table = pa.ipc.open_file(path).read_all().drop_columns(["source"])
            with pa.ipc.new_file(path, table.schema) as writer:
                writer.write_table(table)
            entry.update(bytes=path.stat().st_size, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    del manifest["sources"]
    (directory / MANIFEST).write_text(json.dumps(manifest))
    assert verify(str(directory)) == []
    assert sum(1 for _ in BucketLoader(str(directory), tokens_per_batch=2048)) > 0
