from hypothesis import given
from hypothesis import strategies as st

from vocaloom.transforms.columns import column, from_columns, row_count, take, take_packed, to_columns


@st.composite
def batches(draw):
    """Columns as a batch has them: repeated paths (dictionary-encoded), one value throughout (held once), plain
    ints and bytes; and rows to take, repeats allowed."""
    n = draw(st.integers(1, 40))
    kinds = draw(st.lists(st.sampled_from(["paths", "const", "ints", "bytes"]), min_size=1, max_size=5))
    columns = []
    for kind in kinds:
        if kind == "paths":
            columns.append(draw(st.lists(st.sampled_from(["a.jsonl", "b.jsonl"]), min_size=n, max_size=n)))
        elif kind == "const":
            columns.append([()] * n)
        elif kind == "ints":
            columns.append(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
        else:
            columns.append(draw(st.lists(st.binary(max_size=3), min_size=n, max_size=n)))
    rows = draw(st.lists(st.integers(0, n - 1), max_size=n))
    return columns, rows


@given(batches())
def test_packed_batches_decode_to_what_was_packed(batch):
    columns, _ = batch
    packed = from_columns(columns)
    assert to_columns(packed) == columns
    assert row_count(packed) == len(columns[0])
    assert [column(packed, i) for i in range(len(columns))] == columns


@given(batches())
def test_taking_rows_of_a_packed_batch_is_taking_rows_of_its_columns(batch):
    columns, rows = batch
    taken = take_packed(from_columns(columns), rows)
    assert to_columns(taken) == take(columns, rows)
    assert row_count(taken) == len(rows)


def test_one_value_is_held_once_and_repeated_paths_by_index():
    packed = from_columns([[()] * 300, ["a.jsonl"] * 200 + ["b.jsonl"] * 100])
    assert packed[0] == ("const", (), 300)
    assert packed[1] == ("dict", ["a.jsonl", "b.jsonl"], [0] * 200 + [1] * 100)
