"""Dataset Decomposition (Pouransari et al. 2024): cut each document into rows of exactly 2^k + 1 tokens.

A row of bucket L stores L + 1 tokens so that inputs = row[:-1] and targets = row[1:] give L positions.
Pieces are disjoint, so every token is in exactly one row or counted as dropped.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import Counter
from typing import NamedTuple

import apache_beam as beam

from vocaloom.schemas.counts import (
    DOCUMENT_MODE_TOKENS_DROPPED,
    DOCUMENTS_KEPT,
    FILTERED,
    SOURCE_DOCUMENTS_KEPT,
    SPEECH_TOKENS,
    TEXT_TOKENS,
    TOKENS_DROPPED,
    TOKENS_DROPPED_BY_REASON,
)
from vocaloom.schemas.shard import row_tokens
from vocaloom.transforms import seeds
from vocaloom.transforms.bundles import Filling, in_global_window
from vocaloom.transforms.columns import pack, records, take, to_columns
from vocaloom.transforms.counting import COUNTS, count
from vocaloom.transforms.documents import DocBatch, DocTokens


def over_long_odds(min_bucket: int, max_bucket: int) -> list[float]:
    """p(k) proportional to 2^(max - k): every bucket gets the same expected number of tokens (Apple's choice)."""
    return [float(1 << (max_bucket - k)) for k in range(min_bucket, max_bucket + 1)]


def decompose(n_tokens: int, min_bucket: int, max_bucket: int, seed: int) -> list[tuple[int, int]]:
    """(start, L) of each row cut from a document of `n_tokens` tokens, in document order.

    While more than the longest row remains, the row length is drawn at random (p(k) ~ 2^(max-k)) from a generator
    seeded with `seed`; then the largest row that fits is taken until less than the shortest row (2^min + 1 tokens)
    remains, which is dropped.
    """
    longest = (1 << max_bucket) + 1
    exponents = list(range(min_bucket, max_bucket + 1))
    pieces, start, remaining = [], 0, n_tokens
    if remaining > longest:
        rng, odds = random.Random(seed), over_long_odds(min_bucket, max_bucket)
    while remaining > longest:
        k = rng.choices(exponents, weights=odds)[0]
        pieces.append((start, 1 << k))
        start += (1 << k) + 1
        remaining -= (1 << k) + 1
    for k in reversed(exponents):
        while remaining >= (1 << k) + 1:
            pieces.append((start, 1 << k))
            start += (1 << k) + 1
            remaining -= (1 << k) + 1
    return pieces


class RowRef(NamedTuple):
    """One row of bucket `length`: pieces of (doc id, spill file, token offset, tokens) concatenated.

    `order` is a hash of the seed and the row's content ids: it picks the shard and the position within it. Every
    piece comes from documents of one source (its index in the build's sorted source names).
    """

    length: int
    order: int
    pieces: tuple[tuple[str, str, int, int], ...]
    source: int = 0


def makes_rows(n_tokens: int, min_bucket: int) -> bool:
    """Whether a document is longer than the shortest row (2^min + 1 tokens fit); if not, it has no rows."""
    return n_tokens > 1 << min_bucket


def document_pieces(doc: DocTokens, min_bucket: int, max_bucket: int, seed: int) -> tuple[int, list]:
    """A document's own rows in `document` mode: (its seed, [(start, L)])."""
    if not makes_rows(doc.n_tokens, min_bucket):  # no rows, and no seed to derive
        return 0, []
    doc_seed = seeds.derive(seed, doc.id, doc.fingerprint)
    return doc_seed, decompose(doc.n_tokens, min_bucket, max_bucket, doc_seed)


def dropped_tokens(n_tokens: int, pieces: list[tuple[int, int]]) -> int:
    return n_tokens - sum(row_tokens(length) for _, length in pieces)


_N_TOKENS, _N_SPEECH = DocTokens._fields.index("n_tokens"), DocTokens._fields.index("n_speech")
_SOURCE = DocTokens._fields.index("source_index")


def source_counts(declared, sources) -> list:
    """One `declared` count per source (by index) of the documents whose source indices `sources` lists."""
    return [count(declared, n, str(source)) for source, n in sorted(Counter(sources).items())]


# Rows handed on in one packed batch: documents arrive in many small batches (a dedup partition's parts), and each
# batch of rows is split per shard downstream, so a batch of rows per batch of documents made thousands of tiny ones.
ROWS_PER_BATCH = 1 << 14


LEFTOVERS = "leftovers"
# Every pack group drops its last few tokens (fewer than the shortest row): more groups spread the packing over more
# workers and lose a little more. Fixed, so that the rows never depend on the runner or the worker count. Each
# source has its own groups: a row holds documents of one source.
PACK_GROUPS = 16


class Leftover(NamedTuple):
    """Tokens of one document that make no row of their own: `n_tokens` at `offset` in `spill`. `whole`: the entire
    document (shorter than the shortest row), not the end of a longer one. `order`: its place in its pack group."""

    order: int
    id: str
    spill: str
    offset: int
    n_tokens: int
    whole: bool


def leftover(seed: int, doc: DocTokens, start: int, n_tokens: int) -> tuple[int, Leftover]:
    """(its pack group, the leftover) for tokens [start, start + n_tokens) of `doc`. Source s has the groups
    [s * PACK_GROUPS, (s + 1) * PACK_GROUPS)."""
    order = seeds.derive(seed, "pack", doc.id, doc.fingerprint)
    group = doc.source_index * PACK_GROUPS + order % PACK_GROUPS
    return group, Leftover(
        order, doc.id, doc.spill, doc.offset + start, n_tokens, start == 0 and n_tokens == doc.n_tokens
    )


def by_group(leftovers: list[tuple[int, Leftover]]):
    """(group, packed Leftovers) for each pack group among `leftovers`: a batch's leftovers cross the shuffle as a
    few packed batches, not one pickled element each (a corpus of short documents has one for nearly every one)."""
    groups: dict[int, list[Leftover]] = {}
    for group, left in leftovers:
        groups.setdefault(group, []).append(left)
    for group in sorted(groups):
        yield group, pack(groups[group])


class DecomposeDocumentFn(beam.DoFn):
    """`--context document`: each row holds a piece of a single document. DocBatches in, their rows out in packed
    batches of up to ROWS_PER_BATCH. What makes no row of its own (a document shorter than the shortest row, the
    end of a longer one) goes to LEFTOVERS for packing (transforms/text/packing.py), or is dropped and counted."""

    def __init__(self, min_bucket: int, max_bucket: int, seed: int, pack_remainders: bool):
        self._min, self._max, self._seed, self._pack = min_bucket, max_bucket, seed, pack_remainders

    def start_bundle(self):
        self._rows = Filling(ROWS_PER_BATCH)  # RowRefs

    def process(self, batch: DocBatch):
        columns = to_columns(batch)
        n_tokens, n_speech = columns[_N_TOKENS], columns[_N_SPEECH]
        long = [i for i, n in enumerate(n_tokens) if makes_rows(n, self._min)]
        # Documents that make rows are looked at one by one; the others only when they are packed.
        written = remainders = 0
        leftovers = []
        for doc in records(DocTokens, take(columns, long)):
            doc_seed, pieces = document_pieces(doc, self._min, self._max, self._seed)
            for i, (start, length) in enumerate(pieces):
                self._rows.add(
                    RowRef(
                        length,
                        seeds.derive(doc_seed, i),
                        ((doc.id, doc.spill, doc.offset + start, row_tokens(length)),),
                        doc.source_index,
                    )
                )
                written += row_tokens(length)
            remainder = dropped_tokens(doc.n_tokens, pieces)
            remainders += remainder
            if remainder and self._pack:
                leftovers.append(leftover(self._seed, doc, doc.n_tokens - remainder, remainder))
        short = [i for i, n in enumerate(n_tokens) if not makes_rows(n, self._min)]
        if self._pack:
            leftovers += (
                leftover(self._seed, doc, 0, doc.n_tokens) for doc in records(DocTokens, take(columns, short))
            )
            for packed_group in by_group(leftovers):
                yield beam.pvalue.TaggedOutput(LEFTOVERS, packed_group)
        if self._rows.full:
            yield pack(self._rows.take())
        yield count(DOCUMENTS_KEPT, len(long))
        yield from source_counts(SOURCE_DOCUMENTS_KEPT, (columns[_SOURCE][i] for i in long))
        yield count(TEXT_TOKENS, sum(n_tokens) - sum(n_speech))
        yield count(SPEECH_TOKENS, sum(n_speech))
        if not self._pack:  # packed, they are counted where they are packed
            short_tokens = sum(n_tokens) - written - remainders
            yield from dropped_counts({"shorter_than_a_row": short_tokens, "remainder": remainders})
            if short:
                yield count(FILTERED, len(short), "shorter_than_a_row")

    def finish_bundle(self):
        if self._rows.items:
            yield from in_global_window([pack(self._rows.take())])


def dropped_counts(by_reason: dict[str, int]):
    """Tokens no row holds, in all and by why."""
    yield count(TOKENS_DROPPED, sum(by_reason.values()))
    for reason, n in by_reason.items():
        if n:
            yield count(TOKENS_DROPPED_BY_REASON, n, reason)


class DecomposeDocuments(beam.PTransform):
    """Rows of single documents, their counts, and LEFTOVERS (empty when remainders are dropped)."""

    def __init__(self, min_bucket: int, max_bucket: int, seed: int, pack_remainders: bool):
        super().__init__()
        self._fn = DecomposeDocumentFn(min_bucket, max_bucket, seed, pack_remainders)

    def expand(self, docs):
        return docs | "Decompose" >> beam.ParDo(self._fn).with_outputs(COUNTS, LEFTOVERS, main="rows")


class DecomposeSegmentFn(beam.DoFn):
    """`--context related` (docs/related.md): a segment of related documents, in path order and each ending with
    eos, is decomposed as one token stream, so rows cross document boundaries (recorded per row) and only the
    segment's tail is dropped. Also counts what `document` mode would have dropped of the same documents."""

    def __init__(self, min_bucket: int, max_bucket: int, seed: int):
        self._min, self._max, self._seed = min_bucket, max_bucket, seed

    def process(self, element):
        segment, members = element
        docs = [doc for _, doc in sorted(members, key=lambda m: m[0])]
        starts = stream_starts(docs)
        segment_seed = seeds.derive(self._seed, "segment", segment)
        rows = list(stream_rows(docs, starts, self._min, self._max, segment_seed, docs[0].source_index))
        kept = sum(row_tokens(row.length) for row in rows)
        if rows:
            yield pack(rows)
        yield count(DOCUMENTS_KEPT, len(docs))
        yield count(SOURCE_DOCUMENTS_KEPT, len(docs), str(docs[0].source_index))
        yield count(TEXT_TOKENS, starts[-1] - sum(d.n_speech for d in docs))
        yield count(SPEECH_TOKENS, sum(d.n_speech for d in docs))
        yield from dropped_counts({"segment_tail": starts[-1] - kept})
        yield count(
            DOCUMENT_MODE_TOKENS_DROPPED,
            sum(dropped_tokens(d.n_tokens, document_pieces(d, self._min, self._max, self._seed)[1]) for d in docs),
        )


def stream_starts(pieces: list) -> list[int]:
    """Where each piece (anything with n_tokens) begins when the pieces are laid end to end; the last entry is the
    stream's length."""
    return list(itertools.accumulate((piece.n_tokens for piece in pieces), initial=0))


def stream_rows(pieces: list, starts: list[int], min_bucket: int, max_bucket: int, stream_seed: int, source: int):
    """The rows of a stream of pieces of one source (a related segment's documents, a pack group's leftovers;
    `starts`: stream_starts), cut as one document is; only the stream's tail, fewer tokens than the shortest row, is
    left."""
    for i, (start, length) in enumerate(decompose(starts[-1], min_bucket, max_bucket, stream_seed)):
        yield RowRef(
            length,
            seeds.derive(stream_seed, i),
            tuple(segment_pieces(pieces, starts, start, start + row_tokens(length))),
            source,
        )


def segment_pieces(docs: list, starts: list[int], begin: int, end: int):
    """The (doc id, spill, offset, n) pieces that tokens [begin, end) of a stream of `docs` (each with id, spill,
    offset; `starts`: where each begins in the stream) come from."""
    first = bisect.bisect_right(starts, begin) - 1
    for d in range(first, len(docs)):
        if starts[d] >= end:
            break
        lo, hi = max(begin, starts[d]), min(end, starts[d + 1])
        yield docs[d].id, docs[d].spill, docs[d].offset + lo - starts[d], hi - lo


class DecomposeSegments(beam.PTransform):
    def __init__(self, min_bucket: int, max_bucket: int, seed: int):
        super().__init__()
        self._fn = DecomposeSegmentFn(min_bucket, max_bucket, seed)

    def expand(self, segments):
        return (
            segments
            | "GroupBySegment" >> beam.GroupByKey()
            | "DecomposeSegment" >> beam.ParDo(self._fn).with_outputs(COUNTS, main="rows")
        )
