import json

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import RUNNER
from vocaloom.schemas.vocab import Vocabulary
from vocaloom.transforms.columns import pack
from vocaloom.transforms.io.shard_writer import WriteShards, shard_table
from vocaloom.transforms.io.spill import read_spans, write_spill
from vocaloom.transforms.text.dataset_decomposition import RowRef

VOCAB = Vocabulary.build(100, text_eos=None, speech_size=16).to_json()


def test_spill_round_trip(tmp_path):
    path = write_spill(str(tmp_path), np.array([0, 1, 2, 3, 4, 100, 101, 102], dtype=np.int32))
    got = read_spans(path, [(5, 3), (1, 2)])
    assert [a.tolist() for a in got] == [[100, 101, 102], [1, 2]]


def test_shard_table_reads_pieces_in_order(tmp_path):
    path = write_spill(str(tmp_path), np.arange(20, dtype=np.int32))
    rows = [RowRef(4, 1, (("x", path, 10, 5),)), RowRef(4, 2, (("y", path, 0, 2), ("z", path, 2, 3)))]
    table = shard_table(4, rows)
    assert table.column("input_ids").to_pylist() == [[10, 11, 12, 13, 14], [0, 1, 2, 3, 4]]
    assert table.column("doc_starts").to_pylist() == [[0], [0, 2]]
    assert table.column("doc_ids").to_pylist() == [["x"], ["y", "z"]]


def test_shards_are_sized_and_hash_ordered(tmp_path):
    path = write_spill(str(tmp_path), np.arange(90, dtype=np.int32))
    rows = [
        RowRef(8, order, ((f"d{order}", path, 9 * i, 9),)) for i, order in enumerate([7, 2, 5, 4, 9, 0, 3, 8, 1, 6])
    ]
    out_dir = tmp_path / "shards"
    with TestPipeline(argv=RUNNER) as p:
        shards = (
            p
            | beam.Create([pack(rows[:4]), pack(rows[4:])])
            | WriteShards(
                str(out_dir), shard_tokens=45, compression="none", spill_dir=str(tmp_path / "spill"), vocab=VOCAB
            )
        )
        assert_that(shards | beam.Map(lambda s: (s.length, s.slot, s.rows)), equal_to([(8, 0, 5), (8, 1, 5)]))
    first = pa.ipc.open_file(str(out_dir / "bucket-00008-slot-00000.arrow")).read_all()
    assert first.column("doc_ids").to_pylist() == [["d0"], ["d2"], ["d4"], ["d6"], ["d8"]]
    assert json.loads(first.schema.metadata[b"vocaloom.vocab"]) == VOCAB  # which ids are speech, without the manifest
    assert first.schema.metadata[b"vocaloom.format"] == b"vocaloom/1"
