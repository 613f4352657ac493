"""Mixtures in the loader: named sources read by weight, long documents upsampled by their whole length, several
datasets at once, and exact resume with and without a change of weights."""

import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from tests.loader.conftest import build_dataset, read_rows, split_sample, take
from vocaloom.loader import BucketLoader
from vocaloom.loader.mixture import apportion

pytestmark = pytest.mark.integration

TOKENS = 1024
SOURCES = ["books", "books.long", "code", "code.long", "web", "web.long"]
WEIGHTS = {"web": 0.2, "books": 0.3, "code": 0.5}  # natural shares about 0.5, 0.25, 0.25


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixture")
    directory = folder / "ds"
    manifest = build_dataset(directory, *split_sample(folder / "corpus"), "--long-documents", "500")
    return directory, manifest


def make(directory, **options) -> BucketLoader:
    return BucketLoader(
        directory, **{"tokens_per_batch": TOKENS, "curriculum": "grow_p2", "cycles": 2, "seed": 3, **options}
    )


def sources_of_rows(directory, manifest) -> dict[int, np.ndarray]:
    """Each bucket's rows' source column, rows numbered in manifest shard order."""
    return {
        b["length"]: np.concatenate(
            [pa.ipc.open_file(str(directory / s["path"])).read_all().column("source").to_numpy() for s in b["shards"]]
        )
        for b in manifest["buckets"]
    }


def shares(loader: BucketLoader, batches) -> dict[str, float]:
    """Token shares by source (a long documents' source counted under its own)."""
    blocks = Counter(loader.sources[int(b["source"][0])].split(".")[0] for b in batches)
    return {name: n / sum(blocks.values()) for name, n in blocks.items()}


def summary(batches) -> list[tuple]:
    return [(b["epoch"], b["step"], b["bucket"], int(b["source"][0]), tuple(b["rows"].tolist())) for b in batches]


def test_batches_say_each_rows_source_and_an_epoch_reads_every_row_once(mixed):
    directory, manifest = mixed
    loader = make(directory)
    assert loader.sources == SOURCES == sorted(manifest["sources"])
    truth, ids = sources_of_rows(directory, manifest), read_rows(directory, manifest)
    read: Counter[tuple[int, int]] = Counter()
    for batch in loader:
        rows = batch["rows"].numpy()
        assert (batch["source"].numpy() == truth[batch["bucket"]][rows]).all()
        np.testing.assert_array_equal(batch["input_ids"].numpy(), ids[batch["bucket"]][0][rows])
        read.update((batch["bucket"], row) for row in rows.tolist())
    assert max(read.values()) == 1
    leftover = sum(loader.leftover_rows().values())
    assert sum(b["rows"] for b in manifest["buckets"]) - len(read) == leftover


def test_weights_give_exact_token_shares_per_epoch(mixed):
    directory, _ = mixed
    blocks = 600
    loader = make(directory, source_weights=WEIGHTS, epoch_tokens=blocks * TOKENS)
    batches = list(loader)
    assert len(batches) == blocks  # one rank: every block of the epoch is a step
    counts = Counter(loader.sources[int(b["source"][0])].split(".")[0] for b in batches)
    assert counts == {"web": 120, "books": 180, "code": 300}


