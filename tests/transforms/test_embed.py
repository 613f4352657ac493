import pytest

from vocaloom.transforms.embed import VECTOR_CODEC, read_embedder


def encoder_dir(path, weights: bytes):
    path.mkdir()
    (path / "config.json").write_text("{}")
    (path / "tokenizer.json").write_text("{}")
    (path / "model.safetensors").write_bytes(weights)
    return path


def test_embedder_sha_follows_every_file(tmp_path):
    a = read_embedder(str(encoder_dir(tmp_path / "a", b"w1")))
    same = read_embedder(str(encoder_dir(tmp_path / "b", b"w1")))
    other = read_embedder(str(encoder_dir(tmp_path / "c", b"w2")))
    assert a.sha256 == same.sha256 != other.sha256  # the cache key changes with the weights, not the location


def test_embedder_directory_without_config_fails_in_one_line(tmp_path):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "tokenizer.json").write_text("{}")
    with pytest.raises(ValueError, match="no config.json"):
        read_embedder(str(tmp_path / "e"))


def test_vectors_round_trip_through_the_cache_codec():
    vector = bytes(range(256)) * 6
    assert VECTOR_CODEC.decode(VECTOR_CODEC.encode(vector)) == vector
