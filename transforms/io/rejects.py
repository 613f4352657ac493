"""Record files a person reads when something was not used: `rejects/` (input records that could not be used,
with source, line, reason and raw bytes) and `dead_letter/` (speech spans whose conversion failed)."""

from __future__ import annotations

import zlib
from typing import NamedTuple

import apache_beam as beam
import orjson
import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from vocaloom.schemas.shard import DEAD_LETTER_DIR, REJECTS_DIR

# Records of one kind are spread over this many files at most, so no one worker holds them all.
RECORD_SLOTS = 8
# Each kind's files, in the dataset folder of the same name.
KINDS = {
    REJECTS_DIR: f"{REJECTS_DIR}/rejects-{{:05d}}.jsonl.zst",
    DEAD_LETTER_DIR: f"{DEAD_LETTER_DIR}/dead-letter-{{:05d}}.jsonl.zst",
}


class RecordFile(NamedTuple):
    kind: str
    slot: int
    temp_path: str
    records: int


def record_path(kind: str, index: int) -> str:
    return KINDS[kind].format(index)


class WriteRecordFileFn(beam.DoFn):
    def __init__(self, temp_dir: str, kind: str):
        self._temp_dir, self._kind = temp_dir, kind

    def process(self, element):
        slot, lines = element
        lines = sorted(lines)
        path = FileSystems.join(self._temp_dir, f"{self._kind}-slot-{slot:05d}.jsonl.zst")
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(zstandard.ZstdCompressor(level=3).compress(b"".join(line + b"\n" for line in lines)))
        yield RecordFile(self._kind, slot, path, len(lines))


class WriteRecordFiles(beam.PTransform):
    """JSON-able dicts in, RecordFiles of `kind` (under temporary names) out; the content is in a fixed order."""

    def __init__(self, temp_dir: str, kind: str):
        super().__init__()
        self._temp_dir, self._kind = temp_dir, kind

    def expand(self, records):
        return (
            records
            | "ToJson" >> beam.Map(lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS))
            | "SlotOfRecord" >> beam.Map(lambda line: (zlib.crc32(line) % RECORD_SLOTS, line))
            | "GroupBySlot" >> beam.GroupByKey()
            | "WriteRecordFile" >> beam.ParDo(WriteRecordFileFn(self._temp_dir, self._kind))
        )
