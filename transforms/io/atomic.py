"""Files that appear whole or not at all: on a disk written under a temporary name, then renamed; in a bucket
written in one upload, which the object store makes visible only once complete. A build killed mid-write leaves no
half file under a name that is read."""

from __future__ import annotations

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from vocaloom.schemas.paths import is_local
from vocaloom.transforms.io.objects import move, remove


def write_atomically(path: str, data: bytes) -> None:
    """Writes `data` at `path`, replacing what is there (the same bytes, when a retried bundle writes again)."""
    temp = path + ".tmp" if is_local(path) else path
    with FileSystems.create(temp, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)
    if temp != path:
        remove(path)
        move(temp, path)
