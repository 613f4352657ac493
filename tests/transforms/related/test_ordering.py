"""The ordering steps of `--context related` (transforms/related/ordering.py), each on hand-made input with its exact
output: OrderDocuments (In-Context Pretraining's path), PlaceDocuments (documents joined to their places)."""

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import RUNNER, labelled_totals
from vocaloom.transforms.counting import COUNTS
from vocaloom.transforms.documents import DocTokens, pack_docs
from vocaloom.transforms.related.embed import doc_key
from vocaloom.transforms.related.ordering import OrderDocuments, PlaceDocuments


def unit(*xs) -> bytes:
    v = np.array(xs, np.float32)
    return (v / np.linalg.norm(v)).tobytes()


# Two clusters: three documents near the x axis, two near the y axis.
EMBEDDINGS = [
    ("a1", unit(1, 0.1, 0)),
    ("a2", unit(1, 0.2, 0)),
    ("a3", unit(1, 0, 0.1)),
    ("b1", unit(0, 1, 0.1)),
    ("b2", unit(0.1, 1, 0)),
]


def approximately(expected: dict):
    def check(actual):
        assert sorted(dict(actual)) == sorted(expected)
        for name, value in actual:
            assert value == pytest.approx(expected[name], abs=1e-5), name

    return check


def test_order_documents_walks_each_cluster_then_crosses_once():
    with TestPipeline(argv=RUNNER) as p:
        out = (
            p
            | beam.Create(EMBEDDINGS)
            | OrderDocuments(k=2, exact_max=100, partition_size=100, seed=0, dedup_threshold=None)
        )
        # a3 has the fewest neighbours: the walk starts there, follows the x cluster, crosses at its edge to the
        # y cluster (a2-b2 are each other's nearest across), and visits every document once, in one segment.
        segment = "00000000:000000000"
        assert_that(
            out["positions"],
            equal_to(
                [
                    ("a3", (segment, 0)),
                    ("a1", (segment, 1)),
                    ("a2", (segment, 2)),
                    ("b2", (segment, 3)),
                    ("b1", (segment, 4)),
                ]
            ),
            label="Positions",
        )
        assert_that(
            labelled_totals(out[COUNTS]),
            approximately(
                {
                    "ordering.documents": 5,
                    "ordering.segments": 1,
                    "ordering.partitions": 1,
                    "ordering.adjacent_pairs": 4,
                    "ordering.adjacent_similarity_sum": 3.268141,
                    "ordering.best_neighbour_documents": 5,
                    "ordering.best_neighbour_similarity_sum": 4.960753,
                    "ordering.random_pair_similarity": 0.484494,
                    "ordering.sample_edges": 10,
                    "ordering.sample_edges_lost": 0,
                }
            ),
            label="Counts",
        )


def test_order_documents_drops_a_semantic_duplicate_from_the_path():
    # The copy of a1 sorts after it: a1 is kept, its copy gets no place (PlaceDocuments counts it as filtered).
    with TestPipeline(argv=RUNNER) as p:
        out = (
            p
            | beam.Create([*EMBEDDINGS, ("a1-copy", unit(1, 0.1, 0))])
            | OrderDocuments(k=2, exact_max=100, partition_size=100, seed=0, dedup_threshold=0.999)
        )
        assert_that(out["positions"] | beam.Map(lambda kv: kv[0]), equal_to(["a3", "a1", "a2", "b2", "b1"]))


def doc(name: str, n: int) -> DocTokens:
    return DocTokens(name.encode().ljust(16, b"."), name, "src", 1, n, "spill", 0)


def test_place_documents_joins_each_kept_document_to_its_place_and_counts_the_dropped():
    docs = [doc("x", 10), doc("y", 20), doc("z", 30)]
    places = [(doc_key(docs[0]), ("s1", 1)), (doc_key(docs[1]), ("s1", 0))]  # z was a semantic duplicate
    with TestPipeline(argv=RUNNER) as p:
        placed = (p | "Docs" >> beam.Create([pack_docs(docs)]), p | "Places" >> beam.Create(places)) | PlaceDocuments()
        assert_that(placed.placed, equal_to([("s1", (1, docs[0])), ("s1", (0, docs[1]))]), label="Placed")
        assert_that(
            labelled_totals(placed[COUNTS]), equal_to([("counts.filtered/semantic_duplicate", 1)]), label="Counts"
        )
