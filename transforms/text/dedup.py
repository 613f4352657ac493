"""Exact deduplication on normalised text: one deterministic survivor among identical documents.

Documents travel in packed batches (transforms/columns.py): each batch is split by fingerprint into partitions,
which go through spill files (transforms/io/spill.py: only references are shuffled); a partition's parts are read
back on one worker, and copies can only meet there. So the runner's shuffle holds a few references per batch, not
a record per document, and a worker holds one partition at a time. The partition count changes how work is spread,
never which document survives.
"""

from __future__ import annotations

import bisect
import hashlib
import unicodedata
from collections import Counter

import apache_beam as beam
import numpy as np

from vocaloom.schemas.counts import DUPLICATES
from vocaloom.transforms.columns import column, concat, row_count, take_packed
from vocaloom.transforms.counting import COUNTS, count
from vocaloom.transforms.gc_tuning import tune_gc
from vocaloom.transforms.io.spill import SpilledGroupByKey

# Input bytes (as stored, compressed or not) per partition: a worker holds one partition's documents at a time, so
# the partition's size, not the corpus's, sets dedup's memory (about 16,000 short documents, fewer long ones).
PARTITION_INPUT_BYTES, MIN_PARTITIONS, MAX_PARTITIONS = 4 << 20, 16, 1 << 16


# What str.split() splits ASCII text on, besides a single space; and a run of spaces.
_ASCII_FOLDS = ("\n", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "  ")


def _folded_ascii(text: str) -> bool:
    """True when ASCII `text` has no whitespace to fold (most documents: faster than split and join)."""
    if text[:1] == " " or text[-1:] == " ":
        return False
    return all(fold not in text for fold in _ASCII_FOLDS)


def canonical_text(text: str) -> str:
    """Unicode NFC with runs of whitespace folded to one space, so layout-only variants count as copies."""
    if text.isascii():  # ASCII is NFC already
        return text if _folded_ascii(text) else " ".join(text.split())
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


FINGERPRINT_BYTES = 16


def fingerprint(text: str) -> bytes:
    data = canonical_text(text).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=FINGERPRINT_BYTES).digest()


def partition_keys(fingerprints: list[bytes], partitions: int) -> np.ndarray:
    """Each fingerprint's partition: its first 8 bytes as a little-endian integer, modulo the partition count."""
    joined = b"".join(fingerprints)
    if len(joined) != FINGERPRINT_BYTES * len(fingerprints):
        raise ValueError(f"fingerprints must be {FINGERPRINT_BYTES} bytes each")
    return np.frombuffer(joined, dtype="<u8")[:: FINGERPRINT_BYTES // 8] % partitions


def partition_count(input_bytes: int) -> int:
    """A power of two sized from the corpus so that a partition holds about PARTITION_INPUT_BYTES of it."""
    partitions = MIN_PARTITIONS
    while partitions * PARTITION_INPUT_BYTES < input_bytes and partitions < MAX_PARTITIONS:
        partitions *= 2
    return partitions


class SplitByPartitionFn(beam.DoFn):
    """A packed batch of documents in; (partition, packed part of the batch) out. Only the fingerprints are
    decoded: the parts are taken from the packed columns, and no record is built."""

    def __init__(self, record_type, partitions: int):
        self._fingerprint = record_type._fields.index("fingerprint")
        self._partitions = partitions

    def process(self, batch: tuple):
        keys = partition_keys(column(batch, self._fingerprint), self._partitions)
        order, sizes = np.argsort(keys, kind="stable").tolist(), np.bincount(keys, minlength=self._partitions)
        start = 0
        for partition in np.flatnonzero(sizes).tolist():
            end = start + int(sizes[partition])
            yield partition, take_packed(batch, order[start:end])
            start = end


def survivors(fingerprints: list[bytes], ids: list, sources: list, lines: list) -> list[int]:
    """The rows to keep, in order: of the rows sharing a fingerprint, the one with the smallest (id, source, line)."""
    copied = {fp for fp, n in Counter(fingerprints).items() if n > 1}
    if not copied:
        return list(range(len(fingerprints)))
    kept = [row for row, fp in enumerate(fingerprints) if fp not in copied]
    best: dict[bytes, int] = {}
    for row in [row for row, fp in enumerate(fingerprints) if fp in copied]:  # only the copies are compared
        other = best.setdefault(fingerprints[row], row)
        if (ids[row], sources[row], lines[row]) < (ids[other], sources[other], lines[other]):
            best[fingerprints[row]] = row
    return sorted(kept + list(best.values()))


class KeepOneFn(beam.DoFn):
    """A partition's parts in; each part's survivors out, packed. Only the columns that choose survivors are
    decoded: a part that keeps every row goes on as it came, another is taken from its packed columns."""

    def __init__(self, record_type):
        fields = record_type._fields
        self._fields = [fields.index(name) for name in ("fingerprint", "id", "source", "line")]

    def setup(self):
        tune_gc()

    def process(self, element):
        _, parts = element
        keep = survivors(*concat([[column(part, i) for i in self._fields] for part in parts]))
        start = 0
        for part in parts:
            end = start + row_count(part)
            first, last = bisect.bisect_left(keep, start), bisect.bisect_left(keep, end)
            if last - first == end - start:
                yield part
            elif last > first:
                yield take_packed(part, [row - start for row in keep[first:last]])
            start = end
        if len(keep) < start:
            yield count(DUPLICATES, start - len(keep))


class ExactDedup(beam.PTransform):
    """Packed batches of `record_type` records, which have `fingerprint`, `id`, `source` and `line` fields, in;
    packed batches of survivors out. The records go through spill files in `spill_dir`; only references to them
    are shuffled."""

    def __init__(self, record_type, spill_dir: str, partitions: int = MIN_PARTITIONS):
        super().__init__()
        self._record_type, self._spill_dir, self._partitions = record_type, spill_dir, partitions

    def expand(self, batches):
        return (
            batches
            | "SplitByFingerprint" >> beam.ParDo(SplitByPartitionFn(self._record_type, self._partitions))
            | "GroupByPartition" >> SpilledGroupByKey(self._spill_dir)
            | "KeepOne" >> beam.ParDo(KeepOneFn(self._record_type)).with_outputs(COUNTS, main="kept")
        )
