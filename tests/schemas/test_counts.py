"""schemas/counts.py says who emits each count: a real speech + related build's Beam metrics show which step did."""

import json

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from tests.conftest import RUNNER
from tests.pipelines.test_build_related import sample_records
from vocaloom.pipelines.build import build_pipeline
from vocaloom.pipelines.plan import prepare
from vocaloom.schemas import counts
from vocaloom.schemas.config import ArgumentParser, add_build_arguments, config_from_args
from vocaloom.transforms.counting import NAMESPACE


@pytest.mark.integration  # it builds the sample with speech and related context
def test_each_count_comes_from_the_steps_its_declaration_names(tmp_path):
    corpus = tmp_path / "c.jsonl"
    records = sample_records(60)
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records + records[:3]) + "not json\n")
    parser = ArgumentParser()
    add_build_arguments(parser)
    # Partitions of more than 20 documents use approximate search, so its recall is counted too.
    args = parser.parse_args(
        [
            "--input",
            str(corpus),
            "--output",
            str(tmp_path / "ds"),
            "--context",
            "related",
            "--speech-ratio",
            "0.3",
            "--min-bucket",
            "6",
            "--max-bucket",
            "9",
            "--exact-search-max",
            "20",
            "--semantic-dedup",
            "0.97",
        ]
    )
    pipeline = beam.Pipeline(options=PipelineOptions(RUNNER))
    build_pipeline(pipeline, prepare(config_from_args(args)))
    result = pipeline.run()
    result.wait_until_finish()
    emitted: dict[str, set[str]] = {}  # counter name: the steps that emitted it
    for counter in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        name = counter.key.metric.name.split("/")[0]
        if name.split(".")[0] in counts.BLOCKS:  # not the progress metrics (shards written, cache files skipped)
            emitted.setdefault(name, set()).add(counter.key.step.split("/")[0])
    by_label = {f"{c.block}.{c.name}": c for c in counts.DECLARED.values()}
    for name, steps in emitted.items():
        assert steps <= set(by_label[name].producers), (name, steps)
    # Every count this build can make was seen: not the commit's own, nor those of a cache or a failure, nor the
    # reasons for dropped tokens (this build's one segment happens to decompose with no tail).
    expected = {
        name
        for name, c in by_label.items()
        if c
        not in (
            counts.TOKENS_WRITTEN,
            counts.SPANS_CACHED,
            counts.SPANS_FAILED,
            counts.EMBEDDINGS_CACHED,
            counts.EMBEDDINGS_FAILED,
            counts.SPAN_CACHE_ENTRIES_INVALID,
            counts.EMBEDDING_CACHE_ENTRIES_INVALID,
            counts.TOKENS_DROPPED_BY_REASON,
        )
    }
    assert set(emitted) == expected
