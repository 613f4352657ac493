"""Exact deduplication on normalised text: one deterministic survivor among identical documents.

Documents travel in packed batches (transforms/columns.py): each batch is split by fingerprint into partitions, a partition's pieces are grouped
on one worker, and copies can only meet there. The partition count changes how work is spread, never which
document survives.
"""
from __future__ import annotations

import hashlib
import unicodedata
from collections import defaultdict

import apache_beam as beam

from transforms.columns import pack, unpack
from transforms.counting import COUNTS, count

# Documents per partition at most about this many (bounded memory on a worker), and at least this many partitions.
DOCS_PER_PARTITION, MIN_PARTITIONS = 4_000_000, 16


def normalise(text: str) -> str:
    """Unicode NFC with runs of whitespace folded to one space, so layout-only variants count as copies."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def fingerprint(text: str) -> bytes:
    return hashlib.blake2b(normalise(text).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def partition_count(input_bytes: int) -> int:
    """A power of two sized from the corpus (assuming documents of 1 kB or more) so no group outgrows a worker."""
    partitions = MIN_PARTITIONS
    while partitions * DOCS_PER_PARTITION * 1000 < input_bytes and partitions < 1 << 20:
        partitions *= 2
    return partitions


def split_by_partition(batch: tuple, record_type, partitions: int):
    """A packed batch of documents to (partition, packed documents) pairs."""
    parts = defaultdict(list)
    for doc in unpack(record_type, batch):
        parts[int.from_bytes(doc.fingerprint[:8], "little") % partitions].append(doc)
    return [(partition, pack(part)) for partition, part in parts.items()]


class KeepOneFn(beam.DoFn):
    """Of the documents sharing a fingerprint keep the one with the smallest (id, source, line)."""

    def __init__(self, record_type):
        self._record_type = record_type

    def process(self, element):
        _, batches = element
        survivors: dict[bytes, object] = {}
        copies = 0
        for batch in batches:
            for doc in unpack(self._record_type, batch):
                kept = survivors.get(doc.fingerprint)
                if kept is None:
                    survivors[doc.fingerprint] = doc
                    continue
                copies += 1
                if (doc.id, doc.source, doc.line) < (kept.id, kept.source, kept.line):
                    survivors[doc.fingerprint] = doc
        yield pack(list(survivors.values()))
        if copies:
            yield count("duplicates", copies)


class ExactDedup(beam.PTransform):
    """Packed batches of `record_type` records, which have `fingerprint`, `id`, `source` and `line` fields, in;
    packed batches of survivors out. Only these small records, never text or tokens, are shuffled."""

    def __init__(self, record_type, partitions: int = MIN_PARTITIONS):
        super().__init__()
        self._record_type, self._partitions = record_type, partitions

    def expand(self, batches):
        return (batches
                | "SplitByFingerprint" >> beam.FlatMap(split_by_partition, self._record_type, self._partitions)
                | "GroupByPartition" >> beam.GroupByKey()
                | "KeepOne" >> beam.ParDo(KeepOneFn(self._record_type)).with_outputs(COUNTS, main="kept"))
