import itertools
import json
import random

import zstandard
from hypothesis import given
from hypothesis import strategies as st

from vocaloom import assets
from vocaloom.transforms.columns import unpack
from vocaloom.transforms.documents import DocText, doc_texts
from vocaloom.transforms.speech.synthetic_interleaving import (
    Interleaving,
    place_spans,
    poisson,
    sample_spans,
    segments,
    span_lengths,
    word_bounds,
)


def test_poisson_mean_and_variance():
    rng = random.Random(1)
    draws = [poisson(rng, 10.0) for _ in range(20000)]
    mean = sum(draws) / len(draws)
    var = sum((d - mean) ** 2 for d in draws) / len(draws)
    assert abs(mean - 10) < 0.15 and abs(var - 10) < 0.5


@given(
    st.lists(st.text(alphabet="abc xyz.\n", min_size=1, max_size=8), max_size=80),
    st.floats(0.05, 0.6),
    st.floats(0.5, 15),
    st.integers(0, 1000),
    st.text(max_size=5),
)
def test_segments_cover_every_word_once_in_order(words, ratio, lam, seed, doc_id):
    text = " ".join(words)
    segs = segments(text, ratio, lam, seed, doc_id)
    bounds = word_bounds(text)
    covered = [w for s in segs for w in word_bounds(text[s.start : s.end])]
    assert len(covered) == len(bounds)  # every word in exactly one segment, none split
    assert [text[s.start : s.end] for s in segs] == [text[s.start : s.end].strip() for s in segs]  # word-bounded
    for prev, nxt in itertools.pairwise(segs):
        assert prev.end <= nxt.start and prev.speech != nxt.speech  # ordered, no overlap, spans never adjacent
    assert segs == segments(text, ratio, lam, seed, doc_id)  # a function of (seed, id)


@given(st.integers(0, 400), st.floats(0.05, 0.6), st.floats(0.5, 20), st.integers(0, 2**31))
def test_spans_fit_without_overlap(n_words, ratio, lam, seed):
    rng = random.Random(seed)
    lengths = span_lengths(n_words, ratio, lam, rng)
    spans = place_spans(n_words, lengths, rng)
    assert [e - s for s, e in spans] == lengths
    assert all(0 <= s < e <= n_words for s, e in spans)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))  # at least one word between spans
    assert sum(lengths) <= round(ratio * n_words)


def test_share_over_the_sample_corpus_is_within_two_points_of_the_target():
    with open(assets.SAMPLE_CORPUS, "rb") as f:
        docs = [json.loads(line) for line in zstandard.ZstdDecompressor().stream_reader(f).read().splitlines()]
    for ratio in (0.2, 0.3, 0.4):
        words = speech = 0
        for doc in docs:
            text = doc["text"]
            for s in segments(text, ratio, 10.0, 0, doc["id"]):
                n = len(text[s.start : s.end].split())
                words += n
                speech += n if s.speech else 0
        assert abs(speech / words - ratio) <= 0.02, (ratio, speech / words)


def test_sample_spans_sets_each_documents_segments_at_its_sources_ratio():
    texts = ["one two three four five six seven eight nine ten"] * 2 + ["a b c d e f g h i j k l"]
    batch = doc_texts((["x", "x", "y"], texts, ["a.jsonl", "b.jsonl", "b.jsonl"], [1, 1, 2]), {"b.jsonl": 1})
    out = unpack(DocText, sample_spans(batch, Interleaving((0.0, 0.5), 2.0, 3)))
    assert [doc._replace(segments=()) for doc in out] == unpack(DocText, batch)  # nothing else changes
    assert [doc.segments for doc in out] == [
        tuple(map(tuple, segments(text, ratio, 2.0, 3, doc_id)))
        for doc_id, text, ratio in zip("xxy", texts, (0.0, 0.5, 0.5))
    ]
    assert not any(speech for *_, speech in out[0].segments)  # source 0 speaks nothing
    assert any(speech for *_, speech in out[1].segments)
