"""The commit (transforms/io/commit.py): its decisions as pure functions (what the manifest says, when the accounting
refuses to write one, when failed speech spans fail the build), and CommitDataset's side effects in order."""

import json
import re
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import RUNNER, speech_of
from vocaloom.schemas import counts as c
from vocaloom.schemas.counts import count_blocks
from vocaloom.schemas.shard import shard_path
from vocaloom.schemas.vocab import Vocabulary
from vocaloom.transforms.counting import counted
from vocaloom.transforms.io.commit import AccountingError, CommitDataset, failed_share_problem, summarise
from vocaloom.transforms.io.rejects import RecordFile
from vocaloom.transforms.io.shard_writer import ShardFile

BASE: dict[str, Any] = {  # a manifest's fields, as JSON
    "format": "vocaloom/1",
    "generation": 0,
    "config": {"min_bucket": 5, "max_bucket": 6, "knn": 40, "max_failed_batch_share": 0.01},
    "inputs": [{"path": "c", "bytes": 3, "source": "default"}, {"path": "b", "bytes": 0, "source": "default"}],
    "sources": {"default": {"patterns": ["c", "b"], "speech_ratio": 0.0}},
    "inputs_unreadable": [{"path": "b", "reason": "it is a directory"}],
    "tokenizer": {},
    "speech": None,
    "vocab": Vocabulary.build(8000, text_eos=2).to_json(),
    "ordering": None,
}
SHARD = {"path": shard_path(32, 0, 1), "rows": 2, "bytes": 100, "sha256": "a" * 64, "source_rows": [2]}
BUCKETS = [
    {"length": 32, "rows": 2, "tokens": 66, "shards": [SHARD]},
    {"length": 64, "rows": 0, "tokens": 0, "shards": []},
]


def totals(*pairs) -> dict:
    return dict(counted(*pair) for pair in pairs)


TOTALS = totals(
    (c.RECORDS_READ, 5),
    (c.REJECTED, 1, "malformed_json"),
    (c.FILTERED, 1, "empty_text"),
    (c.DUPLICATES, 1),
    (c.DOCUMENTS_KEPT, 2),
    (c.TEXT_TOKENS, 70),
    (c.TOKENS_DROPPED, 4),
    (c.SOURCE_RECORDS_READ, 5, "0"),
    (c.SOURCE_REJECTED, 1, "0"),
    (c.SOURCE_DOCUMENTS_KEPT, 2, "0"),
)
WRITTEN = {"rejects": 1, "dead_letter": 0}


def test_the_manifest_of_balanced_counts():
    manifest = summarise(
        BASE, BUCKETS, TOTALS, WRITTEN, [{"path": "a", "reason": "FileNotFoundError: a"}], {"c": "5" * 64}, [66]
    )
    assert manifest["counts"] == {
        "records_read": 5,
        "rejected": {"malformed_json": 1},
        "filtered": {"empty_text": 1},
        "duplicates": 1,
        "documents_kept": 2,
        "text_tokens": 70,
        "speech_tokens": 0,
        "tokens_written": 66,
        "tokens_dropped": 4,
        "tokens_dropped_by_reason": {},
    }
    assert [u["path"] for u in manifest["inputs_unreadable"]] == ["a", "b"]  # the launcher's and the workers'
    assert manifest["inputs"] == [
        {"path": "c", "bytes": 3, "source": "default", "sha256": "5" * 64},
        {"path": "b", "bytes": 0, "source": "default", "sha256": None},
    ]  # b unreadable
    assert manifest["sources"] == {
        "default": {
            "patterns": ["c", "b"],
            "speech_ratio": 0.0,
            "inputs": 2,
            "records_read": 5,
            "rejected": 1,
            "documents_kept": 2,
            "tokens_written": 66,
        }
    }
    assert manifest["buckets"] is BUCKETS and manifest["speech"] is None and manifest["ordering"] is None


@pytest.mark.parametrize(
    "totals, written, message",
    [
        (
            {**TOTALS, **totals((c.RECORDS_READ, 6))},
            WRITTEN,
            "records_read 6 != kept + rejected + filtered + duplicates 5",
        ),
        ({**TOTALS, **totals((c.TOKENS_DROPPED, 3))}, WRITTEN, "tokens produced 70 != written 66 + dropped 3"),
        (TOTALS, dict(WRITTEN, rejects=0), "0 rejects written, 1 counted"),
    ],
)
def test_counts_that_do_not_balance_refuse_a_manifest(totals, written, message):
    with pytest.raises(AccountingError, match=re.escape(message)):
        summarise(BASE, BUCKETS, totals, written, [], {}, [66])


