"""Named sources through a build: --input NAME=PATTERN, a speech ratio per source, a source column in every shard,
rows of one source only (document and related context), and the manifest's and report's figures per source."""

import json
import sysconfig
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from tests.conftest import RUNNER, TEXT_ONLY
from vocaloom.pipelines.build import run
from vocaloom.pipelines.verify import verify
from vocaloom.schemas.manifest import Manifest

pytestmark = pytest.mark.integration

WORDS = "rivers carry silt down to the sea where tides sort it into banks of sand and mud".split()


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sources")
    (folder / "web").mkdir()
    for part in range(2):
        (folder / "web" / f"part-{part}.jsonl").write_text(
            "".join(
                json.dumps(
                    {"id": f"web-{part}-{i}", "text": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(60 + 9 * i))}
                )
                + "\n"
                for i in range(15)
            )
        )
    library = Path(sysconfig.get_paths()["stdlib"])
    (folder / "code.jsonl").write_text(
        "".join(
            json.dumps({"id": f"code-{module.stem}", "text": module.read_text()[:3000]}) + "\n"
            for module in sorted(library.glob("[a-c]*.py"))[:12]
        )
    )
    (folder / "books.jsonl").write_text(
        "".join(
            json.dumps({"id": f"books-{i}", "text": " ".join(WORDS[(3 * i + j) % len(WORDS)] for j in range(900))})
            + "\n"
            for i in range(3)
        )
    )
    return folder


def build(corpora: Path, output: Path, *extra: str) -> Manifest:
    return run(
        [
            "--input",
            f"web={corpora / 'web'}/",
            "--input",
            f"code={corpora / 'code.jsonl'}",
            "--input",
            f"books={corpora / 'books.jsonl'}",
            "--output",
            str(output),
            "--min-bucket",
            "5",
            "--max-bucket",
            "8",
            *RUNNER,
            *extra,
        ]
    )


def rows(output: Path, manifest: Manifest):
    """(source index, input_ids, doc_ids) of every row."""
    for bucket in manifest["buckets"]:
        for shard in bucket["shards"]:
            table = pa.ipc.open_file(str(output / shard["path"])).read_all()
            assert json.loads(table.schema.metadata[b"vocaloom.sources"]) == ["books", "code", "web"]
            column = table.column("source").to_pylist()  # each source's rows together, as the manifest counts them
            assert column == sorted(column) and [column.count(i) for i in range(3)] == shard["source_rows"]
            yield from zip(*(table.column(c).to_pylist() for c in ("source", "input_ids", "doc_ids")))


def test_each_source_is_read_counted_spoken_as_asked_and_kept_apart(corpora, tmp_path):
    manifest = build(corpora, tmp_path / "ds", "--speech-ratio", "code=0")
    sources = manifest["sources"]
    assert list(sources) == ["books", "code", "web"]
    assert sources["web"]["patterns"] == [f"{corpora / 'web'}/"] and sources["web"]["inputs"] == 2
    assert (sources["code"]["speech_ratio"], sources["web"]["speech_ratio"]) == (0.0, 0.3)
    assert [sources[s]["records_read"] for s in ("books", "code", "web")] == [3, 12, 30]
    counts = manifest["counts"]
    for figure in ("records_read", "documents_kept", "tokens_written"):
        assert sum(source[figure] for source in sources.values()) == counts[figure]
    assert [item["source"] for item in manifest["inputs"]] == ["books", "code", "web", "web"]

    speech_from = manifest["vocab"]["specials"]["begin_of_audio"]
    written = [0, 0, 0]
    for source, ids, doc_ids in rows(tmp_path / "ds", manifest):
        name = ["books", "code", "web"][source]
        assert all(doc_id.startswith(f"{name}-") for doc_id in doc_ids)  # a row holds one source's documents
        spoken = any(token >= speech_from for token in ids)
        assert not spoken if name == "code" else True  # code is not read aloud
        written[source] += len(ids)
    assert written == [sources[s]["tokens_written"] for s in ("books", "code", "web")]
    assert any(t >= speech_from for s, ids, _ in rows(tmp_path / "ds", manifest) if s == 2 for t in ids)
    assert verify(str(tmp_path / "ds")) == []
    assert "## Sources" in (tmp_path / "ds" / "report.md").read_text()


def test_related_documents_are_ordered_within_their_source(corpora, tmp_path):
    manifest = build(corpora, tmp_path / "related", "--context", "related", *TEXT_ONLY)
    seen = set()
    for source, _, doc_ids in rows(tmp_path / "related", manifest):
        name = ["books", "code", "web"][source]
        assert all(doc_id.startswith(f"{name}-") for doc_id in doc_ids)
        seen.add(name)
    assert seen == {"books", "code", "web"} and verify(str(tmp_path / "related")) == []


def test_a_file_two_sources_claim_is_refused(corpora, tmp_path):
    from vocaloom.schemas.config import ConfigError

    with pytest.raises(ConfigError, match="is matched by sources 'a' and 'b': a file belongs to one source"):
        run(
            [
                "--input",
                f"a={corpora / 'code.jsonl'}",
                "--input",
                f"b={corpora}/*.jsonl",
                "--output",
                str(tmp_path / "never"),
                *TEXT_ONLY,
                *RUNNER,
            ]
        )
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("context", ["document", "related"])
def test_long_documents_go_whole_to_their_sources_long_part(corpora, tmp_path, context):
    manifest = build(corpora, tmp_path / "long", "--long-documents", "300", "--context", context, *TEXT_ONLY)
    names = ["books", "books.long", "code", "code.long", "web", "web.long"]
    assert list(manifest["sources"]) == names and manifest["sources"]["web.long"]["long_documents_of"] == "web"
    source_of: dict[str, str] = {}
    tokens: Counter[str] = Counter()
    for bucket in manifest["buckets"]:
        for shard in bucket["shards"]:
            table = pa.ipc.open_file(str(tmp_path / "long" / shard["path"])).read_all()
            assert json.loads(table.schema.metadata[b"vocaloom.sources"]) == names
            for source, starts, doc_ids in zip(
                *(table.column(c).to_pylist() for c in ("source", "doc_starts", "doc_ids"))
            ):
                for doc_id, begin, end in zip(doc_ids, starts, [*starts[1:], bucket["length"] + 1]):
                    assert source_of.setdefault(doc_id, names[source]) == names[source]  # every piece, one source
                    tokens[doc_id] += end - begin
    long = {doc_id for doc_id, name in source_of.items() if name.endswith(".long")}
    assert long and all(source_of[d].startswith(d.split("-")[0]) for d in source_of)
    # Found tokens fall short of a document's only by a pack group's dropped tail (under a row of 32).
    assert all(tokens[d] >= 300 - 32 for d in long) and all(tokens[d] < 300 for d in set(tokens) - long)
    assert verify(str(tmp_path / "long")) == []
