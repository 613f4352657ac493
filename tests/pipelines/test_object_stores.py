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

from tests.conftest import RUNNER, TEXT_ONLY, speech_of
from tests.object_stores import upload
from vocaloom import assets
from vocaloom.loader import BucketLoader
from vocaloom.pipelines import bucket_lock, build, nightly
from vocaloom.pipelines.bucket_lock import BucketLock
from vocaloom.pipelines.build import run
from vocaloom.pipelines.cli import main as vocaloom
from vocaloom.pipelines.lock import LockHeld
from vocaloom.pipelines.verify import verify
from vocaloom.schemas.config import ConfigError
from vocaloom.schemas.manifest import Manifest, ManifestError

pytestmark = pytest.mark.engines

UNCOMPRESSED = CompressionTypes.UNCOMPRESSED


def shard_digests(manifest: Manifest) -> list[tuple[str, str]]:
    return [(shard["path"], shard["sha256"]) for length in manifest["buckets"] for shard in length["shards"]]


def names_under(prefix: str) -> set[str]:
    return {meta.path[len(prefix) + 1 :].split("/")[0] for meta in FileSystems.match([prefix + "/**"])[0].metadata_list}


@pytest.fixture(scope="module")
def local_build(tmp_path_factory) -> Manifest:
    return run(
        [
            "--input",
            str(assets.SAMPLE_CORPUS),
            "--output",
            str(tmp_path_factory.mktemp("local") / "ds"),
            *TEXT_ONLY,
            *RUNNER,
        ]
    )


def test_a_build_bucket_to_bucket_has_the_local_builds_shards(bucket, local_build):
    corpus = f"{bucket.url}/corpus/{assets.SAMPLE_CORPUS.name}"
    upload(assets.SAMPLE_CORPUS, corpus)
    manifest = run(["--input", corpus, "--output", f"{bucket.url}/ds", *TEXT_ONLY, *RUNNER])
    assert shard_digests(manifest) == shard_digests(local_build)
    assert manifest["counts"] == local_build["counts"] and manifest["inputs"][0]["path"] == corpus
    assert verify(f"{bucket.url}/ds") == []
    # what the build left: the dataset, its report and figures; no temporary or spill file, and its lock released
    assert names_under(f"{bucket.url}/ds") == {"manifest.json", "README.md", "data", "report.md", "figures"}


def test_a_folder_in_a_bucket_reads_every_known_file_under_it(bucket, tmp_path):
    for name, text in (
        ("a.jsonl", '{"id": "a", "text": "at the top"}\n'),
        ("deeper/b.txt", "two levels down\n"),
        ("notes.md", "not an input\n"),
    ):
        (tmp_path / "f").write_text(text)
        upload(tmp_path / "f", f"{bucket.url}/corpus/{name}")
    manifest = run(["--input", f"{bucket.url}/corpus/", "--output", f"{bucket.url}/ds", *TEXT_ONLY, *RUNNER])
    assert [i["path"] for i in manifest["inputs"]] == [
        f"{bucket.url}/corpus/{name}" for name in ("a.jsonl", "deeper/b.txt")
    ]
    assert manifest["counts"]["records_read"] == 2


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
    assert verified.returncode == 1 and "sha256 differs from the manifest" in verified.stdout


def test_a_complete_dataset_in_a_bucket_is_replaced_only_when_asked(bucket):
    dataset = f"{bucket.url}/ds"
    first = run(["--output", dataset, *TEXT_ONLY, *RUNNER])
    with pytest.raises(ConfigError, match="already holds a complete dataset"):
        run(["--output", dataset, *TEXT_ONLY, *RUNNER])
    second = run(["--output", dataset, "--max-bucket", "11", "--overwrite", *TEXT_ONLY, *RUNNER])
    assert second["config"]["max_bucket"] == 11 and shard_digests(second) != shard_digests(first)
    assert verify(dataset) == []
    # the replacement's files are under its generation, and nothing of the old dataset is left
    assert second["generation"] == 1 and names_under(dataset) == {"manifest.json", "README.md", "generations"}
    assert names_under(f"{dataset}/generations/00001") == {"data", "report.md", "figures"}
    with FileSystems.create(f"{dataset}/notes.txt") as f:  # the user's, beside the dataset
        f.write(b"keep me")
    third = run(["--output", dataset, "--overwrite", *TEXT_ONLY, *RUNNER])
    assert third["generation"] == 2 and names_under(f"{dataset}/generations") == {"00002"}
    assert names_under(dataset) == {"manifest.json", "README.md", "generations", "notes.txt"}
    assert [(path.split("/", 2)[2], sha) for path, sha in shard_digests(third)] == shard_digests(first)
    assert verify(dataset) == []


