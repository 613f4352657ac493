import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vocaloom.loader.curriculum import curriculum_odds, draw_schedule


def test_named_curricula_follow_method_section_4():
    assert curriculum_odds("uniform", 6).tolist() == [1] * 6
    assert curriculum_odds("grow_p2", 6).tolist() == [32, 16, 8, 4, 2, 1]
    assert curriculum_odds("grow_linear", 6).tolist() == [6, 5, 4, 3, 2, 1]
    assert curriculum_odds([3, 0, 1.5], 3).tolist() == [3, 0, 1.5]


@pytest.mark.parametrize(
    "odds, message",
    [
        ([1, 2], "curriculum has 2 odds, the dataset has 3 buckets"),
        ([1, -1, 1], "must be finite, non-negative and not all zero"),
        ([0, 0, 0], "must be finite, non-negative and not all zero"),
        ([1, float("nan"), 1], "must be finite"),
    ],
)
def test_bad_odds_are_refused(odds, message):
    with pytest.raises(ValueError, match=message):
        curriculum_odds(odds, 3)


def step_cycles(schedule, blocks, consumed, world_size, cycles):
    """The cycle of each step: that of the first block it takes from its bucket."""
    taken = list(consumed)
    result = []
    for bucket in schedule:
        result.append(taken[bucket] * cycles // blocks[bucket])
        taken[bucket] += world_size
    return result


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60), st.sampled_from([0, 1, 2, 32])), min_size=1, max_size=6),
    st.integers(1, 5),
    st.integers(1, 8),
    st.integers(0, 2**32),
)
def test_every_remaining_step_once_cycle_by_cycle(buckets, world_size, cycles, seed):
    blocks = [max(a, b) for a, b, _ in buckets]
    consumed = [min(a, b) // world_size * world_size for a, b, _ in buckets]
    odds = np.array([o for *_, o in buckets], dtype=float)
    schedule = draw_schedule(blocks, consumed, world_size, odds, cycles, np.random.default_rng(seed))
    expected = [(n - c) // world_size if o > 0 else 0 for n, c, o in zip(blocks, consumed, odds)]
    assert np.bincount(schedule, minlength=len(blocks)).tolist() == expected
    cycle_of_step = step_cycles(schedule, blocks, consumed, world_size, cycles)
    assert cycle_of_step == sorted(cycle_of_step)


def test_a_bucket_is_drawn_in_proportion_to_its_steps_left_times_its_odds():
    # Dataset Decomposition: weight_k = (batches of bucket k left) * odds_k. First draw: 30 * 1 against 10 * 4.
    firsts = [
        draw_schedule([30, 10], [0, 0], 1, np.array([1.0, 4.0]), 1, np.random.default_rng(s))[0] for s in range(4000)
    ]
    assert np.mean(np.array(firsts) == 0) == pytest.approx(30 / 70, abs=0.03)
    # Once the long bucket is exhausted only the short one is left: the last steps are all bucket 0.
    schedule = draw_schedule([300, 10], [0, 0], 1, np.array([1.0, 32.0]), 1, np.random.default_rng(0))
    assert np.flatnonzero(schedule == 1).max() < 150
