import json
from collections import Counter
from itertools import islice

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

from tests.loader.conftest import build_dataset, read_rows, take
from vocaloom.loader import BucketLoader, cu_seqlens
from vocaloom.loader.bucket_loader import FOREIGN_WORKERS

pytestmark = pytest.mark.integration

TOKENS = 1024  # 32, 16 and 8 rows a batch for buckets 32, 64, 128


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    directory = tmp_path_factory.mktemp("loader") / "ds"
    manifest = build_dataset(directory)
    return directory, manifest, read_rows(directory, manifest)


def make(directory, **options) -> BucketLoader:
    options = {"tokens_per_batch": TOKENS, "curriculum": "grow_p2", "cycles": 2, "seed": 3, **options}
    return BucketLoader(directory, **options)


def summary(batches) -> list[tuple]:
    """What identifies a batch: epoch, step, bucket and the rows it holds."""
    return [(b["epoch"], b["step"], b["bucket"], tuple(b["rows"].tolist())) for b in batches]


def test_batches_hold_the_rows_with_a_constant_token_count(dataset):
    directory, manifest, truth = dataset
    loader = make(directory)
    buckets: Counter[int] = Counter()
    for batch in loader:
        length, ids = batch["bucket"], batch["input_ids"]
        assert ids.dtype == torch.int32 and ids.shape == (TOKENS // length, length + 1)
        rows = batch["rows"].numpy()
        np.testing.assert_array_equal(ids.numpy(), truth[length][0][rows])
        starts, offsets = batch["doc_starts"].tolist(), batch["doc_offsets"].tolist()
        assert [starts[offsets[r] : offsets[r + 1]] for r in range(len(rows))] == [truth[length][1][r] for r in rows]
        boundaries, _ = cu_seqlens(batch)
        assert boundaries[-1] == TOKENS and len(boundaries) == sum(s < length for s in starts) + 1
        buckets[length] += 1
    assert loader.epoch == 1 and loader.step == 0
    assert sum(buckets.values()) == len(loader)
    assert dict(buckets) == {b["length"]: b["rows"] // (TOKENS // b["length"]) for b in manifest["buckets"]}


def test_rows_in_one_uncompressed_shard_come_as_views_of_the_mapped_file(dataset):
    directory, manifest, _ = dataset
    shard_of = {
        b["length"]: np.repeat(np.arange(len(b["shards"])), [s["rows"] for s in b["shards"]])
        for b in manifest["buckets"]
    }
    loader = make(directory, max_open_shards=1000)
    kept = []  # batches are kept, so that no copy could be freed and its memory reused
    addresses: dict[tuple[int, int], list[int]] = {}
    for _ in range(2):
        for batch in loader:
            ids, rows = batch["input_ids"], batch["rows"].numpy()
            if len(set(shard_of[batch["bucket"]][rows])) == 1:
                kept.append(ids)
                for i, row in enumerate(rows):
                    addresses.setdefault((batch["bucket"], row), []).append(ids[i].data_ptr())
    read_twice = [places for places in addresses.values() if len(places) == 2]
    assert len(read_twice) > 5000 and all(first == second for first, second in read_twice)


def test_ranks_draw_the_same_bucket_and_share_out_every_row(dataset):
    directory, manifest, _ = dataset
    world = 3
    ranks = [make(directory, rank=r, world_size=world) for r in range(world)]
    left_out = []
    for _ in range(2):
        leftover = ranks[0].leftover_rows()
        per_rank = [list(loader) for loader in ranks]
        assert len({len(batches) for batches in per_rank}) == 1
        for step in zip(*per_rank):
            assert len({b["bucket"] for b in step}) == 1 and len({b["step"] for b in step}) == 1
        served = Counter((b["bucket"], row) for batches in per_rank for b in batches for row in b["rows"].tolist())
        assert max(served.values()) == 1  # disjoint across ranks and steps
        for bucket in manifest["buckets"]:
            rows = {row for (length, row) in served if length == bucket["length"]}
            assert len(rows) + leftover[bucket["length"]] == bucket["rows"]
        left_out.append({(b["length"], row) for b in manifest["buckets"] for row in range(b["rows"])} - set(served))
    # Each epoch leaves out other rows: the grid and the order of blocks change every epoch.
    assert left_out[0] and left_out[1] and left_out[0] != left_out[1]


def test_grow_p2_reads_short_buckets_first_in_each_cycle(dataset):
    directory, _, _ = dataset
    steps = [b["bucket"] for b in make(directory, cycles=1)]
    mean_step = {length: np.mean([i for i, b in enumerate(steps) if b == length]) for length in (32, 64, 128)}
    assert mean_step[32] < mean_step[64] < mean_step[128]
    uniform = [b["bucket"] for b in make(directory, curriculum="uniform")]
    assert Counter(uniform) == Counter(steps) and uniform != steps


def test_resume_on_the_same_world_size_sees_the_same_batches(dataset):
    directory, _, _ = dataset
    world, cut = 2, 700  # the run goes into the second epoch
    straight = [summary(take(make(directory, rank=r, world_size=world), 1000)) for r in range(world)]
    for rank in range(world):
        first = make(directory, rank=rank, world_size=world)
        before = summary(take(first, cut))
        state = json.loads(json.dumps(first.state_dict()))  # the state survives a JSON round trip
        resumed = make(directory, rank=rank, world_size=world).load_state_dict(state)
        assert before + summary(take(resumed, 1000 - cut)) == straight[rank]


@pytest.mark.parametrize("before, after", [(4, 3), (2, 5)])
def test_resume_on_another_world_size_neither_repeats_nor_skips_a_row(dataset, before, after):
    directory, manifest, _ = dataset
    old = [make(directory, rank=r, world_size=before) for r in range(before)]
    read = [summary(take(loader, 60)) for loader in old]
    state = old[0].state_dict()
    assert all(loader.state_dict() == state for loader in old)
    new = [make(directory, rank=r, world_size=after).load_state_dict(state) for r in range(after)]
    assert all(loader.step == 60 for loader in new)
    leftover = new[0].leftover_rows()
    read += [summary(loader) for loader in new]
    served = Counter((bucket, row) for batches in read for (_, _, bucket, rows) in batches for row in rows)
    assert max(served.values()) == 1
    for bucket in manifest["buckets"]:
        length = bucket["length"]
        count = sum(1 for (b, _) in served if b == length)
        # Rows left out: fewer than a batch, or blocks too few for one step on each of the new ranks.
        assert bucket["rows"] - count == leftover[length] < TOKENS // length * (after + 1)
    assert all(loader.epoch == 1 for loader in new)


def test_after_a_new_world_size_its_own_checkpoints_resume_exactly(dataset):
    directory, _, _ = dataset
    old = make(directory, world_size=4)
    take(old, 30)
    moved = [make(directory, rank=r, world_size=3).load_state_dict(old.state_dict()) for r in range(3)]
    for loader in moved:
        take(loader, 20)
    state = moved[0].state_dict()
    assert (state["schedule"]["step"], state["schedule"]["world_size"]) == (30, 3)
    resumed = [make(directory, rank=r, world_size=3).load_state_dict(state) for r in range(3)]
    assert [summary(take(a, 40)) for a in moved] == [summary(take(b, 40)) for b in resumed]


def test_dataloader_workers_give_the_same_batches_and_state(dataset):
    directory, _, _ = dataset
    straight = make(directory)
    expected = summary(take(straight, 150))
    with_workers = make(directory, num_workers=2)
    assert summary(take(with_workers, 150)) == expected
    assert with_workers.state_dict() == straight.state_dict()


@pytest.mark.parametrize("loader_class", [DataLoader, StatefulDataLoader])
def test_another_dataloaders_workers_are_refused_in_one_line(dataset, loader_class):
    # Their workers' copies never tell the main process where they are: resumes repeated steps (5,5,7,7,...).
    with pytest.raises(RuntimeError) as refused:
        next(iter(loader_class(make(dataset[0]), batch_size=None, num_workers=2)))
    assert FOREIGN_WORKERS in str(refused.value) and "\n" not in FOREIGN_WORKERS


def test_stateful_dataloader_resumes_exactly_around_the_loaders_own_workers(dataset):
    directory, _, _ = dataset
    expected = summary(take(make(directory), 12))
    outer = StatefulDataLoader(make(directory, num_workers=2), batch_size=None)
    batches = iter(outer)
    assert summary(islice(batches, 5)) == expected[:5]
    state = outer.state_dict()
    assert summary(islice(batches, 7)) == expected[5:]
    resumed = StatefulDataLoader(make(directory, num_workers=2), batch_size=None)
    resumed.load_state_dict(state)
    again = summary(islice(iter(resumed), 7))
    assert [step for _, step, _, _ in again] == list(range(5, 12))
    assert again == expected[5:]


def test_state_from_another_configuration_is_refused(dataset):
    directory, _, _ = dataset
    state = make(directory).state_dict()
    with pytest.raises(ValueError, match="saved with tokens_per_batch 1024, this loader has 2048"):
        make(directory, tokens_per_batch=2048).load_state_dict(state)
    with pytest.raises(ValueError, match="saved with seed 3"):
        make(directory, seed=4).load_state_dict(state)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"tokens_per_batch": 96}, "tokens_per_batch 96 is not a multiple of bucket length 64"),
        ({"curriculum": [1, 2]}, "curriculum has 2 odds, the dataset has 3 buckets"),
        ({"curriculum": "grow"}, "curriculum 'grow' is none of"),
        ({"rank": 2, "world_size": 2}, "rank 2 is outside 0..1"),
        ({"world_size": 100000}, "no bucket has rows for a batch"),
    ],
)
def test_bad_options_are_refused_in_one_line(dataset, options, message):
    with pytest.raises(ValueError, match=message):
        make(dataset[0], **options)


def test_zero_odds_leave_a_bucket_out(dataset):
    directory, manifest, _ = dataset
    loader = make(directory, curriculum=[1, 0, 1], tokens_per_batch=96 * 4)  # 384 is no multiple of 64: unused
    assert loader.leftover_rows()[64] == manifest["buckets"][1]["rows"]
    assert {b["bucket"] for b in loader} == {32, 128}
