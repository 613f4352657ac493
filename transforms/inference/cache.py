"""The inference cache: what a model already made from a text (a span's speech units, a document's embedding),
kept between builds so that an unchanged corpus skips the model.

Key: sha256 of (model sha256, normalised text), so a changed model never reuses old outputs. Entries live in zstd
JSONL files under `<cache>/<model sha256[:16]>/`, each file named by the hash of its content; every model has its
own folder, so speech units and embeddings share one `--cache` location.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import apache_beam as beam
import orjson
import zstandard
from apache_beam.io.filesystems import FileSystems

from vocaloom.schemas.counts import Count
from vocaloom.schemas.manifest import SHA256
from vocaloom.text_to_token.failed import Failed
from vocaloom.transforms.counting import COUNTS, count
from vocaloom.transforms.io.atomic import write_atomically
from vocaloom.transforms.io.objects import open_to_read
from vocaloom.transforms.progress_tally import progress_label, tally
from vocaloom.transforms.text.dedup import canonical_text

if TYPE_CHECKING:
    from apache_beam.ml.inference.base import ModelHandler

PENDING, DEAD_LETTER = "pending", "dead_letter"
log = logging.getLogger(__name__)


def cache_key(model_sha256: str, text: str) -> str:
    return hashlib.sha256(f"{model_sha256}\0{canonical_text(text)}".encode("utf-8", "surrogatepass")).hexdigest()


def model_cache_dir(cache: str, model_sha256: str) -> str:
    return FileSystems.join(cache, model_sha256[:16])


def cache_files(cache: str | None, model_sha256: str) -> list[str]:
    """Existing entry files for this model (matched before the build starts)."""
    if not cache:
        return []
    pattern = FileSystems.join(model_cache_dir(cache, model_sha256), "*.jsonl.zst")
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


def same(value):
    return value


class Codec(NamedTuple):
    """A model output to the JSON value a cache entry holds, and back; `decode` raises ValueError for a value the
    model could not have made (the cache is read as any input is: it may have been edited or damaged)."""

    encode: Callable[[Any], Any] = same
    decode: Callable[[Any], Any] = same


# The most a cache file decompresses to: the writer's batches of at most 50,000 entries are far smaller.
MAX_CACHE_FILE_BYTES = 1 << 30


class Counters(NamedTuple):
    """The declared counts (schemas/counts.py) of examples served from the cache, computed by the model, and failed,
    and of cache entries skipped as invalid."""

    cached: Count
    computed: Count
    failed: Count
    invalid: Count


class ReadCacheFileFn(beam.DoFn):
    """A cache file's valid (key, output) entries; an entry that is not one (bad JSON, key or value) is skipped and
    counted, so its example is computed again and nothing the model did not make is ever used."""

    def __init__(self, decode: Callable[[Any], Any], invalid: Count):
        self._decode, self._invalid = decode, invalid

    def process(self, path: str):
        try:
            with open_to_read(path) as f:  # a FIFO or device planted in the cache is skipped, not waited on
                data = zstandard.ZstdDecompressor().stream_reader(f).read(MAX_CACHE_FILE_BYTES + 1)
            if len(data) > MAX_CACHE_FILE_BYTES:
                raise ValueError(f"decompresses to more than {MAX_CACHE_FILE_BYTES:,} bytes")
        except Exception as e:
            log.warning(
                "inference cache file %s skipped (its entries are computed again): %s: %s", path, type(e).__name__, e
            )
            beam.metrics.Metrics.counter("vocaloom", "cache_files_skipped").inc()
            return
        invalid = 0
        for line in data.splitlines():
            try:
                yield self._entry(line)
            except (ValueError, TypeError, KeyError):  # orjson's errors are ValueErrors
                invalid += 1
        if invalid:
            log.warning("inference cache file %s: %d invalid entries skipped (computed again)", path, invalid)
            yield count(self._invalid, invalid)

    def _entry(self, line: bytes) -> tuple[str, Any]:
        entry = orjson.loads(line)
        key = entry["key"]
        if type(key) is not str or not SHA256.fullmatch(key):
            raise ValueError("not a cache key")
        return key, self._decode(entry["value"])


class WriteCacheFileFn(beam.DoFn):
    """Writes a batch of new (key, output) entries to one file."""

    def __init__(self, directory: str, encode: Callable[[Any], Any]):
        self._directory, self._encode = directory, encode

    def process(self, entries: list):
        data = b"".join(
            orjson.dumps({"key": k, "value": self._encode(v)}) + b"\n"
            for k, v in sorted(entries, key=lambda entry: entry[0])
        )
        path = FileSystems.join(self._directory, hashlib.sha256(data).hexdigest()[:32] + ".jsonl.zst")
        # The next build reads these names; the frame's checksum makes a damaged file an unreadable one, never one
        # whose entries decode to other valid values.
        write_atomically(path, zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data))
        yield len(entries)


class ServeFromCacheFn(beam.DoFn):
    """Per cache key: every waiting example gets the cached output, or they all wait for the model."""

    def __init__(self, counters: Counters):
        self._counters = counters

    def process(self, element):
        _, grouped = element
        examples, cached = list(grouped["examples"]), list(grouped["cached"])
        if not examples:
            return
        if cached:
            for example in examples:
                yield example, cached[0]
            yield count(self._counters.cached, len(examples))
            return
        # Sorted, so the example the model sees does not depend on how the runner grouped them.
        yield beam.pvalue.TaggedOutput(PENDING, sorted(examples))


class FanOutFn(beam.DoFn):
    """A computed output to each example that waited for it; when its batch failed, None and a DEAD_LETTER
    (example, error)."""

    def __init__(self, counters: Counters):
        self._counters = counters

    def process(self, element):
        _, grouped = element
        outputs, errors = list(grouped["outputs"]), list(grouped["errors"])
        examples = [example for waiting in grouped["pending"] for example in waiting]
        output = outputs[0] if outputs else Failed(errors[0])
        failed = isinstance(output, Failed)
        for example in examples:
            yield example, (None if failed else output)
            if failed:
                yield beam.pvalue.TaggedOutput(DEAD_LETTER, (example, str(output)))
        yield count(self._counters.failed if failed else self._counters.computed, len(examples))


def failed_keys(failed):
    """RunInference's (failed batches, exception) to (cache key, error) for each example of the batches."""
    batches, (exc_type, message, _) = failed
    for batch in batches:
        for example in batch:
            yield example.key, f"{exc_type.__name__}: {message}"


