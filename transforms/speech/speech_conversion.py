"""Spans to speech units: served from the inference cache when it has them, else converted by the text-to-token
model through RunInference, each distinct text once and batched by length. A batch the model fails on goes to the
dead letter output with its span ids; those spans stay text and the build goes on.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler

from vocaloom.schemas.counts import SPANS_CACHED, SPANS_CONVERTED, SPANS_FAILED
from vocaloom.transforms.counting import COUNTS
from vocaloom.transforms.documents import DocBatch, unpack_docs
from vocaloom.transforms.inference_cache import DEAD_LETTER, CachedInference, Counters, cache_key
from vocaloom.transforms.speech.speech_handlers import Span, span_size

# Groups per length class: enough to spread one class over many workers.
LENGTH_SHARDS = 64
SPAN_COUNTERS = Counters(cached=SPANS_CACHED, computed=SPANS_CONVERTED, failed=SPANS_FAILED)


def speech_spans(batch: DocBatch, model_sha256: str):
    """A batch of kept documents to their speech spans, each with its inference cache key."""
    for doc in unpack_docs(batch):
        for index, text in enumerate(doc.spans):
            yield Span(doc.id, doc.fingerprint, index, text, cache_key(model_sha256, text))


def length_group(span: Span) -> tuple[int, int]:
    """(log2 of the span's size, a hash shard): spans of one group have lengths within a factor of two."""
    return span_size(span).bit_length(), int(span.key[:8], 16) % LENGTH_SHARDS


class LengthGroups(beam.PTransform):
    """Spans regrouped so that each bundle RunInference batches from holds spans of similar length, shortest
    first: a batch pads to its longest span, so mixed lengths would waste most of the compute."""

    def expand(self, spans):
        return (spans
                | "KeyByLength" >> beam.Map(lambda s: (length_group(s), s))
                | "GroupByLength" >> beam.GroupByKey()
                | "SortByLength" >> beam.FlatMap(lambda group: sorted(group[1], key=lambda s: (span_size(s), s.key))))


def dead_letter_record(failed: tuple[Span, str]) -> dict:
    span, error = failed
    return {"doc_id": span.doc_id, "span_index": span.index, "text": span.text, "error": error}


class ConvertSpans(beam.PTransform):
    """Spans in; (span, unit ids or None) out, plus DEAD_LETTER records and COUNTS."""

    def __init__(self, handler: ModelHandler, cache_files: list[str], cache_dir: str | None):
        super().__init__()
        self._convert = CachedInference(handler, cache_files, cache_dir, SPAN_COUNTERS, regroup=LengthGroups())

    def expand(self, spans):
        converted = spans | "CachedTextToToken" >> self._convert
        letters = converted[DEAD_LETTER] | "DeadLetterRecords" >> beam.Map(dead_letter_record)
        return {"units": converted["outputs"], DEAD_LETTER: letters, COUNTS: converted[COUNTS]}
