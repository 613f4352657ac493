from collections import Counter

import numpy as np

from vocaloom.loader.sampler import EpochPlan, Passes, Schedule, StreamShape

ROWS = (500, 230, 70)
BLOCK_ROWS = 10
ODDS = np.array([4.0, 2.0, 1.0])
STREAMS = [StreamShape(k, 0, rows, BLOCK_ROWS) for k, rows in enumerate(ROWS)]
BLOCKS = tuple(s.blocks for s in STREAMS)


def plan(schedule: Schedule, streams=STREAMS) -> EpochPlan:
    return EpochPlan(seed=5, schedule=schedule, streams=streams, odds=ODDS, cycles=2)


def start(world_size: int, remaining=BLOCKS) -> Schedule:
    return Schedule(0, 0, world_size, (0,) * len(remaining), tuple(remaining))


def rows_read(plan: EpochPlan, world_size: int, steps: range | None = None, streams=STREAMS) -> Counter:
    """(stream, row) read by any rank at `steps` (all of the plan's by default)."""
    steps = steps or range(plan.schedule.step, plan.end)
    read: Counter[tuple[int, int]] = Counter()
    for rank in range(world_size):
        stream_of, first = plan.blocks(rank)
        for step in steps:
            i = step - plan.schedule.step
            shape = streams[stream_of[i]]
            assert shape.bucket == plan.buckets[i]
            read.update((int(stream_of[i]), (first[i] + r) % shape.rows) for r in range(shape.block_rows))
    return read


def test_passes_cover_all_rows_but_less_than_a_block_each_on_a_new_grid():
    shape = StreamShape(0, 0, 103, 10)
    for epoch in range(2):
        passes = Passes(seed=1, epoch=epoch, stream=shape)
        read = [
            [(first + i) % 103 for first in passes.first_rows(np.arange(10) + 10 * p) for i in range(10)]
            for p in range(4)
        ]
        assert all(len(r) == len(set(r)) == 100 for r in read)
        assert read[0] != read[1] and len({frozenset(r) for r in read}) > 1  # a new order and grid each pass


def test_ranks_read_disjoint_rows_and_all_but_the_leftover():
    whole = plan(start(3))
    read = rows_read(whole, 3)
    assert max(read.values()) == 1
    # Blocks per bucket 50, 23, 7: all but 50 % 3, 23 % 3, 7 % 3 blocks are read.
    assert [sum(1 for s, _ in read if s == k) for k in range(3)] == [480, 210, 60]
    assert whole.consumed(whole.end) == (48, 21, 6)


def test_a_new_world_size_continues_from_the_consumed_blocks():
    first = plan(start(4))
    cut = 9
    second = plan(first.following(cut, 3))
    read = rows_read(first, 4, range(cut)) + rows_read(second, 3)
    assert max(read.values()) == 1
    for k, rows in enumerate(ROWS):
        left_out = rows - sum(1 for s, _ in read if s == k)
        assert 0 <= left_out < BLOCK_ROWS * 3


def test_streams_of_a_bucket_are_interleaved_and_read_pass_after_pass():
    streams = [StreamShape(0, 0, 100, 10), StreamShape(0, 1, 40, 10)]
    whole = plan(start(1, (5, 10)), streams)  # half a pass of the first, two and a half of the second
    assert len(whole.buckets) == 15 and whole.consumed(whole.end) == (5, 10)
    read = rows_read(whole, 1, streams=streams)
    assert sum(1 for s, _ in read if s == 0) == 50 and max(n for (s, _), n in read.items() if s == 0) == 1
    second = [n for (s, _), n in read.items() if s == 1]  # two whole passes and half a third...
    assert len(second) == 40 and sum(second) == 100 and set(second) == {2, 3}
    order, _ = whole.blocks(0)
    assert order.tolist().index(1) > 0 and order.tolist() != sorted(order.tolist())  # ...among the other's blocks


def test_a_new_mixture_continues_each_stream_where_it_stopped():
    streams = [StreamShape(0, 0, 100, 10), StreamShape(0, 1, 100, 10)]
    first = plan(start(1, (10, 10)), streams)
    cut = 6
    second = plan(first.following(cut, 1, (0, 14)), streams)
    read = rows_read(first, 1, range(cut), streams) + rows_read(second, 1, streams=streams)
    taken = first.consumed(cut)
    assert second.consumed(second.end) == (taken[0], taken[1] + 14)
    # The second stream finishes its first pass before any of its rows is read again.
    assert sum(1 for (s, _), n in read.items() if s == 1) == 100
    assert max(n for (s, _), n in read.items() if s == 1) == 2


def test_plans_are_a_function_of_seed_and_schedule():
    schedule = Schedule(2, 0, 2, (0, 0, 0), BLOCKS)

    def buckets(seed: int) -> list[int]:
        return EpochPlan(seed, schedule, STREAMS, ODDS, 1).buckets.tolist()

    assert buckets(1) == buckets(1) != buckets(2)
    assert [a.tolist() for a in plan(schedule).blocks(1)] == [a.tolist() for a in plan(schedule).blocks(1)]
