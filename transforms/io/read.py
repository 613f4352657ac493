"""Reading every input format through Beam's FileSystems, so gs:// and s3:// work as local paths do.

One input file is one element: compressed files cannot be split, so parallelism comes from corpora being many files.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from typing import NamedTuple

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from vocaloom import assets
from vocaloom.schemas.config import BuildConfig
from vocaloom.schemas.counts import (
    FILTERED,
    RECORDS_READ,
    REJECTED,
    SOURCE_RECORDS_READ,
    SOURCE_REJECTED,
    Count,
)
from vocaloom.transforms.counting import COUNTS, count
from vocaloom.transforms.gc_tuning import tune_gc
from vocaloom.transforms.io.records import (
    Filtered,
    Reject,
    document_from_fields,
    parse_json_lines,
    parse_text_file,
    split_records,
)
from vocaloom.transforms.worker_setup import BuildStops

REJECTS, UNREADABLE = "rejects", "unreadable"
# A record (JSONL line, .txt file) longer than this is a reject: no input makes a reader hold more of one.
MAX_RECORD_BYTES = BuildConfig.max_record_bytes
FORMATS = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet", ".txt")
_BUFFER = 1 << 20


def input_location(path: str) -> str:
    """Where an input is read from: a `bundled:` input (the sample) in this worker's own installation."""
    return str(assets.bundled_path(path)) if assets.is_bundled(path) else path


def input_format(path: str) -> str | None:
    location = input_location(path)
    return next((ext for ext in FORMATS if location.endswith(ext)), None)


# Decoders of the compressed formats: each makes a streaming decoder of one frame (zstd) or member (gzip).
_DECODERS = {
    ".jsonl.zst": lambda: zstandard.ZstdDecompressor().decompressobj(),
    ".jsonl.gz": lambda: zlib.decompressobj(wbits=31),
}
# Compressed input goes to a decoder 1 KiB at a time: a 4-byte zstd block can decode to 128 KiB, so one call makes
# at most 32 MiB (deflate at most about 1 MiB), whatever the file. Small calls cost no more than one large one.
_SLICE = 1 << 10
# How much of an oversized record or file the reject keeps.
_RAW_KEPT = 4096


class UnreadableInput(RuntimeError):
    """An input that cannot be read (gone, no permission, an I/O error): not a data problem, so not a reject."""


def _decoded_pieces(raw, new_decoder):
    """Decompressed pieces of every frame (member) as they are decoded; a file that ends inside one raises after
    everything before the cut was handed on (gzip's GzipFile.read would drop the data of the read that hits it)."""
    decoder, fed = new_decoder(), False
    while data := read_raw(raw):
        view = memoryview(data)
        for start in range(0, len(view), _SLICE):
            piece: memoryview | bytes = view[start : start + _SLICE]
            while piece:
                out, fed, piece = decoder.decompress(piece), True, b""
                if out:
                    yield out
                if decoder.eof:
                    piece, decoder, fed = decoder.unused_data, new_decoder(), False
    if fed:
        raise EOFError("compressed stream ends inside a frame (truncated file)")


def read_raw(raw) -> bytes:
    """The next block (up to 1 MiB) of an input's stored bytes; a failing read is an UnreadableInput."""
    try:
        return raw.read(_BUFFER)
    except OSError as e:
        raise UnreadableInput(f"{type(e).__name__}: {e}") from e


def open_input(path: str):
    try:
        return FileSystems.open(input_location(path), compression_type=CompressionTypes.UNCOMPRESSED)
    except Exception as e:  # Beam wraps the cause in a BeamIOError
        raise UnreadableInput(f"{type(e).__name__}: {e}") from e


def _chunks(path: str):
    """The file's (decompressed) bytes in chunks of about 1 MiB, and at most 33 MiB."""
    decoder = _DECODERS.get(input_format(path) or "")
    with open_input(path) as raw:
        if not decoder:
            while data := read_raw(raw):
                yield data
            return
        pieces, size = [], 0
        try:
            for piece in _decoded_pieces(raw, decoder):
                pieces.append(piece)
                size += len(piece)
                if size >= _BUFFER:
                    yield b"".join(pieces)
                    pieces, size = [], 0
        except (zstandard.ZstdError, zlib.error, EOFError):
            if pieces:  # what was decoded before the damaged or truncated part
                yield b"".join(pieces)
            raise
        if pieces:
            yield b"".join(pieces)


def too_large(path: str, line: int, size: int, limit: int, raw: bytes) -> Reject:
    """`size` is what was read of it: reading stops once a record is known to be too large."""
    return Reject(
        path, line, "record_too_large", f"{size} bytes, more than --max-record-bytes {limit}", raw[:_RAW_KEPT]
    )