def test_shares_hold_through_the_epoch_and_sources_repeat_in_a_new_order(mixed):
    directory, _manifest = mixed
    loader = make(directory, source_weights=WEIGHTS, world_size=2)
    epochs = [take(loader, len(loader)) for _ in range(2)]
    for batches in epochs:
        quarter = batches[: len(batches) // 4]  # any stretch of an epoch mixes the sources near their weights
        assert all(abs(shares(loader, quarter)[name] - weight) < 0.05 for name, weight in WEIGHTS.items())
    # code is read about twice an epoch: its rows come back, on a new grid and in a new order.
    code = loader.sources.index("code")
    reads = [
        [tuple(b["rows"].tolist()) for b in batches if int(b["source"][0]) == code and b["bucket"] == 32]
        for batches in epochs
    ]
    per_row = Counter(row for block in reads[0] for row in block)
    assert max(per_row.values()) >= 2 and reads[0] != reads[1]


def test_long_documents_are_upsampled_by_their_whole_length(mixed):
    directory, _manifest = mixed
    natural = make(directory, source_weights=WEIGHTS)
    upsampled = make(directory, source_weights=WEIGHTS, long_document_factor=4.0)

    def blocks(loader):
        return Counter((b["bucket"], loader.sources[int(b["source"][0])]) for b in loader)

    before, after = blocks(natural), blocks(upsampled)
    for length in (32, 64, 128):  # every bucket's long pieces, not only the longest bucket's, are read 4x as often
        for name in WEIGHTS:
            ratio = (after[length, name + ".long"] / after[length, name]) / (
                before[length, name + ".long"] / before[length, name]
            )
            assert ratio == pytest.approx(4.0, rel=0.25)
    assert shares(
        upsampled, [{"source": [upsampled.sources.index(s)]} for (_, s), n in after.items() for _ in range(n)]
    ) == pytest.approx(WEIGHTS, abs=0.002)


def test_two_datasets_at_once_with_their_sources_named_apart(mixed, tmp_path):
    directory, manifest = mixed
    plain = tmp_path / "builds" / "2026-11-26T030000Z"  # a nightly build's folder
    plain_manifest = build_dataset(plain)
    listed = make([directory, plain])  # named by their folders
    assert listed.sources == [f"ds/{s}" for s in SOURCES] + ["2026-11-26T030000Z/default"]
    loader = make({"mix": directory, "plain": plain}, source_weights={"mix/code": 1, "plain/default": 1})
    assert loader.sources == [f"mix/{s}" for s in SOURCES] + ["plain/default"]
    assert loader.directory == {"mix": str(directory.resolve()), "plain": str(plain.resolve())}
    with pytest.raises(ValueError, match="two datasets are named alike"):
        make([directory, directory])
    truth = {"mix": read_rows(directory, manifest), "plain": read_rows(plain, plain_manifest)}
    read: Counter[str] = Counter()
    for batch in loader:
        name = loader.sources[int(batch["source"][0])]
        assert name.split("/")[1].split(".")[0] in ("code", "default")
        dataset = name.split("/")[0]
        np.testing.assert_array_equal(
            batch["input_ids"].numpy(), truth[dataset][batch["bucket"]][0][batch["rows"].numpy()]
        )
        read[dataset] += 1
    assert read["mix"] == pytest.approx(read["plain"], abs=1)
    state = loader.state_dict()
    assert state["directory"] == loader.directory
    with pytest.raises(ValueError, match="saved reading"):
        make({"mix": directory, "other": plain}, source_weights={"mix/code": 1, "other/default": 1}).load_state_dict(
            state
        )


def test_resume_is_exact_with_the_same_weights(mixed):
    directory, _ = mixed
    straight = summary(take(make(directory, source_weights=WEIGHTS, world_size=2, rank=1), 600))
    first = make(directory, source_weights=WEIGHTS, world_size=2, rank=1)
    before = summary(take(first, 250))
    state = json.loads(json.dumps(first.state_dict()))
    resumed = make(directory, source_weights=WEIGHTS, world_size=2, rank=1).load_state_dict(state)
    assert before + summary(take(resumed, 350)) == straight


def test_a_weight_change_is_refused_unless_asked_and_then_applies_from_the_next_step(mixed):
    directory, _ = mixed
    first = make(directory, source_weights=WEIGHTS)
    before = take(first, 300)
    state = first.state_dict()
    new = {"web": 0.5, "books": 0.2, "code": 0.3}
    with pytest.raises(ValueError, match=r"saved with the mixture .* pass new_weights=True") as refused:
        make(directory, source_weights=new).load_state_dict(state)
    assert "\n" not in str(refused.value)
    changed = make(directory, source_weights=new).load_state_dict(state, new_weights=True)
    assert (changed.epoch, changed.step) == (0, 300)
    after = list(changed)
    assert shares(changed, after) == pytest.approx(new, abs=0.01)
    # No row read before the change is read again in the epoch (web and books are read less than once a pass).
    seen = {
        (b["bucket"], row)
        for b in before
        for row in b["rows"].tolist()
        if changed.sources[int(b["source"][0])].split(".")[0] != "code"
    }
    again = {(b["bucket"], row) for b in after for row in b["rows"].tolist()}
    assert not seen & again
    # A checkpoint after the change resumes exactly, with the new weights and no flag.
    partial = make(directory, source_weights=new).load_state_dict(state, new_weights=True)
    take(partial, 100)
    resumed = make(directory, source_weights=new).load_state_dict(partial.state_dict())
    assert summary(take(partial, 50)) == summary(take(resumed, 50))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"source_weights": {"web": -1, "code": 1}}, "source weight of 'web' must be a finite number >= 0, not -1"),
        ({"source_weights": {"web": 0, "code": 0}}, "source_weights are all zero"),
        (
            {"source_weights": {"news": 1}},
            "source_weights names unknown sources 'news': the sources are books, code, web",
        ),
        ({"source_weights": {"web.long": 1}}, "unknown sources 'web.long'"),
        ({"source_weights": [("web", 1)]}, "source_weights must be a mapping"),
        ({"long_document_factor": 0}, "long_document_factor must be a finite number > 0"),
        ({"epoch_tokens": 0}, "epoch_tokens must be an integer >= 1"),
    ],
)
def test_bad_mixtures_are_refused_in_one_line(mixed, options, message):
    with pytest.raises(ValueError, match=message) as refused:
        make(mixed[0], **options)
    assert "\n" not in str(refused.value)


def test_shares_round_within_one_and_right_on_average():
    masses = [0.4, 1.0, 2.3, 0.05]
    rng = np.random.default_rng(0)
    draws = np.array([apportion(7, masses, rng.random()) for _ in range(4000)])
    exact = 7 * np.array(masses) / sum(masses)
    assert (draws.sum(axis=1) == 7).all() and (np.abs(draws - exact) < 1).all()
    np.testing.assert_allclose(draws.mean(axis=0), exact, atol=0.03)
    assert apportion(10, [1, 3, 6], 0.99) == [1, 3, 6]


def test_workers_and_another_world_size_keep_a_mixture_exact(mixed):
    directory, _ = mixed
    straight = make(directory, source_weights=WEIGHTS, long_document_factor=2.0)
    expected = summary(take(straight, 120))
    with_workers = make(directory, source_weights=WEIGHTS, long_document_factor=2.0, num_workers=2)
    assert summary(take(with_workers, 120)) == expected and with_workers.state_dict() == straight.state_dict()
    # Three ranks take over from one: each source's rows go on where its pass stopped, none read twice.
    ranks = [
        make(directory, source_weights=WEIGHTS, long_document_factor=2.0, rank=r, world_size=3).load_state_dict(
            straight.state_dict()
        )
        for r in range(3)
    ]
    rest = [b for loader in ranks for b in loader]
    web = {n for n, name in enumerate(straight.sources) if name.startswith("web")}  # read less than a pass
    reads = Counter(
        (b["bucket"], row)
        for b in rest + take(make(directory, source_weights=WEIGHTS, long_document_factor=2.0), 120)
        if int(b["source"][0]) in web
        for row in b["rows"].tolist()
    )
    assert reads and max(reads.values()) == 1
