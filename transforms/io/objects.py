"""Moving and removing a build's files wherever its --output is: through Beam's FileSystems, except on GCS, where
Beam renames and deletes through Google's batch API, which GCS emulators lack (and a rename there is a copy and a
delete of each object in any case): there, one request per object."""

from __future__ import annotations

import errno

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from vocaloom.schemas.local_files import FileRefused, open_regular
from vocaloom.schemas.paths import is_local, scheme


def _gcs():
    from apache_beam.io.gcp import gcsio

    return gcsio.GcsIO()  # a client each time, as Beam's own filesystem makes one per operation


def open_to_read(path: str, limit: int | None = None):
    """A file or object opened for reading, its bytes as they are: on a disk only a regular file (never a FIFO that
    would stall the read or a device without end), and either only if it is at most `limit` bytes (FileRefused)."""
    if is_local(path):
        return open_regular(path, limit)
    if limit is not None:
        size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
        if size > limit:
            raise FileRefused(
                errno.EFBIG, f"file {path} is {size:,} bytes, more than the {limit:,} vocaloom reads of one"
            )
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def move(source: str, target: str) -> None:
    if scheme(source) == "gs":
        _gcs().rename(source, target)  # a server-side copy, then a delete
    else:
        FileSystems.rename([source], [target])


def remove(path: str) -> None:
    """Removes a file, or a folder with everything under it (in a bucket: every object under the prefix); nothing
    there is nothing to do."""
    if is_local(path):
        if FileSystems.exists(path):
            FileSystems.delete([path])
        return
    found = [meta.path for meta in FileSystems.match([path.rstrip("/") + "/**"])[0].metadata_list]
    found += [path] if FileSystems.exists(path) else []
    if scheme(path) == "gs":
        gcs = _gcs()
        for each in found:
            gcs.delete(each)
    elif found:
        FileSystems.delete(found)
