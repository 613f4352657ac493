"""Which rows each rank reads at each step of an epoch, and where a saved position resumes (arithmetic, no replay).

Rows are read in streams: a stream is one source's rows in one bucket of one dataset (loader/streams.py). A pass
over a stream cuts its rows into blocks of one rank's batch (tokens_per_batch // L rows) on a grid that starts at a
random row, and shuffles the blocks. An epoch takes a number of blocks from each stream (loader/mixture.py): its
passes one after another, each on a new grid and in a new order, the last one cut short (a random subset of its
blocks). The blocks of bucket L's streams are interleaved at random: that is the bucket's order for the epoch. A step
of bucket L hands blocks p, p + 1, .., p + world_size - 1 of L's order to ranks 0, 1, .., world_size - 1, p being
the blocks taken by the steps before.

Positions in a stream's passes do not depend on the world size: a job resumed on another world size, or with other
mixture weights, draws a new schedule for the rest of the epoch that continues each stream's passes where they
stopped, so no row read in the epoch is read again before its pass is over.

Left out of an epoch: each stream's rows that do not fill a block of a pass, and each bucket's last blocks that do
not fill a step on every rank (fewer than world_size). The grids and orders change every epoch, so the rows left
out change too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from vocaloom.loader.curriculum import draw_schedule

# First word of every seed: what the stream is for. Streams of one purpose have seeds of one length, because
# SeedSequence pads seeds shorter than its pool with zeros ([a, b, 0] seeds as [a, b]).
_ROWS, _SCHEDULE, _INTERLEAVE, _MIXTURE = 0, 1, 2, 3


def _rng(purpose: int, seed: int, *words: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([purpose, seed, *words]))


def mixture_rng(seed: int, epoch: int, step: int) -> np.random.Generator:
    """Draws how a mixture's shares round for the epoch, or for its rest from `step` on (loader/mixture.py)."""
    return _rng(_MIXTURE, seed, epoch, step)


class StreamShape(NamedTuple):
    """What the plan needs of a stream: its bucket (index), its place among the bucket's streams, its rows and the
    rows of one block (0: its bucket is not read)."""

    bucket: int
    position: int
    rows: int
    block_rows: int

    @property
    def blocks(self) -> int:
        """Blocks of one pass."""
        return self.rows // self.block_rows if self.block_rows else 0


@dataclass(frozen=True)
class Schedule:
    """The running schedule, as it was drawn: at `step` of `epoch`, for `world_size` ranks; `taken` blocks of each
    stream were read before it and it reads `remaining` more. A new one is drawn at each epoch and where a job
    resumes on a new world size or with new weights."""

    epoch: int
    step: int
    world_size: int
    taken: tuple[int, ...]
    remaining: tuple[int, ...]


class Passes:
    """One stream's passes in one epoch: pass r is a grid at a random first row and its blocks in a random order,
    drawn one after another from the stream's generator."""

    def __init__(self, seed: int, epoch: int, stream: StreamShape):
        # A bucket's first stream seeds as a bucket's one order did before there were sources, so a dataset of one
        # source reads as it always did.
        words = (stream.position,) if stream.position else ()
        self._rng, self._stream = _rng(_ROWS, seed, epoch, stream.bucket, *words), stream
        self._passes: list[tuple[int, np.ndarray]] = []

    def _pass(self, number: int) -> tuple[int, np.ndarray]:
        while len(self._passes) <= number:
            offset = int(self._rng.integers(self._stream.block_rows))
            self._passes.append((offset, self._rng.permutation(self._stream.blocks)))
        return self._passes[number]

    def first_rows(self, blocks: np.ndarray) -> np.ndarray:
        """First row, in the stream's own numbering, of its blocks at these positions of the epoch (block i of pass
        r is at r * blocks + i); a block runs on past the stream's last row to its row 0."""
        stream, first = self._stream, np.empty(len(blocks), dtype=np.int64)
        passes = blocks // stream.blocks
        for number in np.unique(passes):
            chosen = passes == number
            offset, order = self._pass(int(number))
            first[chosen] = (offset + order[blocks[chosen] % stream.blocks] * stream.block_rows) % stream.rows
        return first


