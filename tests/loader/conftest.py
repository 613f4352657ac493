"""A small real dataset for the loader's tests, and its rows read back with plain pyarrow as the truth."""

from pathlib import Path

import numpy as np
import pyarrow as pa

from tests.conftest import RUNNER, TEXT_ONLY
from vocaloom.pipelines.build import run
from vocaloom.schemas.manifest import Manifest

# Buckets 32, 64, 128 and shards of about 2,000 tokens: the bundled sample gives ~32,000 rows in ~900 shards.
SMALL_BUILD = ["--min-bucket", "5", "--max-bucket", "7", "--shard-tokens", "2000", *TEXT_ONLY]


def build_dataset(output: Path, *extra: str) -> Manifest:
    return run(["--output", str(output), *SMALL_BUILD, *RUNNER, *extra])


def read_rows(directory: Path, manifest: Manifest) -> dict[int, tuple[np.ndarray, list[list[int]]]]:
    """Each bucket's input_ids [rows, L + 1] and doc_starts, rows numbered in manifest shard order."""
    rows = {}
    for bucket in manifest["buckets"]:
        tables = [pa.ipc.open_file(str(directory / s["path"])).read_all() for s in bucket["shards"]]
        length = bucket["length"]
        ids = [t.column("input_ids").combine_chunks().flatten().to_numpy().reshape(-1, length + 1) for t in tables]
        starts = [s for t in tables for s in t.column("doc_starts").to_pylist()]
        rows[length] = (np.concatenate(ids) if ids else np.empty((0, length + 1), np.int32), starts)
    return rows


def split_sample(folder: Path) -> list[str]:
    """The bundled sample as three sources, `--input` arguments: web (half its documents), books and code (a
    quarter each)."""
    import zstandard

    from vocaloom.assets import bundled, bundled_path

    lines = zstandard.ZstdDecompressor().stream_reader(bundled_path(bundled("sample")).open("rb")).read().splitlines()
    folder.mkdir(parents=True, exist_ok=True)
    parts = {"web": [0, 1], "books": [2], "code": [3]}
    for name, remainders in parts.items():
        (folder / f"{name}.jsonl").write_bytes(
            b"".join(line + b"\n" for i, line in enumerate(lines) if i % 4 in remainders)
        )
    return [arg for name in parts for arg in ("--input", f"{name}={folder / name}.jsonl")]


def take(loader, n: int) -> list[dict]:
    """The next n batches of a BucketLoader, across epochs."""
    batches: list[dict] = []
    while len(batches) < n:
        for batch in loader:
            batches.append(batch)
            if len(batches) == n:
                break
    return batches
