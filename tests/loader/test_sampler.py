from collections import Counter

import numpy as np

from vocaloom.loader.sampler import BlockOrder, EpochPlan, Segment

ROWS = (500, 230, 70)
BLOCK_ROWS = (10, 10, 10)
ODDS = np.array([4.0, 2.0, 1.0])


def plan(segment: Segment) -> EpochPlan:
    return EpochPlan(seed=5, segment=segment, rows=ROWS, block_rows=BLOCK_ROWS, odds=ODDS, cycles=2)


def rows_read(plan: EpochPlan, world_size: int, steps: range | None = None) -> Counter:
    """(bucket, row) read by any rank at `steps` (all of the plan's by default)."""
    steps = steps or range(plan.segment.step, plan.end)
    read = Counter()
    for rank in range(world_size):
        first = plan.first_rows(rank)
        for step in steps:
            i = step - plan.segment.step
            bucket = int(plan.buckets[i])
            read.update((bucket, (first[i] + r) % ROWS[bucket]) for r in range(BLOCK_ROWS[bucket]))
    return read


def test_blocks_cover_all_rows_but_less_than_a_block():
    rows, block_rows = 103, 10
    orders = [BlockOrder(seed=1, epoch=e, bucket=0, rows=rows, block_rows=block_rows) for e in range(2)]
    read = [[(first + i) % rows for first in o.first_rows(np.arange(10)) for i in range(block_rows)] for o in orders]
    assert all(len(r) == len(set(r)) == 100 for r in read)
    assert set(read[0]) != set(read[1])  # a new grid and order each epoch


def test_ranks_read_disjoint_rows_and_all_but_the_leftover():
    whole = plan(Segment(0, 0, 3, (0, 0, 0)))
    read = rows_read(whole, 3)
    assert max(read.values()) == 1
    # Blocks per bucket 50, 23, 7: all but 50 % 3, 23 % 3, 7 % 3 blocks are read.
    assert [sum(1 for b, _ in read if b == k) for k in range(3)] == [480, 210, 60]
    assert whole.consumed(whole.end) == (48, 21, 6)


def test_a_new_world_size_continues_from_the_consumed_blocks():
    first = plan(Segment(0, 0, 4, (0, 0, 0)))
    cut = 9
    second = plan(Segment(0, cut, 3, first.consumed(cut)))
    read = rows_read(first, 4, range(cut)) + rows_read(second, 3)
    assert max(read.values()) == 1
    for k, rows in enumerate(ROWS):
        left_out = rows - sum(1 for b, _ in read if b == k)
        assert 0 <= left_out < BLOCK_ROWS[k] * 3


def test_plans_are_a_function_of_seed_and_segment():
    segment = Segment(2, 0, 2, (0, 0, 0))
    schedule = lambda seed: EpochPlan(seed, segment, ROWS, BLOCK_ROWS, ODDS, 1).buckets.tolist()  # noqa: E731
    assert schedule(1) == schedule(1) != schedule(2)
    assert plan(segment).first_rows(1).tolist() == plan(segment).first_rows(1).tolist()
