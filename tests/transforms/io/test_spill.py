import tempfile
from typing import NamedTuple
from unittest import mock

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import RUNNER
from vocaloom.transforms.columns import pack, unpack
from vocaloom.transforms.io import spill
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


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 40)), max_size=30),
    st.sampled_from([(0, 4), (8, 64), (1 << 16, 1 << 24)]),
)
def test_token_spans_read_together_are_the_spans(spans, gap_and_limit):
    """However near spans are merged into one read, each comes back as it lies in the file."""
    tokens = np.arange(240, dtype=np.int32)
    with (
        tempfile.TemporaryDirectory() as directory,
        mock.patch.multiple(spill, READ_GAP=gap_and_limit[0], READ_LIMIT=gap_and_limit[1]),
    ):
        got = read_spans(write_spill(directory, tokens), spans)
    assert [a.tolist() for a in got] == [tokens[o : o + n].tolist() for o, n in spans]


def test_a_span_past_the_end_of_a_spill_file_is_an_error(tmp_path):
    path = write_spill(str(tmp_path), np.arange(10, dtype=np.int32))
    with pytest.raises(OSError, match="is short: wanted 3 tokens at 8"):
        read_spans(path, [(0, 2), (8, 3)])
