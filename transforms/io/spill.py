"""Spill files: documents' tokens, and batches on their way through a shuffle, are written once next to the output
and read back where they are needed.

Only small references travel through Beam's shuffles, so a build's memory does not grow with the corpus: the
in-process runner holds a shuffle's values in memory, and Dataflow bills shuffled bytes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

import apache_beam as beam
import numpy as np
from apache_beam.coders import FastPrimitivesCoder
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

TOKEN = np.dtype("<i4")


def write_spill(directory: str, tokens: np.ndarray) -> str:
    """Writes the tokens to a new file (a unique name: a retried bundle never overwrites another's); returns it."""
    path = FileSystems.join(directory, uuid.uuid4().hex + ".i32")
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(tokens.astype(TOKEN, copy=False).tobytes())
    return path


# read_spans reads spans closer together than this in one read (on a bucket each read is a request), and no more
# than READ_LIMIT bytes at once: what a read keeps in memory until its spans' arrays are let go.
READ_GAP, READ_LIMIT = 1 << 16, 1 << 24


def _reads(spans: list[tuple[int, int]]):
    """(begin, end, span indices) in bytes: the reads that cover the spans, in file order, near spans together."""
    order = sorted(range(len(spans)), key=lambda i: spans[i][0])
    group: list[int] = []
    begin = end = 0
    for i in order:
        start, stop = spans[i][0] * TOKEN.itemsize, sum(spans[i]) * TOKEN.itemsize
        if group and (start > end + READ_GAP or max(end, stop) - begin > READ_LIMIT):
            yield begin, end, group
            group = []
        if not group:
            begin = end = start
        group.append(i)
        end = max(end, stop)
    if group:
        yield begin, end, group


def read_spans(path: str, spans: list[tuple[int, int]]) -> list[np.ndarray]:
    """The tokens at (offset, count) spans of one spill file, read in file order: near spans in one read."""
    out: list[np.ndarray] = [np.empty(0, TOKEN)] * len(spans)
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        for begin, end, group in _reads(spans):
            f.seek(begin)
            data = f.read(end - begin)
            for i in group:
                offset, n = spans[i]
                at = offset * TOKEN.itemsize - begin
                if at + n * TOKEN.itemsize > len(data):
                    raise OSError(f"spill file {path} is short: wanted {n} tokens at {offset}")
                out[i] = np.frombuffer(data, dtype=TOKEN, count=n, offset=at)
    return out


# Packed batches are tuples and lists of primitives: Beam's own coder writes and reads them without pickle.
_BATCHES = FastPrimitivesCoder()


class SpillBatchFn(beam.DoFn):
    """A packed batch in; the batch appended to this bundle's spill file, its (path, offset, size) reference out.

    Each bundle writes its own file under a unique name, so a retried bundle never touches what another attempt's
    references point into; a reference is read only in a later stage (after a shuffle or a side input), when the
    file is closed."""

    def __init__(self, spill_dir: str):
        self._spill_dir = spill_dir

    def start_bundle(self):
        self._file, self._path, self._offset = None, "", 0

    def process(self, batch: tuple):
        yield self._spill(batch)

    def finish_bundle(self):
        if self._file is not None:
            self._file.close()

    def _spill(self, batch: tuple) -> tuple[str, int, int]:
        if self._file is None:
            self._path = FileSystems.join(self._spill_dir, uuid.uuid4().hex + ".batches")
            self._file = FileSystems.create(self._path, compression_type=CompressionTypes.UNCOMPRESSED)
        blob = _BATCHES.encode(batch)
        self._file.write(blob)
        self._offset += len(blob)
        return self._path, self._offset - len(blob), len(blob)


class SpillKeyedBatchFn(SpillBatchFn):
    """(key, packed batch) in, (key, reference) out."""

    def process(self, element):
        key, batch = element
        yield key, self._spill(batch)


def read_batches(ranges) -> list[tuple]:
    """The packed batches at (path, offset, size) ranges, each file opened once and read in order."""
    by_file = defaultdict(list)
    for path, offset, size in ranges:
        by_file[path].append((offset, size))
    batches = []
    for path in sorted(by_file):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            for offset, size in sorted(by_file[path]):
                f.seek(offset)
                batches.append(_BATCHES.decode(f.read(size)))
    return batches


class SpilledGroupByKey(beam.PTransform):
    """GroupByKey for packed batches that moves the batches through spill files: (key, packed batch) in,
    (key, [packed batch, ...]) out, in no particular order."""

    def __init__(self, spill_dir: str):
        super().__init__()
        self._spill_dir = spill_dir

    def expand(self, keyed_batches):
        return (
            keyed_batches
            | "Spill" >> beam.ParDo(SpillKeyedBatchFn(self._spill_dir))
            | "GroupReferences" >> beam.GroupByKey()
            | "ReadBack" >> beam.MapTuple(lambda key, ranges: (key, read_batches(ranges)))
        )
