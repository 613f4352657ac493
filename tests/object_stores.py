"""Object-store servers on loopback for the tests, never a real cloud: fake-gcs-server for gs:// (a Go program,
built by scripts/ci/fetch_object_stores.py into .object-stores/) and moto's standalone S3 server for s3://. Commands,
Beam and the reader find them as Google's and AWS's own clients do: STORAGE_EMULATOR_HOST (no credentials) and
AWS_ENDPOINT_URL (with dummy keys: boto3 signs every request, and the server accepts any signature)."""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.ci.fetch_object_stores import FAKE_GCS, fake_gcs, free_port, moto_s3, serving
from tests.prerequisites import missing

STORES = ("gs", "s3")


@pytest.fixture(scope="session")
def gcs_server():
    """A fake-gcs-server holding its objects in memory, for the whole session; its URL."""
    if not FAKE_GCS.exists():
        missing(f"no fake-gcs-server at {FAKE_GCS}: run python3 -m scripts.ci.fetch_object_stores")
    port = free_port()
    with serving(fake_gcs(port), f"http://127.0.0.1:{port}", "/storage/v1/b") as url:
        yield url


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server, in memory, for the whole session; its URL."""
    port = free_port()
    with serving(moto_s3(port), f"http://127.0.0.1:{port}", "/") as url:
        yield url


@dataclass(frozen=True)
class Bucket:
    url: str  # gs://name or s3://name
    env: dict  # what a command needs in its environment to reach the server


def server_env(store: str, server: str) -> dict:
    if store == "gs":
        return {"STORAGE_EMULATOR_HOST": server}
    return {
        "AWS_ENDPOINT_URL": server,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture(params=STORES)
def bucket(request, monkeypatch) -> Bucket:
    """A new, empty bucket on the session's server of each kind, reached from this test's process and from the
    commands it starts."""
    store = request.param
    server = request.getfixturevalue("gcs_server" if store == "gs" else "s3_server")
    env = server_env(store, server)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    name = f"test-{uuid.uuid4().hex[:12]}"
    if store == "gs":
        import vocaloom.transforms

        vocaloom.transforms.anonymous_against_a_gcs_emulator()
        request_ = urllib.request.Request(
            f"{server}/storage/v1/b?project=test",
            method="POST",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
        )
    else:
        request_ = urllib.request.Request(f"{server}/{name}", method="PUT")
    urllib.request.urlopen(request_, timeout=10).close()
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    FileSystems.set_options(PipelineOptions([]))  # S3's client is made from options; the endpoint from env
    return Bucket(f"{store}://{name}", dict(os.environ, **env))


def upload(local: Path, remote: str) -> None:
    """A local file into the bucket, byte for byte, as a user's corpus would be."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with (
        open(local, "rb") as source,
        FileSystems.create(remote, compression_type=CompressionTypes.UNCOMPRESSED) as target,
    ):
        target.write(source.read())
