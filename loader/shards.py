"""A dataset's shards read into memory, checked and read as numpy views: from local disk, or from the local cache of a
dataset in a bucket (loader/remote.py). Not memory-mapped: a mapped file that another process truncates kills the
reader with SIGBUS when it touches a page past the new end; a copy in memory can only be found short, as it is read."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyarrow as pa

from vocaloom.loader.remote import IntegrityProblem, RemoteDataset
from vocaloom.schemas.manifest import BucketEntry, ShardEntry
from vocaloom.schemas.shard import RowLimits, ShardProblem, checked_table, local_file_problem


class ShardIntegrityError(RuntimeError):
    """A shard whose bytes or layout differ from what the manifest says."""


_verified: set[tuple[str, str]] = set()  # (path, sha256) hashed in this process: each shard is hashed once


class Shard:
    """One shard, in this process's own memory: in-place writes to handed-out tensors never reach the file."""

    def __init__(self, directory: Path, length: int, entry: ShardEntry, verify: bool, limits: RowLimits):
        path = str(directory / entry["path"])
        problem = local_file_problem(str(directory), entry["path"], entry["bytes"])
        if problem:
            raise ShardIntegrityError(f"shard {path}: {problem}")
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size != entry["bytes"]:  # replaced since it was looked at
                raise ShardIntegrityError(f"shard {path}: changed while it was opened")
            data = bytearray(entry["bytes"])
            if f.readinto(data) != entry["bytes"]:  # truncated while it was read
                raise ShardIntegrityError(f"shard {path}: changed while it was read")
        hashed = verify and (path, entry["sha256"]) not in _verified
        digest = hashlib.sha256(data).hexdigest() if hashed else None
        file_buffer = pa.py_buffer(data)
        try:
            table = checked_table(file_buffer, length, entry, limits, digest)
        except ShardProblem as e:
            raise ShardIntegrityError(f"shard {path}: {e}") from None
        if hashed:
            _verified.add((path, entry["sha256"]))
        # The writer writes one record batch a shard; more would have to be joined (a copy).
        batch = table.to_batches()[0] if table.column(0).num_chunks == 1 else table.combine_chunks().to_batches()[0]
        self.rows = batch.num_rows
        self.input_ids = _int32_view(batch.column("input_ids").flatten(), data, file_buffer).reshape(-1, length + 1)
        doc_starts = batch.column("doc_starts")
        self._doc_offsets = _int32_view(doc_starts.offsets, data, file_buffer)
        self._doc_starts = _int32_view(doc_starts.values, data, file_buffer)

    def rows_between(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views of input_ids [stop - start, L + 1], of the rows' doc_starts run together, and of the doc_starts
        offsets of rows start..stop (stop - start + 1 of them, counted from the shard's first doc_start)."""
        offsets = self._doc_offsets[start : stop + 1]
        return self.input_ids[start:stop], self._doc_starts[offsets[0] : offsets[-1]], offsets


def _int32_view(values: pa.Array, data: bytearray, file_buffer: pa.Buffer) -> np.ndarray:
    """A writable view into the shard's bytes when the values lie in them (uncompressed), else Arrow's read-only
    one."""
    start = values.buffers()[1].address + values.offset * 4 - file_buffer.address
    if start >= 0 and start + len(values) * 4 <= len(data):
        return np.frombuffer(data, dtype=np.int32, count=len(values), offset=start)
    return values.to_numpy()


class ShardCache:
    """The most recently used shards, open; an evicted shard is freed once no tensor refers to it. `source`: the
    dataset's folder, or the RemoteDataset that fetches its shards."""

    def __init__(self, source: Path | RemoteDataset, capacity: int, verify: bool, limits: RowLimits):
        self._source, self._capacity, self._verify, self._limits = source, capacity, verify, limits
        self._open: OrderedDict[str, Shard] = OrderedDict()

    def get(self, length: int, entry: ShardEntry) -> Shard:
        path = entry["path"]
        shard = self._open.pop(path, None)
        if shard is None:
            folder, located = self._located(entry)
            shard = Shard(folder, length, located, self._verify, self._limits)
        self._open[path] = shard
        if len(self._open) > self._capacity:
            self._open.popitem(last=False)
        return shard

    def _located(self, entry: ShardEntry) -> tuple[Path, ShardEntry]:
        """(folder, entry) of the shard's local file: the dataset's own, or the checked copy in the cache."""
        if isinstance(self._source, Path):
            return self._source, entry
        try:
            local = self._source.local(entry)
        except IntegrityProblem as e:
            raise ShardIntegrityError(f"shard {self._source.url}/{entry['path']}: {e}") from None
        return local.parent, {**entry, "path": local.name}

    def prefetch(self, entries: list[ShardEntry]) -> None:
        if not isinstance(self._source, Path):
            self._source.prefetch([entry for entry in entries if entry["path"] not in self._open])

    def __getstate__(self):  # a mapping does not cross processes: each DataLoader worker opens its own
        return dict(self.__dict__, _open=OrderedDict())


class BucketRows:
    """One bucket's rows over its shards, numbered 0..rows-1 in the manifest's shard order."""

    def __init__(self, bucket: BucketEntry, cache: ShardCache):
        self.length = bucket["length"]
        self.shards = bucket["shards"]
        self._first_rows = list(itertools.accumulate((entry["rows"] for entry in self.shards), initial=0))
        self.rows = self._first_rows[-1]
        self._cache = cache

    def _pieces(self, runs: list[tuple[int, int]]):
        """(shard index, first row in it, rows) of each shard's part of these runs of (first row, rows)."""
        for row, count in runs:
            while count:
                index = bisect.bisect_right(self._first_rows, row) - 1
                taken = min(count, self._first_rows[index + 1] - row)
                yield index, row - self._first_rows[index], taken
                row, count = row + taken, count - taken

    def prefetch(self, runs: list[tuple[int, int]]) -> None:
        self._cache.prefetch([self.shards[index] for index, _, _ in self._pieces(runs)])

    def take(self, runs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows of these runs of (first row, rows), in order: input_ids, doc_starts and CSR doc offsets.

        input_ids is a view into one shard when the rows lie in one; rows spread over shards are joined (a copy).
        """
        pieces = []
        for index, start, count in self._pieces(runs):
            shard = self._cache.get(self.length, self.shards[index])
            pieces.append(shard.rows_between(start, start + count))
        if len(pieces) == 1:
            input_ids, doc_starts, offsets = pieces[0]
            return input_ids, doc_starts, offsets - offsets[0]
        doc_offsets, before = [np.zeros(1, dtype=np.int32)], 0
        for _, doc_starts, offsets in pieces:
            doc_offsets.append(offsets[1:] - offsets[0] + before)
            before += len(doc_starts)
        return (
            np.concatenate([p[0] for p in pieces]),
            np.concatenate([p[1] for p in pieces]),
            np.concatenate(doc_offsets),
        )
