"""The text the teacher speaks: real, varied English documents split into training and held-out parts.

Documents come from scripts/corpus_sources.py (KJV chapters, fortunes, GCIDE entries, WordNet glosses in groups
of 5). A document is held out when crc32 of its id is divisible by HELD_OUT_MODULUS (about 2% of each source); the
evaluation sentences come only from held-out documents and are dropped if the same sentence also occurs in a
training document (the Bible and the fortunes repeat themselves). Training fragments are word spans of training
documents, 1 to 60 words like the pipeline's speech spans, free to cross sentence boundaries.
"""
import random
import re
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus_sources  # noqa: E402

SOURCES = ("kjv", "fortunes", "gcide", "wordnet")
HELD_OUT_MODULUS = 50
MAX_WORDS = 60
SPAN_LAMBDA = 10  # the pipeline's default --span-lambda
# A sentence ends at . ! ? (optionally closed by a quote or bracket) before a space and a capital or quote.
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(A-Z])")
# Fragments need mostly letters: GCIDE and fortunes hold tables, ASCII art and formulae espeak-ng reads badly.
MIN_LETTER_SHARE = 0.75


def source_documents(source: str) -> list[dict]:
    if source == "kjv":
        return list(corpus_sources.kjv_chapters())
    if source == "fortunes":
        return list(corpus_sources.fortunes())
    if source == "gcide":
        return list(corpus_sources.gcide_entries(5))
    return list(corpus_sources.wordnet_glosses(5))


def is_held_out(doc_id: str) -> bool:
    return zlib.crc32(doc_id.encode("utf-8")) % HELD_OUT_MODULUS == 0


def is_prose(text: str) -> bool:
    visible = text.replace(" ", "")
    return bool(visible) and sum(c.isalpha() for c in visible) >= MIN_LETTER_SHARE * len(visible)


def sentences(text: str) -> list[str]:
    return [" ".join(s.split()) for s in SENTENCE_END.split(text) if s.strip()]


def split_corpus() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(training documents' texts, held-out documents' texts) per source, whitespace-normalised."""
    train, held_out = {}, {}
    for source in SOURCES:
        docs = source_documents(source)
        train[source] = [" ".join(d["text"].split()) for d in docs if not is_held_out(d["id"])]
        held_out[source] = [" ".join(d["text"].split()) for d in docs if is_held_out(d["id"])]
    return train, held_out


def eval_sentences(train: dict, held_out: dict, per_source: int, seed: int) -> list[str]:
    """`per_source` held-out sentences of 4-40 words from each source, none of them in any training document."""
    seen = {s for texts in train.values() for text in texts for s in sentences(text)}
    rng = random.Random(seed)
    chosen = []
    for source in SOURCES:
        pool = sorted({s for text in held_out[source] for s in sentences(text)
                       if 4 <= len(s.split()) <= 40 and is_prose(s) and s not in seen})
        chosen += rng.sample(pool, min(per_source, len(pool)))
    return chosen


def span_length(rng: random.Random) -> int:
    """Mostly the pipeline's Poisson(10) span lengths, a quarter uniform over 1-60 so long spans are covered."""
    if rng.random() < 0.25:
        return rng.randint(1, MAX_WORDS)
    n, limit, product = 0, pow(2.718281828459045, -SPAN_LAMBDA), rng.random()
    while product > limit:  # Knuth's Poisson sampler: exact, and deterministic given the seed
        n += 1
        product *= rng.random()
    return min(max(n, 1), MAX_WORDS)


def training_fragments(train: dict, count: int, seed: int) -> list[str]:
    """`count` word spans from training documents, an equal share per source, deterministic given the seed."""
    rng = random.Random(seed)
    words = {source: [text.split() for text in texts] for source, texts in train.items()}
    fragments = []
    while len(fragments) < count:
        doc = rng.choice(words[SOURCES[len(fragments) % len(SOURCES)]])
        length = min(span_length(rng), len(doc))
        start = rng.randint(0, len(doc) - length)
        fragment = " ".join(doc[start:start + length])
        if is_prose(fragment):
            fragments.append(fragment)
    return fragments