def test_a_manifest_no_reader_would_accept_is_refused():
    misnamed = [{**BUCKETS[0], "shards": [{**SHARD, "path": "data/elsewhere.arrow"}]}, BUCKETS[1]]
    with pytest.raises(AccountingError, match="the manifest would not be readable: bucket 32: shard 0 is"):
        summarise(BASE, misnamed, TOTALS, WRITTEN, [], {}, [66])


@pytest.mark.parametrize("failed, fails", [(1, False), (2, True)])
def test_failed_spans_over_the_share_fail_the_build(failed, fails):
    base = dict(BASE, speech={"source": "text-to-token"})
    speech = totals((c.WORDS, 50), (c.SPEECH_WORDS, 15), (c.SPANS_CONVERTED, 100 - failed), (c.SPANS_FAILED, failed))
    manifest = summarise(base, BUCKETS, {**TOTALS, **speech}, dict(WRITTEN, dead_letter=failed), [], {}, [66])
    assert speech_of(manifest)["spans"] == 100
    problem = failed_share_problem(manifest, "out/dead_letter")
    assert (problem is not None) == fails
    if fails:
        assert problem == (
            "2 of 100 speech spans failed to convert, more than --max-failed-batch-share 0.01: "
            "their batches' errors are in out/dead_letter/"
        )


def test_every_declared_count_lands_in_its_own_block_and_no_other():
    blocks = count_blocks(
        totals((c.SPAN_WORDS, 2, "3"), (c.FILTERED, 1, "semantic_duplicate"), (c.RECALL_SUM, 0.5), (c.SPANS_CACHED, 4))
    )
    assert blocks["speech"]["span_words"] == {"3": 2} and blocks["speech"]["spans_cached"] == 4
    assert blocks["counts"]["filtered"] == {"semantic_duplicate": 1} and blocks["ordering"]["recall_sum"] == 0.5
    assert blocks["counts"]["records_read"] == 0 and blocks["ordering"]["random_pair_similarity"] == 0.0
    assert set(blocks["counts"]) == {d.name for d in c.FORMAT_COUNTS}
    assert sum(map(len, blocks.values())) == len(c.DECLARED)


@pytest.mark.parametrize("key", [("counts", "tokens", ""), ("speech", "span_words", ""), ("counts", "duplicates", "x")])
def test_a_count_not_declared_is_refused(key):
    with pytest.raises(ValueError, match=r"is not declared in schemas/counts\.py"):
        count_blocks({key: 1})


def test_commit_dataset_names_the_files_then_writes_the_manifest_last(tmp_path):
    out, temp = tmp_path / "ds", tmp_path / "ds" / ".vocaloom-tmp"
    temp.mkdir(parents=True)
    for name in ("slot-7", "slot-2", "rejects-slot-3"):
        (temp / name).write_bytes(name.encode())
    # Two shards of bucket 32 in hash slots 7 and 2: renumbered densely, in slot order.
    shards = [
        ShardFile(32, 7, str(temp / "slot-7"), 1, 6, "7" * 64, (33,)),
        ShardFile(32, 2, str(temp / "slot-2"), 1, 6, "2" * 64, (33,)),
    ]
    base = dict(
        BASE,
        config=dict(BASE["config"], output=str(out), context="document", seed=0),
        tokenizer={"path": "bundled:tokenizer", "text_size": 8000},
        vocab=Vocabulary.build(8000, text_eos=2).to_json(),
    )
    with TestPipeline(argv=RUNNER) as p:
        manifest = (
            p | "Shards" >> beam.Create(shards),
            p | "Records" >> beam.Create([RecordFile("rejects", 3, str(temp / "rejects-slot-3"), 1)]),
            p | "Unreadable" >> beam.Create([]),
            p | "Fingerprints" >> beam.Create([("c", "5" * 64)]),
            p | "Totals" >> beam.Create(TOTALS.items()),
        ) | CommitDataset(str(out), str(temp), base)
        assert_that(
            manifest | beam.Map(lambda m: [s["sha256"][0] for s in m["buckets"][0]["shards"]]), equal_to([["2", "7"]])
        )
    written = json.loads((out / "manifest.json").read_text())
    assert [s["path"] for s in written["buckets"][0]["shards"]] == [
        "data/bucket-00032/shard-00000-of-00002.arrow",
        "data/bucket-00032/shard-00001-of-00002.arrow",
    ]
    assert (out / "data/bucket-00032/shard-00000-of-00002.arrow").read_bytes() == b"slot-2"
    assert (out / "rejects/rejects-00000.jsonl.zst").read_bytes() == b"rejects-slot-3"
    assert written["counts"]["tokens_written"] == 66 and (out / "report.md").is_file()
    assert written["inputs"][0]["sha256"] == "5" * 64 and (out / "README.md").read_text().startswith("---\nconfigs:")
    assert sorted(path.name for path in (out / "figures").iterdir()) == ["accounting.png", "buckets.png"]
    assert not temp.exists()
