"""Files that appear whole or not at all: written under a temporary name, then renamed (through FileSystems, so on
object stores as on disk). A build killed mid-write leaves no half file under a name that is read."""
from __future__ import annotations

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


def write_atomically(path: str, data: bytes) -> None:
    """Writes `data` at `path`, replacing what is there (the same bytes, when a retried bundle writes again)."""
    temp = path + ".tmp"
    with FileSystems.create(temp, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([temp], [path])
