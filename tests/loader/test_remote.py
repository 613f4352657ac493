"""BucketLoader on a dataset in a bucket (loader/remote.py), against the GCS and S3 servers on loopback: the same
batches, byte for byte, as from the local copy, through a cache smaller than the dataset; an exact resume; a shard
changed in the bucket refused; a server that stops answering retried, then one line."""

import contextlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from scripts.ci.fetch_object_stores import fake_gcs, free_port, serving
from tests.conftest import RUNNER, TEXT_ONLY
from tests.object_stores import upload
from vocaloom.loader import BucketLoader, ShardIntegrityError
from vocaloom.loader import remote as remote_module
from vocaloom.loader.remote import RemoteDataset, ShardFetchError
from vocaloom.pipelines.build import run

pytestmark = pytest.mark.engines

# Buckets 64..256 and shards of about 32,000 tokens: 40-odd shards of 100-130 KB.
BUILD = ["--min-bucket", "6", "--max-bucket", "8", "--shard-tokens", "32000", *TEXT_ONLY, *RUNNER]
TOKENS = 1024


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("local") / "ds"
    run(["--output", str(folder), *BUILD])
    return folder


@pytest.fixture
def remote(bucket, local) -> str:
    """The local dataset copied into the bucket, object by object (a build into a bucket is tested elsewhere)."""
    for file in local.rglob("*"):
        if file.is_file():
            upload(file, f"{bucket.url}/ds/{file.relative_to(local)}")
    return f"{bucket.url}/ds"


def same_batches(a, b, steps: int) -> None:
    for _, x, y in zip(range(steps), a, b):
        assert (x["bucket"], x["step"], x["epoch"]) == (y["bucket"], y["step"], y["epoch"])
        assert np.array_equal(x["input_ids"].numpy(), y["input_ids"].numpy())
        assert np.array_equal(x["doc_starts"].numpy(), y["doc_starts"].numpy())


def test_batches_from_a_bucket_through_a_small_cache_equal_the_local_ones(remote, local, tmp_path):
    manifest = json.loads((local / "manifest.json").read_text())
    shard_bytes = [s["bytes"] for b in manifest["buckets"] for s in b["shards"]]
    cache = tmp_path / "cache"
    loader = BucketLoader(
        remote, TOKENS, curriculum="grow_p2", seed=3, cache_dir=cache, cache_bytes=4 * max(shard_bytes)
    )
    same_batches(loader, BucketLoader(local, TOKENS, curriculum="grow_p2", seed=3), len(loader))
    held = sum(f.stat().st_size for f in cache.glob("*.arrow"))
    assert held <= 4 * max(shard_bytes) and len(list(cache.glob("*.arrow"))) < len(shard_bytes)
    assert loader.directory == remote


def test_a_mixture_of_a_bucket_and_a_folder_reads_as_two_folders(remote, local, tmp_path):
    weights = {"bucket/default": 3, "disk/default": 1}
    mixed = BucketLoader(
        {"bucket": remote, "disk": local}, TOKENS, seed=4, cache_dir=tmp_path / "cache", source_weights=weights
    )
    same_batches(
        mixed, BucketLoader({"bucket": local, "disk": local}, TOKENS, seed=4, source_weights=weights), len(mixed)
    )
    assert mixed.directory == {"bucket": remote, "disk": str(local.resolve())}


def test_a_resume_from_a_bucket_continues_exactly(remote, local, tmp_path):
    first = BucketLoader(remote, TOKENS, seed=1, cache_dir=tmp_path / "a")
    for _, _ in zip(range(7), first):
        pass
    resumed = BucketLoader(remote, TOKENS, seed=1, cache_dir=tmp_path / "b").load_state_dict(first.state_dict())
    expected = BucketLoader(local, TOKENS, seed=1)
    for _, _ in zip(range(7), expected):
        pass
    same_batches(resumed, expected, 12)