def outputs_by_key(result, progress: str = ""):
    """A batch's PredictionResult to (cache key, output) for each of its examples; the batch is tallied under
    `progress` for the progress bars as it comes from the model (its counts come only when every batch is done)."""
    if progress:
        tally(progress, len(result.example))
    return zip((example.key for example in result.example), result.inference, strict=True)


class OneByOne(beam.PTransform):
    """CachedInference's `batches` for a model that answers each example on its own: a batch of one."""

    def expand(self, examples):
        return examples | "BatchOfOne" >> beam.Map(lambda example: (example,))


class CachedInference(beam.PTransform):
    """Examples, each with its cache key as `.key`, in; (example, output) out for every example. Each distinct key
    is served from the cache files, or computed once and written to `cache_dir`: `batches` turns the examples to
    compute into tuples of examples (the model's batches: formed by the pipeline, so that they do not depend on how
    a runner bundles elements), and the handler answers a tuple with one output each. A batch the model fails on,
    or an output that is Failed, gives its examples None and DEAD_LETTER (example, error) records. COUNTS are the
    declared `counters`."""

    def __init__(
        self,
        handler: ModelHandler,
        cache_files: list[str],
        cache_dir: str | None,
        counters: Counters,
        batches: beam.PTransform,
        codec: Codec = Codec(),
    ):
        super().__init__()
        self._handler, self._cache_files, self._cache_dir = handler, cache_files, cache_dir
        self._counters, self._batches, self._codec = counters, batches, codec

    def expand(self, examples):
        # Imported here: RunInference's module takes 1.7 s to import, and text-only builds never need it.
        from apache_beam.ml.inference.base import RunInference

        p = examples.pipeline
        cached = (
            p
            | "CacheFiles" >> beam.Create(self._cache_files)
            | "ReadCache"
            >> beam.ParDo(ReadCacheFileFn(self._codec.decode, self._counters.invalid)).with_outputs(
                COUNTS, main="entries"
            )
        )
        served = (
            {"examples": examples | "KeyByText" >> beam.Map(lambda e: (e.key, e)), "cached": cached.entries}
            | "JoinCache" >> beam.CoGroupByKey()
            | "ServeFromCache"
            >> beam.ParDo(ServeFromCacheFn(self._counters)).with_outputs(PENDING, COUNTS, main="hits")
        )
        batches = served[PENDING] | "OnePerText" >> beam.Map(lambda waiting: waiting[0]) | "Batches" >> self._batches
        computed, failed = batches | "RunInference" >> RunInference(self._handler).with_exception_handling()
        outputs = computed | "OutputsByKey" >> beam.FlatMap(outputs_by_key, progress_label(self._counters.computed))
        errors = failed.failed_inferences | "FailedKeys" >> beam.FlatMap(failed_keys)
        fanned = (
            {
                "pending": served[PENDING] | "PendingByKey" >> beam.Map(lambda w: (w[0].key, w)),
                "outputs": outputs,
                "errors": errors,
            }
            | "JoinComputed" >> beam.CoGroupByKey()
            | "FanOut" >> beam.ParDo(FanOutFn(self._counters)).with_outputs(COUNTS, DEAD_LETTER, main="outputs")
        )
        if self._cache_dir:
            _ = (
                outputs
                | "Succeeded" >> beam.Filter(lambda pair: not isinstance(pair[1], Failed))
                | "BatchNewEntries" >> beam.BatchElements(min_batch_size=1, max_batch_size=50_000)
                | "WriteCache" >> beam.ParDo(WriteCacheFileFn(self._cache_dir, self._codec.encode))
            )
        all_outputs = (served.hits, fanned.outputs) | "AllOutputs" >> beam.Flatten()
        counts = (cached[COUNTS], served[COUNTS], fanned[COUNTS]) | "CacheCounts" >> beam.Flatten()
        return {"outputs": all_outputs, DEAD_LETTER: fanned[DEAD_LETTER], COUNTS: counts}
