import itertools

from hypothesis import given
from hypothesis import strategies as st

from vocaloom.text_to_token.unit_metrics import collapse_repeats, edit_distance, unit_error_rate


def levenshtein(a, b) -> int:
    """The textbook dynamic programme, a cell at a time."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


units = st.lists(st.integers(0, 4), max_size=12)


@given(units, units)
def test_edit_distance_is_levenshtein(reference, hypothesis):
    assert edit_distance(reference, hypothesis) == levenshtein(reference, hypothesis)


def test_the_error_rate_is_corpus_level_and_repeats_collapse():
    assert unit_error_rate([[1, 2, 3, 4], [5]], [[1, 2, 3, 4], [6]]) == 1 / 5
    assert collapse_repeats([1, 1, 2, 2, 2, 1]) == [1, 2, 1] == [k for k, _ in itertools.groupby([1, 2, 1])]
