import gzip
import json
import zlib

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import RUNNER
from vocaloom.transforms.counting import COUNTS
from vocaloom.transforms.read import REJECTS, ReadCorpus
from vocaloom.transforms.records import Document

LINES = [b'{"id": "a", "text": "alpha"}', b'not json', b'', b'{"text": "  "}', b'{"text": "beta"}']


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
        assert_that(read[REJECTS] | beam.Map(lambda r: (r.source, r.line, r.reason)), equal_to(expected_rejects),
                    label="Rejects")
        totals = read[COUNTS] | beam.CombinePerKey(sum)
        assert_that(totals, equal_to([("records_read", 16), ("rejected/malformed_json", 3),
                                      ("rejected/missing_text", 1), ("filtered/empty_text", 3)]), label="Counts")


def test_large_document_and_corrupt_file(tmp_path):
    big = "word " * ((4 << 20) // 5 + 10)
    good = tmp_path / "big.jsonl.zst"
    good.write_bytes(zstandard.ZstdCompressor().compress(json.dumps({"id": "big", "text": big}).encode()))
    bad = tmp_path / "bad.jsonl.zst"
    body = b"".join(b'{"text": "%d"}\n' % (i * 7919 % 100003) for i in range(5000))
    bad.write_bytes(zstandard.ZstdCompressor().compress(body)[:-100])
    with TestPipeline(argv=RUNNER) as p:
        read = p | ReadCorpus([str(good), str(bad)])
        assert_that(read.documents | beam.FlatMap(documents_of) | beam.Map(lambda d: (d.id, len(d.text))),
                    equal_to([("big", len(big))]),
                    label="Docs")
        assert_that(read[REJECTS] | beam.Map(lambda r: (r.source, r.reason)),
                    equal_to([(str(bad), "corrupt_file")]), label="Rejects")


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
        assert_that(read.documents | beam.FlatMap(documents_of) | beam.Map(lambda d: d.id),
                    equal_to([f"r{i}" for i in range(len(complete))]), label="Docs")
        assert_that(read[REJECTS] | beam.Map(lambda r: (r.line, r.reason, r.raw)),
                    equal_to([(len(complete) + 1, "corrupt_file", decoded.split(b"\n")[-1])]), label="Rejects")


def test_json_nested_deeper_than_the_parser_allows_is_a_reject(tmp_path):
    deep = b'{"id": "d", "text": "x", "m": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    (tmp_path / "deep.jsonl").write_bytes(b'{"id": "a", "text": "fine"}\n' + deep + b"\n")
    with TestPipeline(argv=RUNNER) as p:
        read = p | ReadCorpus([str(tmp_path / "deep.jsonl")])
        assert_that(read.documents | beam.FlatMap(documents_of) | beam.Map(lambda d: d.id), equal_to(["a"]),
                    label="Docs")
        assert_that(read[REJECTS] | beam.Map(lambda r: (r.line, r.reason)), equal_to([(2, "too_deeply_nested")]),
                    label="Rejects")
