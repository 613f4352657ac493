import base64

import apache_beam as beam
import numpy as np
import pytest
import torch
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from safetensors.torch import save_file

from tests.conftest import RUNNER
from vocaloom.schemas.vocab import Vocabulary
from vocaloom.transforms.artifacts import fingerprint
from vocaloom.transforms.related.embed import EmbeddingTextFn, read_embedder, vector_codec
from vocaloom.transforms.io.spill import write_spill
from vocaloom.transforms.documents import DocTokens, pack_docs
from vocaloom.transforms.text.tokenize import load_sentencepiece


def encoder_dir(path, weights: bytes, config: str = '{"hidden_size": 2}'):
    path.mkdir()
    (path / "config.json").write_text(config)
    (path / "tokenizer.json").write_text("{}")
    save_file({"embeddings.weight": torch.tensor(list(weights), dtype=torch.float32).reshape(1, -1)},
              str(path / "model.safetensors"))
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


@pytest.mark.parametrize("config, message", [
    ('{"hidden_size": 2, "num_hidden_layers": 10000000}', "num_hidden_layers=10000000 is larger than anything"),
    ('{"hidden_size": 2, "layer_norm_eps": NaN}', "layer_norm_eps=nan, not a finite number"),
])
def test_an_encoder_config_the_weights_cannot_back_fails_in_one_line(tmp_path, config, message):
    with pytest.raises(ValueError, match=message):
        read_embedder(str(encoder_dir(tmp_path / "e", b"w1", config)))


def test_vectors_round_trip_through_the_cache_codec():
    vector = (np.arange(1, 385, dtype=np.float32) / np.linalg.norm(np.arange(1, 385))).astype(np.float32).tobytes()
    codec = vector_codec(384)
    assert codec.decode(codec.encode(vector)) == vector


@pytest.mark.parametrize("value, problem", [
    (base64.b64encode(np.ones(3, np.float32).tobytes()).decode(), "12 bytes, not 384 float32s"),
    (base64.b64encode(np.zeros(384, np.float32).tobytes()).decode(), "unit length"),
    (base64.b64encode(np.full(384, np.nan, np.float32).tobytes()).decode(), "unit length"),
    ("not base64!", "base64"),
])
def test_a_cached_vector_the_encoder_could_not_have_made_is_refused(value, problem):
    with pytest.raises(ValueError, match=problem):
        vector_codec(384).decode(value)


def test_embedding_text_holds_every_word_spoken_or_not(tmp_path, tokenizer_path):
    """Exact output of EmbeddingText: an interleaved document's spill holds only its text segments, and the words
    that become speech are put back in their places (they were missing from embeddings before)."""
    sp = load_sentencepiece(tokenizer_path)
    eos = Vocabulary.build(sp.get_piece_size(), sp.eos_id() if sp.eos_id() >= 0 else None).eos
    plain, before, after = sp.encode("in the beginning"), sp.encode("the ark rested"), sp.encode("of ararat")
    spill = write_spill(str(tmp_path), np.array(plain + [eos] + before + after + [eos], np.int32))
    docs = [DocTokens(b"f1", "plain", "s", 1, len(plain) + 1, spill, 0),
            DocTokens(b"f2", "spoken", "s", 2, len(before) + len(after) + 1, spill, len(plain) + 1,
                      layout=(len(before), -1, len(after)), spans=(" upon the mountains ",))]
    with TestPipeline(argv=RUNNER) as p:
        texts = (p | beam.Create([pack_docs(docs)])
                 | beam.ParDo(EmbeddingTextFn(fingerprint("bundled:tokenizer"), sp.get_piece_size(), "e" * 64))
                 | beam.Map(lambda e: (e.doc.split("\0")[0], e.text)))
        assert_that(texts, equal_to([("plain", "in the beginning"),
                                     ("spoken", "the ark rested upon the mountains of ararat")]))
