"""Moving and removing a build's files wherever its --output is: through Beam's FileSystems, except on GCS, where
Beam renames and deletes through Google's batch API, which GCS emulators lack (and a rename there is a copy and a
delete of each object in any case): there, one request per object."""
from __future__ import annotations

from apache_beam.io.filesystems import FileSystems

from vocaloom.schemas.paths import is_local, scheme


def _gcs():
    from apache_beam.io.gcp import gcsio
    return gcsio.GcsIO()  # a client each time, as Beam's own filesystem makes one per operation


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
