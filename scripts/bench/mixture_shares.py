"""Mixtures in the loader, measured in one run, side by side: the token shares per source a weighted BucketLoader
reads against its weights, the same with long documents upsampled (and the upsampling per bucket against its
factor), and the loader's throughput with a mixture against the plain single-dataset loader.

The dataset: --copies copies of the bundled sample (about 1.9 M tokens each), split into three sources by document
number (web 10 of every 14 documents, books 3, code 1), so that their natural token shares (about 0.75, 0.20, 0.05)
differ from the weights (web 0.143, books 0.5, code 0.357) by 5x or more for web and code; built text only, buckets
64..1024, with --long-documents 500. Each mixture is
read for whole epochs, at least --tokens tokens (every step is tokens_per_batch tokens); a source's share is its
steps over all steps. Throughput: each loader reads --steps steps (every batch's input_ids summed, so every byte is
read), twice, alternating, the faster of each pair kept.

    python3 -m scripts.bench.mixture_shares [--tokens 50000000] [--steps 4000] [--copies 10] [--out bench_data/mixture]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import zstandard

from scripts.bench.kept_tokens import commit
from vocaloom import assets
from vocaloom.loader import BucketLoader
from vocaloom.pipelines.build import run

PARTS = {"web": range(10), "books": range(10, 13), "code": range(13, 14)}
WEIGHTS = {"web": 1 / 7, "books": 0.5, "code": 2.5 / 7}
LONG_FACTOR = 3.0
TOKENS_PER_BATCH = 8192


def build(out: Path, copies: int) -> Path:
    with open(assets.SAMPLE_CORPUS, "rb") as f:
        docs = [json.loads(line) for line in zstandard.ZstdDecompressor().stream_reader(f).read().splitlines()]
    corpus, dataset = out / "corpus", out / "dataset"
    corpus.mkdir(parents=True, exist_ok=True)
    inputs = []
    for name, remainders in PARTS.items():
        with open(corpus / f"{name}.jsonl", "w") as part:
            for copy in range(copies):  # each copy's text marked, so that dedup keeps it
                part.writelines(
                    json.dumps({"id": f"{doc['id']}/{copy}", "text": f"copy {copy}: {doc['text']}"}) + "\n"
                    for i, doc in enumerate(docs)
                    if i % 14 in remainders
                )
        inputs += ["--input", f"{name}={corpus / name}.jsonl"]
    run(
        [
            *inputs,
            "--output",
            str(dataset),
            "--overwrite",
            "--speech-ratio",
            "0",
            "--min-bucket",
            "6",
            "--max-bucket",
            "10",
            "--long-documents",
            "500",
            "--runner=FnApiRunner",
        ]
    )
    return dataset


def loader(dataset: Path, **mixture) -> BucketLoader:
    return BucketLoader(dataset, tokens_per_batch=TOKENS_PER_BATCH, seed=0, **mixture)


def steps_read(reader: BucketLoader, tokens: int) -> tuple[Counter, int]:
    """(bucket, source name) of every step of whole epochs, until at least `tokens` are read; and the epochs."""
    steps: Counter[tuple[int, str]] = Counter()
    epochs = 0
    while sum(steps.values()) * TOKENS_PER_BATCH < tokens:
        steps.update((batch["bucket"], reader.sources[int(batch["source"][0])]) for batch in reader)
        epochs += 1
    return steps, epochs


def by_source(steps: Counter) -> dict[str, float]:
    total = sum(steps.values())
    return {
        name: sum(n for (_, source), n in steps.items() if source.split(".")[0] == name) / total for name in WEIGHTS
    }


def tokens_per_second(reader: BucketLoader, steps: int) -> float:
    start, done, checksum = time.perf_counter(), 0, 0
    while done < steps:
        for batch in reader:
            checksum += int(batch["input_ids"].sum())
            done += 1
            if done == steps:
                break
    return steps * TOKENS_PER_BATCH / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=50_000_000)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--copies", type=int, default=10, help="copies of the sample the dataset holds")
    parser.add_argument("--out", type=Path, default=Path("bench_data/mixture"))
    args = parser.parse_args(argv)
    dataset = build(args.out, args.copies)
    natural_epoch = Counter((b["bucket"], r.sources[int(b["source"][0])]) for r in [loader(dataset)] for b in r)
    natural = by_source(natural_epoch)
    weighted, epochs = steps_read(loader(dataset, source_weights=WEIGHTS), args.tokens)
    upsampled, long_epochs = steps_read(
        loader(dataset, source_weights=WEIGHTS, long_document_factor=LONG_FACTOR), args.tokens
    )
    lines = [
        f"commit {commit()}; read {sum(weighted.values()) * TOKENS_PER_BATCH:,} tokens in {epochs} epochs "
        f"(weights) and {sum(upsampled.values()) * TOKENS_PER_BATCH:,} in {long_epochs} (weights, long x3)",
        "",
        "| source | natural share | weight | read (weights) | off by | read (weights, long x3) | off by |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    shares, long_shares = by_source(weighted), by_source(upsampled)
    for name, weight in WEIGHTS.items():
        lines.append(
            f"| {name} | {natural[name]:.4f} | {weight:.4f} | {shares[name]:.4f} | "
            f"{shares[name] / weight - 1:+.3%} | {long_shares[name]:.4f} | "
            f"{long_shares[name] / weight - 1:+.3%} |"
        )
    # Long documents upsampled x3 read 3x as often, relative to the rest of their source, as with weights alone, in
    # every bucket: (long / rest steps with the factor) / (long / rest steps without). A source's rows in a bucket
    # that fill no block of one batch are never read ("-").
    lines += [
        "",
        f"| bucket | source | steps long / rest, weights | steps long / rest, long x{LONG_FACTOR:g} | factor read |",
        "|---:|---|---:|---:|---:|",
    ]
    for length in sorted({length for length, _ in natural_epoch}):
        for name in WEIGHTS:
            steps = [(counts[length, name + ".long"], counts[length, name]) for counts in (weighted, upsampled)]
            factor = (
                "-"
                if not all(a and b for a, b in steps)
                else f"{(steps[1][0] / steps[1][1]) / (steps[0][0] / steps[0][1]):.3f}"
            )
            lines.append(
                f"| {length} | {name} | {steps[0][0]:,} / {steps[0][1]:,} | {steps[1][0]:,} / "
                f"{steps[1][1]:,} | {factor} |"
            )
    rates: dict[str, list[float]] = {
        "single dataset, no mixture": [],
        "weights": [],
        f"weights, long x{LONG_FACTOR:g}": [],
    }
    makers = [
        lambda: loader(dataset),
        lambda: loader(dataset, source_weights=WEIGHTS),
        lambda: loader(dataset, source_weights=WEIGHTS, long_document_factor=LONG_FACTOR),
    ]
    for _ in range(2):
        for rate, make in zip(rates.values(), makers):
            rate.append(tokens_per_second(make(), args.steps))
    base = max(rates["single dataset, no mixture"])
    lines += [
        "",
        f"| loader ({args.steps:,} steps of {TOKENS_PER_BATCH:,} tokens) | tokens/s | vs single |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {max(rate):,.0f} | {max(rate) / base:.2f}x |" for name, rate in rates.items()]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
