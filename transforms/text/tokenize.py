"""SentencePiece tokenisation, batched, with each document's tokens (and its eos) written to a spill file: DocText
batches in, DocTokens batches out (transforms/documents.py).
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam
import numpy as np
import sentencepiece as spm

from vocaloom.schemas.local_files import open_regular
from vocaloom.transforms.artifacts import Artifact, localize
from vocaloom.transforms.bundles import Filling, in_global_window
from vocaloom.transforms.columns import concat, to_columns
from vocaloom.transforms.documents import DocBatch, DocText, doc_batch
from vocaloom.transforms.gc_tuning import tune_gc
from vocaloom.transforms.io.spill import TOKEN, write_spill
from vocaloom.transforms.speech.synthetic_interleaving import word_bounds
from vocaloom.transforms.worker_setup import BuildStops

# Characters of text encoded in one SentencePiece call: enough to amortise the call, and few enough that the first
# batch (read while nothing is encoded) and the last (encoded while nothing is read) are short.
BATCH_CHARS = 1 << 20

_FIELDS = ("fingerprint", "id", "text", "source", "line", "source_index", "segments")
_FINGERPRINT, _ID, _TEXT, _SOURCE, _LINE, _SOURCE_INDEX, _SEGMENTS = map(DocText._fields.index, _FIELDS)


def load_sentencepiece(path: str) -> spm.SentencePieceProcessor:
    """A local model file: workers get theirs through worker_sentencepiece. An empty one is refused here: protobuf
    parses it as a model of no pieces, which SentencePiece accepts and then fails on."""
    with open_regular(path) as f:
        proto = f.read()
    if not proto:
        raise ValueError(f"{path} is empty")
    return spm.SentencePieceProcessor(model_proto=proto)


def worker_sentencepiece(tokenizer: Artifact, step: str, failures: BuildStops) -> spm.SentencePieceProcessor:
    """The build's tokenizer in a step's setup() on a worker: its local copy, checked, or one WorkerSetupError."""
    with failures.guard(step):
        return load_sentencepiece(localize(tokenizer))


class TokenizeFn(beam.DoFn):
    """DocText batches in, DocTokens batches out. When `interleaved`, only the text segments (SampleSpans) are
    encoded and the speech spans are set aside for the text-to-token model.

    SentencePiece encodes batches on background threads (it releases the GIL), one batch per core at a time and
    one SentencePiece thread per batch (its own threads share out one batch less well), while this thread reads the
    next one; batches come out in the order they were filled.
    """

    def __init__(
        self,
        tokenizer: Artifact,
        eos_id: int,
        spill_dir: str,
        interleaved: bool = False,
        failures: BuildStops = BuildStops(),
        embedding_tokens: int = 0,
    ):
        self._tokenizer, self._eos, self._spill_dir, self._failures = tokenizer, eos_id, spill_dir, failures
        self._interleaved = interleaved
        # Related builds: each document's first `embedding_tokens` tokens of its whole text, decoded, are the text
        # it is embedded from (DocTokens.embedding_text); the same at any --speech-ratio.
        self._embedding_tokens = embedding_tokens

    def setup(self):
        tune_gc()
        self._sp = worker_sentencepiece(self._tokenizer, "Tokenize", self._failures)
        self._encoders = os.cpu_count() or 1
        self._encoder = ThreadPoolExecutor(max_workers=self._encoders, thread_name_prefix="sentencepiece")

    def teardown(self):
        self._encoder.shutdown()

    def start_bundle(self):
        self._filling = Filling(BATCH_CHARS)  # DocText columns, weighed in characters
        # (batch, speech plans or None, future of its encoding, future of its whole texts' encoding or None), oldest
        # first
        self._pending: deque[tuple] = deque()

    def process(self, batch: DocBatch):
        documents = to_columns(batch)
        self._filling.add(documents, sum(map(len, documents[_TEXT])))
        if self._filling.full:
            yield from self._flush()

    def finish_bundle(self):
        yield from in_global_window([*self._flush(), *self._collect(0)])

    def _flush(self) -> list[DocBatch]:
        """Starts encoding the filled batch; returns the DocBatches of the batches it had to wait for, so that no
        more batches are being encoded than there are cores."""
        filling = self._filling.take()
        done = self._collect(self._encoders - 1)
        if filling:
            batch = concat(filling)
            texts = batch[_TEXT]
            whole = None
            if self._interleaved and self._embedding_tokens:
                whole = self._encoder.submit(self._sp.encode, texts, out_type="numpy", num_threads=1)
            plans = batch[_SEGMENTS] if self._interleaved else None
            if plans is not None:
                texts = [
                    text[start:end] for text, plan in zip(texts, plans) for start, end, speech in plan if not speech
                ]
            encoding = self._encoder.submit(self._sp.encode, texts, out_type="numpy", num_threads=1)
            self._pending.append((batch, plans, encoding, whole))
        return done

    def _collect(self, leave: int) -> list[DocBatch]:
        """Waits for the oldest batches being encoded until `leave` are left; spills their tokens and returns their
        DocBatches."""
        done = []
        while len(self._pending) > leave:
            batch, plans, encoding, whole = self._pending.popleft()
            encoded = encoding.result()
            embedding = self._embedding_texts(encoded if whole is None else whole.result())
            if plans is None:
                done.append(self._spill(batch, encoded, embedding))
            else:
                done.append(self._spill_interleaved(batch, plans, encoded, embedding))
        return done

    def _embedding_texts(self, whole: list[np.ndarray]) -> dict:
        """The DocBatch column of the documents' embedding texts (none unless the build is related)."""
        if not self._embedding_tokens:
            return {}
        return {"embedding_text": [self._sp.decode(tokens[: self._embedding_tokens].tolist()) for tokens in whole]}

    def _spill(self, batch: list[list], encoded: list[np.ndarray], embedding: dict) -> DocBatch:
        # SentencePiece's numpy output: one int32 array per document, no Python int per token.
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)) + 1
        ends = np.cumsum(lengths)
        tokens = np.full(int(ends[-1]), self._eos, dtype=TOKEN)
        text_positions = np.ones(tokens.size, dtype=bool)
        text_positions[ends - 1] = False
        tokens[text_positions] = np.concatenate(encoded)
        return _tokenized(
            batch,
            n_tokens=lengths.tolist(),
            spill=write_spill(self._spill_dir, tokens),
            offset=(ends - lengths).tolist(),
            **embedding,
        )

    def _spill_interleaved(
        self, batch: list[list], plans: list, encoded: list[np.ndarray], embedding: dict
    ) -> DocBatch:
        pieces, eos = iter(encoded), np.array([self._eos], dtype=TOKEN)
        arrays, n_tokens, offsets, layouts, spans, n_words, start = [], [], [], [], [], [], 0
        for text, plan in zip(batch[_TEXT], plans):
            layout, spoken, n = [], [], 1
            for first, last, speech in plan:
                if speech:
                    layout.append(-1)
                    spoken.append(text[first:last])
                else:
                    piece = next(pieces)
                    layout.append(len(piece))
                    arrays.append(piece)
                    n += len(piece)
            arrays.append(eos)
            offsets.append(start)
            n_tokens.append(n)
            start += n
            layouts.append(tuple(layout))
            spans.append(tuple(spoken))
            n_words.append(len(word_bounds(text)))
        return _tokenized(
            batch,
            n_tokens=n_tokens,
            spill=write_spill(self._spill_dir, np.concatenate(arrays)),
            offset=offsets,
            layout=layouts,
            spans=spans,
            n_words=n_words,
            **embedding,
        )


def _tokenized(documents: list[list], **columns) -> DocBatch:
    """The DocTokens batch of DocText columns whose tokens are spilled as `columns` say."""
    return doc_batch(
        fingerprint=documents[_FINGERPRINT],
        id=documents[_ID],
        source=documents[_SOURCE],
        line=documents[_LINE],
        source_index=documents[_SOURCE_INDEX],
        **columns,
    )