def interleave(seed: int, schedule: Schedule, bucket: int, counts: Sequence[int]) -> np.ndarray:
    """The order of a bucket's blocks in a schedule: `counts[i]` blocks of its stream i, shuffled."""
    labels = np.repeat(np.arange(len(counts)), counts)
    if np.count_nonzero(counts) > 1:
        labels = _rng(_INTERLEAVE, seed, schedule.epoch, schedule.step, bucket).permutation(labels)
    return labels


def occurrences(labels: np.ndarray) -> np.ndarray:
    """For each label, how many equal labels come before it."""
    counts = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        where = labels == label
        counts[where] = np.arange(np.count_nonzero(where))
    return counts


class EpochPlan:
    """The steps of one schedule: the bucket each draws and the block each rank reads."""

    def __init__(self, seed: int, schedule: Schedule, streams: Sequence[StreamShape], odds: np.ndarray, cycles: int):
        self.schedule, self._seed, self._streams = schedule, seed, streams
        self._order = []  # per bucket: the schedule's blocks as stream numbers, in order
        taken = []
        for bucket in range(len(odds)):
            ids = np.array([i for i, s in enumerate(streams) if s.bucket == bucket], dtype=np.int64)
            labels = interleave(seed, schedule, bucket, [schedule.remaining[i] for i in ids])
            self._order.append(ids[labels])
            taken.append(sum(schedule.taken[i] for i in ids))
        blocks = [done + len(order) for done, order in zip(taken, self._order)]
        rng = _rng(_SCHEDULE, seed, schedule.epoch, schedule.step, schedule.world_size)
        self.buckets = draw_schedule(blocks, taken, schedule.world_size, odds, cycles, rng)

    @property
    def end(self) -> int:
        """The epoch's step count."""
        return self.schedule.step + len(self.buckets)

    def blocks(self, rank: int) -> tuple[np.ndarray, np.ndarray]:
        """For each step of the schedule, the stream `rank` reads and the first row of its block in the stream's
        numbering: the bucket's block p + rank, p being the blocks all ranks took from that bucket before."""
        streams = np.empty(len(self.buckets), dtype=np.int64)
        first = np.empty(len(self.buckets), dtype=np.int64)
        for bucket in np.unique(self.buckets):
            steps = np.flatnonzero(self.buckets == bucket)
            order = self._order[bucket]
            positions = np.arange(len(steps)) * self.schedule.world_size + rank
            streams[steps] = order[positions]
            seen = occurrences(order)[positions]
            for stream in np.unique(streams[steps]):
                chosen = streams[steps] == stream
                passes = Passes(self._seed, self.schedule.epoch, self._streams[stream])
                first[steps[chosen]] = passes.first_rows(self.schedule.taken[stream] + seen[chosen])
        return streams, first

    def consumed(self, step: int) -> tuple[int, ...]:
        """Blocks of each stream taken by all ranks in the steps before `step`."""
        steps = np.bincount(self.buckets[: step - self.schedule.step], minlength=len(self._order))
        taken = list(self.schedule.taken)
        for order, n in zip(self._order, steps):
            for stream, count in zip(*np.unique(order[: n * self.schedule.world_size], return_counts=True)):
                taken[stream] += int(count)
        return tuple(taken)

    def following(self, step: int, world_size: int, remaining: Sequence[int] | None = None) -> Schedule:
        """A schedule from `step` on `world_size` ranks that reads `remaining` blocks of each stream; by default
        what this schedule had left to read, the same blocks."""
        taken = self.consumed(step)
        if remaining is None:
            remaining = [
                max(0, before + left - now)
                for before, left, now in zip(self.schedule.taken, self.schedule.remaining, taken)
            ]
        return Schedule(self.schedule.epoch, step, world_size, taken, tuple(remaining))
