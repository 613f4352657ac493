"""The text the teacher speaks: real, varied English documents split into training and held-out parts, and the
domains that never enter training.

Training documents come from scripts/recipes/corpus_sources.py (KJV chapters, fortunes, GCIDE entries, WordNet glosses
in groups of 5, The Devil's Dictionary's entries). A document is held out when crc32 of its id is divisible by
HELD_OUT_MODULUS (about 2% of each source); the in-domain evaluation sentences come only from held-out documents and are
dropped if the same sentence also occurs in a training document (the Bible and the fortunes repeat themselves).
Training fragments are word spans of training documents, 1 to 60 words like the pipeline's speech spans, free to cross
sentence boundaries.

OUT_OF_TRAINING domains are evaluation only, from sources no training text comes from: technical documentation
(the Python standard library's docstrings: identifiers, numbers, URLs), narrative prose and dialogue (Jane
Austen's narration and her characters' quoted speech) and lists and numbers (ISO country and currency codes, time
zones with coordinates, network services with ports). Their lines keep digits, symbols and punctuation as written.
"""

import random
import re
import zlib

from scripts.recipes import corpus_sources
from vocaloom.transforms.speech.synthetic_interleaving import poisson

SOURCES = ("kjv", "fortunes", "gcide", "wordnet", "devil")
PACKAGES = ("bible-kjv", "fortunes", "dict-gcide", "wordnet-base", "dict-devil")  # SOURCES' (corpus_sources.PACKAGES)
# Each source's share of the training fragments: equal, but for the small Devil's Dictionary (65 k words), which
# would otherwise be repeated many times over.
SOURCE_SHARES = (0.235, 0.235, 0.235, 0.235, 0.06)
HELD_OUT_MODULUS = 50
MAX_WORDS = 60
SPAN_LAMBDA = 10  # the pipeline's default --span-lambda
# A sentence ends at . ! ? (optionally closed by a quote or bracket) before a space and a capital or quote, but not
# after a title ("Mr. Weston").
SENTENCE_END = re.compile(r"(?<!\bMr\.)(?<!\bMrs\.)(?<!\bDr\.)(?<!\bSt\.)(?<=[.!?])[\"')\]]?\s+(?=[\"'(A-Z])")
# Fragments need mostly letters: GCIDE and fortunes hold tables, ASCII art and formulae espeak-ng reads badly.
MIN_LETTER_SHARE = 0.75
QUOTED = re.compile(r'"([^"]+)"')


def source_documents(source: str) -> list[dict]:
    if source == "kjv":
        return list(corpus_sources.kjv_chapters())
    if source == "fortunes":
        return list(corpus_sources.fortunes())
    if source == "gcide":
        return list(corpus_sources.gcide_entries(5))
    if source == "devil":
        return list(corpus_sources.devil_entries())
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
        pool = sorted(
            {
                s
                for text in held_out[source]
                for s in sentences(text)
                if 4 <= len(s.split()) <= 40 and is_prose(s) and s not in seen
            }
        )
        chosen += rng.sample(pool, min(per_source, len(pool)))
    return chosen


def austen_narration() -> list[str]:
    """Sentences of Austen's paragraphs that quote nobody."""
    return [s for d in corpus_sources.austen_paragraphs() if '"' not in d["text"] for s in sentences(d["text"])]


def austen_speech() -> list[str]:
    """What Austen's characters say: each quoted passage, as the reader meets it between quotation marks."""
    return [" ".join(q.split()) for d in corpus_sources.austen_paragraphs() for q in QUOTED.findall(d["text"])]


def python_documentation() -> list[str]:
    return [s for d in corpus_sources.python_docstrings() for line in d["text"].splitlines() for s in sentences(line)]


def reference_entries() -> list[str]:
    """Runs of 2-5 consecutive entries of each list, joined as a list is read out: "a; b; c"."""
    rng = random.Random(0)
    runs = []
    for document in corpus_sources.reference_lists():
        entries = document["text"].splitlines()
        begin = 0
        while begin < len(entries):
            count = rng.randint(2, 5)
            runs.append("; ".join(entries[begin : begin + count]))
            begin += count
    return runs


OUT_OF_TRAINING = {
    "technical": python_documentation,
    "narrative": austen_narration,
    "dialogue": austen_speech,
    "lists": reference_entries,
}
OUT_OF_TRAINING_PACKAGES = ("r-cran-janeaustenr", "iso-codes", "tzdata", "netbase")


def out_of_training_sentences(domain: str, count: int, seed: int) -> list[str]:
    """`count` distinct lines of 4-40 words from one out-of-training domain, deterministic given the seed."""
    pool = sorted({s for s in OUT_OF_TRAINING[domain]() if 4 <= len(s.split()) <= 40})
    return random.Random(f"{seed}/{domain}").sample(pool, min(count, len(pool)))


def span_length(rng: random.Random) -> int:
    """Mostly the pipeline's Poisson(10) span lengths, a quarter uniform over 1-60 so long spans are covered."""
    if rng.random() < 0.25:
        return rng.randint(1, MAX_WORDS)
    return min(max(poisson(rng, SPAN_LAMBDA), 1), MAX_WORDS)


def training_fragments(train: dict, count: int, seed: int) -> list[str]:
    """`count` word spans from training documents, sources drawn by SOURCE_SHARES, deterministic given the seed."""
    rng = random.Random(seed)
    words = {source: [text.split() for text in texts] for source, texts in train.items()}
    fragments: list[str] = []
    while len(fragments) < count:
        doc = rng.choice(words[rng.choices(SOURCES, SOURCE_SHARES)[0]])
        length = min(span_length(rng), len(doc))
        start = rng.randint(0, len(doc) - length)
        fragment = " ".join(doc[start : start + length])
        if is_prose(fragment):
            fragments.append(fragment)
    return fragments
