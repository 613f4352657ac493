"""Token spill files: documents' tokens are written once, next to the output, and read back by the shard writer.

Only small references travel through Beam's shuffles, so a build's memory does not grow with the corpus.
"""
from __future__ import annotations

import uuid

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

TOKEN = np.dtype("<i4")


def write_spill(directory: str, tokens: np.ndarray) -> str:
    """Writes the tokens to a new file (a unique name: a retried bundle never overwrites another's); returns it."""
    path = FileSystems.join(directory, uuid.uuid4().hex + ".i32")
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(tokens.astype(TOKEN, copy=False).tobytes())
    return path


def read_spans(path: str, spans: list[tuple[int, int]]) -> list[np.ndarray]:
    """The tokens at (offset, count) spans of one spill file, read in file order."""
    out: list[np.ndarray | None] = [None] * len(spans)
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        for i in sorted(range(len(spans)), key=lambda i: spans[i][0]):
            offset, n = spans[i]
            f.seek(offset * TOKEN.itemsize)
            data = f.read(n * TOKEN.itemsize)
            if len(data) != n * TOKEN.itemsize:
                raise IOError(f"spill file {path} is short: wanted {n} tokens at {offset}")
            out[i] = np.frombuffer(data, dtype=TOKEN)
    return out
