"""Reading every input format through Beam's FileSystems, so gs:// and s3:// work as local paths do.

One input file is one element: compressed files cannot be split, so parallelism comes from corpora being many files.
"""
from __future__ import annotations

import json
import zlib

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from vocaloom import assets
from vocaloom.transforms.counting import COUNTS, count
from vocaloom.transforms.gc_tuning import tune_gc
from vocaloom.transforms.records import Filtered, Reject, document_from_fields, parse_json_lines, parse_text_file, split_records

REJECTS = "rejects"
FORMATS = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet", ".txt")
_BUFFER = 1 << 20


def input_location(path: str) -> str:
    """Where an input is read from: a `bundled:` input (the sample) in this worker's own installation."""
    return str(assets.bundled_path(path)) if assets.is_bundled(path) else path


def input_format(path: str) -> str | None:
    location = input_location(path)
    return next((ext for ext in FORMATS if location.endswith(ext)), None)


# Decoders of the compressed formats: each makes a streaming decoder of one frame (zstd) or member (gzip).
_DECODERS = {".jsonl.zst": lambda: zstandard.ZstdDecompressor().decompressobj(),
             ".jsonl.gz": lambda: zlib.decompressobj(wbits=31)}


def _decoded_chunks(raw, new_decoder):
    """Decompressed chunks of every frame (member) as they are decoded; a file that ends inside one raises after
    everything before the cut was handed on (gzip's GzipFile.read would drop the data of the read that hits it)."""
    decoder, fed = new_decoder(), False
    while data := raw.read(_BUFFER):
        while data:
            out, fed = decoder.decompress(data), True
            if out:
                yield out
            data = b""
            if decoder.eof:
                data, decoder, fed = decoder.unused_data, new_decoder(), False
    if fed:
        raise EOFError("compressed stream ends inside a frame (truncated file)")


def open_input(path: str):
    return FileSystems.open(input_location(path), compression_type=CompressionTypes.UNCOMPRESSED)


def _chunks(path: str):
    decoder = _DECODERS.get(input_format(path))
    with open_input(path) as raw:
        if decoder:
            yield from _decoded_chunks(raw, decoder)
            return
        while data := raw.read(_BUFFER):
            yield data


def _jsonl_records(path: str, text_field: str, id_field: str):
    """(DocumentColumns, other records), one pair per decompressed chunk."""
    line, carry = 0, b""
    try:
        for chunk in _chunks(path):
            lines = (carry + chunk).split(b"\n")
            carry = lines.pop()
            yield parse_json_lines(lines, line + 1, path, text_field, id_field)
            line += len(lines)
    except (zstandard.ZstdError, zlib.error, OSError, EOFError) as e:
        # A corrupt or truncated compressed file: what follows the damage cannot be read as records.
        yield split_records([Reject(path, line + 1, "corrupt_file", f"{type(e).__name__}: {e}", carry[:4096])])
        return
    yield parse_json_lines([carry], line + 1, path, text_field, id_field)


def _parquet_records(path: str, text_field: str, id_field: str):
    """(DocumentColumns, other records), one pair per Parquet record batch."""
    with open_input(path) as f:
        try:
            parquet = pq.ParquetFile(f)
        except (pa.ArrowException, OSError) as e:
            yield split_records([Reject(path, 1, "corrupt_file", f"not a readable Parquet file: {e}", b"")])
            return
        names = parquet.schema_arrow.names
        columns = [name for name in (text_field, id_field) if name in names]
        row = 0
        for batch in parquet.iter_batches(columns=columns or None, batch_size=4096):
            texts = batch.column(text_field).to_pylist() if text_field in names else [None] * batch.num_rows
            ids = batch.column(id_field).to_pylist() if id_field in names else [None] * batch.num_rows
            records = []
            for text, id_value in zip(texts, ids):
                row += 1
                record = document_from_fields(text, id_value, text_field in names, path, row, b"", text_field,
                                              id_field)
                if isinstance(record, Reject):  # the row as JSON, made only for the rows that need it
                    record = record._replace(raw=json.dumps({text_field: text, id_field: id_value},
                                                            ensure_ascii=False, default=repr).encode())
                records.append(record)
            yield split_records(records)


def _text_records(path: str):
    yield split_records([parse_text_file(b"".join(_chunks(path)), path)])


class ReadFileFn(beam.DoFn):
    """A file path in; its documents out as DocumentColumns, one per chunk read (handing documents on one by one
    cost more than parsing them), its unusable records on REJECTS, and what it saw on COUNTS."""

    def __init__(self, text_field: str, id_field: str):
        self._text_field, self._id_field = text_field, id_field

    def setup(self):
        tune_gc()

    def process(self, path: str):
        fmt = input_format(path)
        if fmt == ".parquet":
            parts = _parquet_records(path, self._text_field, self._id_field)
        elif fmt == ".txt":
            parts = _text_records(path)
        else:
            parts = _jsonl_records(path, self._text_field, self._id_field)
        tally: dict[str, int] = {}
        for documents, others in parts:
            tally["records_read"] = tally.get("records_read", 0) + len(documents[0]) + len(others)
            for record in others:
                if isinstance(record, Reject):
                    tally["rejected/" + record.reason] = tally.get("rejected/" + record.reason, 0) + 1
                    yield beam.pvalue.TaggedOutput(REJECTS, record)
                else:
                    assert isinstance(record, Filtered)
                    tally["filtered/" + record.reason] = tally.get("filtered/" + record.reason, 0) + 1
            if documents[0]:
                yield documents
        for key, n in tally.items():
            yield count(key, n)


class ReadCorpus(beam.PTransform):
    """Matched input paths to DocumentColumns, with REJECTS and COUNTS as extra outputs."""

    def __init__(self, paths: list[str], text_field: str = "text", id_field: str = "id"):
        super().__init__()
        self._paths, self._text_field, self._id_field = list(paths), text_field, id_field

    def expand(self, pbegin):
        return (pbegin
                | "Paths" >> beam.Create(self._paths, reshuffle=len(self._paths) > 1)
                | "ReadFiles" >> beam.ParDo(ReadFileFn(self._text_field, self._id_field)).with_outputs(
                    REJECTS, COUNTS, main="documents"))
