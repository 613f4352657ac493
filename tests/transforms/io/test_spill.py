from typing import NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import RUNNER
from vocaloom.transforms.columns import pack, unpack
from vocaloom.transforms.io.spill import SpilledGroupByKey, read_spans, write_spill


class Row(NamedTuple):
    n: int
    name: str


def test_spilled_group_by_key_groups_batches_through_files(tmp_path):
    keyed = [("a", pack([Row(1, "x"), Row(2, "y")])), ("b", pack([Row(3, "z")])), ("a", pack([Row(4, "w")]))]
    with TestPipeline(argv=RUNNER) as p:
        grouped = (
            p
            | beam.Create(keyed)
            | SpilledGroupByKey(str(tmp_path))
            | beam.MapTuple(lambda key, batches: (key, sorted(r for b in batches for r in unpack(Row, b))))
        )
        assert_that(grouped, equal_to([("a", [Row(1, "x"), Row(2, "y"), Row(4, "w")]), ("b", [Row(3, "z")])]))
    assert list(tmp_path.glob("*.batches"))


def test_token_spans_read_back(tmp_path):
    path = write_spill(str(tmp_path), np.arange(10, dtype=np.int32))
    assert [a.tolist() for a in read_spans(path, [(7, 2), (0, 3)])] == [[7, 8], [0, 1, 2]]
