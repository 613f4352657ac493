"""Exact deduplication on normalised text: one deterministic survivor among identical documents.

Documents travel in packed batches (transforms/columns.py): each batch is split by fingerprint into partitions,
written to one spill file, and only (partition, file range) references are shuffled; a partition's pieces are read
back on one worker, and copies can only meet there. So the runner's shuffle holds a few references per batch, not
a record per document, and a worker holds one partition at a time. The partition count changes how work is spread,
never which document survives.
"""
from __future__ import annotations

import hashlib
import unicodedata
import uuid
from collections import defaultdict

import apache_beam as beam
from apache_beam.coders import FastPrimitivesCoder
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.columns import pack, unpack
from transforms.counting import COUNTS, count
from transforms.gc_tuning import tune_gc

# Documents per partition at most about this many (bounded memory on a worker), and at least this many partitions.
DOCS_PER_PARTITION, MIN_PARTITIONS = 4_000_000, 16


# What str.split() splits ASCII text on, besides a single space; and a run of spaces.
_ASCII_FOLDS = ("\n", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "  ")


def _folded_ascii(text: str) -> bool:
    """True when ASCII `text` has no whitespace to fold (most documents: this is 2x faster than split and join)."""
    if text[:1] == " " or text[-1:] == " ":
        return False
    for fold in _ASCII_FOLDS:  # a plain loop: any() over a generator costs more than the searches
        if fold in text:
            return False
    return True


def normalise(text: str) -> str:
    """Unicode NFC with runs of whitespace folded to one space, so layout-only variants count as copies."""
    if text.isascii():  # ASCII is NFC already
        return text if _folded_ascii(text) else " ".join(text.split())
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


# Packed columns are tuples and lists of primitives: Beam's own coder writes and reads them without pickle.
_COLUMNS = FastPrimitivesCoder()


class SplitByPartitionFn(beam.DoFn):
    """A packed batch of documents in; each partition's part written to one spill file, (partition, (path, offset,
    size)) out."""

    def __init__(self, record_type, partitions: int, spill_dir: str):
        self._record_type, self._partitions, self._spill_dir = record_type, partitions, spill_dir

    def process(self, batch: tuple):
        parts = defaultdict(list)
        for doc in unpack(self._record_type, batch):
            parts[int.from_bytes(doc.fingerprint[:8], "little") % self._partitions].append(doc)
        # A unique name: a retried bundle never overwrites the file another attempt's references point into.
        path, offset, blobs = FileSystems.join(self._spill_dir, uuid.uuid4().hex + ".dedup"), 0, []
        for partition, part in sorted(parts.items()):
            blob = _COLUMNS.encode(pack(part))
            blobs.append(blob)
            yield partition, (path, offset, len(blob))
            offset += len(blob)
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(b"".join(blobs))


def read_parts(ranges) -> list[tuple]:
    """The packed parts at (path, offset, size) ranges, each file opened once and read in order."""
    by_file = defaultdict(list)
    for path, offset, size in ranges:
        by_file[path].append((offset, size))
    parts = []
    for path in sorted(by_file):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            for offset, size in sorted(by_file[path]):
                f.seek(offset)
                parts.append(_COLUMNS.decode(f.read(size)))
    return parts


class KeepOneFn(beam.DoFn):
    """Of the documents sharing a fingerprint keep the one with the smallest (id, source, line)."""

    def __init__(self, record_type):
        self._record_type = record_type

    def setup(self):
        tune_gc()

    def process(self, element):
        _, ranges = element
        survivors: dict[bytes, object] = {}
        copies = 0
        for batch in read_parts(ranges):
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
    packed batches of survivors out. The records go through spill files in `spill_dir`; only references to them
    are shuffled."""

    def __init__(self, record_type, spill_dir: str, partitions: int = MIN_PARTITIONS):
        super().__init__()
        self._split = SplitByPartitionFn(record_type, partitions, spill_dir)
        self._record_type = record_type

    def expand(self, batches):
        return (batches
                | "SplitByFingerprint" >> beam.ParDo(self._split)
                | "GroupByPartition" >> beam.GroupByKey()
                | "KeepOne" >> beam.ParDo(KeepOneFn(self._record_type)).with_outputs(COUNTS, main="kept"))
