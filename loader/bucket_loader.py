"""BucketLoader: Dataset Decomposition batches for PyTorch, on many ranks, with DataLoader workers and exact resume."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from vocaloom.loader.curriculum import curriculum_odds
from vocaloom.loader.mixture import Mixture
from vocaloom.loader.remote import DEFAULT_CACHE_BYTES
from vocaloom.loader.sampler import EpochPlan, Schedule, StreamShape, mixture_rng
from vocaloom.loader.streams import Stream, common_vocabulary, open_datasets, source_names
from vocaloom.schemas.paths import is_local

STATE_FORMAT = "vocaloom-loader/2"
PREVIOUS_STATE_FORMAT = "vocaloom-loader/1"  # before sources: still resumed
# Another DataLoader's workers each hold a copy that the main process never hears from, so neither its position nor
# its epoch would advance: resumes repeat steps, and each epoch would start over.
FOREIGN_WORKERS = (
    "BucketLoader reads in its own worker processes and cannot be iterated in another DataLoader's: "
    "use BucketLoader(..., num_workers=k) and a DataLoader or StatefulDataLoader with num_workers=0 "
    "(or none), whose state_dict() is then exact"
)
# Steps whose shards a dataset in a bucket fetches ahead of the one being read.
PREFETCH_STEPS = 2
log = logging.getLogger(__name__)


class BucketLoader(IterableDataset):
    """Batches of `tokens_per_batch` input positions from vocaloom datasets (docs/training.md).

    Iterating yields the rest of the current epoch, then moves on to the next epoch. Each batch is a dict:
      input_ids    int32 [tokens_per_batch // L, L + 1]: a view of the shard in memory when its rows lie in one
                   uncompressed shard, else a copy. The shard is this process's copy: an in-place write never
                   reaches the file, but batches that reread those rows in this process would see it; clone() first
      bucket       L
      doc_starts   int32: the rows' document starts run together; row r's are
                   doc_starts[doc_offsets[r]:doc_offsets[r + 1]]
      doc_offsets  int32 [rows + 1]
      source       int32 [rows]: each row's source, an index into `loader.sources`
      rows         int64 [rows]: the rows' numbers within bucket L of their dataset (manifest shard order)
      epoch, step  ints
    `directory` is a dataset, or several: a list (named by their last path component) or a mapping of names to
    datasets, whose sources are then named `name/source`. `source_weights` gives token shares by source (a long
    documents' source, `web.long`, counts under its own, `web`), `long_document_factor` how much more often than the
    rest of its source a long documents' source is read, `epoch_tokens` an epoch's size (docs/training.md#mixtures).
    `rank` and `world_size` default to torch.distributed's when it is initialised. With `num_workers` > 0 the
    batches are read in that many DataLoader worker processes, and `state_dict()` stays exact.
    A dataset may be in a bucket (gs://, s3://): shards are fetched into `cache_dir` (default
    ~/.cache/vocaloom/shards, shared by the loaders of a machine), at most `cache_bytes` of them kept, each checked as
    it arrives, the next steps' shards fetched ahead (loader/remote.py).
    """

    def __init__(
        self,
        directory,
        tokens_per_batch: int,
        curriculum: str | Sequence[float] = "uniform",
        cycles: int = 1,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        num_workers: int = 0,
        verify_shards: bool = True,
        max_open_shards: int = 256,
        cache_dir: str | os.PathLike | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        source_weights: Mapping[str, float] | None = None,
        long_document_factor: float = 1.0,
        epoch_tokens: int | None = None,
    ):
        distributed = dist.is_available() and dist.is_initialized()
        self.rank = rank if rank is not None else dist.get_rank() if distributed else 0
        self.world_size = world_size if world_size is not None else dist.get_world_size() if distributed else 1
        for name, value, least in [
            ("tokens_per_batch", tokens_per_batch, 1),
            ("cycles", cycles, 1),
            ("seed", seed, 0),
            ("world_size", self.world_size, 1),
            ("num_workers", num_workers, 0),
            ("max_open_shards", max_open_shards, 1),
            ("cache_bytes", cache_bytes, 0),
        ]:
            if not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, not {value!r}")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is outside 0..{self.world_size - 1}")
        self.tokens_per_batch, self.cycles, self.seed, self.num_workers = tokens_per_batch, cycles, seed, num_workers

        self._datasets = open_datasets(
            directory,
            cache_dir=cache_dir,
            cache_bytes=cache_bytes,
            max_open_shards=max_open_shards,
            verify_shards=verify_shards,
        )
        self.sources = source_names(self._datasets)
        self.mixture = Mixture(self.sources, source_weights, long_document_factor, epoch_tokens)
        self.vocab = common_vocabulary(self._datasets)
        self.manifests = {dataset.name: dataset.manifest for dataset in self._datasets}
        self.manifest = self._datasets[0].manifest if len(self._datasets) == 1 else None
        self.directory = (
            self._datasets[0].directory
            if len(self._datasets) == 1
            else {dataset.name: dataset.directory for dataset in self._datasets}
        )
        self._lengths = sorted({length for dataset in self._datasets for length in dataset.buckets})
        self._odds = curriculum_odds(curriculum, len(self._lengths))
        self._streams = self._make_streams()
        # The state's name of each stream: bucket length / source.
        self._keys = [f"{self._lengths[s.shape.bucket]}/{self.sources[s.source]}" for s in self._streams]
        if not len(self._streams):
            raise ValueError("the datasets have no rows")
        fingerprints = [dataset.fingerprint for dataset in self._datasets]
        self._fingerprint = (
            fingerprints[0]
            if len(fingerprints) == 1
            else hashlib.sha256(
                json.dumps(
                    [[dataset.name, fingerprint] for dataset, fingerprint in zip(self._datasets, fingerprints)]
                ).encode()
            ).hexdigest()
        )
        self._plan_cache: tuple[EpochPlan, np.ndarray, np.ndarray] | None = None
        self._start_epoch(0)
        if not len(self):
            raise ValueError(
                f"no bucket has rows for a batch of {tokens_per_batch} tokens on each of {self.world_size} ranks"
            )

    def _make_streams(self) -> list[Stream]:
        """Every source's rows in every bucket of every dataset, bucket by bucket (the order of the state's keys)."""
        streams, first_source = [], list(itertools.accumulate((len(d.sources) for d in self._datasets), initial=0))
        for k, (length, odds) in enumerate(zip(self._lengths, self._odds)):
            rows = [
                (d, source, runs)
                for d, dataset in enumerate(self._datasets)
                if length in dataset.buckets
                for source, runs in enumerate(dataset.source_runs(length))
            ]
            read = odds > 0 and any(runs for _, _, runs in rows)
            if read and self.tokens_per_batch % length:
                raise ValueError(
                    f"tokens_per_batch {self.tokens_per_batch} is not a multiple of bucket length {length}"
                )
            block_rows = self.tokens_per_batch // length if read else 0
            for index, (d, source, runs) in enumerate(rows):
                shape = StreamShape(k, index, sum(n for _, n in runs), block_rows)
                streams.append(Stream(d, first_source[d] + source, shape, runs))
        return streams

    @property
    def buckets(self) -> list[int]:
        return list(self._lengths)

    @property
    def epoch(self) -> int:
        return self._schedule.epoch

    @property
    def step(self) -> int:
        """The step the next batch is, within the epoch."""
        return self._step

    def __len__(self) -> int:
        """Steps in the current epoch."""
        return self._plan().end

    def leftover_rows(self) -> dict[int, int]:
        """Rows of each bucket the current epoch does not read: its streams' rows beyond the blocks its first
        passes take (fewer than one batch, blocks too few for a step on every rank, or a source a mixture reads less
        than once). The grids and orders change every epoch, so other rows are left out in the next."""
        plan = self._plan()
        left = dict.fromkeys(self._lengths, 0)
        for stream, taken in zip(self._streams, plan.consumed(plan.end)):
            shape = stream.shape
            left[self._lengths[shape.bucket]] += shape.rows - min(taken, shape.blocks) * shape.block_rows
        return left

    def __iter__(self) -> Iterator[dict]:
        if get_worker_info() is not None:
            raise RuntimeError(FOREIGN_WORKERS)
        if self._step >= self._plan().end:  # an epoch left with no step, as when resumed on more ranks near its end
            self._start_epoch(self.epoch + 1)
        return self._through_workers() if self.num_workers else self._batches(0, 1)

    def _batches(self, worker: int, workers: int) -> Iterator[dict]:
        """The epoch's remaining steps; DataLoader worker i of n reads every n-th, which the DataLoader's
        round-robin over workers puts back in order."""
        plan, streams, first_rows = self._rank_plan()
        for step in range(self._step + worker, plan.end, workers):
            ahead = range(step + workers, min(plan.end, step + workers * (PREFETCH_STEPS + 1)), workers)
            self._prefetch(plan, streams, first_rows, ahead)
            batch = self._batch(plan, streams, first_rows, step)
            self._advance(plan, step)
            yield batch

    def _through_workers(self) -> Iterator[dict]:
        for batch in DataLoader(_WorkerReads(self), batch_size=None, num_workers=self.num_workers):
            self._advance(self._plan(), batch["step"])
            yield batch

    def _located(self, plan: EpochPlan, streams: np.ndarray, first_rows: np.ndarray, step: int):
        """The stream this rank reads at `step`, its dataset's bucket and the runs of rows of its block there."""
        index = step - plan.schedule.step
        stream = self._streams[streams[index]]
        rows = self._datasets[stream.dataset].buckets[self._lengths[stream.shape.bucket]]
        return stream, rows, stream.runs(int(first_rows[index]), stream.shape.block_rows)

    def _batch(self, plan: EpochPlan, streams: np.ndarray, first_rows: np.ndarray, step: int) -> dict:
        stream, rows, runs = self._located(plan, streams, first_rows, step)
        input_ids, doc_starts, doc_offsets = rows.take(runs)
        numbers = (
            np.concatenate([np.arange(first, first + count) for first, count in runs])
            if len(runs) > 1
            else np.arange(runs[0][0], runs[0][0] + runs[0][1])
        )
        return {
            "input_ids": _tensor(input_ids),
            "bucket": rows.length,
            "doc_starts": _tensor(doc_starts),
            "doc_offsets": torch.from_numpy(doc_offsets),
            "source": torch.full((len(numbers),), stream.source, dtype=torch.int32),
            "rows": torch.from_numpy(numbers),
            "epoch": plan.schedule.epoch,
            "step": step,
        }

    def _prefetch(self, plan: EpochPlan, streams: np.ndarray, first_rows: np.ndarray, steps: range) -> None:
        """Starts fetching the shards of these steps of this epoch (datasets in a bucket; else nothing to do)."""
        if all(is_local(dataset.directory) for dataset in self._datasets):
            return
        for step in steps:
            stream, rows, runs = self._located(plan, streams, first_rows, step)
            if not is_local(self._datasets[stream.dataset].directory):
                rows.prefetch(runs)

    def _advance(self, plan: EpochPlan, step: int) -> None:
        """Position after `step`: the next step, or after the epoch's last step the next epoch's first."""
        if step + 1 < plan.end:
            self._step = step + 1
        else:
            self._start_epoch(plan.schedule.epoch + 1)

    def _start_epoch(self, epoch: int) -> None:
        self._schedule = Schedule(epoch, 0, self.world_size, (0,) * len(self._streams), tuple(self._targets(epoch)))
        self._step = 0

    def _targets(self, epoch: int, step: int = 0, done: Sequence[int] | None = None) -> list[int]:
        """Blocks of each stream the epoch reads (loader/mixture.py); given `done`, those it reads from `step` on."""
        return self.mixture.targets(
            [s.source for s in self._streams],
            [s.shape.blocks for s in self._streams],
            self.tokens_per_batch,
            mixture_rng(self.seed, epoch, step),
            done,
        )

    def _plan(self) -> EpochPlan:
        return self._rank_plan()[0]

    def _new_plan(self, schedule: Schedule) -> EpochPlan:
        return EpochPlan(self.seed, schedule, [stream.shape for stream in self._streams], self._odds, self.cycles)

    def _rank_plan(self) -> tuple[EpochPlan, np.ndarray, np.ndarray]:
        """The current schedule's plan, and the stream and first row (in the stream) this rank reads at each of its
        steps."""
        if self._plan_cache is None or self._plan_cache[0].schedule != self._schedule:
            plan = self._new_plan(self._schedule)
            self._plan_cache = (plan, *plan.blocks(self.rank))
            if self.rank == 0 and self._schedule.step == 0:
                log.info("epoch %d: %d steps; rows left out per bucket %s", self.epoch, plan.end, self.leftover_rows())
        return self._plan_cache

    def state_dict(self) -> dict:
        """Where the next batch comes from, the same on every rank: save it from one. JSON-serialisable; its
        `directory` is the build read (a LATEST resolved), to resume from."""
        schedule = self._schedule
        return {
            "format": STATE_FORMAT,
            **self._settings(),
            "mixture": self.mixture.to_json(),
            "directory": self.directory,
            "epoch": schedule.epoch,
            "step": self._step,
            "consumed_rows": self._rows_of(self._plan().consumed(self._step)),
            "schedule": {
                "step": schedule.step,
                "world_size": schedule.world_size,
                "taken_rows": self._rows_of(schedule.taken),
                "remaining_rows": self._rows_of(schedule.remaining),
            },
        }

    def load_state_dict(self, state: dict, new_weights: bool = False) -> BucketLoader:
        """Continue where `state` was saved: the same batches on the same world size; on another world size the
        same rows of the epoch from the saved position on, none repeated, none skipped. A state saved with another
        mixture (weights, long-document factor, epoch size) is refused unless `new_weights`: then the rest of the
        epoch reads the new mixture, continuing each source where it stopped."""
        if state.get("format") == PREVIOUS_STATE_FORMAT:
            state = self._upgraded(state)
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"loader state of format {state.get('format')!r}, this version reads {STATE_FORMAT!r}")
        if state["dataset"] != self._fingerprint:  # e.g. a LATEST that a nightly publish has moved on since
            raise ValueError(
                f"loader state was saved reading {state.get('directory', 'another dataset')}, whose "
                f"shards differ from {self.directory}'s: make the loader from that build to resume"
            )
        for key, value in self._settings().items():
            if state[key] != value:
                raise ValueError(f"loader state was saved with {key} {state[key]!r}, this loader has {value!r}")
        mixture = self.mixture.to_json()
        if state["mixture"] != mixture and not new_weights:
            raise ValueError(
                f"loader state was saved with the mixture {state['mixture']}, this loader has "
                f"{mixture}: pass new_weights=True to read the rest of the epoch with the new one"
            )
        saved, step, consumed = state["schedule"], state["step"], self._blocks_of(state["consumed_rows"])
        plan = self._new_plan(
            Schedule(
                state["epoch"],
                saved["step"],
                saved["world_size"],
                self._blocks_of(saved["taken_rows"]),
                self._blocks_of(saved["remaining_rows"]),
            )
        )
        if not plan.schedule.step <= step <= plan.end or plan.consumed(step) != consumed:
            raise ValueError("loader state is inconsistent: its consumed_rows do not follow from its schedule")
        schedule = plan.schedule
        if state["mixture"] != mixture:
            schedule = plan.following(step, self.world_size, self._targets(state["epoch"], step, consumed))
        elif schedule.world_size != self.world_size:  # a new schedule for the rest of the epoch, from the same rows
            schedule = plan.following(step, self.world_size)
        self._schedule, self._step = schedule, step
        return self

    def _upgraded(self, state: dict) -> dict:
        """A state of the format before sources, as this one: its rows per bucket are its one source's."""
        if any(len([s for s in self._streams if s.shape.bucket == k]) > 1 for k in range(len(self._lengths))):
            raise ValueError(f"loader state of format {PREVIOUS_STATE_FORMAT!r} is of a dataset with one source")

        def by_length(rows: dict) -> dict:
            return {key: rows[str(self._lengths[s.shape.bucket])] for key, s in zip(self._keys, self._streams)}

        schedule = state["schedule"]
        taken = self._blocks_of(by_length(schedule["consumed_rows"]))
        remaining = [target - done for target, done in zip(self._targets(state["epoch"]), taken)]
        return dict(
            state,
            format=STATE_FORMAT,
            mixture=Mixture(self.sources, None, 1, None).to_json(),
            consumed_rows=by_length(state["consumed_rows"]),
            schedule={
                "step": schedule["step"],
                "world_size": schedule["world_size"],
                "taken_rows": by_length(schedule["consumed_rows"]),
                "remaining_rows": self._rows_of(remaining),
            },
        )

    def _settings(self) -> dict:
        return {
            "dataset": self._fingerprint,
            "seed": self.seed,
            "tokens_per_batch": self.tokens_per_batch,
            "curriculum": self._odds.tolist(),
            "cycles": self.cycles,
        }

    def _rows_of(self, blocks: Sequence[int]) -> dict[str, int]:
        return {key: n * s.shape.block_rows for key, n, s in zip(self._keys, blocks, self._streams)}

    def _blocks_of(self, rows: dict[str, int]) -> tuple[int, ...]:
        blocks = []
        for key, stream in zip(self._keys, self._streams):
            n, block_rows = rows[key], stream.shape.block_rows
            if n and (not block_rows or n % block_rows):
                raise ValueError(f"loader state: {n} rows of {key} are not whole batches")
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
        assert worker is not None, "iterated in a DataLoader worker"
        return self._loader._batches(worker.id, worker.num_workers)
