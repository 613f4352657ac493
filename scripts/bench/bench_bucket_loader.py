"""BucketLoader reading one epoch from local disk and from a bucket on a GCS server on loopback (fake-gcs-server from
scripts/ci/fetch_object_stores.py), the bucket with a cold cache and then a warm one, in one run, side by side.

Each reader is a new BucketLoader in this process, with the process's record of hashed shards cleared, so each
hashes every shard once (the local one from the page cache, the cold one as shards arrive and again when it maps
them, the warm one from its cache folder); every batch's input_ids are summed (so every byte is read). Tokens count L +
1 a row. The server holds the objects in memory on the same machine: the figures show what the reader's own work costs,
not a network's bandwidth.

    python3 -m scripts.bench.bench_bucket_loader [--dataset DIR] [--tokens-per-batch 65536]

--dataset: a built dataset (default: the bundled sample's documents 20 times over, each copy's text marked so that
dedup keeps it, text only: about 24 M tokens, built into bench_data/bucket-loader/sample-x20).
The cache may hold the whole dataset, so that the warm epoch reads only the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from scripts.ci.fetch_object_stores import FAKE_GCS, fake_gcs, free_port, serving

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "bench"


def upload(dataset: Path, url: str) -> str:
    """The dataset's files into gs://bench/<name> through pyarrow's GCS filesystem; its URL."""
    import pyarrow.fs as pafs

    request = urllib.request.Request(
        f"{url}/storage/v1/b?project=bench",
        method="POST",
        data=json.dumps({"name": BUCKET}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()
    fs = pafs.GcsFileSystem(anonymous=True, endpoint_override=url.split("//")[1], scheme="http")
    for file in sorted(dataset.rglob("*")):
        if file.is_file():
            with fs.open_output_stream(f"{BUCKET}/{dataset.name}/{file.relative_to(dataset)}") as out:
                out.write(file.read_bytes())
    return f"gs://{BUCKET}/{dataset.name}"


def default_dataset() -> Path:
    import zstandard

    from vocaloom import assets
    from vocaloom.pipelines.build import run

    folder = ROOT / "bench_data" / "bucket-loader"
    dataset = folder / "sample-x20"
    if not (dataset / "manifest.json").exists():
        with open(assets.SAMPLE_CORPUS, "rb") as f:
            docs = [json.loads(line) for line in zstandard.ZstdDecompressor().stream_reader(f).read().splitlines()]
        corpus = folder / "corpus.jsonl"
        corpus.parent.mkdir(parents=True, exist_ok=True)
        with open(corpus, "w") as out:
            for copy in range(20):
                for doc in docs:
                    out.write(json.dumps({"id": f"{doc['id']}/{copy}", "text": f"copy {copy}: {doc['text']}"}) + "\n")
        run(["--input", str(corpus), "--output", str(dataset), "--speech-ratio", "0", "--overwrite"])
    return dataset


def epoch(location, tokens_per_batch: int, **options) -> dict:
    from vocaloom.loader import BucketLoader, shards

    shards._verified.clear()  # each reader hashes each shard once, as a new process would
    start = time.perf_counter()
    loader = BucketLoader(location, tokens_per_batch, curriculum="grow_p2", seed=0, **options)
    tokens, checksum = 0, 0
    for _, batch in zip(range(len(loader)), loader):
        tokens += batch["input_ids"].numel()
        checksum += int(batch["input_ids"].sum())
    seconds = time.perf_counter() - start
    return {
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds),
        "checksum": checksum,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--tokens-per-batch", type=int, default=65536)
    args = parser.parse_args(argv)
    if not FAKE_GCS.exists():
        parser.error(f"no fake-gcs-server at {FAKE_GCS}: run python3 -m scripts.ci.fetch_object_stores")
    if args.tokens_per_batch < 1:
        parser.error("--tokens-per-batch must be at least 1")
    if args.dataset is not None and not (args.dataset / "manifest.json").is_file():
        parser.error(f"--dataset {args.dataset}: no manifest.json")
    dataset = args.dataset or default_dataset()
    manifest = json.loads((dataset / "manifest.json").read_text())
    shard_bytes = [s["bytes"] for b in manifest["buckets"] for s in b["shards"]]
    port = free_port()
    with serving(fake_gcs(port), f"http://127.0.0.1:{port}", "/storage/v1/b") as url:
        os.environ["STORAGE_EMULATOR_HOST"] = url
        remote = upload(dataset, url)
        with tempfile.TemporaryDirectory() as cache:
            options = {"cache_dir": cache, "cache_bytes": sum(shard_bytes)}
            runs = {
                "local disk": epoch(dataset, args.tokens_per_batch),
                "bucket, cold cache": epoch(remote, args.tokens_per_batch, **options),
                "bucket, warm cache": epoch(remote, args.tokens_per_batch, **options),
            }
    if len({r["checksum"] for r in runs.values()}) != 1:
        print("bench_bucket_loader: the readers' batches differ", file=sys.stderr)
        return 1
    print(f"{len(shard_bytes)} shards, {sum(shard_bytes):,} bytes; {args.tokens_per_batch:,} tokens a batch")
    for name, figures in runs.items():
        print(
            f"{name:<20} {figures['tokens_per_s']:>12,} tokens/s  ({figures['tokens']:,} tokens, "
            f"{figures['seconds']} s, loader made and epoch read)"
        )
    print(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
