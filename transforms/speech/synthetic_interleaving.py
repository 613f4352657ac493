"""Synthetic interleaved speech-text data (Zeng et al. 2024, GLM-4-Voice): which words of a document become speech.

Span lengths in words are drawn from Poisson(lambda) until the spans cover the target share of the document's
words (the last span is cut to hit it), then placed at random without overlap and never inside a word. Spans are
kept one word apart so that each becomes its own `begin_of_audio ... end_of_audio` run. Everything is a function
of (seed, document id), so retries, reruns and runners agree.
"""

from __future__ import annotations

import math
import random
import re
from typing import NamedTuple

from vocaloom.transforms import seeds
from vocaloom.transforms.columns import column, from_columns
from vocaloom.transforms.documents import DocBatch, DocText

_WORD = re.compile(r"\S+")
# The longest span spoken, in UTF-8 bytes: a model's memory grows with the square of a span's length (the student's
# with 1 KB about 1 GB, with 8 KB over 12 GB), and a "word" of kilobytes (a URL, a base64 blob, an unspaced Chinese
# paragraph) is not speech. Spans drawn with lambda 10 are some 60 bytes.
MAX_SPAN_BYTES = 1024


def too_long(span_text: str) -> bool:
    return len(span_text) > MAX_SPAN_BYTES or len(span_text.encode("utf-8", "surrogatepass")) > MAX_SPAN_BYTES


class Interleaving(NamedTuple):
    """`--speech-ratio` (each source's, by source index), `--span-lambda` and `--seed`: which words become
    speech."""

    ratios: tuple[float, ...]
    span_lambda: float
    seed: int


class Segment(NamedTuple):
    """A run of whole words of a document: `text[start:end]`, spoken when `speech` is true."""

    start: int
    end: int
    speech: bool


def word_bounds(text: str) -> list[tuple[int, int]]:
    """Character (start, end) of each whitespace-separated word."""
    return [m.span() for m in _WORD.finditer(text)]


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method: exact, and stable across Python versions (numpy's streams are not promised to be)."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def span_lengths(n_words: int, ratio: float, lam: float, rng: random.Random) -> list[int]:
    """Poisson lengths (at least 1 word) until they cover round(ratio * n_words) words, the last one cut to fit,
    as long as the spans and the one-word gaps between them fit in the document."""
    target = round(ratio * n_words)
    lengths: list[int] = []
    covered = 0  # sum(lengths), kept as it grows: re-summing made a long document's spans quadratic
    while covered < target:
        length = min(max(1, poisson(rng, lam)), target - covered)
        if covered + length + len(lengths) > n_words:  # no room left for this span and its gap
            break
        lengths.append(length)
        covered += length
    return lengths


def place_spans(n_words: int, lengths: list[int], rng: random.Random) -> list[tuple[int, int]]:
    """Word (start, end) of each span, uniformly at random among placements with at least one word between spans."""
    if not lengths:
        return []
    free = n_words - sum(lengths) - (len(lengths) - 1)
    # Choosing len(lengths) of free + len(lengths) slots spreads the free words over the gaps uniformly.
    slots = sorted(rng.sample(range(free + len(lengths)), len(lengths)))
    spans, covered = [], 0
    for slot, length in zip(slots, lengths):
        # slot - i free words precede span i, then the i earlier spans and their i gaps: slot + covered in all.
        start = slot + covered
        spans.append((start, start + length))
        covered += length
    return spans


def segments(text: str, ratio: float, lam: float, seed: int, doc_id: str) -> list[Segment]:
    """The document cut into alternating text and speech segments that together hold every word, in order. A span
    of more than MAX_SPAN_BYTES stays text."""
    words = word_bounds(text)
    rng = random.Random(seeds.derive(seed, "spans", doc_id))
    spans = place_spans(len(words), span_lengths(len(words), ratio, lam, rng), rng)
    out, word = [], 0
    for start, end in spans:
        if too_long(text[words[start][0] : words[end - 1][1]]):
            continue  # its words stay in the text segment around it
        if start > word:
            out.append(Segment(words[word][0], words[start - 1][1], False))
        out.append(Segment(words[start][0], words[end - 1][1], True))
        word = end
    if word < len(words):
        out.append(Segment(words[word][0], words[-1][1], False))
    return out


_TEXT, _ID, _SOURCE_INDEX, _SEGMENTS = (DocText._fields.index(f) for f in ("text", "id", "source_index", "segments"))


def sample_spans(batch: DocBatch, interleaving: Interleaving) -> DocBatch:
    """SampleSpans: a batch of DocText in, the same with each document's segments set. Runs after dedup, so no
    span is drawn for a document dropped as a copy."""
    ratios, span_lambda, seed = interleaving
    plans = [
        tuple(map(tuple, segments(text, ratios[source], span_lambda, seed, doc_id)))
        for text, doc_id, source in zip(column(batch, _TEXT), column(batch, _ID), column(batch, _SOURCE_INDEX))
    ]
    return (*batch[:_SEGMENTS], *from_columns([plans]), *batch[_SEGMENTS + 1 :])
