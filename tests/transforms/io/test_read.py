import gzip
import json
import subprocess
import sys
import zlib

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import RUNNER, labelled_totals
from vocaloom.transforms.counting import COUNTS
from vocaloom.transforms.io.read import REJECTS, UNREADABLE, ReadCorpus, ReadOptions
from vocaloom.transforms.io.records import Document

LINES = [b'{"id": "a", "text": "alpha"}', b"not json", b"", b'{"text": "  "}', b'{"text": "beta"}']


def documents_of(columns):
    return [Document(*fields) for fields in zip(*columns)]


def write_all_formats(tmp_path):
    body = b"\n".join(LINES) + b"\n"
    (tmp_path / "x.jsonl").write_bytes(body)
    (tmp_path / "x.jsonl.gz").write_bytes(gzip.compress(body))
    (tmp_path / "x.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(body))
    pq.write_table(pa.table({"id": ["p1", None, "p3"], "text": ["gamma", "delta", None]}), tmp_path / "x.parquet")
    (tmp_path / "x.txt").write_text("a whole file\nis one document\n")
    return sorted(str(p) for p in tmp_path.iterdir())


def test_every_format_read_exactly(tmp_path):
    paths = write_all_formats(tmp_path)
    expected_docs, expected_rejects = [], []
    for ext in ("jsonl", "jsonl.gz", "jsonl.zst"):
        path = str(tmp_path / f"x.{ext}")
        expected_docs += [Document("a", "alpha", path, 1), Document(f"{path}:5", "beta", path, 5)]
        expected_rejects.append((path, 2, "malformed_json"))
    parquet = str(tmp_path / "x.parquet")
    expected_docs += [Document("p1", "gamma", parquet, 1), Document(f"{parquet}:2", "delta", parquet, 2)]
    expected_rejects.append((parquet, 3, "missing_text"))
    txt = str(tmp_path / "x.txt")
    expected_docs.append(Document(txt, "a whole file\nis one document\n", txt, 1))
    with TestPipeline(argv=RUNNER) as p:
        read = p | ReadCorpus(paths)
        assert_that(read.documents | beam.FlatMap(documents_of), equal_to(expected_docs), label="Docs")
        assert_that(
            read[REJECTS] | beam.Map(lambda r: (r.source, r.line, r.reason)),
            equal_to(expected_rejects),
            label="Rejects",
        )
        assert_that(
            labelled_totals(read[COUNTS]),
            equal_to(
                [
                    ("counts.records_read", 16),
                    ("sources.records_read/0", 16),
                    ("sources.rejected/0", 4),
                    ("counts.rejected/malformed_json", 3),
                    ("counts.rejected/missing_text", 1),
                    ("counts.filtered/empty_text", 3),
                ]
            ),
            label="Counts",
        )


def test_large_document_and_corrupt_file(tmp_path):
    big = "word " * ((4 << 20) // 5 + 10)
    good = tmp_path / "big.jsonl.zst"
    good.write_bytes(zstandard.ZstdCompressor().compress(json.dumps({"id": "big", "text": big}).encode()))
    bad = tmp_path / "bad.jsonl.zst"
    body = b"".join(b'{"text": "%d"}\n' % (i * 7919 % 100003) for i in range(5000))
    bad.write_bytes(zstandard.ZstdCompressor().compress(body)[:-100])
    with TestPipeline(argv=RUNNER) as p:
        read = p | ReadCorpus([str(good), str(bad)])
        assert_that(
            read.documents | beam.FlatMap(documents_of) | beam.Map(lambda d: (d.id, len(d.text))),
            equal_to([("big", len(big))]),
            label="Docs",
        )
        assert_that(
            read[REJECTS] | beam.Map(lambda r: (r.source, r.reason)),
            equal_to([(str(bad), "corrupt_file")]),
            label="Rejects",
        )


def test_a_truncated_gzip_keeps_what_it_decoded(tmp_path):
    body = b"".join(b'{"id": "r%d", "text": "record %d"}\n' % (i, i * 7919 % 100003) for i in range(20000))
    truncated = gzip.compress(body)[:-100]
    (tmp_path / "cut.jsonl.gz").write_bytes(truncated)
    decoded = zlib.decompressobj(wbits=31).decompress(truncated)  # all that the file still holds
    complete = decoded.split(b"\n")[:-1]
    assert 0 < len(complete) < 20000
    path = str(tmp_path / "cut.jsonl.gz")
    with TestPipeline(argv=RUNNER) as p:
        read = p | ReadCorpus([path])
        assert_that(
            read.documents | beam.FlatMap(documents_of) | beam.Map(lambda d: d.id),
            equal_to([f"r{i}" for i in range(len(complete))]),
            label="Docs",
        )
        assert_that(
            read[REJECTS] | beam.Map(lambda r: (r.line, r.reason, r.raw)),
            equal_to([(len(complete) + 1, "corrupt_file", decoded.split(b"\n")[-1])]),
            label="Rejects",
        )


def test_json_nested_deeper_than_the_parser_allows_is_a_reject(tmp_path):
    deep = b'{"id": "d", "text": "x", "m": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    (tmp_path / "deep.jsonl").write_bytes(b'{"id": "a", "text": "fine"}\n' + deep + b"\n")
    with TestPipeline(argv=RUNNER) as p:
        read = p | ReadCorpus([str(tmp_path / "deep.jsonl")])
        assert_that(
            read.documents | beam.FlatMap(documents_of) | beam.Map(lambda d: d.id), equal_to(["a"]), label="Docs"
        )
        assert_that(
            read[REJECTS] | beam.Map(lambda r: (r.line, r.reason)),
            equal_to([(2, "too_deeply_nested")]),
            label="Rejects",
        )


def test_a_record_longer_than_max_record_bytes_is_a_reject_and_reading_goes_on(tmp_path):
    big = b'{"id": "big", "text": "' + b"w " * (3 << 19) + b'"}'  # 3 MiB: longer than a read chunk
    body = (
        b'{"id": "a", "text": "first"}\n'
        + big
        + b'\n{"id": "b", "text": "'
        + b"x" * 1500
        + b'"}\n'
        + b'{"id": "c", "text": "last"}\n'
        + big
    )  # the last line has no newline
    paths = [tmp_path / "x.jsonl", tmp_path / "x.jsonl.gz", tmp_path / "x.jsonl.zst"]
    paths[0].write_bytes(body)
    paths[1].write_bytes(gzip.compress(body))
    paths[2].write_bytes(zstandard.ZstdCompressor().compress(body))
    (tmp_path / "long.txt").write_bytes(b"y" * 5000)
    paths.append(tmp_path / "long.txt")
    options = ReadOptions(max_record_bytes=1000)
    with TestPipeline(argv=RUNNER) as p:
        read = p | ReadCorpus([str(path) for path in paths], options)
        assert_that(
            read.documents | beam.FlatMap(documents_of) | beam.Map(lambda d: (d.source[-9:], d.id)),
            equal_to([(str(path)[-9:], id) for path in paths[:3] for id in ("a", "c")]),
            label="Docs",
        )
        too_large = [(str(path), line) for path in paths[:3] for line in (2, 3, 5)] + [(str(paths[3]), 1)]
        assert_that(
            read[REJECTS] | beam.Map(lambda r: (r.source, r.line, r.reason, len(r.raw) <= 4096)),
            equal_to([(path, line, "record_too_large", True) for path, line in too_large]),
            label="Rejects",
        )


BOMB_READER = """
import resource, sys
import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from vocaloom.transforms.io.read import REJECTS, UNREADABLE, ReadCorpus, ReadOptions
with TestPipeline(argv=["--runner=FnApiRunner"]) as p:
    read = p | ReadCorpus([sys.argv[1]])
    read[REJECTS] | beam.Map(lambda r: print("reject", r.line, r.reason, flush=True))
print("peak_mib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def peak_reading(path) -> tuple[list[str], int]:
    """What a fresh process reading `path` printed, and its peak RSS in MiB."""
    result = subprocess.run([sys.executable, "-c", BOMB_READER, str(path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    return lines, int(lines[-1].split()[1])


def test_a_decompression_bomb_is_read_in_bounded_memory(tmp_path):
    """1.5 GiB of one line in a 50 KB .jsonl.zst: a reject, and memory stays within 512 MiB of what reading a
    one-line file takes (the bound: two --max-record-bytes of the line's pieces and their join, 64 MiB each here,
    and a decoded chunk of at most 33 MiB)."""
    bomb = tmp_path / "bomb.jsonl.zst"
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    with bomb.open("wb") as f:
        f.write(compressor.compress(b'{"id": "bomb", "text": "'))
        for _ in range(1536):
            f.write(compressor.compress(b"0" * (1 << 20)))
        f.write(compressor.compress(b'"}\n{"id": "after", "text": "kept"}\n') + compressor.flush())
    assert bomb.stat().st_size < 100_000
    (tmp_path / "small.jsonl").write_text('{"id": "a", "text": "b"}\n')
    lines, peak = peak_reading(bomb)
    _, baseline = peak_reading(tmp_path / "small.jsonl")
    assert "reject 1 record_too_large" in lines
    assert peak - baseline < 512, f"peak RSS {peak} MiB, {baseline} MiB reading one line"  # the line: 1,536 MiB


def test_an_input_that_cannot_be_read_ends_the_build_or_is_listed(tmp_path):
    gone, folder = str(tmp_path / "gone.jsonl"), tmp_path / "dir.jsonl"
    folder.mkdir()
    (tmp_path / "ok.jsonl").write_text('{"id": "a", "text": "kept"}\n')
    paths = [gone, str(folder), str(tmp_path / "ok.jsonl")]
    with TestPipeline(argv=RUNNER) as p:
        read = p | ReadCorpus(paths, ReadOptions(skip_unreadable=True))
        assert_that(
            read.documents | beam.FlatMap(documents_of) | beam.Map(lambda d: d.id), equal_to(["a"]), label="Docs"
        )
        assert_that(
            read[UNREADABLE] | beam.Map(lambda u: (u["path"], u["reason"].split(":")[0])),
            equal_to([(gone, "FileNotFoundError"), (str(folder), "IsADirectoryError")]),
            label="Unreadable",
        )
    with (
        pytest.raises(Exception, match=f"input {gone} cannot be read .*; pass --skip-unreadable"),
        TestPipeline(argv=RUNNER) as p,
    ):
        p | ReadCorpus([gone])
