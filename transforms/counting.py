"""How steps emit the counts declared in schemas/counts.py, mirrored as Beam metrics for people watching a job.

Every step reports what it read, kept, rejected or dropped on its COUNTS output as ((block, name, detail), n)
pairs; SumCounts totals them for the commit, which builds the manifest's blocks from them (schemas/counts.py).
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from vocaloom.schemas.counts import Count, label
from vocaloom.transforms.progress_tally import tally

COUNTS = "counts"
NAMESPACE = "vocaloom"


def counted(declared: Count, n: int | float = 1, detail: str = "") -> tuple[tuple[str, str, str], int | float]:
    """`n` more of a declared count (`detail`: the reason or length of a count kept `per` one), as the pair a
    COUNTS collection holds; also added to the Beam metric of the step that emits it, and to the progress bars'
    tally."""
    assert bool(detail) == bool(declared.per), (declared, detail)
    key = declared.block, declared.name, detail
    Metrics.counter(NAMESPACE, label(key)).inc(n)
    tally(label(key), n)
    return key, n


def count(declared: Count, n: int | float = 1, detail: str = "") -> beam.pvalue.TaggedOutput:
    """`counted`, on the COUNTS output of a DoFn with several outputs."""
    return beam.pvalue.TaggedOutput(COUNTS, counted(declared, n, detail))


class SumCounts(beam.PTransform):
    """Flattens the count outputs of every step into one total a key."""

    def expand(self, count_pcolls):
        return count_pcolls | "Flatten" >> beam.Flatten() | "Sum" >> beam.CombinePerKey(sum)
