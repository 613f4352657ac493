"""BucketLoader: Dataset Decomposition batches for PyTorch, on many ranks, with DataLoader workers and exact resume."""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from vocaloom.loader.curriculum import curriculum_odds
from vocaloom.loader.sampler import EpochPlan, Segment
from vocaloom.loader.remote import DEFAULT_CACHE_BYTES, RemoteDataset
from vocaloom.loader.shards import BucketRows, ShardCache
from vocaloom.schemas.manifest import read_manifest
from vocaloom.schemas.paths import is_local, plain
from vocaloom.schemas.shard import row_limits
from vocaloom.schemas.vocab import Vocabulary

STATE_FORMAT = "vocaloom-loader/1"
# Another DataLoader's workers each hold a copy that the main process never hears from, so neither its position nor
# its epoch would advance: resumes repeat steps, and each epoch would start over.
FOREIGN_WORKERS = ("BucketLoader reads in its own worker processes and cannot be iterated in another DataLoader's: "
                   "use BucketLoader(..., num_workers=k) and a DataLoader or StatefulDataLoader with num_workers=0 "
                   "(or none), whose state_dict() is then exact")
# Steps whose shards a dataset in a bucket fetches ahead of the one being read.
PREFETCH_STEPS = 2
log = logging.getLogger(__name__)


