"""Packing: what Dataset Decomposition leaves over in document context (documents shorter than the shortest row,
and the end of every longer document) laid end to end and cut into rows, so that no token is lost but the last
few of each pack group.

Leftovers are spread over PACK_GROUPS groups by a hash of (seed, document); within a group they follow an order
hashed from (seed, document), and the stream is cut as a related segment is (random row lengths while more than the
longest row remains, then the largest row that fits: transforms/text/dataset_decomposition.py). A piece cut at a
row's end goes on at the start of the next row. Each row's `doc_starts` marks where every piece begins, so attention
need never cross from one document to another. What is left at a group's end, fewer tokens than the shortest row holds,
is dropped and counted (`pack_tail`), as are the documents all of whose tokens were in it.
"""

from __future__ import annotations

from itertools import chain

import apache_beam as beam

from vocaloom.schemas.counts import DOCUMENTS_KEPT, FILTERED, SOURCE_DOCUMENTS_KEPT
from vocaloom.schemas.shard import row_tokens
from vocaloom.transforms import seeds
from vocaloom.transforms.columns import pack, unpack
from vocaloom.transforms.counting import COUNTS, count
from vocaloom.transforms.io.spill import SpilledGroupByKey
from vocaloom.transforms.text.dataset_decomposition import (
    PACK_GROUPS,
    ROWS_PER_BATCH,
    Leftover,
    dropped_counts,
    stream_rows,
    stream_starts,
)


class PackLeftoversFn(beam.DoFn):
    """(group, packed batches of its Leftovers) in; packed batches of RowRefs out, and what the group's tail dropped
    on COUNTS."""

    def __init__(self, min_bucket: int, max_bucket: int, seed: int):
        self._min, self._max, self._seed = min_bucket, max_bucket, seed

    def process(self, element):
        group, batches = element
        # By order, then id and offset: the same on every runner, however the leftovers were batched.
        pieces = sorted(chain.from_iterable(unpack(Leftover, batch) for batch in batches))
        starts = stream_starts(pieces)
        rows, written = [], 0
        for row in stream_rows(
            pieces, starts, self._min, self._max, seeds.derive(self._seed, "pack-group", group), group // PACK_GROUPS
        ):
            rows.append(row)
            written += row_tokens(row.length)
            if len(rows) == ROWS_PER_BATCH:
                yield pack(rows)
                rows = []
        if rows:
            yield pack(rows)
        # A piece that starts in the tail has no token in any row; for a whole document, the document is left out.
        lost = [piece for piece, start in zip(pieces, starts) if start >= written]
        whole = sum(piece.whole for piece in pieces)
        lost_whole = sum(piece.whole for piece in lost)
        yield count(DOCUMENTS_KEPT, whole - lost_whole)
        if whole - lost_whole:
            yield count(SOURCE_DOCUMENTS_KEPT, whole - lost_whole, str(group // PACK_GROUPS))
        if lost_whole:
            yield count(FILTERED, lost_whole, "in_pack_tail")
        yield from dropped_counts({"pack_tail": starts[-1] - written})


class PackLeftovers(beam.PTransform):
    """(the documents' own rows, their leftovers as dataset_decomposition.by_group batches them) in; {"rows": (those
    rows, the packed ones), for WriteShards, COUNTS: ...} out."""

    def __init__(self, min_bucket: int, max_bucket: int, seed: int, spill_dir: str):
        super().__init__()
        self._fn = PackLeftoversFn(min_bucket, max_bucket, seed)
        self._spill_dir = spill_dir

    def expand(self, rows_and_leftovers):
        rows, leftovers = rows_and_leftovers
        packed = (
            leftovers
            # Through spill files: a corpus of short documents leaves over nearly every one, and the in-process
            # runner would hold them all in memory.
            | "GroupLeftovers" >> SpilledGroupByKey(self._spill_dir)
            | "Pack" >> beam.ParDo(self._fn).with_outputs(COUNTS, main="rows")
        )
        return {"rows": (rows, packed.rows), COUNTS: packed[COUNTS]}
