import unicodedata

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import RUNNER, labelled_totals
from vocaloom.transforms.counting import COUNTS
from vocaloom.transforms.documents import DocTokens, pack_docs, unpack_docs
from vocaloom.transforms.text.dedup import ExactDedup, canonical_text, fingerprint, partition_count, survivors


def test_partitions_grow_with_the_corpus():
    assert partition_count(50 << 20) == 16
    assert partition_count(80 << 20) == 32
    assert partition_count(1 << 40) == 1 << 16


def test_normalise_folds_whitespace_and_composes():
    assert canonical_text("  Cafe\u0301 \n\t au  lait ") == "Caf\u00e9 au lait"
    assert fingerprint("a  b") == fingerprint("a\nb") != fingerprint("ab")


@given(st.text(alphabet=st.sampled_from("ab .\n\t\r\x0b\x0c\x1c\x1f\u00a0\u2003e\u0301\u00e9"), max_size=30))
def test_the_ascii_fast_path_agrees_with_split_and_join(text):
    assert canonical_text(text) == " ".join(unicodedata.normalize("NFC", text).split())


def test_one_deterministic_survivor(tmp_path):
    def meta(doc_id, text, line):
        return DocTokens(fingerprint(text), doc_id, "src", line, 3, "spill", 0)

    docs = [meta("b", "same text", 1), meta("a", "same  text", 2), meta("c", "other", 3), meta("a", "same\ntext", 4)]
    with TestPipeline(argv=RUNNER) as p:
        out = (
            p
            | beam.Create([pack_docs(docs[:2]), pack_docs(docs[2:])])
            | ExactDedup(DocTokens, str(tmp_path), partitions=4)
        )
        assert_that(
            out.kept | beam.FlatMap(lambda batch: [(d.id, d.line) for d in unpack_docs(batch)]),
            equal_to([("a", 2), ("c", 3)]),
            label="Kept",
        )
        assert_that(labelled_totals(out[COUNTS]), equal_to([("counts.duplicates", 2)]), label="Counts")


@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"a" * 16, b"b" * 16, b"c" * 16]),
            st.sampled_from("xyz"),
            st.sampled_from(["s1", "s2"]),
            st.integers(1, 3),
        ),
        max_size=20,
    )
)
def test_survivors_are_the_smallest_id_source_line_of_each_fingerprint(rows):
    groups: dict[bytes, list[tuple[tuple, int]]] = {}  # fingerprint: ((id, source, line), row) of each
    for row, (fp, *key) in enumerate(rows):
        groups.setdefault(fp, []).append((tuple(key), row))
    expected = sorted(min(members)[1] for members in groups.values())
    assert survivors(*(list(column) for column in zip(*rows)) if rows else ([], [], [], [])) == expected
