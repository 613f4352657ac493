"""BucketLoader against its limit (plain pyarrow) and against MosaicML streaming, on the same rows, in one run.

  pyarrow    the limit: every shard memory-mapped once, then read in file order, sliced into batches of the same
             shape
  loader     BucketLoader(curriculum="grow_p2", cycles=8): shuffled blocks, the bucket schedule, sha256 of each shard
             once per process (so its first epoch is shown apart)
  streaming  MosaicML streaming's StreamingDataset (shuffled) over the same rows written as MDS, one dataset per
             bucket, batched by a torch DataLoader, as a streaming user reads buckets
Every reader hands out torch tensors: input_ids [tokens_per_batch // L, L + 1] int32 and the rows' doc_starts;
each batch is copied into one staging buffer (what a trainer does before the copy to the GPU), so every byte is
read. Tokens count L + 1 a row. All in one process, the files in the page cache; best of --repeats passes,
interleaved.

Usage: python -m scripts.bench.bench_loader [--dataset DIR] [--corpus DIR] [--tokens-per-batch 65536] [--repeats 3]
streaming 0.13.0 pins numpy<2.2 (vocaloom pins 2.4.6), so it lives in a venv beside the system packages:
  python -m venv --system-site-packages bench_data/loader/streaming-venv
  bench_data/loader/streaming-venv/bin/pip install --no-deps mosaicml-streaming==0.13.0 brotli python-snappy \\
      zstd catalogue torchvision==0.28.0
  bench_data/loader/streaming-venv/bin/python -m scripts.bench.bench_loader
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[2]

from vocaloom.loader import BucketLoader  # noqa: E402
from vocaloom.schemas.manifest import Manifest, read_manifest  # noqa: E402

# pyarrow's buffers are read-only; the limit hands them out as tensors anyway, as the fastest reader would.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
LIMIT, LOADER = "pyarrow, file order (the limit)", "BucketLoader"


def ensure_dataset(directory: Path, corpus: Path) -> Manifest:
    if not (directory / "manifest.json").exists():
        from vocaloom.pipelines.build import run

        run(
            [
                "--input",
                str(corpus / "*.jsonl.zst"),
                "--output",
                str(directory),
                "--min-bucket",
                "6",
                "--max-bucket",
                "11",
                "--speech-ratio",
                "0",
                "--runner=FnApiRunner",
            ]
        )
    return read_manifest(directory)


class Staging:
    """Copies each batch into one preallocated buffer and counts its tokens."""

    def __init__(self, tokens_per_batch: int):
        self._buffer = torch.empty(2 * tokens_per_batch, dtype=torch.int32)

    def __call__(self, input_ids: torch.Tensor, doc_starts: torch.Tensor) -> int:
        self._buffer[: input_ids.numel()].copy_(input_ids.view(-1))
        self._buffer[: doc_starts.numel()].copy_(doc_starts)
        return input_ids.numel()


def pyarrow_shards(directory: Path, manifest: Manifest) -> list[tuple]:
    """Every shard memory-mapped once, as the loader keeps them: (L, input_ids, doc offsets, doc starts)."""
    shards = []
    for bucket in manifest["buckets"]:
        for entry in bucket["shards"]:
            table = pa.ipc.open_file(pa.memory_map(str(directory / entry["path"]))).read_all()
            doc_starts = table.column("doc_starts").chunk(0)
            shards.append(
                (
                    bucket["length"],
                    table.column("input_ids").chunk(0).flatten().to_numpy().reshape(-1, bucket["length"] + 1),
                    doc_starts.offsets.to_numpy(),
                    doc_starts.values.to_numpy(),
                )
            )
    return shards


def pyarrow_batches(shards: list[tuple], tokens_per_batch: int) -> Iterable[tuple]:
    for length, ids, offsets, values in shards:
        rows = tokens_per_batch // length
        for start in range(0, len(ids), rows):
            stop = min(start + rows, len(ids))
            yield torch.from_numpy(ids[start:stop]), torch.from_numpy(values[offsets[start] : offsets[stop]])


def loader_batches(loader: BucketLoader) -> Iterable[tuple]:
    for batch in loader:
        yield batch["input_ids"], batch["doc_starts"]


def write_mds(directory: Path, manifest: Manifest, mds: Path) -> None:
    from streaming import MDSWriter

    for bucket in manifest["buckets"]:
        out = mds / f"bucket-{bucket['length']:05d}"
        if not bucket["rows"] or (out / "index.json").exists():
            continue
        columns = {"input_ids": f"ndarray:int32:{bucket['length'] + 1}", "doc_starts": "ndarray:int32"}
        with MDSWriter(out=str(out), columns=columns) as writer:
            for entry in bucket["shards"]:
                table = pa.ipc.open_file(str(directory / entry["path"])).read_all()
                ids = table.column("input_ids").chunk(0).flatten().to_numpy().reshape(-1, bucket["length"] + 1)
                for row, starts in zip(ids, table.column("doc_starts").to_pylist()):
                    writer.write({"input_ids": row, "doc_starts": np.array(starts, dtype=np.int32)})


def streaming_loaders(manifest: Manifest, mds: Path, tokens_per_batch: int) -> list[DataLoader]:
    from streaming import StreamingDataset

    def collate(samples):
        return (
            torch.from_numpy(np.stack([s["input_ids"] for s in samples])),
            torch.from_numpy(np.concatenate([s["doc_starts"] for s in samples])),
        )

    loaders = []
    for bucket in manifest["buckets"]:
        if bucket["rows"]:
            rows = tokens_per_batch // bucket["length"]
            dataset = StreamingDataset(local=str(mds / f"bucket-{bucket['length']:05d}"), batch_size=rows, shuffle=True)
            loaders.append(DataLoader(dataset, batch_size=rows, num_workers=0, collate_fn=collate))
    return loaders


def timed(batches: Iterable[tuple], consume: Callable) -> float:
    """Tokens per second of one pass."""
    start, tokens = time.perf_counter(), 0
    for input_ids, doc_starts in batches:
        tokens += consume(input_ids, doc_starts)
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=ROOT / "bench_data/loader/dataset")
    parser.add_argument(
        "--corpus",
        type=Path,
        default=ROOT / "bench_data/corpus-x4",
        help="built into --dataset (buckets 64..2048) when it holds no dataset",
    )
    parser.add_argument("--mds", type=Path, default=ROOT / "bench_data/loader/mds")
    parser.add_argument("--tokens-per-batch", type=int, default=65536)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)

    manifest = ensure_dataset(args.dataset, args.corpus)
    shards = [s for b in manifest["buckets"] for s in b["shards"]]
    for entry in shards:  # into the page cache, for every reader alike
        (args.dataset / entry["path"]).read_bytes()
    print(
        f"dataset {args.dataset}: {sum(b['tokens'] for b in manifest['buckets']):,} tokens, "
        f"{sum(b['rows'] for b in manifest['buckets']):,} rows of {[b['length'] for b in manifest['buckets']]}, "
        f"{len(shards)} shards, {sum(s['bytes'] for s in shards) / 2**20:.0f} MiB uncompressed; "
        f"tokens_per_batch {args.tokens_per_batch}; torch {torch.__version__}, pyarrow {pa.__version__}, "
        f"{os.cpu_count()} CPUs"
    )
    consume = Staging(args.tokens_per_batch)
    mapped = pyarrow_shards(args.dataset, manifest)
    loader = BucketLoader(args.dataset, tokens_per_batch=args.tokens_per_batch, curriculum="grow_p2", cycles=8)
    first_epoch = timed(loader_batches(loader), consume)
    readers = {LIMIT: lambda: pyarrow_batches(mapped, args.tokens_per_batch), LOADER: lambda: loader_batches(loader)}
    try:
        import streaming

        write_mds(args.dataset, manifest, args.mds)
        loaders = streaming_loaders(manifest, args.mds, args.tokens_per_batch)
        readers[f"MosaicML streaming {streaming.__version__}, MDS"] = lambda: (b for dl in loaders for b in dl)
    except ImportError as e:
        print(f"MosaicML streaming not measured: {e} (see this script's docstring for its venv)")
    rates: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(args.repeats):  # interleaved, so that a busy moment of the machine hits every reader alike
        for name, batches in readers.items():
            rates[name].append(timed(batches(), consume))
    results = {name: max(r) for name, r in rates.items()}
    results[f"{LOADER}, first epoch (sha256 of every shard)"] = first_epoch

    print(f"{'reader':<52}{'tokens/s':>16}{'of the limit':>14}")
    for name, rate in results.items():
        print(f"{name:<52}{rate:>16,.0f}{rate / results[LIMIT]:>14.2f}")
    for name, rate in results.items():
        if name.startswith("MosaicML"):
            print(f"{LOADER} / streaming: {results[LOADER] / rate:,.0f}x")


if __name__ == "__main__":
    main()
