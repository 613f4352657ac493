"""Exact deduplication on normalised text: one deterministic survivor among identical documents."""
from __future__ import annotations

import hashlib
import unicodedata

import apache_beam as beam

from transforms.counting import COUNTS, count


def normalise(text: str) -> str:
    """Unicode NFC with runs of whitespace folded to one space, so layout-only variants count as copies."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def fingerprint(text: str) -> bytes:
    return hashlib.blake2b(normalise(text).encode("utf-8", "surrogatepass"), digest_size=16).digest()


class KeepOneFn(beam.DoFn):
    """Of the documents sharing a fingerprint keep the one with the smallest (id, source, line)."""

    def process(self, element):
        _, docs = element
        docs = list(docs)
        yield min(docs, key=lambda d: (d.id, d.source, d.line))
        if len(docs) > 1:
            yield count("duplicates", len(docs) - 1)


class ExactDedup(beam.PTransform):
    """Elements with a `fingerprint` field in, one survivor each out; only these small records are shuffled."""

    def expand(self, docs):
        return (docs
                | "KeyByFingerprint" >> beam.Map(lambda d: (d.fingerprint, d))
                | "GroupByFingerprint" >> beam.GroupByKey()
                | "KeepOne" >> beam.ParDo(KeepOneFn()).with_outputs(COUNTS, main="kept"))
