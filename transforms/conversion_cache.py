"""The conversion cache: speech units already made for a span text by a given model, kept between builds.

Key: sha256 of (model sha256, normalised span text), so a changed model never reuses old units. Entries live in
zstd JSONL files under `<cache>/<model sha256[:16]>/`, each file named by the hash of its content.
"""
from __future__ import annotations

import hashlib

import apache_beam as beam
import orjson
import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.dedup import normalise


def cache_key(model_sha256: str, text: str) -> str:
    return hashlib.sha256(f"{model_sha256}\0{normalise(text)}".encode("utf-8", "surrogatepass")).hexdigest()


def model_cache_dir(cache: str, model_sha256: str) -> str:
    return FileSystems.join(cache, model_sha256[:16])


def cache_files(cache: str | None, model_sha256: str) -> list[str]:
    """Existing entry files for this model (matched before the build starts)."""
    if not cache:
        return []
    pattern = FileSystems.join(model_cache_dir(cache, model_sha256), "*.jsonl.zst")
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


class ReadCacheFileFn(beam.DoFn):
    def process(self, path: str):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            data = zstandard.ZstdDecompressor().stream_reader(f).read()
        for line in data.splitlines():
            entry = orjson.loads(line)
            yield entry["key"], entry["units"]


class WriteCacheFileFn(beam.DoFn):
    """Writes a batch of new (key, units) entries to one file."""

    def __init__(self, directory: str):
        self._directory = directory

    def process(self, entries: list):
        data = b"".join(orjson.dumps({"key": k, "units": u}) + b"\n" for k, u in sorted(entries))
        name = hashlib.sha256(data).hexdigest()[:32] + ".jsonl.zst"
        with FileSystems.create(FileSystems.join(self._directory, name),
                                compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(zstandard.ZstdCompressor(level=3).compress(data))
        yield len(entries)
