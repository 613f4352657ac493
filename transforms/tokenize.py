"""SentencePiece tokenisation, batched, with each document's tokens (and its eos) written to a spill file.

Documents travel between steps as DocBatch: a batch of DocTokens packed as columns of primitives
(transforms/columns.py), which Beam encodes and sizes natively instead of pickling each record.
"""
from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import sentencepiece as spm

from transforms.columns import pack, unpack
from transforms.counting import global_window_value
from transforms.dedup import fingerprint
from transforms.gc_tuning import tune_gc
from transforms.records import Document
from transforms.synthetic_interleaving import segments, word_bounds
from transforms.spill import TOKEN, write_spill

# Characters of text encoded in one SentencePiece call: large enough to amortise the call, small enough for memory.
BATCH_CHARS = 4 << 20


class DocTokens(NamedTuple):
    """A tokenised document by reference: its tokens are `n_tokens` int32 at `offset` in the `spill` file, the
    last one `eos`. `n_speech` of them are speech ids.

    Before speech is woven in (interleaved builds), the spill holds only the text segments' tokens: `layout` gives
    each segment in order, its token count for text or -1 for a speech span, and `spans` the spans' texts.
    """
    fingerprint: bytes
    id: str
    source: str
    line: int
    n_tokens: int
    spill: str
    offset: int
    n_speech: int = 0
    layout: tuple = ()
    spans: tuple = ()
    n_words: int = 0


DocBatch = tuple  # packed DocTokens


def pack_docs(docs: list[DocTokens]) -> DocBatch:
    return pack(docs)


def unpack_docs(batch: DocBatch) -> list[DocTokens]:
    return unpack(DocTokens, batch)


class Interleaving(NamedTuple):
    """`--speech-ratio`, `--span-lambda` and `--seed`: which words become speech."""
    ratio: float
    span_lambda: float
    seed: int


def load_sentencepiece(path: str) -> spm.SentencePieceProcessor:
    """Loads through Beam's FileSystems so a model on gs:// works on workers."""
    from apache_beam.io.filesystems import FileSystems
    with FileSystems.open(path) as f:
        return spm.SentencePieceProcessor(model_proto=f.read())


class TokenizeFn(beam.DoFn):
    """Documents in, DocBatches out. With `interleaving`, only the text segments are encoded and
    the speech spans are set aside for the text-to-token model.

    SentencePiece encodes a batch on a background thread (it releases the GIL) while this thread reads the next
    one, so encoding and parsing overlap; batches come out in the order they were filled.
    """

    def __init__(self, tokenizer_path: str, eos_id: int, spill_dir: str, interleaving: Interleaving | None = None):
        self._tokenizer_path, self._eos, self._spill_dir = tokenizer_path, eos_id, spill_dir
        self._interleaving = interleaving

    def setup(self):
        tune_gc()
        self._sp = load_sentencepiece(self._tokenizer_path)
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentencepiece")

    def teardown(self):
        self._encoder.shutdown()

    def start_bundle(self):
        self._batch: list[Document] = []
        self._chars = 0
        self._pending = None  # (batch, speech plans or None, future of its encoding)

    def process(self, doc: Document):
        self._batch.append(doc)
        self._chars += len(doc.text)
        if self._chars >= BATCH_CHARS:
            yield from self._flush()

    def finish_bundle(self):
        for batch in [*self._flush(), *self._collect()]:
            yield global_window_value(batch)

    def _flush(self) -> list[DocBatch]:
        """Starts encoding the filled batch; returns the previous batch's DocBatch, if there was one."""
        batch, self._batch, self._chars = self._batch, [], 0
        done = self._collect()
        if batch:
            if self._interleaving:
                ratio, span_lambda, seed = self._interleaving
                plans = [segments(doc.text, ratio, span_lambda, seed, doc.id) for doc in batch]
                texts = [doc.text[s.start:s.end] for doc, plan in zip(batch, plans) for s in plan if not s.speech]
            else:
                plans, texts = None, [doc.text for doc in batch]
            self._pending = (batch, plans, self._encoder.submit(self._sp.encode, texts))
        return done

    def _collect(self) -> list[DocBatch]:
        """Waits for the batch being encoded; spills its tokens and returns its DocBatch."""
        if self._pending is None:
            return []
        (batch, plans, future), self._pending = self._pending, None
        encoded = future.result()
        return [self._spill(batch, encoded) if plans is None else self._spill_interleaved(batch, plans, encoded)]

    def _spill(self, batch: list[Document], encoded: list[list[int]]) -> DocBatch:
        lengths = np.fromiter((len(ids) + 1 for ids in encoded), dtype=np.int64, count=len(encoded))
        ends = np.cumsum(lengths)
        tokens = np.full(int(ends[-1]), self._eos, dtype=TOKEN)
        eos_positions = ends - 1
        text_positions = np.ones(tokens.size, dtype=bool)
        text_positions[eos_positions] = False
        tokens[text_positions] = np.fromiter(itertools.chain.from_iterable(encoded), dtype=TOKEN,
                                             count=tokens.size - len(batch))
        path = write_spill(self._spill_dir, tokens)
        starts = (ends - lengths).tolist()
        return pack_docs([DocTokens(fingerprint(doc.text), doc.id, doc.source, doc.line, n, path, start)
                          for doc, n, start in zip(batch, lengths.tolist(), starts)])

    def _spill_interleaved(self, batch: list[Document], plans: list, encoded: list[list[int]]) -> DocBatch:
        encoded = iter(encoded)
        arrays, metas, start = [], [], 0
        for doc, plan in zip(batch, plans):
            ids, layout, spans = [], [], []
            for segment in plan:
                if segment.speech:
                    layout.append(-1)
                    spans.append(doc.text[segment.start:segment.end])
                else:
                    piece = next(encoded)
                    layout.append(len(piece))
                    ids.extend(piece)
            ids.append(self._eos)
            arrays.append(np.asarray(ids, dtype=TOKEN))
            metas.append((doc, len(ids), start, tuple(layout), tuple(spans), len(word_bounds(doc.text))))
            start += len(ids)
        path = write_spill(self._spill_dir, np.concatenate(arrays))
        return pack_docs([DocTokens(fingerprint(doc.text), doc.id, doc.source, doc.line, n, path, offset, 0, layout,
                                    spans, words) for doc, n, offset, layout, spans, words in metas])
