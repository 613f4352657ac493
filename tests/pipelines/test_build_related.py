import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard

from tests.conftest import RUNNER, TEXT_ONLY, ordering_of
from tests.schemas.test_manifest import key_problems
from vocaloom import assets
from vocaloom.pipelines.build import run
from vocaloom.pipelines.verify import verify
from vocaloom.schemas.manifest import Manifest, Ordering

pytestmark = pytest.mark.integration


def sample_records(n: int) -> list[dict]:
    """Every 25th record of the bundled sample: real text on varied subjects."""
    with open(assets.SAMPLE_CORPUS, "rb") as f:
        lines = zstandard.ZstdDecompressor().stream_reader(f).read().splitlines()
    return [json.loads(line) for line in lines[::25][:n]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("related") / "c.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in sample_records(160)))
    return str(path)


def build(corpus: str, output: Path, *extra: str) -> Manifest:
    return run(
        [
            "--input",
            corpus,
            "--output",
            str(output),
            "--context",
            "related",
            "--min-bucket",
            "6",
            "--max-bucket",
            "9",
            "--shard-tokens",
            "20000",
            *TEXT_ONLY,
            *RUNNER,
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    output = tmp_path_factory.mktemp("out") / "ds"
    return output, build(corpus, output)


def row_pieces(output: Path, manifest: Manifest):
    for bucket in manifest["buckets"]:
        for shard in bucket["shards"]:
            table = pa.ipc.open_file(str(output / shard["path"])).read_all()
            for starts, ids in zip(table.column("doc_starts").to_pylist(), table.column("doc_ids").to_pylist()):
                ends = [*starts[1:], bucket["length"] + 1]
                yield from zip(ids, (e - s for s, e in zip(starts, ends)))


def test_related_rows_hold_several_documents_and_drop_less(built):
    output, manifest = built
    assert verify(str(output)) == []
    ordering, counts = manifest["ordering"], manifest["counts"]
    assert ordering["method"] == "in-context-pretraining" and ordering["documents"] == counts["documents_kept"] == 160
    assert ordering["tokens_dropped"] == counts["tokens_dropped"] < ordering["tokens_dropped_document_mode"]
    assert (
        ordering["random_order_similarity"]
        < ordering["mean_adjacent_similarity"]
        <= ordering["best_neighbour_similarity"]
    )
    assert any(len(set(ids)) > 1 for ids in _rows_doc_ids(output, manifest))
    report = (output / "report.md").read_text()  # what `vocaloom inspect` prints
    assert "## Ordering (In-Context Pretraining)" in report
    assert f"| documents ordered | {ordering['documents']:,} |" in report
    assert f"| quality (0: a random order, 1: each beside its best neighbour) | {ordering['quality']:.4f} |" in report


def _rows_doc_ids(output, manifest):
    for bucket in manifest["buckets"]:
        for shard in bucket["shards"]:
            yield from pa.ipc.open_file(str(output / shard["path"])).read_all().column("doc_ids").to_pylist()


def test_every_document_at_most_once(built, tmp_path):
    output, manifest = built
    per_doc: Counter[str] = Counter()
    for doc_id, n in row_pieces(output, manifest):
        per_doc[doc_id] += n
    plain = run(
        [
            "--input",
            manifest["config"]["inputs"][0],
            "--output",
            str(tmp_path / "plain"),
            "--min-bucket",
            "6",
            "--max-bucket",
            "9",
            *TEXT_ONLY,
            *RUNNER,
        ]
    )
    assert sum(per_doc.values()) == manifest["counts"]["tokens_written"]
    assert plain["counts"]["text_tokens"] == manifest["counts"]["text_tokens"]  # the same documents, the same tokens


def test_identical_with_two_worker_processes(built, corpus, tmp_path):
    output, manifest = built
    other = build(corpus, tmp_path / "mp", "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    for a, b in zip(manifest["buckets"], other["buckets"]):
        assert a == b
        for shard in a["shards"]:
            assert (output / shard["path"]).read_bytes() == (tmp_path / "mp" / shard["path"]).read_bytes()


def test_partitions_are_walked_separately_and_lost_edges_counted(built, corpus, tmp_path):
    _, single = built
    parted = build(corpus, tmp_path / "p", "--partition-size", "40")
    assert ordering_of(single)["partitions"] == 1 and ordering_of(single)["edges_lost_fraction"] == 0
    assert ordering_of(parted)["partitions"] == 4
    assert ordering_of(parted)["documents"] == 160 and 0 < ordering_of(parted)["edges_lost_fraction"] < 1
    assert ordering_of(parted)["segments"] >= ordering_of(single)["segments"]
    assert verify(str(tmp_path / "p")) == []


def test_semantic_dedup_counts_near_copies(tmp_path):
    records = sample_records(40)
    copies = [{"id": r["id"] + "-copy", "text": r["text"] + " Amen."} for r in records[:10] if len(r["text"]) > 400]
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records + copies))
    manifest = build(str(path), tmp_path / "out", "--semantic-dedup", "0.98")
    dropped = manifest["counts"]["filtered"].get("semantic_duplicate", 0)
    assert len(copies) <= dropped < 20
    assert manifest["counts"]["documents_kept"] == len(records) + len(copies) - dropped
    assert verify(str(tmp_path / "out")) == []


def test_embeddings_cache_serves_a_second_build(built, corpus, tmp_path, monkeypatch):
    output, manifest = built
    first = build(corpus, tmp_path / "a", "--cache", str(tmp_path / "cache"))

    def never(*args, **kwargs):
        raise AssertionError("the embedder was loaded though the cache holds every embedding")

    import transformers

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", never)
    second = build(corpus, tmp_path / "b", "--cache", str(tmp_path / "cache"))
    assert (ordering_of(first)["embeddings_computed"], ordering_of(first)["embeddings_cached"]) == (160, 0)
    assert (ordering_of(second)["embeddings_computed"], ordering_of(second)["embeddings_cached"]) == (0, 160)
    assert ordering_of(second)["embedding_cache_hit_rate"] == 1.0
    assert second["buckets"] == first["buckets"] == manifest["buckets"]
    for bucket in manifest["buckets"]:
        for shard in bucket["shards"]:
            assert (tmp_path / "b" / shard["path"]).read_bytes() == (output / shard["path"]).read_bytes()


def test_speech_and_related_together(corpus, tmp_path):
    """Both at once: documents are ordered by embeddings of their own text, whichever words become speech
    (tests/transforms/related/test_embed.py), then speech is woven into the rows. So a speech build after a text
    build of the same corpus, with the same --cache, takes every embedding from the cache and orders alike."""
    text = build(corpus, tmp_path / "text", "--cache", str(tmp_path / "cache"))
    manifest = run(
        [
            "--input",
            corpus,
            "--output",
            str(tmp_path / "ds"),
            "--context",
            "related",
            "--min-bucket",
            "6",
            "--max-bucket",
            "9",
            "--shard-tokens",
            "20000",
            "--speech-ratio",
            "0.3",
            "--cache",
            str(tmp_path / "cache"),
            *RUNNER,
        ]
    )
    assert verify(str(tmp_path / "ds")) == []
    assert key_problems(manifest, Manifest) == key_problems(text, Manifest) == []  # schemas/manifest.py's types
    ordering, speech, counts = manifest["ordering"], manifest["speech"], manifest["counts"]
    assert ordering and speech and text["ordering"]
    cache_figures = ("embeddings_computed", "embeddings_cached", "embedding_cache_hit_rate")
    assert [ordering["embeddings_computed"], ordering["embeddings_cached"], ordering["embedding_cache_hit_rate"]] == [
        0,
        160,
        1.0,
    ]

    def placement(ordering: Ordering) -> dict:  # what the order is made of: not the cache, not the tokens it drops
        return {k: v for k, v in ordering.items() if k not in cache_figures and not k.startswith("tokens_")}

    assert placement(ordering) == placement(text["ordering"])
    assert ordering["documents"] == counts["documents_kept"] == 160
    assert speech["spans_converted"] > 0 and counts["speech_tokens"] > 0
    assert ordering["random_order_similarity"] < ordering["mean_adjacent_similarity"]
