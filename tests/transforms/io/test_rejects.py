"""WriteRecordFiles (transforms/io/rejects.py): records spread over hash slots, each file's lines sorted, so the
files' bytes do not depend on the runner."""

import zlib

import apache_beam as beam
import orjson
import zstandard
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import RUNNER
from vocaloom.transforms.io.rejects import RECORD_SLOTS, WriteRecordFiles


def test_each_record_in_its_slots_file_in_sorted_order(tmp_path):
    records = [{"source": "in.jsonl", "line": i, "reason": "malformed_json", "raw": "{" * i} for i in range(40)]
    lines = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records]
    slots: dict[int, list[bytes]] = {}
    for line in lines:
        slots.setdefault(zlib.crc32(line) % RECORD_SLOTS, []).append(line)
    with TestPipeline(argv=RUNNER) as p:
        files = p | beam.Create(records[::-1]) | WriteRecordFiles(str(tmp_path), "rejects")
        assert_that(
            files | beam.Map(lambda f: (f.kind, f.slot, f.records)),
            equal_to([("rejects", slot, len(held)) for slot, held in slots.items()]),
        )
    for slot, held in slots.items():
        data = (tmp_path / f"rejects-slot-{slot:05d}.jsonl.zst").read_bytes()
        assert zstandard.ZstdDecompressor().decompress(data) == b"".join(line + b"\n" for line in sorted(held))