def _jsonl_records(path: str, options: ReadOptions):
    """(DocumentColumns, other records), one pair per decompressed chunk. No more than --max-record-bytes of one
    line is ever held: the rest of a longer line is skipped up to its newline. A line that spans chunks is kept as
    its pieces and joined once, when its newline comes."""
    line, size, skipping, limit = 0, 0, False, options.max_record_bytes
    partial: list[bytes] = []
    try:
        for chunk in _chunks(path):
            if skipping:
                end = chunk.find(b"\n")
                if end < 0:
                    continue
                chunk, skipping = chunk[end + 1 :], False
            if b"\n" in chunk:
                lines = chunk.split(b"\n")
                lines[0] = b"".join([*partial, lines[0]])
                last = lines.pop()
                oversized = [
                    too_large(path, line + 1 + i, len(raw), limit, raw)
                    for i, raw in enumerate(lines)
                    if len(raw) > limit
                ]
                if oversized:
                    lines = [b"" if len(raw) > limit else raw for raw in lines]  # blank lines are not records
                documents, others = parse_json_lines(lines, line + 1, path, options.text_field, options.id_field)
                yield documents, oversized + others
                line += len(lines)
                partial, size = [last], len(last)
            else:
                partial.append(chunk)
                size += len(chunk)
            if size > limit:
                yield split_records([too_large(path, line + 1, size, limit, _head(partial))])
                line, partial, size, skipping = line + 1, [], 0, True
    except (zstandard.ZstdError, zlib.error, EOFError) as e:
        # A corrupt or truncated compressed file: what follows the damage cannot be read as records.
        yield split_records([Reject(path, line + 1, "corrupt_file", f"{type(e).__name__}: {e}", _head(partial))])
        return
    if not skipping:
        yield parse_json_lines([b"".join(partial)], line + 1, path, options.text_field, options.id_field)


def _head(pieces: list[bytes]) -> bytes:
    """The first bytes of a line held as pieces, as much as a reject keeps."""
    head = b""
    for piece in pieces:
        head += piece[: _RAW_KEPT - len(head)]
        if len(head) >= _RAW_KEPT:
            break
    return head


# Rows a Parquet batch holds at most, and the uncompressed bytes its text column may average in one: a file of large
# values is read a few rows at a time.
_PARQUET_ROWS, _PARQUET_BATCH_BYTES = 4096, 64 << 20


def _parquet_records(path: str, options: ReadOptions):
    """(DocumentColumns, other records), one pair per run of rows holding about 1 MiB of text. The text column is
    read as a dictionary (a value repeated in every row is held once: a 783-byte file can name 300 copies of 3 MiB)
    and its values are measured before any is made a Python string: one longer than --max-record-bytes is a
    reject, and the others are made a run at a time."""
    text_field, id_field, limit = options.text_field, options.id_field, options.max_record_bytes
    with open_input(path) as f:
        try:
            parquet = pq.ParquetFile(f, read_dictionary=[text_field])
            names = parquet.schema_arrow.names
            batch_size = _parquet_batch_rows(parquet.metadata, names.index(text_field) if text_field in names else -1)
        except (pa.ArrowException, OSError) as e:
            yield split_records([Reject(path, 1, "corrupt_file", f"not a readable Parquet file: {e}", b"")])
            return
        columns = [name for name in (text_field, id_field) if name in names]
        row = 0
        for batch in parquet.iter_batches(columns=columns or None, batch_size=batch_size):
            texts = batch.column(text_field) if text_field in names else pa.nulls(batch.num_rows)
            sizes = _text_sizes(texts)
            ids = batch.column(id_field) if id_field in names else pa.nulls(batch.num_rows)
            for start, stop in _runs(sizes, limit):
                records = []
                for text, size, id_value in zip(
                    _texts(texts, sizes, start, stop, limit),
                    sizes[start:stop],
                    ids.slice(start, stop - start).to_pylist(),
                ):
                    row += 1
                    if size > limit:
                        records.append(too_large(path, row, size, limit, text))
                        continue
                    record = document_from_fields(
                        text, id_value, text_field in names, path, row, b"", text_field, id_field
                    )
                    if isinstance(record, Reject):  # the row as JSON, made only for the rows that need it
                        record = record._replace(
                            raw=json.dumps(
                                {text_field: text, id_field: id_value}, ensure_ascii=False, default=repr
                            ).encode()
                        )
                    records.append(record)
                yield split_records(records)


