"""Write the bundled sample corpus, assets/sample/sample.jsonl.zst.

The sample is committed so tests and the tokenizer build run offline. It holds
every KJV chapter plus a fixed selection of fortunes and gcide entries, grouped
so document lengths range from one sentence to a few thousand words. The output
is byte-identical on every run: fixed selection, fixed order, single-threaded
zstd.
"""

import argparse
import collections
import itertools
import json
import sys
from pathlib import Path

import zstandard
from tqdm import tqdm

from scripts.recipes import corpus_sources
from vocaloom import assets

ZSTD_LEVEL = 19
# Keep one fortune in this many.
FORTUNE_STRIDE = 4
# gcide group size -> keep one document in this many; from single entries
# (a sentence) to 64 entries (a few thousand words).
GCIDE_STRIDES = {1: 50, 4: 50, 16: 50, 64: 50}
MAX_BYTES = 4_500_000


def every(docs, stride):
    """Keep every `stride`-th document, starting with the first."""
    return itertools.islice(docs, 0, None, stride)


def sample_documents():
    """Yield the sample's documents in their fixed order."""
    yield from corpus_sources.kjv_chapters()
    yield from every(corpus_sources.fortunes(), FORTUNE_STRIDE)
    for group, stride in GCIDE_STRIDES.items():
        yield from every(corpus_sources.gcide_entries(group), stride)


def to_jsonl(docs):
    """Serialise documents as JSON lines, counting them per source."""
    counts: collections.Counter[str] = collections.Counter()
    lines = []
    for doc in tqdm(docs, desc="documents", unit="doc"):
        record = {"id": doc["id"], "text": doc["text"], "source": doc["source"]}
        lines.append(json.dumps(record, ensure_ascii=False))
        counts[doc["source"]] += 1
    return ("\n".join(lines) + "\n").encode("utf-8"), counts


def main(argv=None):
    """Build the sample corpus and report what went into it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=assets.SAMPLE_CORPUS, help="output .jsonl.zst path (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if problem := corpus_sources.missing_packages("bible-kjv", "fortunes", "dict-gcide"):
        parser.error(problem)

    payload, counts = to_jsonl(sample_documents())
    compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(payload)
    if len(compressed) > MAX_BYTES:
        sys.exit(f"sample is {len(compressed):,} bytes, over the {MAX_BYTES:,} limit")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(compressed)

    for source, count in counts.items():
        print(f"{source}: {count:,} documents")
    print(
        f"total: {sum(counts.values()):,} documents, {len(payload):,} bytes of JSON, "
        f"{len(compressed):,} bytes compressed -> {args.out}"
    )


if __name__ == "__main__":
    main()
