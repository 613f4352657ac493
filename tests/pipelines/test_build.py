import calendar
import hashlib
import json
import sysconfig
import time
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
import zstandard

from tests.conftest import RUNNER, TEXT_ONLY
from vocaloom import __version__, assets
from vocaloom.pipelines.build import run
from vocaloom.pipelines.verify import verify
from vocaloom.schemas.config import ConfigError
from vocaloom.schemas.manifest import Manifest
from vocaloom.schemas.shard import SHA256_DIFFERS
from vocaloom.transforms.text.tokenize import load_sentencepiece

pytestmark = pytest.mark.integration

WORDS = "the quick brown fox jumps over the lazy dog while seven wise owls watch from an old oak tree".split()


def text(i: int, words: int) -> str:
    return " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] + str(j % (i + 2)) for j in range(words))


GOOD = [{"id": f"doc{i}", "text": text(i, 20 + 37 * i)} for i in range(12)]
# A copy of doc3 that differs only in whitespace: its id sorts first, so it is the survivor.
COPY = {"id": "copy", "text": GOOD[3]["text"].replace(" ", "  ")}
KEPT = [COPY, *GOOD[:3], *GOOD[4:]]
BAD_LINES = [
    b'{"id": "broken", "text": "no end',
    b'"just a string"',
    b'{"id": "n", "text": 42}',
    b'{"id": "z", "text": "a\xffb"}',
    b'{"text": "ok"} extra',
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    lines = [json.dumps(r).encode() for r in GOOD[:8]] + BAD_LINES
    lines += [json.dumps(COPY).encode(), b'{"text": " "}']
    (folder / "part-0.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(lines) + b"\n"))
    (folder / "part-1.jsonl").write_bytes(b"\n".join(json.dumps(r).encode() for r in GOOD[8:]) + b"\n")
    return folder


def build(corpus: Path, output: Path, *extra: str) -> Manifest:
    return run(
        [
            "--input",
            str(corpus / "*.jsonl*"),
            "--output",
            str(output),
            "--min-bucket",
            "5",
            "--max-bucket",
            "7",
            "--shard-tokens",
            "2000",
            *TEXT_ONLY,
            *RUNNER,
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory) -> tuple[Path, Manifest]:
    output = tmp_path_factory.mktemp("out") / "ds"
    return output, build(corpus, output)


def test_every_record_and_token_accounted(built):
    output, manifest = built
    counts = manifest["counts"]
    assert counts["records_read"] == 12 + len(BAD_LINES) + 2
    assert counts["rejected"] == {
        "malformed_json": 1,
        "not_an_object": 1,
        "text_not_string": 1,
        "invalid_utf8": 1,
        "trailing_garbage": 1,
    }
    assert counts["filtered"] == {"empty_text": 1}
    assert (counts["duplicates"], counts["documents_kept"]) == (1, 12)
    sp = load_sentencepiece(str(assets.TOKENIZER_MODEL))
    assert counts["text_tokens"] == sum(len(sp.encode(r["text"])) + 1 for r in KEPT)
    assert counts["tokens_written"] + counts["tokens_dropped"] == counts["text_tokens"]
    assert counts["tokens_written"] == sum(b["tokens"] for b in manifest["buckets"]) > 0
    assert verify(str(output)) == []


def test_the_manifest_and_report_say_who_made_the_build_and_when(built, corpus):
    output, manifest = built
    made = manifest["provenance"]
    assert made["argv"] == [
        "--input",
        str(corpus / "*.jsonl*"),
        "--output",
        str(output),
        "--min-bucket",
        "5",
        "--max-bucket",
        "7",
        "--shard-tokens",
        "2000",
        *TEXT_ONLY,
        *RUNNER,
    ]  # as given
    assert (made["vocaloom"], made["apache_beam"], made["runner"]) == (__version__, beam.__version__, "FnApiRunner")
    started, finished = (time.strptime(made[k], "%Y-%m-%dT%H:%M:%SZ") for k in ("started", "finished"))
    assert started <= finished and calendar.timegm(finished) <= time.time()
    assert (
        f"built by vocaloom {__version__} (Apache Beam {beam.__version__}, FnApiRunner), {made['started']} to "
        f"{made['finished']}"
    ) in (output / "report.md").read_text()
    # each input's size and the sha256 of its bytes as stored (part-0 zstd-compressed)
    assert manifest["inputs"] == [
        {
            "path": str(path),
            "bytes": path.stat().st_size,
            "source": "default",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
        for path in sorted(corpus.glob("*.jsonl*"))
    ]


def test_rejects_keep_source_line_reason_and_raw_bytes(built, corpus):
    output, _ = built
    files = sorted((output / "rejects").iterdir())
    assert [f.name for f in files] == [f"rejects-{i:05d}.jsonl.zst" for i in range(len(files))]
    rejects = [
        json.loads(line)
        for f in files
        for line in zstandard.ZstdDecompressor().stream_reader(f.read_bytes()).read().splitlines()
    ]
    by_line = {r["line"]: r for r in rejects}
    assert sorted(by_line) == [9, 10, 11, 12, 13]
    assert by_line[12]["reason"] == "invalid_utf8" and by_line[12]["raw"] == '{"id": "z", "text": "a\\xffb"}'
    assert all(r["source"] == str(corpus / "part-0.jsonl.zst") for r in rejects)


def row_pieces(output: Path, manifest: Manifest):
    """(bucket length, row, [(doc id, its tokens in the row)]) of every row of a dataset."""
    for bucket in manifest["buckets"]:
        for shard in bucket["shards"]:
            table = pa.ipc.open_file(str(output / shard["path"])).read_all()
            for row, starts, ids in zip(*(table.column(c).to_pylist() for c in ("input_ids", "doc_starts", "doc_ids"))):
                ends = [*starts[1:], len(row)]
                yield bucket["length"], row, [(i, row[s:e]) for i, s, e in zip(ids, starts, ends)]


def contiguous_in(piece: list[int], whole: np.ndarray) -> bool:
    if len(piece) > len(whole):
        return False
    windows = np.lib.stride_tricks.sliding_window_view(whole, len(piece))
    return bool((windows == np.array(piece)).all(axis=1).any())


def kept_tokens() -> dict[str, np.ndarray]:
    sp = load_sentencepiece(str(assets.TOKENIZER_MODEL))
    return {r["id"]: np.array([*sp.encode(r["text"]), sp.eos_id()]) for r in KEPT}


def test_rows_hold_l_plus_one_tokens_and_every_piece_is_part_of_its_document(built):
    output, manifest = built
    tokens, seen = kept_tokens(), 0
    written: dict[str, int] = {}
    for length, row, pieces in row_pieces(output, manifest):
        assert len(row) == length + 1 and all(piece for _, piece in pieces)
        for doc_id, piece in pieces:
            assert contiguous_in(piece, tokens[doc_id])
            written[doc_id] = written.get(doc_id, 0) + len(piece)
        seen += 1
    assert seen == sum(b["rows"] for b in manifest["buckets"])
    # Packed, the short documents and the ends of longer ones are written too: all but a pack group's last tokens.
    counts = manifest["counts"]
    assert counts["tokens_dropped"] == counts["tokens_dropped_by_reason"]["pack_tail"] < 16 * 33
    assert sum(written.values()) == counts["tokens_written"] == counts["text_tokens"] - counts["tokens_dropped"]
    assert all(written.get(i, 0) <= len(t) for i, t in tokens.items())
    assert counts["documents_kept"] == len(written) and counts["filtered"].get("in_pack_tail", 0) == 12 - len(written)


# The rows of this corpus's shards before remainders were packed (main at ef1cbc2), which --remainders drop keeps:
# sha256 of each shard's [input_ids, doc_starts, doc_ids] as JSON lists (rows_digest).
BEFORE_PACKING = [
    (f"data/bucket-{path}.arrow", sha256)
    for path, sha256 in [
        ("00032/shard-00000-of-00002", "646ba77b5096ed035286f732c5057a192773e1c494332ffef1b8ab8cdb781fb3"),
        ("00032/shard-00001-of-00002", "9bd33649266f30224925b5ca64d10dff3387b40515a00c76b0d6ec5bf89c7c01"),
        ("00064/shard-00000-of-00002", "932bd718cb82bdc855caba91e5e3e6bcb77f1bf39b9b50584502293624c4be57"),
        ("00064/shard-00001-of-00002", "716b857b335a74b8fc6100398ea13078628dca8fb89119ee753f6faab9c1e2e2"),
        ("00128/shard-00000-of-00001", "4f0b1e8eb326920060b254535213d73e8d04006cd6e8b3f78bff7942adf00a07"),
    ]
]


def rows_digest(path: Path) -> str:
    table = pa.ipc.open_file(str(path)).read_all()
    rows = [table.column(name).to_pylist() for name in ("input_ids", "doc_starts", "doc_ids")]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def test_remainders_drop_keeps_each_row_to_one_document(corpus, tmp_path):
    manifest = build(corpus, tmp_path / "drop", "--remainders", "drop")
    assert [
        (shard["path"], rows_digest(tmp_path / "drop" / shard["path"]))
        for b in manifest["buckets"]
        for shard in b["shards"]
    ] == BEFORE_PACKING
    tokens = kept_tokens()
    written: dict[str, int] = {}
    for *_, pieces in row_pieces(tmp_path / "drop", manifest):
        ((doc_id, piece),) = pieces  # one document a row
        assert contiguous_in(piece, tokens[doc_id])
        written[doc_id] = written.get(doc_id, 0) + len(piece)
    counts, short = manifest["counts"], [i for i, t in tokens.items() if len(t) <= 32]
    assert counts["filtered"].get("shorter_than_a_row", 0) == len(short) and not set(short) & set(written)
    assert counts["documents_kept"] == len(tokens) - len(short) == len(written)
    remainders = sum(len(t) for i, t in tokens.items() if i not in short) - sum(written.values())
    assert counts["tokens_dropped_by_reason"] == {"remainder": remainders} | (
        {"shorter_than_a_row": sum(len(tokens[i]) for i in short)} if short else {}
    )


def test_identical_shards_with_two_worker_processes(built, corpus, tmp_path):
    output, manifest = built
    other = build(corpus, tmp_path / "mp", "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    assert other["buckets"] == manifest["buckets"]
    for bucket in manifest["buckets"]:
        for shard in bucket["shards"]:
            assert (tmp_path / "mp" / shard["path"]).read_bytes() == (output / shard["path"]).read_bytes()


def test_zstd_compressed_shards_hold_the_same_rows(built, corpus, tmp_path):
    output, manifest = built
    other = build(corpus, tmp_path / "z", "--compression", "zstd")
    assert verify(str(tmp_path / "z")) == []
    for a, b in zip(manifest["buckets"], other["buckets"]):
        for sa, sb in zip(a["shards"], b["shards"]):
            assert (
                pa.ipc.open_file(str(tmp_path / "z" / sb["path"]))
                .read_all()
                .equals(pa.ipc.open_file(str(output / sa["path"])).read_all())
            )


def test_complete_dataset_is_not_replaced_unless_asked(built, corpus):
    output, manifest = built
    with pytest.raises(ConfigError, match="already holds a complete dataset"):
        build(corpus, output)
    assert build(corpus, output, "--overwrite")["buckets"] == manifest["buckets"]


def test_verify_finds_a_corrupted_shard(corpus, tmp_path):
    manifest = build(corpus, tmp_path / "c")
    path = tmp_path / "c" / manifest["buckets"][0]["shards"][0]["path"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    shard = manifest["buckets"][0]["shards"][0]["path"]
    assert verify(str(tmp_path / "c")) == [f"{shard}: {SHA256_DIFFERS}"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--input", "/nonexistent/*.jsonl"], "matches no file"),
        (["--input", __file__], "unsupported extension"),
        (["--tokenizer", __file__], "cannot be loaded as a SentencePiece model"),
    ],
)
def test_bad_inputs_fail_before_any_work(tmp_path, argv, message):
    with pytest.raises(ConfigError, match=message):
        run(["--output", str(tmp_path / "never"), *argv, *RUNNER])
    assert not (tmp_path / "never").exists()


def test_bundled_sample_builds_and_verifies(tmp_path):
    manifest = run(["--output", str(tmp_path / "sample"), *TEXT_ONLY, *RUNNER])
    # Named by reference, never by a path only this machine has: each worker resolves it in its own installation.
    assert manifest["inputs"][0] == {
        "path": "bundled:sample",
        "bytes": assets.SAMPLE_CORPUS.stat().st_size,
        "source": "default",
        "sha256": hashlib.sha256(assets.SAMPLE_CORPUS.read_bytes()).hexdigest(),
    }
    assert manifest["tokenizer"]["path"] == manifest["config"]["tokenizer"] == "bundled:tokenizer"
    assert str(tmp_path) not in json.dumps({k: v for k, v in manifest.items() if k not in ("config", "provenance")})
    assert manifest["counts"]["documents_kept"] >= 2000
    assert [b["length"] for b in manifest["buckets"]] == [256, 512, 1024, 2048, 4096, 8192]
    assert verify(str(tmp_path / "sample")) == []
    assert (tmp_path / "sample" / "report.md").read_text().startswith("# vocaloom build")
    assert_no_token_lost(tmp_path / "sample", manifest)


def assert_no_token_lost(output: Path, manifest: Manifest) -> None:
    """At least 99.5% of the kept documents' tokens written; "documents kept" are exactly the documents in some
    row, and every other document read is counted under a reason."""
    counts = manifest["counts"]
    assert counts["tokens_written"] >= 0.995 * (counts["text_tokens"] + counts["speech_tokens"])
    assert counts["tokens_dropped"] == sum(counts["tokens_dropped_by_reason"].values())
    in_rows = {doc_id for *_, pieces in row_pieces(output, manifest) for doc_id, _ in pieces}
    assert counts["documents_kept"] == len(in_rows)
    assert counts["records_read"] == (
        len(in_rows) + sum(counts["rejected"].values()) + counts["duplicates"] + sum(counts["filtered"].values())
    )


def test_no_token_lost_on_python_sources(tmp_path):
    """A second corpus, unlike the sample: the standard library's modules, one document each."""
    library = Path(sysconfig.get_paths()["stdlib"])
    with (tmp_path / "stdlib.jsonl").open("w") as f:
        for module in sorted(library.glob("*.py")):
            f.write(json.dumps({"id": module.name, "text": module.read_text(errors="replace")}) + "\n")
    manifest = run(["--input", str(tmp_path / "stdlib.jsonl"), "--output", str(tmp_path / "ds"), *TEXT_ONLY, *RUNNER])
    assert manifest["counts"]["records_read"] > 100
    assert_no_token_lost(tmp_path / "ds", manifest)
