"""manifest.json: what a training job and `vocaloom verify` rely on (docs/format.md)."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Callable
from typing import TypeGuard

from vocaloom.schemas.counts import FORMAT_COUNTS, tokens_produced
from vocaloom.schemas.shard import (
    FORMAT,
    MAX_BUCKET_EXPONENT,
    MAX_SOURCES,
    MIN_BUCKET_EXPONENT,
    bucket_lengths,
    row_tokens,
    shard_path,
)
from vocaloom.schemas.sources import is_source_name

MANIFEST = "manifest.json"
REQUIRED_KEYS = ("format", "config", "inputs", "tokenizer", "speech", "vocab", "buckets", "counts", "ordering")


class ManifestError(ValueError):
    """A manifest this version cannot read."""


# Far above any real manifest (a few MB for a million shards): a larger file is not one, and is not read whole.
MAX_MANIFEST_BYTES = 1 << 28


def read_local(path: str, limit: int) -> bytes:
    """At most `limit` bytes of a local regular file (a FIFO would block, a device never end)."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise ManifestError(f"{path}: not a regular file")
    with open(path, "rb") as f:
        return f.read(limit)


def read_manifest(directory: str | os.PathLike, read: Callable[[str, int], bytes] = read_local) -> dict:
    """A dataset's manifest, checked (parse_manifest). `read(path, limit)`: how to read a file, local by default;
    it raises FileNotFoundError for a missing one."""
    path = f"{str(directory).rstrip('/')}/{MANIFEST}"
    try:
        text = read(path, MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError(f"{directory}: no {MANIFEST} (not a complete dataset)") from None
    except OSError as e:
        raise ManifestError(f"{path}: cannot be read: {e.strerror or e}") from None
    if len(text) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes, not a manifest")
    return parse_manifest(text, path)


def parse_manifest(text: str | bytes, where: str = MANIFEST) -> dict:
    try:
        manifest = json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError) as e:  # bad JSON or UTF-8, NaN, an integer of more than 4,300 digits
        raise ManifestError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{where}: not a JSON object")
    if manifest.get("format") != FORMAT:
        raise ManifestError(f"{where}: unknown format {manifest.get('format')!r}, this version reads {FORMAT!r}")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise ManifestError(f"{where}: missing keys {', '.join(missing)}")
    problem = structure_problem(manifest)
    if problem:
        raise ManifestError(f"{where}: {problem}")
    return manifest


def _not_json(constant: str):
    raise ValueError(f"{constant} is not a JSON number")


SHA256 = re.compile(r"[0-9a-f]{64}")
LENGTHS = frozenset(bucket_lengths(MIN_BUCKET_EXPONENT, MAX_BUCKET_EXPONENT))
MAX_GENERATION = 99999  # generation_dir's five digits


def count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def structure_problem(manifest: dict) -> str | None:
    """The first field a reader relies on that is missing, of the wrong type or out of range; None when all hold.
    Shard paths must be exactly the names the writer gives (schemas/shard.py), so none leaves the dataset."""
    vocab = manifest["vocab"]
    if (
        not isinstance(vocab, dict)
        or not all(count(vocab.get(k)) for k in ("text_size", "speech_offset", "speech_size", "size"))
        or not isinstance(vocab.get("specials"), dict)
        or not 0 < vocab["size"] < 2**31
        or vocab["size"] != vocab["speech_offset"] + vocab["speech_size"]
    ):
        return "vocab is malformed"
    counts = manifest["counts"]
    if not isinstance(counts, dict) or not all(
        (c.since_v1 and c.name not in counts)
        or (
            isinstance(counts.get(c.name), dict) and all(map(count, counts[c.name].values()))
            if c.per
            else count(counts.get(c.name))
        )
        for c in FORMAT_COUNTS
    ):
        return "counts are malformed"
    generation = manifest.get("generation", 0)  # absent in manifests written before generations
    if not count(generation) or generation > MAX_GENERATION:
        return f"generation {generation!r} is not a count up to {MAX_GENERATION}"
    buckets = manifest["buckets"]
    if not isinstance(buckets, list):
        return "buckets is not a list"
    for bucket in buckets:
        length = bucket.get("length") if isinstance(bucket, dict) else None
        if not count(length) or length not in LENGTHS:
            return f"bucket length {length!r} is not 2^k for k from {MIN_BUCKET_EXPONENT} to {MAX_BUCKET_EXPONENT}"
        if (
            not count(bucket.get("rows"))
            or not count(bucket.get("tokens"))
            or not isinstance(bucket.get("shards"), list)
        ):
            return f"bucket {length} is malformed"
        shards = bucket["shards"]
        for i, entry in enumerate(shards):
            expected = shard_path(length, i, len(shards), generation)
            if not isinstance(entry, dict) or entry.get("path") != expected:
                path = entry.get("path") if isinstance(entry, dict) else entry
                return f"bucket {length}: shard {i} is {path!r}, not {expected!r}"
            if (
                not count(entry.get("rows"))
                or not count(entry.get("bytes"))
                or not SHA256.fullmatch(str(entry.get("sha256")))
            ):
                return f"{entry['path']}: rows, bytes or sha256 malformed"
        if sum(entry["rows"] for entry in shards) != bucket["rows"] or bucket["tokens"] != bucket["rows"] * (
            row_tokens(length)
        ):
            return f"bucket {length}: rows/tokens do not add up (its shards' rows, rows x {row_tokens(length)} tokens)"
    sources: dict | None = manifest.get("sources")  # absent in manifests written before named sources
    if sources is not None and (
        not isinstance(sources, dict)
        or not 0 < len(sources) <= MAX_SOURCES
        or not all(
            isinstance(name, str)
            and is_source_name(name)
            and isinstance(source, dict)
            and count(source.get("tokens_written"))
            for name, source in sources.items()
        )
    ):
        return "sources is malformed"
    n_sources = 0 if sources is None else len(sources)
    for bucket in buckets if n_sources else ():
        for entry in bucket["shards"]:  # each source's rows, contiguous in the shard in source order
            split = entry.get("source_rows")
            if (
                not isinstance(split, list)
                or len(split) != n_sources
                or not all(map(count, split))
                or sum(split) != entry["rows"]
            ):
                return f"{entry['path']}: source_rows do not split its rows among the {n_sources} sources"
    if sum(bucket["tokens"] for bucket in buckets) != counts["tokens_written"]:
        # A bucket left out of the manifest would otherwise go unread without a word.
        return "counts.tokens_written differs from the buckets' tokens"
    return None


def utc_now() -> str:
    """The time provenance records: UTC, to the second, ISO 8601."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def dump_manifest(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n").encode()


def accounting_errors(counts: dict) -> list[str]:
    """The two identities the format demands of every build; empty when they hold."""
    errors = []
    records = (
        counts["documents_kept"]
        + sum(counts["rejected"].values())
        + sum(counts["filtered"].values())
        + counts["duplicates"]
    )
    if counts["records_read"] != records:
        errors.append(f"records_read {counts['records_read']} != kept + rejected + filtered + duplicates {records}")
    produced = tokens_produced(counts)
    if produced != counts["tokens_written"] + counts["tokens_dropped"]:
        errors.append(
            f"tokens produced {produced} != written {counts['tokens_written']} + dropped {counts['tokens_dropped']}"
        )
    return errors
