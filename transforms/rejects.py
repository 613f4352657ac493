"""rejects/: every input record that could not be used, with where it came from, why, and its raw bytes."""
from __future__ import annotations

import zlib
from typing import NamedTuple

import apache_beam as beam
import orjson
import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

# Rejects are spread over this many files at most, so no one worker holds them all.
REJECT_SLOTS = 8


class RejectFile(NamedTuple):
    index: int
    temp_path: str
    records: int


class WriteRejectFileFn(beam.DoFn):
    def __init__(self, temp_dir: str):
        self._temp_dir = temp_dir

    def process(self, element):
        slot, rejects = element
        rejects = sorted(rejects, key=lambda r: (r.source, r.line, r.reason))
        lines = b"".join(orjson.dumps(r.to_json()) + b"\n" for r in rejects)
        path = FileSystems.join(self._temp_dir, f"rejects-slot-{slot:05d}.jsonl.zst")
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(zstandard.ZstdCompressor(level=3).compress(lines))
        yield RejectFile(slot, path, len(rejects))


class WriteRejects(beam.PTransform):
    def __init__(self, temp_dir: str):
        super().__init__()
        self._temp_dir = temp_dir

    def expand(self, rejects):
        return (rejects
                | "SlotOfReject" >> beam.Map(
                    lambda r: (zlib.crc32(f"{r.source}\0{r.line}".encode()) % REJECT_SLOTS, r))
                | "GroupBySlot" >> beam.GroupByKey()
                | "WriteRejectFile" >> beam.ParDo(WriteRejectFileFn(self._temp_dir)))


def reject_path(index: int) -> str:
    return f"rejects/rejects-{index:05d}.jsonl.zst"

