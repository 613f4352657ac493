import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import RUNNER, labelled_totals
from vocaloom.transforms.columns import unpack
from vocaloom.transforms.counting import COUNTS
from vocaloom.transforms.documents import DocTokens, pack_docs
from vocaloom.transforms.text.dataset_decomposition import (
    LEFTOVERS,
    DecomposeDocuments,
    DecomposeSegments,
    Leftover,
    RowRef,
    decompose,
    leftover,
    over_long_odds,
)


def test_known_decompositions():
    assert decompose(256, 8, 13, seed=0) == []  # under 2^8 + 1 tokens: dropped
    assert decompose(257, 8, 13, seed=0) == [(0, 256)]
    assert decompose(257 + 513 + 100, 8, 13, seed=0) == [(0, 512), (513, 256)]  # largest first, 100 dropped
    assert decompose(8193, 8, 13, seed=0) == [(0, 8192)]


def test_over_long_documents_populate_every_bucket_with_equal_tokens():
    tokens = {1 << k: 0 for k in range(8, 14)}
    for seed in range(300):
        for _start, length in decompose(100_000, 8, 13, seed)[:-8]:  # the random part, not the greedy tail
            tokens[length] += length + 1
    shares = [t / sum(tokens.values()) for t in tokens.values()]
    assert all(abs(share - 1 / 6) < 0.03 for share in shares), shares


def test_over_long_odds_give_equal_expected_tokens():
    odds = over_long_odds(8, 13)
    assert odds == [32, 16, 8, 4, 2, 1]
    assert len({o * (1 << k) for o, k in zip(odds, range(8, 14))}) == 1


@given(st.integers(0, 60_000), st.integers(4, 9), st.integers(0, 4), st.integers(0, 2**32))
def test_every_token_in_one_row_or_dropped(n, min_k, extra, seed):
    max_k = min_k + extra
    pieces = decompose(n, min_k, max_k, seed)
    position = 0
    for start, length in pieces:
        assert start == position  # in order, disjoint, contiguous
        assert length in [1 << k for k in range(min_k, max_k + 1)]
        position += length + 1
    dropped = n - position
    assert 0 <= dropped < (1 << min_k) + 1  # only a short tail is ever dropped
    assert pieces == decompose(n, min_k, max_k, seed)  # deterministic


def doc(i, n):
    return DocTokens(bytes([i]) * 16, f"d{i}", "src", i, n, "spill", 1000 * i)


DOCS = [pack_docs([doc(1, 300), doc(2, 100)]), pack_docs([doc(3, 257 + 513)])]


def test_decompose_documents_exact_rows_and_counts_with_remainders_dropped():
    with TestPipeline(argv=RUNNER) as p:
        out = p | beam.Create(DOCS) | DecomposeDocuments(min_bucket=8, max_bucket=10, seed=0, pack_remainders=False)
        rows = out.rows | beam.FlatMap(lambda packed: [(r.length, r.pieces) for r in unpack(RowRef, packed)])
        assert_that(
            rows,
            equal_to(
                [
                    (256, (("d1", "spill", 1000, 257),)),
                    (512, (("d3", "spill", 3000, 513),)),
                    (256, (("d3", "spill", 3513, 257),)),
                ]
            ),
            label="Rows",
        )
        assert_that(out[LEFTOVERS], equal_to([]), label="Leftovers")
        assert_that(
            labelled_totals(out[COUNTS]),
            equal_to(
                [  # d2 makes no row: left out
                    ("counts.documents_kept", 2),
                    ("sources.documents_kept/0", 2),
                    ("counts.filtered/shorter_than_a_row", 1),
                    ("counts.text_tokens", 1170),
                    ("counts.speech_tokens", 0),
                    ("counts.tokens_dropped", 143),
                    ("counts.tokens_dropped_by_reason/remainder", 43),
                    ("counts.tokens_dropped_by_reason/shorter_than_a_row", 100),
                ]
            ),
            label="Counts",
        )


def test_decompose_documents_hands_what_makes_no_row_to_packing():
    with TestPipeline(argv=RUNNER) as p:
        out = p | beam.Create(DOCS) | DecomposeDocuments(min_bucket=8, max_bucket=10, seed=0, pack_remainders=True)
        leftovers = out[LEFTOVERS] | beam.FlatMapTuple(
            lambda group, batch: [(group, x.id, x.offset, x.n_tokens, x.whole) for x in unpack(Leftover, batch)]
        )
        # Each in the pack group hashed from (seed, its id and fingerprint), one packed batch per group and batch.
        d1, d2 = unpack(DocTokens, DOCS[0])
        groups = {name: leftover(0, doc, 0, doc.n_tokens)[0] for name, doc in (("d1", d1), ("d2", d2))}
        expected = [(groups["d1"], "d1", 1257, 43, False), (groups["d2"], "d2", 2000, 100, True)]
        assert_that(leftovers, equal_to(expected), label="Leftovers")
        batches = out[LEFTOVERS] | beam.combiners.Count.Globally()
        assert_that(batches, equal_to([len(set(groups.values()))]), label="Batches")
        assert_that(
            labelled_totals(out[COUNTS]),
            equal_to(
                [  # d2 is counted where it is packed
                    ("counts.documents_kept", 2),
                    ("sources.documents_kept/0", 2),
                    ("counts.text_tokens", 1170),
                    ("counts.speech_tokens", 0),
                ]
            ),
            label="Counts",
        )


def test_decompose_segments_rows_cross_documents_and_count_what_document_mode_would_drop():
    x, y = DocTokens(b"x" * 16, "x", "src", 1, 6, "s", 0), DocTokens(b"y" * 16, "y", "src", 2, 5, "s", 100)
    with TestPipeline(argv=RUNNER) as p:
        # y comes first in the input but second in the path: positions, not arrival, order the segment.
        out = (
            p | beam.Create([("seg", (1, y)), ("seg", (0, x))]) | DecomposeSegments(min_bucket=2, max_bucket=4, seed=0)
        )
        rows = out.rows | beam.FlatMap(lambda packed: [(r.length, r.pieces) for r in unpack(RowRef, packed)])
        # 11 tokens: one row of 9 (x whole, then y's first 3), a tail of 2 dropped. Alone, x would drop 1 token.
        assert_that(rows, equal_to([(8, (("x", "s", 0, 6), ("y", "s", 100, 3)))]), label="Rows")
        assert_that(
            labelled_totals(out[COUNTS]),
            equal_to(
                [
                    ("counts.documents_kept", 2),
                    ("sources.documents_kept/0", 2),
                    ("counts.text_tokens", 11),
                    ("counts.speech_tokens", 0),
                    ("counts.tokens_dropped", 2),
                    ("counts.tokens_dropped_by_reason/segment_tail", 2),
                    ("ordering.document_mode_tokens_dropped", 1),
                ]
            ),
            label="Counts",
        )
