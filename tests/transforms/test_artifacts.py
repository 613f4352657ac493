"""Artifacts as workers get them: bundled references resolved in the worker's installation, other locations copied
through Beam's FileSystems into a local cache, everything checked against the launcher's sha256."""

import hashlib
from pathlib import Path

import pytest
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.localfilesystem import LocalFileSystem

from vocaloom import assets
from vocaloom.schemas.digest import local_sha256
from vocaloom.transforms.artifacts import CACHE_ENV, Artifact, ArtifactError, localize, read_artifact

SCHEME = "vocaloomtest"


class RemoteFileSystem(LocalFileSystem):
    """`vocaloomtest:///path`: local files seen as a remote store, so that artifacts are copied, not used in place."""

    @classmethod
    def scheme(cls):
        return SCHEME

    @staticmethod
    def _local(path: str) -> str:
        return path[len(SCHEME) + 3 :] if path.startswith(SCHEME + "://") else path

    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/"), *paths])

    def _url_dirname(self, url_or_path):
        return url_or_path.rsplit("/", 1)[0]

    def _list(self, dir_or_prefix):
        for metadata in super()._list(self._local(dir_or_prefix)):
            yield (
                metadata._replace(path=f"{SCHEME}://{metadata.path}")
                if hasattr(metadata, "_replace")
                else type(metadata)(
                    f"{SCHEME}://{metadata.path}", metadata.size_in_bytes, metadata.last_updated_in_seconds
                )
            )

    def _path_open(self, path, mode, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        return super()._path_open(self._local(path), mode, mime_type, compression_type)

    def exists(self, path):
        return super().exists(self._local(path))

    def metadata(self, path):
        metadata = super().metadata(self._local(path))
        return type(metadata)(path, metadata.size_in_bytes, metadata.last_updated_in_seconds)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "vocaloom-artifacts"


def model_dir(path, weights: bytes = b"w1"):
    (path / "nested").mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "nested" / "weights.bin").write_bytes(weights)
    return path


def test_a_file_is_named_by_the_sha256_of_its_bytes():
    artifact = read_artifact("bundled:tokenizer")
    assert artifact == Artifact("bundled:tokenizer", hashlib.sha256(assets.TOKENIZER_MODEL.read_bytes()).hexdigest())
    assert localize(artifact) == str(assets.TOKENIZER_MODEL)  # this installation's own file


def test_a_directory_is_named_by_its_files_wherever_it_lies(tmp_path):
    a, b = read_artifact(str(model_dir(tmp_path / "a"))), read_artifact(str(model_dir(tmp_path / "b")))
    other = read_artifact(str(model_dir(tmp_path / "c", b"w2")))
    assert a.sha256 == b.sha256 == local_sha256(str(tmp_path / "a")) != other.sha256
    assert read_artifact("bundled:text-to-token").sha256 == local_sha256(str(assets.TEXT_TO_TOKEN_MODEL))


def test_remote_artifacts_are_copied_once_into_the_cache_and_checked(tmp_path, cache):
    model_dir(tmp_path / "m")
    (tmp_path / "tok.model").write_bytes(b"sentencepiece")
    directory, file = (
        read_artifact(f"{SCHEME}://{tmp_path / 'm'}"),
        read_artifact(f"{SCHEME}://{tmp_path / 'tok.model'}"),
    )
    local_dir, local_file = localize(directory), localize(file)
    assert local_dir == str(cache / directory.sha256)
    assert local_sha256(local_dir) == directory.sha256
    assert Path(local_file).read_bytes() == b"sentencepiece" and local_file.startswith(str(cache))
    (tmp_path / "m" / "config.json").write_text('{"changed": true}')
    assert localize(directory) == local_dir  # the checked copy is reused, whatever the source does since
    assert sorted(p.name for p in cache.iterdir()) == sorted([directory.sha256, file.sha256])


def test_bytes_other_than_the_launchers_fail_in_one_line(tmp_path, cache):
    model_dir(tmp_path / "m")
    artifact = read_artifact(str(tmp_path / "m"))
    (tmp_path / "m" / "nested" / "weights.bin").write_bytes(b"another model")
    with pytest.raises(ArtifactError, match=f"{tmp_path / 'm'}: sha256 .* differs from the launcher's") as e:
        localize(artifact)
    assert "\n" not in str(e.value)
    remote = read_artifact(f"{SCHEME}://{tmp_path / 'm'}")
    with pytest.raises(ArtifactError, match="differs from the launcher's"):
        localize(remote._replace(sha256="0" * 64))
    assert not any(cache.iterdir())  # nothing unchecked is left where the next worker would trust it


def test_missing_artifacts_fail_in_one_line(tmp_path):
    with pytest.raises(ArtifactError, match="no such file or directory"):
        read_artifact(str(tmp_path / "absent"))
    with pytest.raises(ArtifactError, match="not found on this worker"):
        localize(Artifact(str(tmp_path / "absent"), "0" * 64))
    with pytest.raises(ArtifactError, match="'bundled:nothing' is no bundled reference"):
        read_artifact("bundled:nothing")
