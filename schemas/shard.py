"""Shard layout as plain arithmetic: bucket lengths, schema, how many shards, and their names (docs/format.md); and
the checks every reader makes of a shard's file and rows before it trusts them."""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:  # the manifest module reads shard names from this one
    from vocaloom.schemas.manifest import Manifest, ShardEntry

FORMAT = "vocaloom/1"  # the dataset format: the manifest's "format", and every shard's schema metadata
# A dataset's folders and files (docs/format.md): the shards, the records set aside, the report and its figures; and
# the folder a build works in until its commit moves the files into place.
DATA_DIR, REJECTS_DIR, DEAD_LETTER_DIR, FIGURES_DIR = "data", "rejects", "dead_letter", "figures"
REPORT = "report.md"
TEMP_DIR = ".vocaloom-tmp"
# A dataset that replaced another in a bucket keeps all its files under DIR/generations/<n>/ (pipelines/output_dir.py).
GENERATIONS_DIR = "generations"


# Bucket exponents a build may use and a reader accepts: shorter rows hold no sentence, longer ones fit no model.
MIN_BUCKET_EXPONENT, MAX_BUCKET_EXPONENT = 4, 20


def row_tokens(length: int) -> int:
    """The tokens a row of bucket `length` holds: L inputs, and the target after the last of them."""
    return length + 1


def bucket_lengths(min_bucket: int, max_bucket: int) -> list[int]:
    """Row lengths L = 2^k for k in [min, max]; each row stores L + 1 tokens (inputs and shifted targets)."""
    return [1 << k for k in range(min_bucket, max_bucket + 1)]


# The row's source: an index into the build's sorted source names (schema metadata vocaloom.sources, the manifest's
# "sources"). Datasets written before named sources have no such column: every row is the source "default".
SOURCE = pa.field("source", pa.int16(), nullable=False)
MAX_SOURCES = 1 << 15


def any_bucket_schema(vocab: Mapping[str, Any] | None = None, sources: tuple[str, ...] | None = ()) -> pa.Schema:
    """The columns of every bucket's rows, input_ids as a plain list: what whole-dataset readers scan with, since a
    fixed-size list of L + 1 differs from bucket to bucket. The metadata says what the rows are without the
    manifest: the format and, given `vocab` (the manifest's "vocab"), which ids are text, special and speech, and
    given `sources`, the source names. `sources` None: a dataset from before named sources (no source column)."""
    metadata = {b"vocaloom.format": FORMAT.encode()}
    if vocab is not None:
        metadata[b"vocaloom.vocab"] = json.dumps(vocab, sort_keys=True).encode()
    if sources:
        metadata[b"vocaloom.sources"] = json.dumps(list(sources)).encode()
    return pa.schema(
        [
            pa.field("input_ids", pa.list_(pa.int32()), nullable=False),
            pa.field("doc_starts", pa.list_(pa.int32()), nullable=False),
            pa.field("doc_ids", pa.list_(pa.string()), nullable=False),
            *([SOURCE] if sources is not None else []),
        ],
        metadata=metadata,
    )


def shard_schema(
    length: int, vocab: Mapping[str, Any] | None = None, sources: tuple[str, ...] | None = ()
) -> pa.Schema:
    """Bucket `length`'s shards: rows of exactly L + 1 tokens; the metadata names the bucket too."""
    schema = any_bucket_schema(vocab, sources)
    return schema.set(0, pa.field("input_ids", pa.list_(pa.int32(), row_tokens(length)), nullable=False)).with_metadata(
        {**schema.metadata, b"vocaloom.bucket": str(length).encode()}
    )


def num_shards(rows: int, length: int, shard_tokens: int) -> int:
    """About `shard_tokens` tokens a shard, never more shards than rows (so a full shard count cannot be empty)."""
    return max(1, min(rows, math.ceil(rows * (row_tokens(length)) / shard_tokens)))


def bucket_dir(length: int) -> str:
    return f"{DATA_DIR}/bucket-{length:05d}"


def generation_dir(generation: int) -> str:
    """Relative to the dataset directory: the folder of generation `generation` (0: the directory itself)."""
    return f"{GENERATIONS_DIR}/{generation:05d}" if generation else ""


