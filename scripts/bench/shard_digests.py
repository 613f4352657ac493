"""The sha256 of every shard of a few reference builds, as JSON: run it before and after a change that must keep
every output byte-identical, and compare the two files (`--compare OLD.json`).

    python3 -m scripts.bench.shard_digests --out after.json [--compare before.json] [--documents 1500]
        [--bench-corpus DIR]

Builds (FnApiRunner, into a temporary folder): the bundled sample text-only and with speech (the bundled student),
with default options; its first --documents records with speech; the same with --context related, text-only and
with speech; with --bench-corpus, the benchmark corpus (scripts/bench/prepare_bench_corpus.py writes it) text-only with
defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import zstandard

from vocaloom import assets
from vocaloom.pipelines.build import run

RUNNER = ["--runner=FnApiRunner"]


def builds(corpus: str, bench_corpus: Path | None) -> dict[str, list[str]]:
    small = ["--input", corpus, "--min-bucket", "6", "--max-bucket", "9", "--shard-tokens", "20000", *RUNNER]
    found = {
        "sample-text": ["--speech-ratio", "0", *RUNNER],
        "sample-speech": [*RUNNER],
        "subset-speech": small,
        "subset-related-text": [*small, "--context", "related", "--speech-ratio", "0"],
        "subset-related-speech": [*small, "--context", "related"],
    }
    if bench_corpus:
        found["bench-text"] = ["--input", str(bench_corpus / "*.jsonl.zst"), "--speech-ratio", "0", *RUNNER]
    return found


def digests(names: list[str], documents: int, bench_corpus: Path | None = None) -> dict[str, dict[str, str]]:
    out = {}
    with tempfile.TemporaryDirectory() as temp:
        corpus = Path(temp) / "subset.jsonl"
        with zstandard.open(assets.bundled_path("bundled:sample"), "rt") as f:
            corpus.write_text("".join(line for _, line in zip(range(documents), f)))
        for name, args in builds(str(corpus), bench_corpus).items():
            if names and name not in names:
                continue
            manifest = run(["--output", str(Path(temp) / name), *args])
            out[name] = {shard["path"]: shard["sha256"] for bucket in manifest["buckets"] for shard in bucket["shards"]}
            print(f"{name}: {len(out[name])} shards", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--compare", type=Path, help="an earlier run's JSON: exit 1 if any build's shards differ")
    parser.add_argument("--documents", type=int, default=1500)
    parser.add_argument("--bench-corpus", type=Path, help="a folder of the benchmark corpus's .jsonl.zst files")
    parser.add_argument("--only", nargs="*", default=[], help="names of the builds to run (default: all)")
    args = parser.parse_args(argv)
    found = digests(args.only, args.documents, args.bench_corpus)
    args.out.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    if not args.compare:
        return 0
    before = json.loads(args.compare.read_text())
    differ = [name for name in found if before.get(name) != found[name]]
    for name in found:
        print(f"{name}: {'DIFFERENT' if name in differ else 'identical'} ({len(found[name])} shards)")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