def _parquet_batch_rows(metadata, text_column: int) -> int:
    """Rows per batch such that the text column's uncompressed pages average at most _PARQUET_BATCH_BYTES."""
    if text_column < 0 or metadata.num_rows == 0:
        return _PARQUET_ROWS
    groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
    row_bytes = max((g.column(text_column).total_uncompressed_size / max(1, g.num_rows) for g in groups), default=0)
    return max(1, min(_PARQUET_ROWS, int(_PARQUET_BATCH_BYTES // max(1.0, row_bytes))))


def _is_text_dictionary(column) -> bool:
    return pa.types.is_dictionary(column.type) and (
        pa.types.is_string(column.type.value_type) or pa.types.is_large_string(column.type.value_type)
    )


def _text_sizes(column) -> list[int]:
    """Each value's UTF-8 size, measured in Arrow; 0 for a null or a value that is not text (document_from_fields
    says what it is)."""
    if not _is_text_dictionary(column):
        return [0] * len(column)
    return pc.fill_null(pc.take(pc.binary_length(column.dictionary), column.indices), 0).to_pylist()


def _runs(sizes: list[int], limit: int):
    """(start, stop) of consecutive rows holding about _BUFFER bytes of text that will be made strings."""
    start, held = 0, 0
    for i, size in enumerate(sizes):
        held += size if size <= limit else 0
        if held >= _BUFFER:
            yield start, i + 1
            start, held = i + 1, 0
    if start < len(sizes):
        yield start, len(sizes)


def _texts(column, sizes: list[int], start: int, stop: int, limit: int) -> list:
    """The values of rows [start, stop) as Python objects, except that a text over `limit` is only its first
    bytes (for the reject)."""
    run = column.slice(start, stop - start)
    if not _is_text_dictionary(column):
        return run.to_pylist()
    if max(sizes[start:stop], default=0) <= limit:
        return run.cast(column.type.value_type).to_pylist()
    values = []
    for i in range(start, stop):
        value = column[i]
        if sizes[i] > limit:
            head = pc.utf8_slice_codeunits(column.dictionary.slice(value.index.as_py(), 1), 0, _RAW_KEPT)
            values.append(head[0].as_py().encode("utf-8"))
        else:
            values.append(value.as_py())
    return values


def _text_records(path: str, limit: int):
    chunks, size = [], 0
    for chunk in _chunks(path):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            yield split_records([too_large(path, 1, size, limit, chunks[0])])  # the size read so far
            return
    yield split_records([parse_text_file(b"".join(chunks), path)])


class ReadOptions(NamedTuple):
    text_field: str = "text"
    id_field: str = "id"
    max_record_bytes: int = MAX_RECORD_BYTES
    skip_unreadable: bool = False  # an input that cannot be read goes to UNREADABLE instead of ending the build


class ReadFileFn(beam.DoFn):
    """A file path in; its documents out as DocumentColumns, one per chunk read (handing documents on one by one
    cost more than parsing them), its unusable records on REJECTS, and what it saw on COUNTS. A file that cannot be
    read ends the build in one line (BuildStops), or goes to UNREADABLE with --skip-unreadable."""

    def __init__(self, options: ReadOptions, failures: BuildStops, sources: dict[str, int] | None = None):
        self._options, self._failures, self._sources = options, failures, sources or {}

    def setup(self):
        tune_gc()

    def process(self, path: str):
        try:
            yield from self._read(path)
        except UnreadableInput as e:
            if not self._options.skip_unreadable:
                self._failures.fail(f"input {path} cannot be read ({e}); pass --skip-unreadable to build without it")
            yield beam.pvalue.TaggedOutput(UNREADABLE, {"path": path, "reason": str(e)})

    def _read(self, path: str):
        fmt, options = input_format(path), self._options
        if fmt == ".parquet":
            parts = _parquet_records(path, options)
        elif fmt == ".txt":
            parts = _text_records(path, options.max_record_bytes)
        else:
            parts = _jsonl_records(path, options)
        records = 0
        reasons: Counter[tuple[Count, str]] = Counter()
        for documents, others in parts:
            records += len(documents[0]) + len(others)
            for record in others:
                if isinstance(record, Reject):
                    reasons[REJECTED, record.reason] += 1
                    yield beam.pvalue.TaggedOutput(REJECTS, record)
                else:
                    assert isinstance(record, Filtered)
                    reasons[FILTERED, record.reason] += 1
            if documents[0]:
                yield documents
        yield count(RECORDS_READ, records)
        source = str(self._sources.get(path, 0))
        yield count(SOURCE_RECORDS_READ, records, source)
        rejected = sum(n for (declared, _), n in reasons.items() if declared is REJECTED)
        if rejected:
            yield count(SOURCE_REJECTED, rejected, source)
        for (declared, reason), n in reasons.items():
            yield count(declared, n, reason)


class ReadCorpus(beam.PTransform):
    """Matched input paths to DocumentColumns, with REJECTS, UNREADABLE and COUNTS as extra outputs (`sources`:
    each path's source index, for the counts per source)."""

    def __init__(
        self,
        paths: list[str],
        options: ReadOptions = ReadOptions(),
        failures: BuildStops = BuildStops(),
        sources: dict[str, int] | None = None,
    ):
        super().__init__()
        self._paths, self._options, self._failures, self._sources = list(paths), options, failures, sources

    def expand(self, pbegin):
        return (
            pbegin
            | "Paths" >> beam.Create(self._paths, reshuffle=len(self._paths) > 1)
            | "ReadFiles"
            >> beam.ParDo(ReadFileFn(self._options, self._failures, self._sources)).with_outputs(
                REJECTS, UNREADABLE, COUNTS, main="documents"
            )
        )
