"""Fuzzing the two readers of a dataset nobody vouches for: `verify` and `BucketLoader` ("trust nothing").

A few hundred seeded mutations of a small dataset: shard bytes flipped, truncated or extended (half of them with the
manifest re-hashed to match, as a writer bug or a careful tamper would leave it), manifest fields replaced or
dropped, the manifest's own bytes damaged, shard paths pointed outside, at a FIFO, a device or a folder. Neither
reader (nor `inspect`) may crash, hang or explain itself in more than one line; BucketLoader never yields a row that
differs from the clean dataset's unless the mutation was re-hashed, and then never one that breaks the shard invariants.
"""

import copy
import hashlib
import json
import math
import os
import random
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import zstandard

from tests.loader.conftest import build_dataset
from vocaloom import assets
from vocaloom.loader import BucketLoader
from vocaloom.loader.shards import ShardIntegrityError
from vocaloom.pipelines.cli import main
from vocaloom.pipelines.verify import verify
from vocaloom.schemas.manifest import MANIFEST, ManifestError

pytestmark = pytest.mark.integration

CASES = 300
HOSTILE_VALUES: list[object] = [
    None,
    -1,
    0,
    2**63,
    1.5,
    math.nan,
    "",
    "../../etc/passwd",
    "/dev/zero",
    [],
    {},
    [1, [2]],
    True,
    "x" * 300,
]


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, list]:
    folder = tmp_path_factory.mktemp("fuzz")
    with zstandard.open(assets.bundled_path("bundled:sample"), "rt") as f:
        lines = [line for _, line in zip(range(400), f)]
    (folder / "corpus.jsonl").write_text("".join(lines))
    build_dataset(folder / "ds", "--input", str(folder / "corpus.jsonl"), "--compression", "none")
    return folder / "ds", read_batches(folder / "ds")


def read_batches(directory: Path) -> list:
    """One epoch: every row of every shard."""
    loader = BucketLoader(str(directory), tokens_per_batch=512, curriculum="uniform", seed=1)
    return [
        (
            batch["bucket"],
            batch["input_ids"].numpy().copy(),
            batch["doc_starts"].numpy().copy(),
            batch["doc_offsets"].numpy().copy(),
        )
        for batch in loader
    ]