def shard_path(length: int, index: int, count: int, generation: int = 0) -> str:
    """Relative to the dataset directory, as tensorflow-datasets names shards: index-of-count."""
    path = f"{bucket_dir(length)}/shard-{index:05d}-of-{count:05d}.arrow"
    return f"{generation_dir(generation)}/{path}" if generation else path


def local_file_problem(directory: str, path: str, size: int) -> str | None:
    """Why the local shard file `path` (relative to `directory`) must not be read: outside the dataset (through a
    link), not a regular file (a FIFO would block, a device never end), or not `size` bytes. None when it may."""
    full = os.path.join(directory, path)
    if not os.path.realpath(full).startswith(os.path.realpath(directory) + os.sep):
        return "leads outside the dataset"
    try:
        info = os.stat(full)
    except OSError as e:
        return "missing" if isinstance(e, FileNotFoundError) else f"cannot be read: {e.strerror}"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size != size:
        return f"{info.st_size} bytes, manifest says {size}"
    return None


class RowLimits(NamedTuple):
    """What a dataset's rows must keep within: token ids below `vocab_size`, source indices below `sources` (None:
    a dataset from before named sources, whose shards have no source column)."""

    vocab_size: int
    sources: int | None


def row_limits(manifest: Manifest) -> RowLimits:
    sources = manifest.get("sources")
    return RowLimits(manifest["vocab"]["size"], len(sources) if isinstance(sources, dict) else None)


def rows_problem(table: pa.Table, length: int, rows: int, limits: RowLimits) -> str | None:
    """What is wrong with a shard's table (read from bytes nobody vouches for) before any row of it is used; None
    when it is a well-formed shard of bucket `length` with `rows` rows whose token ids and source indices are
    within `limits`."""
    vocab_size, sources = limits
    if not table.schema.equals(shard_schema(length, sources=None if sources is None else ())):
        return f"schema differs from bucket {length}'s"
    if table.num_rows != rows or rows == 0:
        return f"{table.num_rows} rows, manifest says {rows}"
    try:
        table.validate(full=True)  # offsets and lengths inside their buffers: what to_numpy below relies on
    except pa.ArrowInvalid as e:
        return f"malformed Arrow data ({e})"
    if any(column.null_count for column in table.columns):
        return "null values"
    table = table.combine_chunks()
    tokens = table.column("input_ids").chunk(0).flatten().to_numpy()
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
        return f"token ids outside [0, {vocab_size})"
    if sources is not None:
        indices = table.column(SOURCE.name).chunk(0).to_numpy()
        if indices.size and (indices.min() < 0 or indices.max() >= sources):
            return f"source indices outside [0, {sources})"
    starts = table.column("doc_starts").chunk(0)
    offsets = starts.offsets.to_numpy() - starts.offsets[0].as_py()
    values = starts.flatten().to_numpy()
    ids_offsets = table.column("doc_ids").chunk(0).offsets.to_numpy()
    first = offsets[:-1]
    if np.any(np.diff(offsets) < 1) or not np.array_equal(np.diff(offsets), np.diff(ids_offsets)):
        return "a row without documents, or doc_starts and doc_ids of different lengths"
    rising = np.diff(values) > 0
    rising[first[1:] - 1] = True  # where one row's doc_starts end and the next row's begin
    if np.any(values[first] != 0) or not rising.all() or values.max() > length:
        return f"doc_starts not 0 then rising within [0, {length}]"
    return None


SHA256_DIFFERS = "sha256 differs from the manifest (corrupt or replaced)"


class ShardProblem(ValueError):
    """What is wrong with a shard's bytes, in a few words; the reader names the shard."""


def checked_table(
    source: pa.Buffer | pa.NativeFile, length: int, entry: ShardEntry, limits: RowLimits, sha256: str | None
):
    """The table of shard `entry` of bucket `length`, read from `source` (its bytes, or a memory map of its file)
    after the checks every reader makes, in this order: the sha256 the reader computed (None: not hashed this
    time) against the manifest's, the Arrow IPC file format, then every row (rows_problem). Raises ShardProblem."""
    if sha256 is not None and sha256 != entry["sha256"]:
        raise ShardProblem(SHA256_DIFFERS)
    try:
        table = pa.ipc.open_file(source).read_all()
    except (pa.ArrowException, OSError) as e:
        raise ShardProblem(f"not an Arrow IPC file ({e})") from None
    problem = rows_problem(table, length, entry["rows"], limits)
    if problem:
        raise ShardProblem(problem)
    return table
