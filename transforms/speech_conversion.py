"""Spans to speech units: served from the conversion cache when it has them, else converted by the text-to-token
model through RunInference, each distinct text once. A batch the model fails on goes to the dead letter output
with its span ids; those spans stay text and the build goes on.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, RunInference

from transforms.conversion_cache import ReadCacheFileFn, WriteCacheFileFn
from transforms.counting import COUNTS, count
from transforms.text_to_token import Span, span_size

PENDING, DEAD_LETTER = "pending", "dead_letter"
# Groups per length class: enough to spread one class over many workers.
LENGTH_SHARDS = 64


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


class ServeFromCacheFn(beam.DoFn):
    """Per cache key: every waiting span gets the cached units, or one span goes to the model and the rest wait."""

    def process(self, element):
        _, grouped = element
        spans, cached = list(grouped["spans"]), list(grouped["cached"])
        if not spans:
            return
        if cached:
            for span in spans:
                yield span, cached[0]
            yield count("spans_cached", len(spans))
            return
        yield beam.pvalue.TaggedOutput(PENDING, spans)


class FanOutFn(beam.DoFn):
    """A converted text's units to each span that waited for it; when its batch failed, None (the span stays text)
    and a DEAD_LETTER record naming the span and the error."""

    def process(self, element):
        _, grouped = element
        units, errors = list(grouped["units"]), list(grouped["errors"])
        spans = [span for waiting in grouped["pending"] for span in waiting]
        for span in spans:
            yield span, (units[0] if units else None)
            if not units:
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, {
                    "doc_id": span.doc_id, "span_index": span.index, "text": span.text, "error": errors[0]})
        yield count("spans_converted" if units else "spans_failed", len(spans))


def failed_texts(failed):
    """RunInference's (failed batch, exception) to (cache key, error) for each text of the batch."""
    batch, (exc_type, message, _) = failed
    for span in batch:
        yield span.key, f"{exc_type.__name__}: {message}"


class ConvertSpans(beam.PTransform):
    """Spans in; (span, unit ids or None) out, plus DEAD_LETTER records and COUNTS."""

    def __init__(self, handler: ModelHandler, cache_files: list[str], cache_dir: str | None):
        super().__init__()
        self._handler, self._cache_files, self._cache_dir = handler, cache_files, cache_dir

    def expand(self, spans):
        p = spans.pipeline
        cached = (p | "CacheFiles" >> beam.Create(self._cache_files)
                  | "ReadCache" >> beam.ParDo(ReadCacheFileFn()))
        served = ({"spans": spans | "KeyByText" >> beam.Map(lambda s: (s.key, s)), "cached": cached}
                  | "JoinCache" >> beam.CoGroupByKey()
                  | "ServeFromCache" >> beam.ParDo(ServeFromCacheFn()).with_outputs(PENDING, COUNTS, main="hits"))
        requests = (served[PENDING] | "OnePerText" >> beam.Map(lambda waiting: waiting[0])
                    | "SimilarLengths" >> LengthGroups())
        converted, failed = (requests | "TextToToken" >> RunInference(self._handler).with_exception_handling())
        units = converted | "UnitsByText" >> beam.Map(lambda r: (r.example.key, r.inference))
        errors = failed.failed_inferences | "FailedTexts" >> beam.FlatMap(failed_texts)
        fanned = ({"pending": served[PENDING] | "PendingByText" >> beam.Map(lambda w: (w[0].key, w)),
                   "units": units, "errors": errors}
                  | "JoinConverted" >> beam.CoGroupByKey()
                  | "FanOut" >> beam.ParDo(FanOutFn()).with_outputs(COUNTS, DEAD_LETTER, main="units"))
        if self._cache_dir:
            _ = (units
                 | "BatchNewEntries" >> beam.BatchElements(min_batch_size=1, max_batch_size=50_000)
                 | "WriteCache" >> beam.ParDo(WriteCacheFileFn(self._cache_dir)))
        units_out = (served.hits, fanned.units) | "AllUnits" >> beam.Flatten()
        counts = (served[COUNTS], fanned[COUNTS]) | "ConversionCounts" >> beam.Flatten()
        return {"units": units_out, DEAD_LETTER: fanned[DEAD_LETTER], COUNTS: counts}