@contextmanager
def deadline(seconds: int):
    def hung(*_):
        raise TimeoutError(f"no answer in {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from leaves(value, (*path, i))
    yield path


def shard_entries(manifest: dict) -> list[dict]:
    return [entry for bucket in manifest["buckets"] for entry in bucket["shards"]]


def rehash(directory: Path, manifest: dict, entry: dict) -> None:
    data = (directory / entry["path"]).read_bytes()
    entry["bytes"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()


def make_special(path: Path, kind: str) -> None:
    """Replaces the file at `path` with a FIFO, a link to /dev/zero (a "device") or a folder."""
    path.unlink()
    {"fifo": os.mkfifo, "device": lambda p: p.symlink_to("/dev/zero"), "folder": Path.mkdir}[kind](path)


def mutate(directory: Path, r: random.Random) -> tuple[str, bool]:
    """Mutates the dataset in `directory`; returns what was done and whether the manifest was re-hashed to match."""
    manifest = json.loads((directory / MANIFEST).read_text())
    entry = r.choice(shard_entries(manifest))
    shard = directory / entry["path"]
    kind = r.choice(["flip", "truncate", "extend", "leaf", "drop", "manifest-bytes", "path", "special"])
    rehashed = kind in ("flip", "truncate", "extend") and r.random() < 0.5
    if kind in ("flip", "truncate", "extend"):
        data = bytearray(shard.read_bytes())
        if kind == "flip":
            for _ in range(r.randint(1, 8)):
                data[r.randrange(len(data))] ^= 1 << r.randrange(8)
        elif kind == "truncate":
            del data[r.randrange(len(data)) :]
        else:
            data += r.randbytes(r.randint(1, 4096))
        shard.write_bytes(bytes(data))
        if rehashed:
            rehash(directory, manifest, entry)
    elif kind in ("leaf", "drop"):
        path = r.choice([p for p in leaves(manifest) if p])
        parent = manifest
        for key in path[:-1]:
            parent = parent[key]
        if kind == "leaf":
            parent[path[-1]] = copy.deepcopy(r.choice(HOSTILE_VALUES))
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
        kind += ":" + "/".join(map(str, path))
    elif kind == "manifest-bytes":
        text = bytearray((directory / MANIFEST).read_bytes())
        if r.random() < 0.5:
            del text[r.randrange(len(text)) :]
        else:
            text[r.randrange(len(text))] = r.randrange(256)
        (directory / MANIFEST).write_bytes(bytes(text))
        return kind, False
    elif kind == "path":
        outside = directory.parent / f"outside-{r.randrange(10**6)}.arrow"
        shutil.copy(shard, outside)
        entry["path"] = r.choice(
            [os.path.relpath(outside, directory), str(outside), entry["path"].replace("data/", "data/../data/")]
        )
    else:
        special = r.choice(["fifo", "device", "folder", "link-out"])
        if special == "link-out":
            shard.unlink()
            outside = directory.parent / "outside-link.arrow"
            outside.write_bytes(b"ARROW1")
            shard.symlink_to(outside)
        else:
            make_special(shard, special)
        kind += ":" + special
    (directory / MANIFEST).write_text(json.dumps(manifest))
    return kind, rehashed


def inspect_answers_in_one_line_or_a_report(directory: Path, capsys) -> None:
    status = main(["inspect", str(directory)])
    out, err = capsys.readouterr()
    assert (status == 0 and "| records read |" in out and not err) or (status == 2 and err.count("\n") == 1), err


def one_line(error: BaseException) -> bool:
    return "\n" not in str(error) and bool(str(error))


def check_rows_valid(batch, vocab_size: int) -> None:
    bucket, ids, starts, offsets = batch
    assert ids.shape[1] == bucket + 1 and ids.min() >= 0 and ids.max() < vocab_size
    assert offsets[0] == 0 and offsets[-1] == len(starts) and np.all(np.diff(offsets) >= 1)
    for row in range(len(offsets) - 1):
        row_starts = starts[offsets[row] : offsets[row + 1]]
        assert row_starts[0] == 0 and np.all(np.diff(row_starts) > 0) and row_starts[-1] <= bucket


@pytest.mark.parametrize("seed", range(CASES))
def test_mutated_dataset_is_refused_in_one_line_or_read_exactly(clean, tmp_path, capsys, seed):
    source, clean_batches = clean
    directory = tmp_path / "ds"
    shutil.copytree(source, directory)
    kind, rehashed = mutate(directory, random.Random(seed))
    with deadline(60):
        try:
            problems = verify(str(directory))
            assert all(one_line(ValueError(p)) for p in problems), problems
        except ManifestError as e:
            assert one_line(e), (kind, str(e))
        inspect_answers_in_one_line_or_a_report(directory, capsys)
        try:
            batches = read_batches(directory)
        except (ManifestError, ShardIntegrityError, ValueError) as e:
            assert one_line(e), (kind, str(e))
            return
    vocab_size = json.loads((source / MANIFEST).read_text())["vocab"]["size"]
    for batch, clean_batch in zip(batches, clean_batches, strict=True):
        if rehashed:
            check_rows_valid(batch, vocab_size)
        else:
            assert batch[0] == clean_batch[0] and all(
                np.array_equal(a, b) for a, b in zip(batch[1:], clean_batch[1:])
            ), kind


def rewrite_manifest(directory: Path, change) -> None:
    manifest = json.loads((directory / MANIFEST).read_text())
    change(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def point_first_shard(directory: Path, how: str) -> str:
    """The cases: a shard path leading out of the dataset, or a shard that is /dev/zero or a FIFO."""
    manifest = json.loads((directory / MANIFEST).read_text())
    entry = manifest["buckets"][0]["shards"][0]
    shard = directory / entry["path"]
    if how in ("dotdot", "absolute"):
        outside = directory.parent / "elsewhere.arrow"
        shutil.copy(shard, outside)
        rewrite_manifest(
            directory,
            lambda m: m["buckets"][0]["shards"][0].update(
                path=f"../{outside.name}" if how == "dotdot" else str(outside)
            ),
        )
        return "manifest.json: bucket"
    shard.unlink()
    if how == "dev-zero":
        shard.symlink_to("/dev/zero")
        return "leads outside the dataset"
    os.mkfifo(shard)
    return "not a regular file"


@pytest.mark.parametrize("how", ["dotdot", "absolute", "dev-zero", "fifo"])
def test_shards_outside_or_special_are_refused_without_reading(clean, tmp_path, capsys, how):
    directory = tmp_path / "ds"
    shutil.copytree(clean[0], directory)
    expected = point_first_shard(directory, how)
    with deadline(30):
        try:
            problems = verify(str(directory))
            assert len(problems) == 1 and expected in problems[0]
        except ManifestError as e:
            assert expected in str(e) and one_line(e)
        with pytest.raises((ManifestError, ShardIntegrityError), match=expected):
            read_batches(directory)


def test_a_malformed_shard_whose_sha256_matches_is_refused(clean, tmp_path):
    """A writer bug (or a re-hashed tamper): doc_starts offsets far past the row, token ids past the vocabulary."""
    import pyarrow as pa

    directory = tmp_path / "ds"
    shutil.copytree(clean[0], directory)
    manifest = json.loads((directory / MANIFEST).read_text())
    bucket = manifest["buckets"][0]
    entry, length = bucket["shards"][0], bucket["length"]
    table = pa.ipc.open_file(directory / entry["path"]).read_all()
    for column, broken in (
        ("doc_starts", pa.array([[0, 9_633_798]] * table.num_rows, pa.list_(pa.int32()))),
        (
            "input_ids",
            pa.array(
                [[manifest["vocab"]["size"] + 5] * (length + 1)] * table.num_rows, pa.list_(pa.int32(), length + 1)
            ),
        ),
    ):
        bad = table.set_column(table.schema.get_field_index(column), table.schema.field(column), broken)
        with pa.ipc.new_file(directory / entry["path"], table.schema) as writer:
            writer.write_table(bad)
        rewrite_manifest(directory, lambda m: rehash(directory, m, m["buckets"][0]["shards"][0]))
        problems = verify(str(directory))
        assert len(problems) == 1 and ("doc_starts" in problems[0] or "token ids outside" in problems[0])
        with pytest.raises(ShardIntegrityError, match=r"doc_starts|token ids outside"):
            read_batches(directory)


@pytest.mark.parametrize("how", ["fifo", "dev-zero", "folder"])
def test_a_manifest_that_is_not_a_regular_file_is_refused_without_reading(clean, tmp_path, capsys, how):
    directory = tmp_path / "ds"
    shutil.copytree(clean[0], directory)
    manifest = directory / MANIFEST
    manifest.unlink()
    if how == "fifo":
        os.mkfifo(manifest)  # opening it to read would block for ever
    elif how == "dev-zero":
        manifest.symlink_to("/dev/zero")
    else:
        manifest.mkdir()
    with deadline(30):
        with pytest.raises(ManifestError, match="not a regular file"):
            verify(str(directory))
        assert main(["inspect", str(directory)]) == 2
        assert "not a regular file" in capsys.readouterr().err
        with pytest.raises(ManifestError, match="not a regular file"):
            read_batches(directory)


def test_a_manifest_names_its_generation_and_its_shard_paths_must_follow(clean, tmp_path):
    """A dataset replaced in a bucket keeps its files under generations/<g>/ (pipelines/output_dir.py): the readers
    follow the manifest's generation, and refuse paths that do not match it."""
    directory = tmp_path / "ds"
    shutil.copytree(clean[0], directory)
    manifest = json.loads((directory / MANIFEST).read_text())
    (directory / "generations" / "00003").mkdir(parents=True)
    (directory / "data").rename(directory / "generations" / "00003" / "data")
    (directory / MANIFEST).write_text(json.dumps(dict(manifest, generation=3)))
    with pytest.raises(ManifestError, match=r"shard 0 is 'data/bucket-.*', not 'generations/00003/data/bucket-"):
        verify(str(directory))
    for entry in shard_entries(manifest):
        entry["path"] = f"generations/00003/{entry['path']}"
    (directory / MANIFEST).write_text(json.dumps(dict(manifest, generation=3)))
    assert verify(str(directory)) == []
    batches = read_batches(directory)
    assert len(batches) == len(clean[1]) and all(
        a[0] == b[0] and np.array_equal(a[1], b[1]) for a, b in zip(batches, clean[1])
    )
