"""A whole dataset as one pyarrow dataset, for the tools that scan Arrow: pyarrow itself, Polars and DuckDB.

Shards of different buckets have different schemas (input_ids is a fixed-size list of L + 1), so a glob over
data/*/*.arrow fails in every one of those tools. Here the manifest names the shards, each is read with input_ids
as a plain list, and a `bucket` column (L) comes from the manifest, not the files: filtering on it skips the other
buckets' shards unread.

    rows = arrow_dataset("DIR")
    rows.to_table(filter=pyarrow.compute.field("bucket") == 512)
    polars.scan_pyarrow_dataset(rows).group_by("bucket").len()
    duckdb.sql("SELECT bucket, count(*) FROM rows GROUP BY bucket")   # DuckDB scans the Python variable `rows`

Nothing here checks shard checksums: `vocaloom verify DIR` does, and BucketLoader checks what it reads.
"""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from vocaloom.schemas.manifest import read_manifest
from vocaloom.schemas.paths import is_local, plain
from vocaloom.schemas.shard import any_bucket_schema

BUCKET = pa.field("bucket", pa.int32(), nullable=False)


def arrow_dataset(directory: str | os.PathLike) -> ds.Dataset:
    """Every row of the local dataset at `directory` (a nightly LATEST link included): input_ids, doc_starts,
    doc_ids and bucket. The schema's metadata holds the format and the vocabulary, as each shard's does."""
    location = str(directory)
    if not is_local(location):
        raise ValueError(f"{location}: arrow_dataset reads local datasets (BucketLoader reads them in buckets)")
    root = os.path.realpath(plain(location))
    manifest = read_manifest(root)
    paths, buckets = [], []
    for bucket in manifest["buckets"]:
        for shard in bucket["shards"]:
            paths.append(os.path.join(root, shard["path"]))
            buckets.append(pc.field(BUCKET.name) == pa.scalar(bucket["length"], pa.int32()))
    sources = tuple(sorted(manifest["sources"])) if "sources" in manifest else None  # None: before named sources
    schema = any_bucket_schema(manifest["vocab"], sources).append(BUCKET)
    return ds.FileSystemDataset.from_paths(
        paths, schema=schema, format=ds.IpcFileFormat(), filesystem=pafs.LocalFileSystem(), partitions=buckets
    )
