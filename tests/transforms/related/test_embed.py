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
from vocaloom.transforms.artifacts import read_artifact
from vocaloom.transforms.documents import doc_texts, unpack_docs
from vocaloom.transforms.related.embed import EmbeddingTextFn, read_embedder, vector_codec
from vocaloom.transforms.speech.synthetic_interleaving import Interleaving, sample_spans
from vocaloom.transforms.text.tokenize import TokenizeFn, load_sentencepiece


def encoder_dir(path, weights: bytes, config: str = '{"hidden_size": 2}'):
    path.mkdir()
    (path / "config.json").write_text(config)
    (path / "tokenizer.json").write_text("{}")
    save_file(
        {"embeddings.weight": torch.tensor(list(weights), dtype=torch.float32).reshape(1, -1)},
        str(path / "model.safetensors"),
    )
    return path


def test_embedder_sha_follows_every_file(tmp_path):
    a = read_embedder(str(encoder_dir(tmp_path / "a", b"w1")))
    same = read_embedder(str(encoder_dir(tmp_path / "b", b"w1")))
    other = read_embedder(str(encoder_dir(tmp_path / "c", b"w2")))
    # the cache key changes with the weights, not the location
    assert a.cache_identity == same.cache_identity != other.cache_identity


def test_embedder_directory_without_config_fails_in_one_line(tmp_path):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "tokenizer.json").write_text("{}")
    with pytest.raises(ValueError, match=r"no config\.json"):
        read_embedder(str(tmp_path / "e"))


@pytest.mark.parametrize(
    "config, message",
    [
        ('{"hidden_size": 2, "num_hidden_layers": 10000000}', "num_hidden_layers=10000000 is larger than anything"),
        ('{"hidden_size": 2, "layer_norm_eps": NaN}', "layer_norm_eps=nan, not a finite number"),
    ],
)
def test_an_encoder_config_the_weights_cannot_back_fails_in_one_line(tmp_path, config, message):
    with pytest.raises(ValueError, match=message):
        read_embedder(str(encoder_dir(tmp_path / "e", b"w1", config)))


def test_vectors_round_trip_through_the_cache_codec():
    vector = (np.arange(1, 385, dtype=np.float32) / np.linalg.norm(np.arange(1, 385))).astype(np.float32).tobytes()
    codec = vector_codec(384)
    assert codec.decode(codec.encode(vector)) == vector


@pytest.mark.parametrize(
    "value, problem",
    [
        (base64.b64encode(np.ones(3, np.float32).tobytes()).decode(), "12 bytes, not 384 float32s"),
        (base64.b64encode(np.zeros(384, np.float32).tobytes()).decode(), "unit length"),
        (base64.b64encode(np.full(384, np.nan, np.float32).tobytes()).decode(), "unit length"),
        ("not base64!", "base64"),
    ],
)
def test_a_cached_vector_the_encoder_could_not_have_made_is_refused(value, problem):
    with pytest.raises(ValueError, match=problem):
        vector_codec(384).decode(value)


def test_embedding_text_is_the_documents_own_whatever_becomes_speech(tmp_path, tokenizer_path):
    """Exact output of Tokenize then EmbeddingText: a document's embedding text is its first tokens' text, decoded
    from its whole text, so a related build orders the same documents the same way at any --speech-ratio (and a
    text build's cached embeddings serve a speech build)."""
    sp = load_sentencepiece(tokenizer_path)
    eos = Vocabulary.build(sp.get_piece_size(), sp.eos_id() if sp.eos_id() >= 0 else None).eos
    texts = ["In the beginning God created the heaven and the earth.", " ".join(["And the ark rested."] * 40)]
    documents = doc_texts((["a", "b"], texts, ["in.jsonl", "in.jsonl"], [1, 2]), {})
    first = 12  # tokens embedded: the second document is longer, and is cut
    expected = [(doc_id, sp.decode(sp.encode(text)[:first])) for doc_id, text in zip("ab", texts)]
    assert len(sp.encode(texts[1])) > first and expected[1][1] != texts[1]
    for ratio in (None, 0.0, 0.5, 1.0):
        tokenize = TokenizeFn(
            read_artifact("bundled:tokenizer"), eos, str(tmp_path), ratio is not None, embedding_tokens=first
        )
        with TestPipeline(argv=RUNNER) as p:
            texts_in = p | f"Documents{ratio}" >> beam.Create([documents])
            if ratio is not None:
                texts_in = texts_in | f"SampleSpans{ratio}" >> beam.Map(sample_spans, Interleaving((ratio,), 3.0, 7))
            embedded = (
                texts_in
                | f"Tokenize{ratio}" >> beam.ParDo(tokenize)
                | f"EmbeddingText{ratio}" >> beam.ParDo(EmbeddingTextFn("e" * 64))
                | f"Text{ratio}" >> beam.Map(lambda e: (e.doc.split("\0")[0], e.text))
            )
            assert_that(embedded, equal_to(expected))


def test_a_build_that_is_not_related_carries_no_embedding_text(tmp_path, tokenizer_path):
    sp = load_sentencepiece(tokenizer_path)
    tokenize = TokenizeFn(read_artifact("bundled:tokenizer"), sp.eos_id(), str(tmp_path), True)
    with TestPipeline(argv=RUNNER) as p:
        texts = (
            p
            | beam.Create([doc_texts((["a"], ["some words to speak and to read"], ["in.jsonl"], [1]), {})])
            | beam.Map(sample_spans, Interleaving((0.5,), 3.0, 7))
            | beam.ParDo(tokenize)
            | beam.FlatMap(lambda batch: [doc.embedding_text for doc in unpack_docs(batch)])
        )
        assert_that(texts, equal_to([""]))
