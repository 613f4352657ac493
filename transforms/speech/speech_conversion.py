"""Spans to speech units: served from the inference cache when it has them, else converted by the text-to-token
model through RunInference, each distinct text once, in batches of similar length that the pipeline forms itself
(SpanBatches) so that no span's units depend on how a runner bundled it. A batch the model fails on, and a span it
cannot convert, go to the dead letter output with their span ids; those spans stay text and the build goes on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import apache_beam as beam

from vocaloom.schemas.counts import SPAN_CACHE_ENTRIES_INVALID, SPANS_CACHED, SPANS_CONVERTED, SPANS_FAILED
from vocaloom.transforms.counting import COUNTS
from vocaloom.transforms.documents import DocBatch, unpack_docs
from vocaloom.transforms.inference.cache import DEAD_LETTER, CachedInference, Codec, Counters, cache_key, same
from vocaloom.transforms.speech.speech_handlers import Span, SpanBatchHandler, text_size

# A length class is spread over hash shards, each of them grouped on one worker, so that one class can keep many
# workers busy; at the CPU's default budget of 2,048 characters, 64 shards. A larger budget gets fewer shards, so
# that each still holds enough spans to fill its batches (a GPU's budget of 262,144: one).
SPREAD_CHARACTERS = 64 * 2048
SPAN_COUNTERS = Counters(
    cached=SPANS_CACHED, computed=SPANS_CONVERTED, failed=SPANS_FAILED, invalid=SPAN_CACHE_ENTRIES_INVALID
)


def speech_spans(batch: DocBatch, identity: str):
    """A batch of kept documents to their speech spans, each with its inference cache key (`identity`: the
    model's, speech_handlers.units_identity)."""
    for doc in unpack_docs(batch):
        for index, text in enumerate(doc.spans):
            yield Span(doc.id, doc.fingerprint, index, text, cache_key(identity, text))


def length_group(span: Span, size: int, budget: int) -> tuple[int, int]:
    """(log2 of the span's size, a hash shard): spans of one group have sizes within a factor of two."""
    return size.bit_length(), int(span.key[:8], 16) % max(1, SPREAD_CHARACTERS // budget)


class SpanBatches(beam.PTransform):
    """Spans to the model's batches, the same spans in the same order on every runner and worker count: spans are
    grouped by length class and hash shard (a keyed grouping, so a group's members do not depend on bundling),
    sorted by size, and cut where a batch would exceed `budget` padded size units (`size`: the handler's, of a
    span's text). A batch pads to its longest span, so one length class per batch wastes little."""

    def __init__(self, budget: int, size: Callable[[str], int] = text_size):
        super().__init__()
        self._budget, self._size = budget, size

    def expand(self, spans):
        budget, size = self._budget, self._size
        return (
            spans
            | "KeyByLength" >> beam.Map(lambda s: sized_in_group(s, size(s.text), budget))
            | "GroupByLength" >> beam.GroupByKey()
            | "CutBatches" >> beam.FlatMap(lambda group: cut_sized(group[1], budget))
        )


def sized_in_group(span: Span, size: int, budget: int):
    """(its length group, (size, key, span)): the size is measured once, where the group is chosen."""
    return length_group(span, size, budget), (size, span.key, span)


def cut_batches(spans, budget: int, size: Callable[[str], int] = text_size):
    """Spans sorted by (size, key), cut into tuples whose count times their largest size stays within `budget`
    (a larger span alone makes a batch of one)."""
    return cut_sized(((size(s.text), s.key, s) for s in spans), budget)


def cut_sized(sized, budget: int):
    """cut_batches over (size, key, span) triples (keys are distinct, so spans are never compared)."""
    batch: list = []
    for span_size, _, span in sorted(sized):
        if batch and (len(batch) + 1) * span_size > budget:
            yield tuple(batch)
            batch = []
        batch.append(span)
    if batch:
        yield tuple(batch)


def dead_letter_record(failed: tuple[Span, str]) -> dict:
    span, error = failed
    return {"doc_id": span.doc_id, "span_index": span.ordinal, "text": span.text, "error": error}


def checked_units(codebook_size: int, value) -> list[int]:
    """A cached span's units, if the model could have made them: a non-empty list of ids in [0, codebook_size)."""
    if (
        type(value) is not list
        or not value
        or not all(type(unit) is int and 0 <= unit < codebook_size for unit in value)
    ):
        raise ValueError(f"not a non-empty list of unit ids in [0, {codebook_size})")
    return value


class ConvertSpans(beam.PTransform):
    """Spans in; (span, unit ids or None) out, plus DEAD_LETTER records and COUNTS. Cached units are used only if
    they are ids of the model's codebook (`codebook_size`)."""

    def __init__(self, handler: SpanBatchHandler, cache_files: list[str], cache_dir: str | None, codebook_size: int):
        super().__init__()
        self._convert = CachedInference(
            handler,
            cache_files,
            cache_dir,
            SPAN_COUNTERS,
            SpanBatches(handler.batch_characters, handler.span_size),
            Codec(same, functools.partial(checked_units, codebook_size)),
        )

    def expand(self, spans):
        converted = spans | "CachedTextToToken" >> self._convert
        letters = converted[DEAD_LETTER] | "DeadLetterRecords" >> beam.Map(dead_letter_record)
        return {"units": converted["outputs"], DEAD_LETTER: letters, COUNTS: converted[COUNTS]}
