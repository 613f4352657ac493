"""Shard layout as plain arithmetic: bucket lengths, schema, how many shards, and their names (SPEC "Shards")."""
from __future__ import annotations

import math

import pyarrow as pa

DATA_DIR = "data"


def bucket_lengths(min_bucket: int, max_bucket: int) -> list[int]:
    """Row lengths L = 2^k for k in [min, max]; each row stores L + 1 tokens (inputs and shifted targets)."""
    return [1 << k for k in range(min_bucket, max_bucket + 1)]


def shard_schema(length: int) -> pa.Schema:
    return pa.schema([
        pa.field("input_ids", pa.list_(pa.int32(), length + 1), nullable=False),
        pa.field("doc_starts", pa.list_(pa.int32()), nullable=False),
        pa.field("doc_ids", pa.list_(pa.string()), nullable=False),
    ], metadata={b"vocaloom.bucket": str(length).encode()})


def num_shards(rows: int, length: int, shard_tokens: int) -> int:
    """About `shard_tokens` tokens a shard, never more shards than rows (so a full shard count cannot be empty)."""
    return max(1, min(rows, math.ceil(rows * (length + 1) / shard_tokens)))


def bucket_dir(length: int) -> str:
    return f"{DATA_DIR}/bucket-{length:05d}"


def shard_path(length: int, index: int, count: int) -> str:
    """Relative to the dataset directory, as tensorflow-datasets names shards: index-of-count."""
    return f"{bucket_dir(length)}/shard-{index:05d}-of-{count:05d}.arrow"
