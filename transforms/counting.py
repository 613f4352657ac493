"""Counts that the manifest's accounting is built from, mirrored as Beam metrics for people watching a job.

Every DoFn reports what it read, kept, rejected or dropped as ("key", n) pairs on the COUNTS output; the keys are
"records_read", "rejected/<reason>", "filtered/<reason>", "duplicates", "documents_kept", "text_tokens",
"speech_tokens", "tokens_dropped" and "span_words/<words>" (spoken spans by length).
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

COUNTS = "counts"
NAMESPACE = "vocaloom"


def count(key: str, n: int = 1) -> beam.pvalue.TaggedOutput:
    Metrics.counter(NAMESPACE, key).inc(n)
    return beam.pvalue.TaggedOutput(COUNTS, (key, n))


class SumCounts(beam.PTransform):
    """Flattens the count outputs of every step into one total a key."""

    def expand(self, count_pcolls):
        return count_pcolls | "Flatten" >> beam.Flatten() | "Sum" >> beam.CombinePerKey(sum)


def nested_counts(totals: dict[str, int]) -> dict:
    """("rejected/x", n) pairs to the manifest's `counts` object, every SPEC key present."""
    counts = {"records_read": 0, "rejected": {}, "filtered": {}, "duplicates": 0, "documents_kept": 0,
              "text_tokens": 0, "speech_tokens": 0, "tokens_written": 0, "tokens_dropped": 0}
    for key, n in sorted(totals.items()):
        group, _, reason = key.partition("/")
        if reason:
            counts.setdefault(group, {})[reason] = n
        else:
            counts[key] = n
    return counts
