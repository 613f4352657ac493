"""SentencePiece tokenisation, batched, with each document's tokens (and its eos) written to a spill file."""
from __future__ import annotations

import itertools
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import sentencepiece as spm

from transforms.counting import global_window_value
from transforms.dedup import fingerprint
from transforms.records import Document
from transforms.spill import TOKEN, write_spill

# Characters of text encoded in one SentencePiece call: large enough to amortise the call, small enough for memory.
BATCH_CHARS = 4 << 20


class DocTokens(NamedTuple):
    """A tokenised document by reference: its tokens are `n_tokens` int32 at `offset` in the `spill` file."""
    fingerprint: bytes
    id: str
    source: str
    line: int
    n_tokens: int
    spill: str
    offset: int


def load_sentencepiece(path: str) -> spm.SentencePieceProcessor:
    """Loads through Beam's FileSystems so a model on gs:// works on workers."""
    from apache_beam.io.filesystems import FileSystems
    with FileSystems.open(path) as f:
        return spm.SentencePieceProcessor(model_proto=f.read())


class TokenizeFn(beam.DoFn):
    def __init__(self, tokenizer_path: str, eos_id: int, spill_dir: str):
        self._tokenizer_path, self._eos, self._spill_dir = tokenizer_path, eos_id, spill_dir

    def setup(self):
        self._sp = load_sentencepiece(self._tokenizer_path)

    def start_bundle(self):
        self._batch: list[Document] = []
        self._chars = 0

    def process(self, doc: Document):
        self._batch.append(doc)
        self._chars += len(doc.text)
        if self._chars >= BATCH_CHARS:
            yield from self._flush()

    def finish_bundle(self):
        for batch in self._flush():
            yield global_window_value(batch)

    def _flush(self):
        """Encodes the batch, spills its tokens, and yields the batch's DocTokens as one list."""
        batch, self._batch, self._chars = self._batch, [], 0
        if not batch:
            return
        encoded = self._sp.encode([d.text for d in batch])
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
        yield [DocTokens(fingerprint(doc.text), doc.id, doc.source, doc.line, n, path, start)
               for doc, n, start in zip(batch, lengths.tolist(), starts)]
