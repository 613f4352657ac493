"""What each input was when the build read it: the sha256 of its bytes as stored (compressed ones compressed), for
the manifest. A rebuild whose inputs have the same fingerprints read the same bytes, whatever their names or times.

Each file is read once more, apart from ReadCorpus: Parquet is read by random access, so no single pass sees every
byte in order. An input that cannot be read has no fingerprint; ReadCorpus says why it was not read.
"""

from __future__ import annotations

import hashlib

import apache_beam as beam

from vocaloom.transforms.io.read import UnreadableInput, open_input, read_raw


def file_sha256(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open_input(path) as raw:
            while data := read_raw(raw):
                digest.update(data)
    except UnreadableInput:
        return None
    return digest.hexdigest()


class FingerprintInputs(beam.PTransform):
    """Input paths in; (path, sha256) out, for each input that could be read."""

    def __init__(self, paths: list[str]):
        super().__init__()
        self._paths = list(paths)

    def expand(self, pbegin):
        return (
            pbegin
            | "Paths" >> beam.Create(self._paths, reshuffle=len(self._paths) > 1)
            | "Sha256" >> beam.Map(lambda path: (path, file_sha256(path)))
            | "Readable" >> beam.Filter(lambda pair: pair[1] is not None)
        )
