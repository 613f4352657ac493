"""manifest.json: what a training job and `vocaloom verify` rely on (docs/format.md).

Every reader gets a manifest through `read_manifest` or `parse_manifest`: checked, and typed as `Manifest` below,
so that the type checker holds each field read (report, nightly, progress, the CLI, verify, the loader) to the
format. Keys that manifests written before a field existed may lack are NotRequired (no postponed annotations in
this module: TypedDict sees NotRequired only when the class is made).
"""

import json
import os
import re
import stat
import time
from collections.abc import Callable, Mapping
from typing import Any, NotRequired, TypedDict, TypeGuard, cast

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


class ShardEntry(TypedDict):
    path: str  # shard_path: data/bucket-LLLLL/shard-IIIII-of-NNNNN.arrow, under generations/G/ past generation 0
    rows: int
    bytes: int
    sha256: str
    source_rows: NotRequired[list[int]]  # each source's rows, in source order (named sources)


class BucketEntry(TypedDict):
    length: int  # 2^k: each row holds length + 1 tokens (schemas/shard.py's row_tokens)
    rows: int
    tokens: int
    shards: list[ShardEntry]


class Counts(TypedDict):
    """The `counts` block: the figures schemas/counts.py declares for it (a test holds the two together)."""

    records_read: int
    rejected: dict[str, int]  # by reason
    filtered: dict[str, int]  # by reason
    duplicates: int
    documents_kept: int
    text_tokens: int
    speech_tokens: int
    tokens_written: int
    tokens_dropped: int
    tokens_dropped_by_reason: NotRequired[dict[str, int]]


class Speech(TypedDict):
    """The `speech` block (speech builds): the model's facts, then what the build spoke and converted."""

    source: str
    model: str
    sha256: str
    frame_rate_hz: float
    codebook_size: int
    speech_ratio: float
    span_lambda: float
    speech_ratio_by_source: dict[str, float]
    dtype: NotRequired[str]
    spans: int
    spans_cached: int
    spans_converted: int
    spans_failed: int
    cache_entries_invalid: NotRequired[int]
    span_words: dict[str, int]  # spans by their length in words
    cache_hit_rate: float
    achieved_word_share: float


class Ordering(TypedDict):
    """The `ordering` block (`--context related`): the embedder, In-Context Pretraining's path and its quality."""

    method: str
    embedder: str
    embedder_sha256: str
    documents: int
    partitions: int
    embeddings_cached: int
    embeddings_computed: int
    embedding_cache_entries_invalid: NotRequired[int]
    embedding_cache_hit_rate: float
    segments: int
    knn: int
    mean_adjacent_similarity: float
    random_order_similarity: float
    best_neighbour_similarity: float
    quality: float | None
    approximate_partitions: int
    approximate_recall: float | None
    sample_knn_edges: int
    sample_knn_edges_lost: int
    edges_lost_fraction: float
    tokens_dropped: int
    tokens_dropped_document_mode: int


class Source(TypedDict):
    patterns: list[str]
    speech_ratio: float
    long_documents_of: NotRequired[str]  # NAME.long: the source it holds the long documents of
    inputs: int
    records_read: int
    rejected: int
    documents_kept: int
    tokens_written: int


class Input(TypedDict):
    path: str
    bytes: int
    source: NotRequired[str]
    sha256: str | None


class Tokenizer(TypedDict):
    path: str
    sha256: str
    text_size: int


class Vocab(TypedDict):
    text_size: int
    specials: dict[str, int]
    speech_offset: int
    speech_size: int
    size: int


class Manifest(TypedDict):
    format: str
    generation: NotRequired[int]
    provenance: NotRequired[dict[str, Any]]  # who built it, how and when (pipelines/plan.py's provenance)
    config: dict[str, Any]  # the build's options (schemas/config.py's BuildConfig.to_json)
    sources: NotRequired[dict[str, Source]]
    inputs: list[Input]
    inputs_unreadable: NotRequired[list[dict[str, str]]]
    tokenizer: Tokenizer
    speech: Speech | None
    vocab: Vocab
    ordering: Ordering | None
    buckets: list[BucketEntry]
    counts: Counts


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


def read_manifest(directory: str | os.PathLike, read: Callable[[str, int], bytes] = read_local) -> Manifest:
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


def parse_manifest(text: str | bytes, where: str = MANIFEST) -> Manifest:
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
    return cast(Manifest, manifest)


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


def dump_manifest(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n").encode()


def accounting_errors(counts: Mapping[str, Any]) -> list[str]:
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