def test_an_overwrite_killed_mid_way_leaves_the_old_dataset_verifiable(bucket, local_build, monkeypatch):
    dataset = f"{bucket.url}/ds"
    run(["--output", dataset, *TEXT_ONLY, *RUNNER])
    build = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vocaloom",
            "build",
            "--output",
            dataset,
            "--overwrite",
            "--max-bucket",
            "11",
            *TEXT_ONLY,
        ],
        env=bucket.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while ".vocaloom-tmp" not in names_under(dataset):  # the replacement's spill files are being written
        assert build.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    build.send_signal(signal.SIGKILL)
    build.wait()
    assert verify(dataset) == []
    # as a kill during the commit would leave it: part of the new generation's shards in place
    partial = f"{dataset}/generations/00001/data/bucket-00256/shard-00000-of-00001.arrow"
    with FileSystems.create(partial, compression_type=UNCOMPRESSED) as f:
        f.write(b"half a shard")
    assert verify(dataset) == []
    monkeypatch.setattr(bucket_lock, "LEASE_SECONDS", 0.5)
    time.sleep(1)
    manifest = run(["--output", dataset, "--overwrite", *TEXT_ONLY, *RUNNER])
    assert manifest["generation"] == 1 and verify(dataset) == []
    assert [(path.split("/", 2)[2], sha) for path, sha in shard_digests(manifest)] == shard_digests(local_build)
    assert names_under(dataset) == {"manifest.json", "README.md", "generations"}


def test_a_prefix_holding_the_users_objects_is_refused_and_left_alone(bucket):
    with FileSystems.create(f"{bucket.url}/mine/notes.txt") as f:
        f.write(b"keep me")
    with pytest.raises(ConfigError, match="holds no vocaloom dataset"):
        run(["--output", f"{bucket.url}/mine", *TEXT_ONLY, *RUNNER])
    assert names_under(f"{bucket.url}/mine") == {"notes.txt"}


def test_a_small_speech_build_in_a_bucket(bucket, tmp_path):
    """The bundled student converts spans read from the bucket, its cache kept in the bucket too: a second build
    is served from that cache, with the same shards."""
    docs = [
        {"id": f"d{i}", "text": f"document {i} says that the weather is fine and the sea is calm today " * 6}
        for i in range(12)
    ]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    upload(tmp_path / "docs.jsonl", f"{bucket.url}/in/docs.jsonl")
    options = ["--input", f"{bucket.url}/in/docs.jsonl", "--cache", f"{bucket.url}/cache", "--min-bucket", "6", *RUNNER]
    first = run([*options, "--output", f"{bucket.url}/speech"])
    second = run([*options, "--output", f"{bucket.url}/again"])
    assert speech_of(first)["spans_converted"] > 0 and speech_of(second)["cache_hit_rate"] == 1.0
    assert shard_digests(first) == shard_digests(second) and verify(f"{bucket.url}/again") == []


