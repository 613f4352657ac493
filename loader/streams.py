"""The datasets a BucketLoader reads, and their streams: a stream is one source's rows in one bucket of one dataset.

A shard holds its rows source by source, and the manifest says how many of each (`source_rows`), so a source's rows
in a bucket are a list of runs of rows, known without opening a shard. A dataset written before named sources has
one source, "default", holding every row.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from vocaloom.loader.remote import RemoteDataset
from vocaloom.loader.sampler import StreamShape
from vocaloom.loader.shards import BucketRows, ShardCache
from vocaloom.schemas.manifest import read_manifest
from vocaloom.schemas.paths import is_local, plain
from vocaloom.schemas.shard import row_limits
from vocaloom.schemas.sources import DEFAULT_SOURCE
from vocaloom.schemas.vocab import Vocabulary

# A dataset's name, which its sources' names start with (`name/source`): a nightly build's stamp folder qualifies.
DATASET_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")


class Dataset:
    """One dataset read: the build (a LATEST resolved, once), its manifest, its sources and its buckets' rows."""

    def __init__(
        self,
        name: str | None,
        location: str | os.PathLike,
        cache_dir: str | os.PathLike | None,
        cache_bytes: int,
        max_open_shards: int,
        verify_shards: bool,
    ):
        location = str(location)
        source: Path | RemoteDataset
        if is_local(location):
            # Resolved once (a LATEST link included): a later publish does not change what this loader reads.
            source = Path(os.path.realpath(plain(location)))
            self.manifest = read_manifest(source)
        else:
            source = RemoteDataset(location, cache_dir, cache_bytes)
            self.manifest = read_manifest(source.url, source.read)
        self.name = name
        self.directory = str(source) if isinstance(source, Path) else source.url
        self.sources = sorted(self.manifest["sources"]) if "sources" in self.manifest else [DEFAULT_SOURCE]
        cache = ShardCache(source, max_open_shards, verify_shards, row_limits(self.manifest))
        self.buckets = {bucket["length"]: BucketRows(bucket, cache) for bucket in self.manifest["buckets"]}

    @property
    def fingerprint(self) -> str:
        """The sha256 of its buckets' shards: the same build whatever path it is read from."""
        return hashlib.sha256(
            json.dumps([[b["length"], [s["sha256"] for s in b["shards"]]] for b in self.manifest["buckets"]]).encode()
        ).hexdigest()

    def source_runs(self, length: int) -> list[list[tuple[int, int]]]:
        """Each source's rows in bucket `length` as runs of (first row, rows), rows numbered in manifest shard
        order; adjacent runs joined."""
        runs: list[list[tuple[int, int]]] = [[] for _ in self.sources]
        first = 0
        for entry in self.buckets[length].shards:
            for source, rows in enumerate(entry.get("source_rows", [entry["rows"]])):
                if rows and runs[source] and sum(runs[source][-1]) == first:
                    runs[source][-1] = (runs[source][-1][0], runs[source][-1][1] + rows)
                elif rows:
                    runs[source].append((first, rows))
                first += rows
        return runs


class Stream:
    """One source's rows in one bucket of one dataset: `source` indexes the loader's sources."""

    def __init__(self, dataset: int, source: int, shape: StreamShape, runs: list[tuple[int, int]]):
        self.dataset, self.source, self.shape, self._runs = dataset, source, shape, runs
        self._firsts = list(itertools.accumulate((rows for _, rows in runs), initial=0))

    def runs(self, first: int, count: int) -> list[tuple[int, int]]:
        """Rows first..first + count of the stream (wrapping past its last row to its first) as runs of the
        bucket's rows."""
        runs = []
        while count:
            index = bisect.bisect_right(self._firsts, first) - 1
            taken = min(count, self._firsts[index + 1] - first)
            runs.append((self._runs[index][0] + first - self._firsts[index], taken))
            first, count = (first + taken) % self.shape.rows, count - taken
        return runs


def open_datasets(directory, **options) -> list[Dataset]:
    """One dataset (a path or URL), or several: a mapping of names to locations, or a list of locations named by
    their last path component. Several datasets' sources are named `dataset/source`."""
    if isinstance(directory, (str, os.PathLike)):
        return [Dataset(None, directory, **options)]
    if isinstance(directory, Mapping):
        named = list(directory.items())
    elif isinstance(directory, Sequence) and directory:
        named = [(None, location) for location in directory]
    else:
        raise ValueError(
            f"directory must be a dataset's path or URL, a list of them or a mapping of names to them, "
            f"not {directory!r}"
        )
    datasets = [Dataset(name, location, **options) for name, location in named]
    for dataset in datasets:
        if dataset.name is None:
            dataset.name = dataset.directory.rstrip("/").rsplit("/", 1)[-1]
        if not isinstance(dataset.name, str) or not DATASET_NAME.fullmatch(dataset.name):
            raise ValueError(
                f"dataset name {dataset.name!r} is not of [A-Za-z0-9_.-] (not starting with '.', at "
                f"most 128 characters): name the datasets with a mapping, {{name: location}}"
            )
    names = [str(dataset.name) for dataset in datasets]
    if len(set(names)) < len(names):
        raise ValueError(
            f"two datasets are named alike ({', '.join(names)}): name them with a mapping, {{name: location}}"
        )
    return datasets


def source_names(datasets: list[Dataset]) -> list[str]:
    """The loader's sources: one dataset's as built, several's as `dataset/source`, in dataset order."""
    if len(datasets) == 1:
        return list(datasets[0].sources)
    return [f"{dataset.name}/{source}" for dataset in datasets for source in dataset.sources]


def common_vocabulary(datasets: list[Dataset]) -> Vocabulary:
    """The vocabulary every dataset's ids mean the same in: one tokenizer, and one speech model where they have
    speech (a text build beside a speech build of it reads in the speech build's vocabulary)."""
    first, vocab, speech_model = datasets[0], None, None
    for dataset in datasets:
        other = Vocabulary.from_json(dataset.manifest["vocab"])
        if vocab and (
            (other.text_size, other.specials, other.speech_offset)
            != (vocab.text_size, vocab.specials, vocab.speech_offset)
            or dataset.manifest["tokenizer"]["sha256"] != first.manifest["tokenizer"]["sha256"]
        ):
            raise ValueError(
                f"datasets {first.name} and {dataset.name} were built with different tokenizers: their "
                f"token ids mean different things"
            )
        if other.speech_size:
            model = speech["sha256"] if (speech := dataset.manifest["speech"]) else None
            if speech_model and model != speech_model:
                raise ValueError(
                    f"dataset {dataset.name}'s speech units come from another model than an earlier "
                    f"dataset's: their speech ids mean different things"
                )
            speech_model = model
        if vocab is None or other.speech_size > vocab.speech_size:
            vocab = other
    assert vocab is not None  # there is a dataset
    return vocab
