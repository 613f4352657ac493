"""sha256 of files and directories as a manifest records them (a tokenizer, a model, an embedder).

A file's is the sha256 of its bytes. A directory's is the sha256 of its files' relative names (`/`-separated) and
sha256s, in name order, so that it names the content wherever the directory lies (a local folder, gs://, a worker's
cache). One definition for every model and tokenizer; transforms/artifacts.py applies it through Beam's FileSystems.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

from vocaloom.schemas.local_files import check_tree, open_regular

CHUNK = 1 << 22


def stream_sha256(stream) -> bytes:
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
    return digest.digest()


def tree_sha256(files: Iterable[tuple[str, bytes]]) -> str:
    """From (relative name, sha256 of the file) pairs; a lone file is given as ("", its sha256)."""
    files = sorted(files)
    if [name for name, _ in files] == [""]:
        return files[0][1].hex()
    digest = hashlib.sha256()
    for name, file_digest in files:
        digest.update(name.encode("utf-8") + b"\0" + file_digest)
    return digest.hexdigest()


def local_sha256(path: str) -> str:
    """The sha256 of a local file or directory; FileRefused for anything in it that is not a regular file (a FIFO
    would stall the read, a device never end it)."""
    if not os.path.isdir(path):
        return tree_sha256([("", _file_sha256(path))])
    check_tree(path, "artifact")
    files = []
    for root, _, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            files.append((os.path.relpath(full, path).replace(os.sep, "/"), _file_sha256(full)))
    return tree_sha256(files)


def _file_sha256(path: str) -> bytes:
    with open_regular(path, what="artifact file") as f:
        return stream_sha256(f)
