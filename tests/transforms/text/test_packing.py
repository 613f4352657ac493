import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import RUNNER, labelled_totals
from vocaloom.transforms.columns import pack, unpack
from vocaloom.transforms.counting import COUNTS
from vocaloom.transforms.text.dataset_decomposition import Leftover, RowRef
from vocaloom.transforms.text.packing import PackLeftovers


def leftover(order, name, offset, n, whole):
    return Leftover(order, name, "s", offset, n, whole)


def test_packing_lays_leftovers_end_to_end_in_their_order_and_drops_only_the_tail(tmp_path):
    # 10 tokens in order a, b, c, d (not as they arrive, in two batches): one row of 9 (a's end, then b and c whole),
    # d's 1 token left at the group's end. d was a whole document: it is left out.
    group = [
        leftover(4, "d", 300, 1, True),
        leftover(1, "a", 5, 2, False),
        leftover(3, "c", 200, 4, True),
        leftover(2, "b", 100, 3, True),
    ]
    with TestPipeline(argv=RUNNER) as p:
        out = (
            p | "Rows" >> beam.Create([]),
            p | "Leftovers" >> beam.Create([(7, pack(group[:2])), (7, pack(group[2:]))]),
        ) | PackLeftovers(min_bucket=2, max_bucket=4, seed=0, spill_dir=str(tmp_path))
        rows = out["rows"] | beam.Flatten() | beam.FlatMap(lambda b: [(r.length, r.pieces) for r in unpack(RowRef, b)])
        assert_that(rows, equal_to([(8, (("a", "s", 5, 2), ("b", "s", 100, 3), ("c", "s", 200, 4)))]), label="Rows")
        assert_that(
            labelled_totals(out[COUNTS]),
            equal_to(
                [
                    ("counts.documents_kept", 2),
                    ("sources.documents_kept/0", 2),
                    ("counts.filtered/in_pack_tail", 1),
                    ("counts.tokens_dropped", 1),
                    ("counts.tokens_dropped_by_reason/pack_tail", 1),
                ]
            ),
            label="Counts",
        )
