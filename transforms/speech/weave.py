"""Weaving speech back into documents: text segments' tokens and each span's units, in the document's order.

Each speech span becomes `begin_of_audio, speech_offset + unit..., end_of_audio`; a span whose conversion failed
is tokenised as text instead, so no word is ever lost. The woven tokens go to new spill files.
"""

from __future__ import annotations

from collections import Counter

import apache_beam as beam
import numpy as np

from vocaloom.schemas.counts import SPAN_WORDS, SPEECH_WORDS, WORDS
from vocaloom.schemas.vocab import BEGIN_OF_AUDIO, END_OF_AUDIO, Vocabulary
from vocaloom.transforms.artifacts import Artifact
from vocaloom.transforms.bundles import Filling, in_global_window
from vocaloom.transforms.counting import COUNTS, count
from vocaloom.transforms.documents import pack_docs, unpack_docs
from vocaloom.transforms.io.spill import TOKEN, read_spans, write_spill
from vocaloom.transforms.text.tokenize import worker_sentencepiece
from vocaloom.transforms.worker_setup import BuildStops

# Tokens of woven documents written to one spill file.
SPILL_TOKENS = 1 << 20


def weave(text_tokens: np.ndarray, layout: tuple, span_tokens: list[list[int]]) -> np.ndarray:
    """Text segments (sized by `layout`, -1 for a span) interleaved with `span_tokens`; the trailing eos kept."""
    pieces, position, spans = [], 0, iter(span_tokens)
    for size in layout:
        if size < 0:
            pieces.append(np.asarray(next(spans), dtype=TOKEN))
        else:
            pieces.append(text_tokens[position : position + size])
            position += size
    pieces.append(text_tokens[position:])  # eos
    return np.concatenate(pieces)


class WeaveFn(beam.DoFn):
    """(doc key, {"doc": [DocTokens], "units": [(span index, unit ids or None)]}) in; DocBatches of woven documents."""

    def __init__(self, tokenizer: Artifact, vocab: Vocabulary, spill_dir: str, failures: BuildStops):
        self._tokenizer, self._vocab, self._spill_dir, self._failures = tokenizer, vocab, spill_dir, failures

    def setup(self):
        self._sp = worker_sentencepiece(self._tokenizer, "WeaveSpeech", self._failures)

    def start_bundle(self):
        self._woven = Filling(SPILL_TOKENS)  # (DocTokens, tokens, speech tokens), weighed in tokens
        self._words = 0
        self._span_words: Counter[int] = Counter()  # spoken spans by length in words (and so the spoken words)

    def process(self, element):
        _, grouped = element
        (doc,) = grouped["doc"]
        self._words += doc.n_words
        if not doc.spans:
            yield pack_docs([doc])
            return
        units = dict(grouped["units"])
        (text_tokens,) = read_spans(doc.spill, [(doc.offset, doc.n_tokens)])
        boa, eoa = self._vocab.specials[BEGIN_OF_AUDIO], self._vocab.specials[END_OF_AUDIO]
        span_tokens, n_speech = [], 0
        for index, text in enumerate(doc.spans):
            unit_ids = units.get(index)
            if unit_ids is None:  # conversion failed: the words stay text
                span_tokens.append(self._sp.encode(text))
                continue
            span_tokens.append([boa] + [self._vocab.speech_offset + u for u in unit_ids] + [eoa])
            n_speech += len(unit_ids)
            self._span_words[len(text.split())] += 1
        tokens = weave(text_tokens, doc.layout, span_tokens)
        self._woven.add((doc, tokens, n_speech), len(tokens))
        if self._woven.full:
            yield from self._flush()

    def finish_bundle(self):
        yield from in_global_window(self._flush())

    def _flush(self):
        woven = self._woven.take()
        if woven:
            path = write_spill(self._spill_dir, np.concatenate([tokens for _, tokens, _ in woven]))
            batch, offset = [], 0
            for doc, tokens, n_speech in woven:
                batch.append(
                    doc._replace(
                        n_tokens=len(tokens), spill=path, offset=offset, n_speech=n_speech, layout=(), spans=()
                    )
                )
                offset += len(tokens)
            yield pack_docs(batch)
        words, span_words, self._words, self._span_words = self._words, self._span_words, 0, Counter()
        yield count(WORDS, words)
        yield count(SPEECH_WORDS, sum(length * spans for length, spans in span_words.items()))
        for length, spans in sorted(span_words.items()):
            yield count(SPAN_WORDS, spans, str(length))


class Weave(beam.PTransform):
    """DocBatches and (span, units) pairs in; DocBatches of woven documents out, with COUNTS."""

    def __init__(self, tokenizer: Artifact, vocab: Vocabulary, spill_dir: str, failures: BuildStops = BuildStops()):
        super().__init__()
        self._fn = WeaveFn(tokenizer, vocab, spill_dir, failures)

    def expand(self, inputs):
        docs, units = inputs
        keyed_docs = docs | "KeyDocs" >> beam.FlatMap(
            lambda batch: [((d.id, d.fingerprint), d) for d in unpack_docs(batch)]
        )
        keyed_units = units | "KeyUnits" >> beam.Map(
            lambda pair: ((pair[0].doc_id, pair[0].fingerprint), (pair[0].ordinal, pair[1]))
        )
        return (
            {"doc": keyed_docs, "units": keyed_units}
            | "JoinSpeech" >> beam.CoGroupByKey()
            | "Weave" >> beam.ParDo(self._fn).with_outputs(COUNTS, main="docs")
        )
