"""Write a benchmark corpus of real text: at least 50 MiB per unit of --scale.

All installed sources together give about 47 MB of distinct text, so larger
corpora come from regrouping it: grouping g joins g consecutive documents of
each source into one. Groupings are taken in order (sizes 1, 2, 3, 5, 8, ...)
until the target is reached, so scale N uses about N groupings and every
document is distinct text (the pipeline drops exact duplicates, so plain
copies would not load it). Scale 1 is grouping 1 (KJV chapters, fortunes,
gcide entries, WordNet glosses) topped up from grouping 2.

Documents are dealt round-robin into --files .jsonl.zst shards so every shard
has the same mix of sources and lengths.
"""

import argparse
import contextlib
import json
import shutil
from pathlib import Path

import zstandard
from tqdm import tqdm

from scripts.recipes import corpus_sources

TARGET_BYTES_PER_SCALE = 50 * 1024 * 1024
ZSTD_LEVEL = 3
DEFAULT_FILES = 16


def group_sizes():
    """Yield grouping sizes 1, 2, 3, 5, 8, ... (spread out, never repeating)."""
    size, following = 1, 2
    while True:
        yield size
        size, following = following, size + following


def regroup(docs, group, source):
    """Keep documents as they are for group 1, else join `group` at a time."""
    if group == 1:
        return docs
    return corpus_sources.group_documents((doc["text"] for doc in docs), group, source, source)


def grouping(group):
    """Yield every source's documents grouped `group` at a time."""
    yield from regroup(corpus_sources.kjv_chapters(), group, "kjv")
    yield from regroup(corpus_sources.fortunes(), group, "fortunes")
    yield from corpus_sources.gcide_entries(group)
    yield from corpus_sources.wordnet_glosses(group)


def bench_documents(target_bytes):
    """Yield documents from successive groupings until `target_bytes` of text."""
    total = 0
    with tqdm(total=target_bytes, desc="text", unit="B", unit_scale=True) as progress:
        for group in group_sizes():
            for doc in grouping(group):
                size = len(doc["text"].encode("utf-8"))
                yield doc
                total += size
                progress.update(size)
                if total >= target_bytes:
                    return


def _shard_writer(path):
    """Open a zstd stream writer on `path` that closes the file with it."""
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(path.open("wb"))


def write_shards(docs, out_dir, files):
    """Deal documents round-robin into `files` zstd JSON-lines shards.

    Each shard gets its own ZstdCompressor: one compressor holds one zstd
    context, and interleaving several streams through it corrupts them all.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    count = text_bytes = 0
    with contextlib.ExitStack() as stack:
        shards = [stack.enter_context(_shard_writer(out_dir / f"part-{i:05d}.jsonl.zst")) for i in range(files)]
        for count, doc in enumerate(docs, start=1):
            record = {"id": doc["id"], "text": doc["text"], "source": doc["source"]}
            line = json.dumps(record, ensure_ascii=False) + "\n"
            shards[(count - 1) % files].write(line.encode("utf-8"))
            text_bytes += len(doc["text"].encode("utf-8"))
    return count, text_bytes


def main(argv=None):
    """Build the benchmark corpus and report its size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--scale", type=int, default=1, help="units of 50 MiB of text (default: %(default)s)")
    parser.add_argument("--files", type=int, default=DEFAULT_FILES, help="number of shards (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.scale < 1 or args.files < 1:
        parser.error("--scale and --files must be at least 1")
    if problem := corpus_sources.missing_packages("bible-kjv", "fortunes", "dict-gcide", "wordnet-base"):
        parser.error(problem)

    # Written beside --out and renamed into place whole: a run that stops half-way leaves no corpus that a later
    # benchmark would take for a finished one.
    partial = args.out.with_name(args.out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    count, text_bytes = write_shards(bench_documents(args.scale * TARGET_BYTES_PER_SCALE), partial, args.files)
    shutil.rmtree(args.out, ignore_errors=True)
    partial.rename(args.out)
    print(f"{count:,} documents, {text_bytes / 1e6:.1f} MB of text in {args.files} files -> {args.out}")


if __name__ == "__main__":
    main()
