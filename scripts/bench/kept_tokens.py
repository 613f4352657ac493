"""How many of a corpus's tokens reach the shards in document context: packed (the default) and with
`--remainders drop`, side by side, in one run.

For each corpus (the bundled sample, and every --corpus pattern given) two text-only builds that differ only in
--remainders; prints, as a Markdown table, the documents kept and left out, the tokens produced, written and
dropped (by reason) and the share written, with the commit measured.

Usage: python -m scripts.bench.kept_tokens [--corpus 'bench_data/corpus/*.jsonl.zst'] [--out bench_data/kept_tokens]
(prepare_bench_corpus.py --out bench_data/corpus --scale 1 writes that corpus.)
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from vocaloom.pipelines.build import run
from vocaloom.schemas.manifest import Manifest

MODES = ("pack", "drop")


def commit() -> str:
    here = Path(__file__).resolve().parent
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=here)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=here
    ).stdout.strip()
    return (head.stdout.strip() or "unknown") + (" (with uncommitted changes)" if dirty else "")


def row(corpus: str, mode: str, manifest: Manifest) -> str:
    counts = manifest["counts"]
    produced = counts["text_tokens"] + counts["speech_tokens"]
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(counts.get("tokens_dropped_by_reason", {}).items()))
    left_out = sum(n for reason, n in counts["filtered"].items() if reason != "empty_text")
    return (
        f"| {corpus} | {mode} | {counts['documents_kept']:,} | {left_out:,} | {produced:,} | "
        f"{counts['tokens_written']:,} | {counts['tokens_dropped']:,} ({reasons or 'none'}) | "
        f"{counts['tokens_written'] / produced:.2%} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="append", default=[], help="an --input pattern (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("bench_data/kept_tokens"))
    args = parser.parse_args(argv)
    lines = [
        "| corpus | remainders | documents kept | left out (no row) | tokens | written | dropped (why) | "
        "written share |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for corpus in ["bundled:sample", *args.corpus]:
        for mode in MODES:
            output = args.out / f"{len(lines) - 2}-{mode}"
            manifest = run(
                [
                    "--input",
                    corpus,
                    "--output",
                    str(output),
                    "--overwrite",
                    "--speech-ratio",
                    "0",
                    "--remainders",
                    mode,
                    "--runner=FnApiRunner",
                ]
            )
            lines.append(row(corpus, mode, manifest))
            print(lines[-1], flush=True)
    print(f"\ncommit {commit()}\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
