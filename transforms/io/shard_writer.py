"""Sized, checksummed Arrow shards: rows grouped per bucket into shards of about `--shard-tokens` tokens.

A row's shard is its order hash modulo the bucket's shard count, and rows sit in a shard in hash order, so the
shards are the same bytes whatever the runner or worker count. Shards are written under temporary names; the
commit step gives them their final `shard-i-of-n` names once it knows which are non-empty.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter, defaultdict
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from vocaloom.schemas.shard import num_shards, row_tokens, shard_schema
from vocaloom.transforms.columns import column, take_packed, unpack
from vocaloom.transforms.io.spill import SpillBatchFn, SpilledGroupByKey, read_batches, read_spans
from vocaloom.transforms.text.dataset_decomposition import RowRef


class ShardFile(NamedTuple):
    """A written shard under its temporary name; `slot` is its hash slot, renumbered densely at commit."""

    length: int
    slot: int
    temp_path: str
    rows: int
    bytes: int
    sha256: str
    tokens_by_source: tuple[int, ...] = ()  # the shard's tokens of each source, by source index


def shard_table(length: int, rows: list[RowRef], vocab: dict | None = None, sources: tuple[str, ...] = ()) -> pa.Table:
    """The rows' tokens read back from the spill files, as a table of the bucket's schema (`vocab`, the manifest's,
    and the source names go into its metadata)."""
    by_file: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # spill -> (flat position, offset, n)
    position = 0
    for row in rows:
        for _, spill, offset, n in row.pieces:
            by_file[spill].append((position, offset, n))
            position += n
    if position != len(rows) * row_tokens(length):
        raise ValueError(f"bucket {length}: rows hold {position} tokens, expected {len(rows) * row_tokens(length)}")
    flat = np.empty(position, dtype=np.int32)
    for spill, spans in by_file.items():
        for (pos, _, n), tokens in zip(spans, read_spans(spill, [(o, n) for _, o, n in spans])):
            flat[pos : pos + n] = tokens
    starts = [list(itertools.accumulate((n for *_, n in row.pieces[:-1]), initial=0)) for row in rows]
    ids = [[doc_id for doc_id, *_ in row.pieces] for row in rows]
    return pa.Table.from_arrays(
        [
            pa.FixedSizeListArray.from_arrays(pa.array(flat), row_tokens(length)),
            pa.array(starts, pa.list_(pa.int32())),
            pa.array(ids, pa.list_(pa.string())),
            pa.array([row.source for row in rows], pa.int16()),
        ],
        schema=shard_schema(length, vocab, sources),
    )


def ipc_file_bytes(table: pa.Table, compression: str) -> bytes:
    """Arrow IPC *file* format: pyarrow and Polars open it directly, HF datasets through load_dataset("arrow")."""
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=None if compression == "none" else compression)
    with pa.ipc.new_file(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


_LENGTH, _ORDER = RowRef._fields.index("length"), RowRef._fields.index("order")


def rows_per_bucket(packed_rows):
    return Counter(column(packed_rows, _LENGTH)).items()


class AssignShardFn(beam.DoFn):
    """A spilled batch of rows to ((length, shard slot), rows of the batch in that slot) pairs, taken from the
    packed columns: only the lengths and orders are decoded."""

    def __init__(self, shard_tokens: int):
        self._shard_tokens = shard_tokens

    def process(self, reference, bucket_rows: dict[int, int]):
        [packed_rows] = read_batches([reference])
        lengths, orders = column(packed_rows, _LENGTH), column(packed_rows, _ORDER)
        shards = {length: num_shards(bucket_rows[length], length, self._shard_tokens) for length in set(lengths)}
        slots = defaultdict(list)
        for row, (length, order) in enumerate(zip(lengths, orders)):
            slots[length, order % shards[length]].append(row)
        for slot, rows in slots.items():
            yield slot, take_packed(packed_rows, rows)


class WriteShardFn(beam.DoFn):
    def __init__(self, temp_dir: str, compression: str, vocab: dict, sources: tuple[str, ...]):
        self._temp_dir, self._compression, self._vocab, self._sources = temp_dir, compression, vocab, sources

    def process(self, element):
        (length, index), batches = element  # the slot's packed rows
        packed = itertools.chain.from_iterable(unpack(RowRef, batch) for batch in batches)
        # A source's rows are contiguous in a shard (the manifest counts them), so that a reader can take one
        # source's rows in blocks; within a source, hash order (ids break rare ties).
        rows = sorted(packed, key=lambda r: (r.source, r.order, [piece[0] for piece in r.pieces]))
        data = ipc_file_bytes(shard_table(length, rows, self._vocab, self._sources), self._compression)
        tokens = [0] * len(self._sources)
        for row in rows:
            tokens[row.source] += row_tokens(length)
        path = FileSystems.join(self._temp_dir, f"bucket-{length:05d}-slot-{index:05d}.arrow")
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(data)
        beam.metrics.Metrics.counter("vocaloom", "shards_written").inc()
        yield ShardFile(length, index, path, len(rows), len(data), hashlib.sha256(data).hexdigest(), tuple(tokens))


class WriteShards(beam.PTransform):
    """Packed batches of RowRefs in (one PCollection, or a tuple of them), ShardFiles out. Rows reach their shard
    through spill files in `spill_dir`; every shard's schema metadata holds `vocab` (the manifest's) and the build's
    `sources` (names by index)."""

    def __init__(
        self,
        temp_dir: str,
        shard_tokens: int,
        compression: str,
        spill_dir: str,
        vocab: dict,
        sources: tuple[str, ...] = ("default",),
    ):
        super().__init__()
        self._temp_dir, self._shard_tokens, self._compression = temp_dir, shard_tokens, compression
        self._spill_dir, self._vocab, self._sources = spill_dir, vocab, sources

    def expand(self, rows):
        # Shards are sized from every bucket's row count, so rows wait for the count: they wait in spill files. Each
        # branch is spilled and counted before the branches meet, so that what the in-process runner holds where they
        # meet is references and counts, not every row (with packing, a row per few short documents).
        branches = rows if isinstance(rows, tuple) else (rows,)
        bucket_rows = (
            tuple(b | f"BucketsOfRows{i}" >> beam.FlatMap(rows_per_bucket) for i, b in enumerate(branches))
            | "AllBuckets" >> beam.Flatten()
            | "RowsPerBucket" >> beam.CombinePerKey(sum)
        )
        spilled = tuple(
            b | f"SpillRows{i}" >> beam.ParDo(SpillBatchFn(self._spill_dir)) for i, b in enumerate(branches)
        )
        return (
            spilled
            | "AllSpilled" >> beam.Flatten()
            | "AssignShard"
            >> beam.ParDo(AssignShardFn(self._shard_tokens), bucket_rows=beam.pvalue.AsDict(bucket_rows))
            | "GroupByShard" >> SpilledGroupByKey(self._spill_dir)
            | "WriteShard" >> beam.ParDo(WriteShardFn(self._temp_dir, self._compression, self._vocab, self._sources))
        )