def test_a_second_build_into_a_locked_prefix_exits_3_and_a_stale_lock_is_taken_over(bucket, monkeypatch):
    dataset = f"{bucket.url}/ds"
    running = BucketLock(f"{dataset}/.vocaloom-lock").acquire()  # a build at work there
    refused = subprocess.run(
        [sys.executable, "-m", "vocaloom", "build", "--output", dataset, *TEXT_ONLY],
        env=bucket.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
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
    build = subprocess.Popen(
        [sys.executable, "-m", "vocaloom", "build", "--output", dataset, *TEXT_ONLY],
        env=bucket.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while ".vocaloom-tmp" not in names_under(dataset):  # spill files are being written
        assert build.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    build.send_signal(signal.SIGKILL)
    build.wait()
    assert "manifest.json" not in names_under(dataset)
    with pytest.raises(ManifestError, match=r"no manifest\.json"):
        verify(dataset)
    with pytest.raises(LockHeld):  # its lock is not stale yet
        run(["--output", dataset, *TEXT_ONLY, *RUNNER])
    monkeypatch.setattr(bucket_lock, "LEASE_SECONDS", 0.5)
    time.sleep(1)
    manifest = run(["--output", dataset, *TEXT_ONLY, *RUNNER])
    assert shard_digests(manifest) == shard_digests(local_build) and verify(dataset) == []
    assert names_under(dataset) == {"manifest.json", "README.md", "data", "report.md", "figures"}


def nightly_config(path, max_bucket: int):
    path.write_text(
        f'input = ["{assets.SAMPLE_CORPUS}"]\nspeech-ratio = 0\nmin-bucket = 6\nmax-bucket = {max_bucket}\n'
    )
    return str(path)


def test_nightly_in_a_bucket_publishes_latest_and_a_trainer_keeps_the_build_it_resolved(bucket, tmp_path, monkeypatch):
    root, config = f"{bucket.url}/nightly", nightly_config(tmp_path / "nightly.toml", 8)
    assert vocaloom(["nightly", "--config", config, "--root", root, *RUNNER]) == nightly.OK
    with FileSystems.open(f"{root}/LATEST") as f:
        first = f"{root}/{f.read().decode().strip()}"
    assert first.startswith(f"{root}/builds/") and verify(f"{root}/LATEST") == []
    trainer = BucketLoader(f"{root}/LATEST", 256, cache_dir=tmp_path / "cache")
    assert trainer.directory == first
    next(iter(trainer))

    nightly_config(tmp_path / "nightly.toml", 7)  # tonight's data differ
    assert vocaloom(["nightly", "--config", config, "--root", root, *RUNNER]) == nightly.OK
    second = BucketLoader(f"{root}/LATEST", 256, cache_dir=tmp_path / "cache")
    assert isinstance(second.directory, str)  # one dataset read: its directory (a mixture's is a dict)
    assert second.directory not in (first, None) and second.directory.startswith(f"{root}/builds/")
    assert names_under(f"{root}/builds") == {first.rsplit("/", 1)[1], second.directory.rsplit("/", 1)[1]}
    # the running trainer reads its own build to the end, and its state names it for the resume
    rest = list(trainer)
    again = BucketLoader(first, 256, cache_dir=tmp_path / "cache")
    next(iter(again))
    assert [b["input_ids"].tolist() for b in rest] == [b["input_ids"].tolist() for b in again]
    state = trainer.state_dict()
    assert state["directory"] == first
    with pytest.raises(ValueError, match=f"saved reading {first}, whose shards differ"):
        BucketLoader(f"{root}/LATEST", 256, cache_dir=tmp_path / "cache").load_state_dict(state)
    BucketLoader(state["directory"], 256, cache_dir=tmp_path / "cache").load_state_dict(state)

    held = BucketLock(f"{root}/nightly.lock").acquire()  # another run at work
    refused = subprocess.run(
        [sys.executable, "-m", "vocaloom", "nightly", "--config", config, "--root", root],
        env=bucket.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    held.close()
    assert refused.returncode == nightly.LOCK_HELD and "stage=lock status=held" in refused.stderr, refused.stderr

    def crashes(argv):
        with FileSystems.create(argv[argv.index("--output") + 1] + "/.vocaloom-tmp/spill") as f:
            f.write(b"part of a build")
        raise RuntimeError("worker lost")

    real_run = build.run
    monkeypatch.setattr(build, "run", crashes)
    assert vocaloom(["nightly", "--config", config, "--root", root, *RUNNER]) == nightly.BUILD_FAILED
    assert BucketLoader(f"{root}/LATEST", 256, cache_dir=tmp_path / "cache").directory == second.directory
    assert sum(name.endswith(".failed") for name in names_under(f"{root}/builds")) == 1
    monkeypatch.setattr(build, "run", real_run)
    assert vocaloom(["nightly", "--config", config, "--root", root, "--keep", "1", *RUNNER]) == nightly.OK
    latest = BucketLoader(f"{root}/LATEST", 256, cache_dir=tmp_path / "cache").directory
    assert isinstance(latest, str)
    assert names_under(f"{root}/builds") == {latest.rsplit("/", 1)[1]}  # the failed build, its mark, the others
    assert latest not in (first, second.directory)
    with FileSystems.create(f"{root}/LATEST", compression_type=UNCOMPRESSED) as f:
        f.write(b"../../elsewhere/ds\n")  # planted: a reader must not follow it out of the root
    planted = subprocess.run(
        [sys.executable, "-m", "vocaloom", "verify", f"{root}/LATEST"],
        env=bucket.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert planted.returncode == 1 and planted.stderr.count("\n") == 1
    assert "LATEST names '../../elsewhere/ds', not builds/<stamp>" in planted.stderr
