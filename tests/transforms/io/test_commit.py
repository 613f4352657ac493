"""The commit's decisions as pure functions (transforms/io/commit.py): what the manifest says, when the accounting
refuses to write one, and when failed speech spans fail the build."""
import re

import pytest

from vocaloom.transforms.io.commit import AccountingError, failed_share_problem, summarise

BASE = {"format": "vocaloom/1", "config": {"min_bucket": 5, "max_bucket": 6, "knn": 40, "max_failed_batch_share": 0.01},
        "inputs": [], "inputs_unreadable": [{"path": "b", "reason": "it is a directory"}], "tokenizer": {},
        "speech": None, "vocab": {}, "ordering": None}
BUCKETS = [{"length": 32, "rows": 2, "tokens": 66, "shards": []}, {"length": 64, "rows": 0, "tokens": 0, "shards": []}]
TOTALS = {"records_read": 5, "rejected/malformed_json": 1, "filtered/empty_text": 1, "duplicates": 1,
          "documents_kept": 2, "text_tokens": 70, "tokens_dropped": 4}
WRITTEN = {"rejects": 1, "dead_letter": 0}


def test_the_manifest_of_balanced_counts():
    manifest = summarise(BASE, BUCKETS, TOTALS, WRITTEN, [{"path": "a", "reason": "FileNotFoundError: a"}])
    assert manifest["counts"] == {"records_read": 5, "rejected": {"malformed_json": 1},
                                  "filtered": {"empty_text": 1}, "duplicates": 1, "documents_kept": 2,
                                  "text_tokens": 70, "speech_tokens": 0, "tokens_written": 66, "tokens_dropped": 4}
    assert [u["path"] for u in manifest["inputs_unreadable"]] == ["a", "b"]  # the launcher's and the workers'
    assert manifest["buckets"] is BUCKETS and manifest["speech"] is None and manifest["ordering"] is None


@pytest.mark.parametrize("totals, written, message", [
    (dict(TOTALS, records_read=6), WRITTEN, "records_read 6 != kept + rejected + filtered + duplicates 5"),
    (dict(TOTALS, tokens_dropped=3), WRITTEN, "tokens produced 70 != written 66 + dropped 3"),
    (TOTALS, dict(WRITTEN, rejects=0), "0 rejects written, 1 counted"),
])
def test_counts_that_do_not_balance_refuse_a_manifest(totals, written, message):
    with pytest.raises(AccountingError, match=re.escape(message)):
        summarise(BASE, BUCKETS, totals, written, [])


@pytest.mark.parametrize("failed, fails", [(1, False), (2, True)])
def test_failed_spans_over_the_share_fail_the_build(failed, fails):
    base = dict(BASE, speech={"source": "text-to-token"})
    totals = dict(TOTALS, words=50, speech_words=15, spans_cached=0, spans_converted=100 - failed, spans_failed=failed)
    manifest = summarise(base, BUCKETS, totals, dict(WRITTEN, dead_letter=failed), [])
    assert manifest["speech"]["spans"] == 100
    problem = failed_share_problem(manifest, "out/dead_letter")
    assert (problem is not None) == fails
    if fails:
        assert problem == ("2 of 100 speech spans failed to convert, more than --max-failed-batch-share 0.01: "
                           "their batches' errors are in out/dead_letter/")