def test_a_shard_changed_in_the_bucket_is_refused(remote, local, tmp_path):
    dataset = remote
    manifest = json.loads((local / "manifest.json").read_text())
    shard = f"{dataset}/{manifest['buckets'][0]['shards'][0]['path']}"
    with FileSystems.open(shard, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        data = bytearray(f.read())
    data[-64] ^= 0xFF
    with FileSystems.create(shard, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(bytes(data))
    loader = BucketLoader(dataset, TOKENS, curriculum=[1, 0, 0], cache_dir=tmp_path / "cache")
    with pytest.raises(ShardIntegrityError, match="sha256 differs from the manifest"):
        for _ in loader:
            pass


def test_a_server_that_stops_answering_is_retried_then_named_in_one_line(tmp_path, monkeypatch, request):
    """A server of this test's own, stopped after the manifest was read."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = contextlib.ExitStack()  # stopped mid-test below, or on the way out if the test fails first
    request.addfinalizer(server.close)
    server.enter_context(serving(fake_gcs(port), url, "/storage/v1/b"))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    import vocaloom.transforms

    vocaloom.transforms.anonymous_against_a_gcs_emulator()
    subprocess.run(
        [
            "curl",
            "-s",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"name": "alone"}',
            f"{url}/storage/v1/b?project=test",
        ],
        check=True,
        capture_output=True,
    )
    run(["--output", "gs://alone/ds", *TEXT_ONLY, *RUNNER])
    monkeypatch.setattr(remote_module, "STORE_RETRY_SECONDS", 1)  # the client's own retries: 1 s, not 5
    dataset = RemoteDataset("gs://alone/ds", tmp_path / "cache", retries=2, backoff=0.05)
    from vocaloom.schemas.manifest import read_manifest

    entry = read_manifest(dataset.url, dataset.read)["buckets"][0]["shards"][0]
    server.close()  # stops it
    with pytest.raises(ShardFetchError) as e:
        dataset.local(entry)
    assert f"gs://alone/ds/{entry['path']}: " in str(e.value) and "(after 3 attempts)" in str(e.value)
    assert "\n" not in str(e.value)


def test_dataloader_workers_fetch_their_own_shards(remote, local, tmp_path):
    loader = BucketLoader(remote, TOKENS, seed=5, num_workers=2, cache_dir=tmp_path / "cache")
    same_batches(loader, BucketLoader(local, TOKENS, seed=5), 10)


def test_a_planted_cache_file_is_not_trusted(remote, local, tmp_path):
    """A file under a shard's cache name that this process did not fetch is hashed first: other bytes are fetched
    again, even with verify_shards=False."""
    manifest = json.loads((local / "manifest.json").read_text())
    cache = tmp_path / "cache"
    cache.mkdir()
    for length in manifest["buckets"]:
        for entry in length["shards"]:
            planted = bytearray((local / entry["path"]).read_bytes())
            planted[-64] ^= 0xFF  # the right size, other bytes
            (cache / f"{entry['sha256']}.arrow").write_bytes(bytes(planted))
    loader = BucketLoader(remote, TOKENS, seed=2, cache_dir=cache, verify_shards=False)
    same_batches(loader, BucketLoader(local, TOKENS, seed=2), 10)


def test_a_negative_cache_bound_is_refused(remote):
    with pytest.raises(ValueError, match="cache_bytes must be an integer >= 0"):
        BucketLoader(remote, TOKENS, cache_bytes=-1)


class EndsEarlyOnce:
    """A store whose first transfer of a shard ends early, as a dropped connection does."""

    def __init__(self, store):
        self._store, self.opened = store, 0

    def get_file_info(self, path):
        return self._store.get_file_info(path)

    def open_input_stream(self, path):
        self.opened += 1
        stream = self._store.open_input_stream(path)
        if self.opened == 1:
            import pyarrow as pa

            return pa.BufferReader(stream.read(818))
        return stream


def test_a_transfer_that_ends_early_is_fetched_again(remote, local, tmp_path):
    dataset = RemoteDataset(remote, tmp_path / "cache", retries=2, backoff=0.01)
    entry = json.loads((local / "manifest.json").read_text())["buckets"][0]["shards"][0]
    dataset._fs = EndsEarlyOnce(dataset._fs)
    assert dataset.local(entry).read_bytes() == (local / entry["path"]).read_bytes()
    assert dataset._fs.opened == 2