class BucketLoader(IterableDataset):
    """Batches of `tokens_per_batch` input positions from a vocaloom dataset directory (docs/training.md).

    Iterating yields the rest of the current epoch, then moves on to the next epoch. Each batch is a dict:
      input_ids    int32 [tokens_per_batch // L, L + 1]: a view of the shard in memory when its rows lie in one
                   uncompressed shard, else a copy. The shard is this process's copy: an in-place write never
                   reaches the file, but batches that reread those rows in this process would see it; clone() first
      bucket       L
      doc_starts   int32: the rows' document starts run together; row r's are
                   doc_starts[doc_offsets[r]:doc_offsets[r + 1]]
      doc_offsets  int32 [rows + 1]
      rows         int64 [rows]: the rows' numbers within bucket L (manifest shard order), for attribution
      epoch, step  ints
    `rank` and `world_size` default to torch.distributed's when it is initialised. With `num_workers` > 0 the
    batches are read in that many DataLoader worker processes, and `state_dict()` stays exact.
    `directory` may be a bucket (gs://, s3://): shards are fetched into `cache_dir` (default ~/.cache/vocaloom/shards,
    shared by the loaders of a machine), at most `cache_bytes` of them kept, each checked as it arrives, the next
    steps' shards fetched ahead (loader/remote.py).
    """

    def __init__(self, directory: str | os.PathLike, tokens_per_batch: int,
                 curriculum: str | Sequence[float] = "uniform", cycles: int = 1, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None, num_workers: int = 0,
                 verify_shards: bool = True, max_open_shards: int = 256, cache_dir: str | os.PathLike | None = None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES):
        distributed = dist.is_available() and dist.is_initialized()
        self.rank = rank if rank is not None else dist.get_rank() if distributed else 0
        self.world_size = world_size if world_size is not None else dist.get_world_size() if distributed else 1
        for name, value, least in [("tokens_per_batch", tokens_per_batch, 1), ("cycles", cycles, 1), ("seed", seed, 0),
                                   ("world_size", self.world_size, 1), ("num_workers", num_workers, 0),
                                   ("max_open_shards", max_open_shards, 1), ("cache_bytes", cache_bytes, 0)]:
            if not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, not {value!r}")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is outside 0..{self.world_size - 1}")
        self.tokens_per_batch, self.cycles, self.seed, self.num_workers = tokens_per_batch, cycles, seed, num_workers

        location = str(directory)
        if is_local(location):
            # Resolved once (a LATEST link included): a later publish does not change what this loader reads.
            source = Path(os.path.realpath(plain(location)))
            self.manifest = read_manifest(source)
        else:
            source = RemoteDataset(location, cache_dir, cache_bytes)
            self.manifest = read_manifest(source.url, source.read)
        self.directory = str(source) if isinstance(source, Path) else source.url
        self.vocab = Vocabulary.from_json(self.manifest["vocab"])
        cache = ShardCache(source, max_open_shards, verify_shards, row_limits(self.manifest))
        self._buckets = [BucketRows(bucket, cache) for bucket in self.manifest["buckets"]]
        self._odds = curriculum_odds(curriculum, len(self._buckets))
        self._block_rows = []  # rows of one rank's batch; 0 for a bucket that is not read
        for bucket, odds in zip(self._buckets, self._odds):
            used = bucket.rows > 0 and odds > 0
            if used and tokens_per_batch % bucket.length:
                raise ValueError(f"tokens_per_batch {tokens_per_batch} is not a multiple of bucket length "
                                 f"{bucket.length}")
            self._block_rows.append(tokens_per_batch // bucket.length if used else 0)
        if not any(size and bucket.rows // size >= self.world_size
                   for bucket, size in zip(self._buckets, self._block_rows)):
            raise ValueError(f"no bucket has rows for a batch of {tokens_per_batch} tokens on each of "
                             f"{self.world_size} ranks")
        self._fingerprint = hashlib.sha256(json.dumps(
            [[b["length"], [s["sha256"] for s in b["shards"]]] for b in self.manifest["buckets"]]).encode()).hexdigest()
        self._plan_cache: tuple[EpochPlan, np.ndarray] | None = None
        self._start_epoch(0)

    @property
    def buckets(self) -> list[int]:
        return [bucket.length for bucket in self._buckets]

    @property
    def epoch(self) -> int:
        return self._segment.epoch

    @property
    def step(self) -> int:
        """The step the next batch is, within the epoch."""
        return self._step

    def __len__(self) -> int:
        """Steps in the current epoch."""
        return self._plan().end

    def leftover_rows(self) -> dict[int, int]:
        """Rows of each bucket the current epoch leaves out: fewer than one batch, or blocks too few for a step on
        every rank (the grid and the order change every epoch, so other rows are left out in the next)."""
        plan = self._plan()
        taken = plan.consumed(plan.end)
        return {bucket.length: bucket.rows - blocks * block_rows
                for bucket, blocks, block_rows in zip(self._buckets, taken, self._block_rows)}

    def __iter__(self) -> Iterator[dict]:
        if get_worker_info() is not None:
            raise RuntimeError(FOREIGN_WORKERS)
        if self._step >= self._plan().end:  # an epoch left with no step, as when resumed on more ranks near its end
            self._start_epoch(self.epoch + 1)
        return self._through_workers() if self.num_workers else self._batches(0, 1)

    def _batches(self, worker: int, workers: int) -> Iterator[dict]:
        """The epoch's remaining steps; DataLoader worker i of n reads every n-th, which the DataLoader's
        round-robin over workers puts back in order."""
        plan, first_rows = self._rank_plan()
        for step in range(self._step + worker, plan.end, workers):
            self._prefetch(plan, first_rows, range(step + workers, step + workers * (PREFETCH_STEPS + 1), workers))
            batch = self._batch(plan, first_rows, step)
            self._advance(plan, step)
            yield batch

    def _through_workers(self) -> Iterator[dict]:
        for batch in DataLoader(_WorkerReads(self), batch_size=None, num_workers=self.num_workers):
            self._advance(self._plan(), batch["step"])
            yield batch

    def _batch(self, plan: EpochPlan, first_rows: np.ndarray, step: int) -> dict:
        index = step - plan.segment.step
        bucket = self._buckets[plan.buckets[index]]
        first, count = int(first_rows[index]), self._block_rows[plan.buckets[index]]
        input_ids, doc_starts, doc_offsets = bucket.take(first, count)
        rows = np.arange(first, first + count)
        return {"input_ids": _tensor(input_ids), "bucket": bucket.length, "doc_starts": _tensor(doc_starts),
                "doc_offsets": torch.from_numpy(doc_offsets),
                "rows": torch.from_numpy(rows if first + count <= bucket.rows else rows % bucket.rows),
                "epoch": plan.segment.epoch, "step": step}

    def _prefetch(self, plan: EpochPlan, first_rows: np.ndarray, steps: range) -> None:
        """Starts fetching the shards of these steps of this epoch (a dataset in a bucket; else nothing to do)."""
        if is_local(self.directory):
            return
        for step in steps:
            if step < plan.end:
                index = step - plan.segment.step
                bucket = self._buckets[plan.buckets[index]]
                bucket.prefetch(int(first_rows[index]), self._block_rows[plan.buckets[index]])

    def _advance(self, plan: EpochPlan, step: int) -> None:
        """Position after `step`: the next step, or after the epoch's last step the next epoch's first."""
        if step + 1 < plan.end:
            self._step = step + 1
        else:
            self._start_epoch(plan.segment.epoch + 1)

    def _start_epoch(self, epoch: int) -> None:
        self._segment, self._step = Segment(epoch, 0, self.world_size, (0,) * len(self._buckets)), 0

    def _plan(self) -> EpochPlan:
        return self._rank_plan()[0]

    def _rank_plan(self) -> tuple[EpochPlan, np.ndarray]:
        """The current segment's plan, and the first row this rank reads at each of its steps."""
        if self._plan_cache is None or self._plan_cache[0].segment != self._segment:
            plan = EpochPlan(self.seed, self._segment, [b.rows for b in self._buckets], self._block_rows, self._odds,
                             self.cycles)
            self._plan_cache = plan, plan.first_rows(self.rank)
            if self.rank == 0 and self._segment.step == 0:
                log.info("epoch %d: %d steps; rows left out per bucket %s", self.epoch, plan.end, self.leftover_rows())
        return self._plan_cache

    def state_dict(self) -> dict:
        """Where the next batch comes from, the same on every rank: save it from one. JSON-serialisable; its
        `directory` is the build read (a LATEST resolved), to resume from."""
        segment = self._segment
        return {"format": STATE_FORMAT, **self._settings(), "directory": self.directory,
                "epoch": segment.epoch, "step": self._step,
                "consumed_rows": self._rows_of(self._plan().consumed(self._step)),
                "schedule": {"step": segment.step, "world_size": segment.world_size,
                             "consumed_rows": self._rows_of(segment.consumed)}}

    def load_state_dict(self, state: dict) -> BucketLoader:
        """Continue where `state` was saved: the same batches on the same world size; on another world size the
        same rows of the epoch from the saved position on, none repeated, none skipped."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"loader state of format {state.get('format')!r}, this version reads {STATE_FORMAT!r}")
        if state["dataset"] != self._fingerprint:  # e.g. a LATEST that a nightly publish has moved on since
            raise ValueError(f"loader state was saved reading {state.get('directory', 'another dataset')}, whose "
                             f"shards differ from {self.directory}'s: make the loader from that build to resume")
        for key, value in self._settings().items():
            if state[key] != value:
                raise ValueError(f"loader state was saved with {key} {state[key]!r}, this loader has {value!r}")
        schedule, consumed = state["schedule"], self._blocks_of(state["consumed_rows"])
        segment = Segment(state["epoch"], schedule["step"], schedule["world_size"],
                          self._blocks_of(schedule["consumed_rows"]))
        if segment.world_size != self.world_size:  # a new schedule for the rest of the epoch, from the same rows
            segment = Segment(state["epoch"], state["step"], self.world_size, consumed)
        previous = self._segment, self._step
        self._segment, self._step = segment, state["step"]
        if self._plan().consumed(self._step) != consumed:
            self._segment, self._step = previous
            raise ValueError("loader state is inconsistent: its consumed_rows do not follow from its schedule")
        return self

    def _settings(self) -> dict:
        return {"dataset": self._fingerprint, "seed": self.seed, "tokens_per_batch": self.tokens_per_batch,
                "curriculum": self._odds.tolist(), "cycles": self.cycles}

    def _rows_of(self, blocks: Sequence[int]) -> dict[str, int]:
        return {str(bucket.length): n * size for bucket, n, size in zip(self._buckets, blocks, self._block_rows)}

    def _blocks_of(self, rows: dict[str, int]) -> tuple[int, ...]:
        blocks = []
        for bucket, block_rows in zip(self._buckets, self._block_rows):
            n = rows[str(bucket.length)]
            if n and (not block_rows or n % block_rows):
                raise ValueError(f"loader state: {n} rows of bucket {bucket.length} are not whole batches")
            blocks.append(n // block_rows if n else 0)
        return tuple(blocks)


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor on the array's memory; a read-only array (Arrow's decompressed buffers) is copied first."""
    return torch.from_numpy(array if array.flags.writeable else array.copy())


class _WorkerReads(IterableDataset):
    """A BucketLoader as its own DataLoader workers see it: worker i of n reads every n-th step from its position."""

    def __init__(self, loader: BucketLoader):
        self._loader = loader

    def __iter__(self) -> Iterator[dict]:
        worker = get_worker_info()
        return self._loader._batches(worker.id, worker.num_workers)
