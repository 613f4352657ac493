"""What a build reads: its --input patterns matched to files, each checked before any work starts. A pattern that
names a folder (`DIR`, `DIR/`, `gs://bucket/corpus/`) reads every file under it, at any depth, of a known extension.

A matched file that cannot be read (a directory, no permission) ends the build in one line, unless
--skip-unreadable: then it is left out and listed in the manifest. Special files (FIFOs, devices) are always
refused: a FIFO would block a worker, a device never end. An input inside --output is refused, as the build may
clear or replace what is there. Object-store inputs are checked by the workers that read them (transforms/io/read.py).
"""

from __future__ import annotations

import os
import re
import stat

from apache_beam.io.filesystems import FileSystems

from vocaloom import assets
from vocaloom.schemas.config import ConfigError
from vocaloom.schemas.paths import is_local
from vocaloom.schemas.sources import split_source
from vocaloom.transforms.io.read import FORMATS, input_format

SKIP_HINT = "pass --skip-unreadable to build without it"
WILDCARD = re.compile(r"[\[*?]")  # where a glob's literal prefix ends


def match_inputs(inputs: tuple[str, ...], output: str, skip_unreadable: bool) -> tuple[list[dict], list[dict]]:
    """([{path, bytes, source}] of every matched file to read, [{path, reason}] of those left out as unreadable),
    for --input values that may name their source (NAME=PATTERN). A `bundled:` input keeps its reference (workers
    resolve it). A file two sources' patterns match is refused: a document belongs to one source."""
    files: dict[str, int] = {}
    sources: dict[str, str] = {}
    unreadable: dict[str, str] = {}

    def belongs(path: str, source: str) -> None:
        if sources.setdefault(path, source) != source:
            raise ConfigError(
                f"input {path} is matched by sources {sources[path]!r} and {source!r}: a file belongs to one source"
            )

    for given in inputs:
        source, pattern = split_source(given)
        if assets.is_bundled(pattern):
            try:
                files[pattern] = assets.bundled_path(pattern).stat().st_size
            except ValueError as e:
                raise ConfigError(f"input {e}") from None
            belongs(pattern, source)
            continue
        tree = folder_glob(pattern)
        try:
            matched = FileSystems.match([tree or pattern])[0].metadata_list
        except Exception as e:  # Beam raises BeamIOError with the cause inside
            raise ConfigError(f"input {pattern!r} cannot be listed: {e}") from None
        passed_over = glob_passed_over(tree or pattern) if is_local(pattern) else {}
        if tree:  # a folder's subfolders and files of other kinds are not inputs
            matched = [meta for meta in matched if input_format(meta.path)]
            passed_over = {
                path: problem for path, problem in passed_over.items() if input_format(path) and problem != IS_DIRECTORY
            }
            if not matched and not passed_over:
                raise ConfigError(f"input folder {pattern!r} holds no {', '.join(FORMATS)} file")
        if not matched and not passed_over:
            raise ConfigError(f"input {pattern!r} matches no file")
        for path, reason in sorted(passed_over.items()):
            if not skip_unreadable:
                raise ConfigError(f"input {path} cannot be read: {reason}; {SKIP_HINT}")
            unreadable[path] = reason
        for meta in matched:
            if input_format(meta.path) is None:
                raise ConfigError(f"input {meta.path!r} has an unsupported extension (use {', '.join(FORMATS)})")
            check_outside(meta.path, output)
            problem = local_problem(meta.path) if is_local(meta.path) else None
            if problem is None:
                files[meta.path] = meta.size_in_bytes
                belongs(meta.path, source)
            elif skip_unreadable:
                unreadable[meta.path] = problem
            else:
                raise ConfigError(f"input {meta.path} cannot be read: {problem}; {SKIP_HINT}")
    return (
        [{"path": path, "bytes": size, "source": sources[path]} for path, size in sorted(files.items())],
        [{"path": path, "reason": reason} for path, reason in sorted(unreadable.items())],
    )


def folder_glob(pattern: str) -> str | None:
    """The glob of every file under `pattern` when it names a folder: a path without wildcards ending in "/" (in a
    bucket, a prefix), or a local directory. A directory named like an input file (`x.jsonl`) is taken for a file
    that cannot be read, as a glob would meet it, unless its name ends in "/"."""
    if WILDCARD.search(pattern) or assets.is_bundled(pattern):
        return None
    if pattern.endswith("/") or (is_local(pattern) and os.path.isdir(pattern) and input_format(pattern) is None):
        return pattern.rstrip("/") + "/**"
    return None


IS_DIRECTORY = "it is a directory"


def glob_passed_over(pattern: str) -> dict[str, str]:
    """{path: why} for what a local glob meets and Beam's matching leaves out without a word: a matching entry that
    is a directory, a dangling link or a link loop, and a folder that cannot be listed where a match could be."""
    wildcard = WILDCARD.search(pattern)
    prefix = pattern[: wildcard.start()] if wildcard else pattern
    if prefix == pattern:
        return {}
    top = prefix if prefix.endswith("/") else os.path.dirname(prefix) or "."
    regex = re.compile(FileSystems.get_filesystem(pattern).translate_pattern(pattern))
    found: dict[str, str] = {}

    def unlisted(error: OSError):
        if error.filename != top and ("**" in pattern or error.filename.count("/") < pattern.count("/")):
            found[error.filename] = f"a folder that cannot be listed ({error.strerror})"

    for root, folders, names in os.walk(top, onerror=unlisted):
        for name in folders + names:
            path = os.path.join(root, name)
            if not regex.match(path):
                continue
            try:
                if os.path.isdir(path):
                    found[path] = IS_DIRECTORY
                else:
                    os.stat(path)
            except OSError as e:  # a dangling link, a link loop
                found[path] = (e.strerror or str(e)) + (" (a symbolic link)" if os.path.islink(path) else "")
    return found


def local_problem(path: str) -> str | None:
    """Why a local input cannot be read, or None; a special file raises ConfigError whatever the flags."""
    try:
        info = os.stat(path)
    except OSError as e:
        return e.strerror
    if stat.S_ISDIR(info.st_mode):
        return IS_DIRECTORY
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"input {path} is not a regular file (a FIFO or device): copy its data into a file")
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


def check_outside(path: str, output: str) -> None:
    if is_local(path) and is_local(output) and os.path.realpath(path).startswith(os.path.realpath(output) + os.sep):
        raise ConfigError(
            f"input {path} is inside --output {output}: a build may clear or replace what is there; "
            "move the input or choose another --output"
        )
