"""Which rows each rank reads at each step of an epoch, and where a saved position resumes (arithmetic, no replay).

A bucket's rows are cut into blocks of one rank's batch (tokens_per_batch // L rows) on a grid that starts at a
random row every epoch, and the blocks are shuffled every epoch: that is the bucket's global order for the epoch.
A step of bucket L hands blocks p, p + 1, .., p + world_size - 1 of L's order to ranks 0, 1, .., world_size - 1,
p being the blocks taken by the steps before. Positions in these orders do not depend on the world size, so a job
resumed on another world size continues from the same rows.

Left out of an epoch: each bucket's rows that do not fill a block (fewer than one batch) and its blocks that do
not fill a step on every rank (fewer than world_size). The grid and the order change every epoch, so the rows
left out change too.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vocaloom.loader.curriculum import draw_schedule

# First word of every seed: what the stream is for. Streams of one purpose have seeds of one length, because
# SeedSequence ignores trailing zeros ([a, b, 0] seeds as [a, b]).
_ROWS, _SCHEDULE = 0, 1


def _rng(purpose: int, seed: int, *words: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([purpose, seed, *words]))


@dataclass(frozen=True)
class Segment:
    """Where the running schedule was drawn: at `step` of `epoch`, for `world_size` ranks, `consumed` blocks of
    each bucket taken by then. A new segment starts at each epoch and where a job resumes on a new world size."""
    epoch: int
    step: int
    world_size: int
    consumed: tuple[int, ...]


class BlockOrder:
    """One bucket's blocks in one epoch: the first row of the grid and the shuffled order of the blocks."""

    def __init__(self, seed: int, epoch: int, bucket: int, rows: int, block_rows: int):
        rng = _rng(_ROWS, seed, epoch, bucket)
        self._offset = int(rng.integers(block_rows))
        self._order = rng.permutation(rows // block_rows)
        self._rows, self._block_rows = rows, block_rows

    def first_rows(self, positions: np.ndarray) -> np.ndarray:
        """First row of the blocks at `positions` in the order; a block runs on past the last row to row 0."""
        return (self._offset + self._order[positions] * self._block_rows) % self._rows


class EpochPlan:
    """The steps of one segment: the bucket each draws and the first row of the block each rank reads."""

    def __init__(self, seed: int, segment: Segment, rows: Sequence[int], block_rows: Sequence[int], odds: np.ndarray,
                 cycles: int):
        """`block_rows` 0 marks a bucket that is not read."""
        self.segment, self._seed, self._rows, self._block_rows = segment, seed, rows, block_rows
        blocks = [n // size if size else 0 for n, size in zip(rows, block_rows)]
        rng = _rng(_SCHEDULE, seed, segment.epoch, segment.step, segment.world_size)
        self.buckets = draw_schedule(blocks, segment.consumed, segment.world_size, odds, cycles, rng)

    @property
    def end(self) -> int:
        """The epoch's step count."""
        return self.segment.step + len(self.buckets)

    def first_rows(self, rank: int) -> np.ndarray:
        """For each step of the segment, the first row of the block `rank` reads: block p + rank of the bucket's
        order, p being the blocks all ranks took from that bucket before."""
        first = np.empty(len(self.buckets), dtype=np.int64)
        for bucket in np.unique(self.buckets):
            steps = np.flatnonzero(self.buckets == bucket)
            positions = self.segment.consumed[bucket] + np.arange(len(steps)) * self.segment.world_size + rank
            order = BlockOrder(self._seed, self.segment.epoch, int(bucket), self._rows[bucket],
                               self._block_rows[bucket])
            first[steps] = order.first_rows(positions)
        return first

    def consumed(self, step: int) -> tuple[int, ...]:
        """Blocks of each bucket taken by all ranks in the steps before `step`."""
        steps = np.bincount(self.buckets[:step - self.segment.step], minlength=len(self.segment.consumed))
        return tuple(done + int(n) * self.segment.world_size for done, n in zip(self.segment.consumed, steps))
