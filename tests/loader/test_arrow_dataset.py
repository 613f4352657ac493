"""A whole dataset, every bucket at once, in each reader a user already has: pyarrow.dataset, Polars, DuckDB (through
arrow_dataset) and Hugging Face datasets (through the dataset card), checked against the shards read one by one."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.conftest import RUNNER, TEXT_ONLY
from vocaloom.loader import arrow_dataset
from vocaloom.pipelines.build import run
from vocaloom.schemas.manifest import Manifest

pytestmark = pytest.mark.integration

WORDS = "speech and text woven into one stream of tokens for a model to learn from".split()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Manifest]:
    """Documents of 5 to 400 words: rows in every bucket from 32 to 256, in zstd-compressed shards."""
    folder = tmp_path_factory.mktemp("arrow")
    docs = [
        {"id": f"d{i}", "text": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(5 + 13 * i))} for i in range(30)
    ]
    (folder / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    output = folder / "ds"
    manifest = run(
        [
            "--input",
            str(folder / "docs.jsonl"),
            "--output",
            str(output),
            "--min-bucket",
            "5",
            "--max-bucket",
            "8",
            "--shard-tokens",
            "1000",
            "--compression",
            "zstd",
            *TEXT_ONLY,
            *RUNNER,
        ]
    )
    assert [b["rows"] > 0 for b in manifest["buckets"]] == [True] * 4 and len(manifest["buckets"][0]["shards"]) > 1
    return output, manifest


def shard_rows(output: Path, manifest: dict) -> list[tuple[int, list[int], list[int], list[str]]]:
    """(bucket, input_ids, doc_starts, doc_ids) of every row, shard by shard as the manifest lists them."""
    rows = []
    for bucket in manifest["buckets"]:
        for shard in bucket["shards"]:
            table = pa.ipc.open_file(str(output / shard["path"])).read_all()
            rows += [
                (bucket["length"], *row)
                for row in zip(*(table.column(c).to_pylist() for c in ("input_ids", "doc_starts", "doc_ids")))
            ]
    return rows


def test_every_shard_says_its_format_and_vocabulary(built):
    output, manifest = built
    for bucket in manifest["buckets"]:
        for shard in bucket["shards"]:
            metadata = pa.ipc.open_file(str(output / shard["path"])).schema.metadata
            assert json.loads(metadata[b"vocaloom.vocab"]) == manifest["vocab"]
            assert (metadata[b"vocaloom.format"], metadata[b"vocaloom.bucket"]) == (
                b"vocaloom/1",
                str(bucket["length"]).encode(),
            )


def test_pyarrow_dataset_holds_every_row_of_every_bucket(built):
    output, manifest = built
    rows = arrow_dataset(output)
    table = rows.to_table()
    got = list(zip(*(table.column(c).to_pylist() for c in ("bucket", "input_ids", "doc_starts", "doc_ids"))))
    assert sorted(got) == sorted(shard_rows(output, manifest))
    assert json.loads(rows.schema.metadata[b"vocaloom.vocab"]) == manifest["vocab"]
    one = rows.to_table(filter=pc.field("bucket") == 64)
    assert one.num_rows == manifest["buckets"][1]["rows"]
    assert set(pc.list_value_length(one["input_ids"]).to_pylist()) == {65}


def test_polars_and_duckdb_count_what_the_manifest_says(built):
    import duckdb
    import polars as pl

    output, manifest = built
    expected = [(b["length"], b["rows"], b["tokens"]) for b in manifest["buckets"]]
    rows = arrow_dataset(output)
    frame = (
        pl.scan_pyarrow_dataset(rows)
        .group_by("bucket")
        .agg(pl.len(), pl.col("input_ids").list.len().sum())
        .sort("bucket")
        .collect()
    )
    assert [tuple(r) for r in frame.iter_rows()] == expected
    sql = "SELECT bucket, count(*), sum(len(input_ids)) FROM rows GROUP BY bucket ORDER BY bucket"
    relation = duckdb.sql(sql)
    assert relation is not None  # None only for statements that return no rows
    assert relation.fetchall() == expected


def test_hf_datasets_loads_the_whole_dataset_and_each_bucket(built, tmp_path):
    import datasets

    output, manifest = built
    whole = datasets.load_dataset(str(output), split="train", cache_dir=str(tmp_path / "hf"))
    expected = shard_rows(output, manifest)
    assert sorted((len(r["input_ids"]) - 1, r["input_ids"], r["doc_starts"], r["doc_ids"]) for r in whole) == sorted(
        expected
    )
    one = datasets.load_dataset(str(output), "bucket-00128", split="train", cache_dir=str(tmp_path / "hf"))
    assert [r["input_ids"] for r in one] == [ids for length, ids, *_ in expected if length == 128]


def test_arrow_dataset_refuses_a_bucket_url():
    with pytest.raises(ValueError, match="reads local datasets"):
        arrow_dataset("gs://somewhere/ds")
