"""Builds, verify and inspect with everything in a bucket, against a GCS and an S3 server on loopback
(tests/object_stores.py): the same shards as a local build of the same input, the same refusals, and damage in the
bucket found."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from tests.conftest import RUNNER, TEXT_ONLY
from tests.object_stores import bucket, gcs_server, s3_server, upload  # noqa: F401  (fixtures)
from vocaloom import assets
from vocaloom.pipelines import bucket_lock
from vocaloom.pipelines.bucket_lock import BucketLock
from vocaloom.pipelines.build import run
from vocaloom.pipelines.output_dir import OutputLocked
from vocaloom.pipelines.verify import verify
from vocaloom.schemas.config import ConfigError
from vocaloom.schemas.manifest import ManifestError

UNCOMPRESSED = CompressionTypes.UNCOMPRESSED


def shard_digests(manifest: dict) -> list[tuple[str, str]]:
    return [(shard["path"], shard["sha256"]) for length in manifest["buckets"] for shard in length["shards"]]


def names_under(prefix: str) -> set[str]:
    return {meta.path[len(prefix) + 1:].split("/")[0]
            for meta in FileSystems.match([prefix + "/**"])[0].metadata_list}


@pytest.fixture(scope="module")
def local_build(tmp_path_factory) -> dict:
    return run(["--input", str(assets.SAMPLE_CORPUS), "--output", str(tmp_path_factory.mktemp("local") / "ds"),
                *TEXT_ONLY, *RUNNER])


def test_a_build_bucket_to_bucket_has_the_local_builds_shards(bucket, local_build):
    corpus = f"{bucket.url}/corpus/{assets.SAMPLE_CORPUS.name}"
    upload(assets.SAMPLE_CORPUS, corpus)
    manifest = run(["--input", corpus, "--output", f"{bucket.url}/ds", *TEXT_ONLY, *RUNNER])
    assert shard_digests(manifest) == shard_digests(local_build)
    assert manifest["counts"] == local_build["counts"] and manifest["inputs"][0]["path"] == corpus
    assert verify(f"{bucket.url}/ds") == []
    # what the build left: the dataset, its report and figures; no temporary or spill file, and its lock released
    assert names_under(f"{bucket.url}/ds") == {"manifest.json", "data", "report.md", "figures"}


def test_verify_and_inspect_read_the_bucket_and_find_a_damaged_shard(bucket):
    dataset = f"{bucket.url}/ds"
    manifest = run(["--output", dataset, *TEXT_ONLY, *RUNNER])
    env = bucket.env
    command = [sys.executable, "-m", "vocaloom"]
    verified = subprocess.run([*command, "verify", dataset], env=env, capture_output=True, text=True, timeout=120)
    assert (verified.returncode, verified.stdout.strip().splitlines()[-1]) == (0, f"{dataset}: OK")
    inspected = subprocess.run([*command, "inspect", dataset], env=env, capture_output=True, text=True, timeout=120)
    assert inspected.returncode == 0 and f"{manifest['counts']['tokens_written']:,}" in inspected.stdout
    shard = f"{dataset}/{shard_digests(manifest)[0][0]}"
    with FileSystems.open(shard, compression_type=UNCOMPRESSED) as f:
        data = bytearray(f.read())
    data[-100] ^= 1  # same size, other bytes
    with FileSystems.create(shard, compression_type=UNCOMPRESSED) as f:
        f.write(bytes(data))
    verified = subprocess.run([*command, "verify", dataset], env=env, capture_output=True, text=True, timeout=120)
    assert verified.returncode == 1 and "sha256 mismatch" in verified.stdout


def test_a_complete_dataset_in_a_bucket_is_replaced_only_when_asked(bucket):
    dataset = f"{bucket.url}/ds"
    first = run(["--output", dataset, *TEXT_ONLY, *RUNNER])
    with pytest.raises(ConfigError, match="already holds a complete dataset"):
        run(["--output", dataset, *TEXT_ONLY, *RUNNER])
    second = run(["--output", dataset, "--max-bucket", "11", "--overwrite", *TEXT_ONLY, *RUNNER])
    assert second["config"]["max_bucket"] == 11 and shard_digests(second) != shard_digests(first)
    assert verify(dataset) == []


def test_a_prefix_holding_the_users_objects_is_refused_and_left_alone(bucket):
    with FileSystems.create(f"{bucket.url}/mine/notes.txt") as f:
        f.write(b"keep me")
    with pytest.raises(ConfigError, match="holds no vocaloom dataset"):
        run(["--output", f"{bucket.url}/mine", *TEXT_ONLY, *RUNNER])
    assert names_under(f"{bucket.url}/mine") == {"notes.txt"}


def test_a_small_speech_build_in_a_bucket(bucket, tmp_path):
    """The bundled student converts spans read from the bucket, its cache kept in the bucket too: a second build
    is served from that cache, with the same shards."""
    docs = [{"id": f"d{i}", "text": f"document {i} says that the weather is fine and the sea is calm today " * 6}
            for i in range(12)]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    upload(tmp_path / "docs.jsonl", f"{bucket.url}/in/docs.jsonl")
    options = ["--input", f"{bucket.url}/in/docs.jsonl", "--cache", f"{bucket.url}/cache", "--min-bucket", "6",
               *RUNNER]
    first = run([*options, "--output", f"{bucket.url}/speech"])
    second = run([*options, "--output", f"{bucket.url}/again"])
    assert first["speech"]["spans_converted"] > 0 and second["speech"]["cache_hit_rate"] == 1.0
    assert shard_digests(first) == shard_digests(second) and verify(f"{bucket.url}/again") == []


def test_a_second_build_into_a_locked_prefix_exits_3_and_a_stale_lock_is_taken_over(bucket, monkeypatch):
    dataset = f"{bucket.url}/ds"
    running = BucketLock(f"{dataset}/.vocaloom-lock").acquire()  # a build at work there
    refused = subprocess.run([sys.executable, "-m", "vocaloom", "build", "--output", dataset, *TEXT_ONLY],
                             env=bucket.env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 3 and refused.stderr.count("\n") == 1
    assert f"--output {dataset} is being written by another build (pid={os.getpid()} " in refused.stderr
    running.close()
    with FileSystems.create(f"{dataset}/.vocaloom-lock", compression_type=UNCOMPRESSED) as f:
        f.write(b"pid=1 host=gone since=2026-01-01T00:00:00Z renewed=1767225600\n")  # a killed build's, long ago
    manifest = run(["--output", dataset, *TEXT_ONLY, *RUNNER])
    assert manifest["counts"]["documents_kept"] > 0 and verify(dataset) == []
    assert ".vocaloom-lock" not in names_under(dataset)


def test_a_build_killed_mid_write_leaves_no_dataset_and_a_rerun_completes_it(bucket, local_build, monkeypatch):
    dataset = f"{bucket.url}/ds"
    build = subprocess.Popen([sys.executable, "-m", "vocaloom", "build", "--output", dataset, *TEXT_ONLY],
                             env=bucket.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while ".vocaloom-tmp" not in names_under(dataset):  # spill files are being written
        assert build.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    build.send_signal(signal.SIGKILL)
    build.wait()
    assert "manifest.json" not in names_under(dataset)
    with pytest.raises(ManifestError, match="no manifest.json"):
        verify(dataset)
    with pytest.raises(OutputLocked):  # its lock is not stale yet
        run(["--output", dataset, *TEXT_ONLY, *RUNNER])
    monkeypatch.setattr(bucket_lock, "LEASE_SECONDS", 0.5)
    time.sleep(1)
    manifest = run(["--output", dataset, *TEXT_ONLY, *RUNNER])
    assert shard_digests(manifest) == shard_digests(local_build) and verify(dataset) == []
    assert names_under(dataset) == {"manifest.json", "data", "report.md", "figures"}
