"""docs/pipeline.md's "How the pipeline reads" matches the code: its tree names every module of transforms/ and
schemas/, and its table of steps lists exactly the build graph's top-level steps, each with modules that exist."""

import json
import re

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from tests.conftest import RUNNER
from tests.venvs import ROOT
from vocaloom.pipelines.build import build_pipeline
from vocaloom.pipelines.plan import prepare
from vocaloom.schemas.config import BuildConfig

SECTION = (ROOT / "docs" / "pipeline.md").read_text().split("## How the pipeline reads", 1)[1].split("\n## ", 1)[0]


def step_table() -> dict[str, list[str]]:
    rows = [line for line in SECTION.splitlines() if line.startswith("| ") and not line.startswith("| step ")]
    table = {}
    for row in rows:
        steps, modules = row.split(" | ")[:2]
        for step in re.sub(r"\(.*?\)", "", steps.strip("| ")).split(","):
            table[step.strip()] = re.findall(r"`([^`]+\.py)`", modules)
    return table


def test_the_tree_names_every_module():
    tree = SECTION.split("```", 2)[1]
    for folder in ("transforms", "schemas"):
        for module in (ROOT / folder).rglob("*.py"):
            if module.name != "__init__.py":
                assert re.search(rf"\b{re.escape(module.name)}\b", tree), module.relative_to(ROOT)


def test_every_module_the_table_names_exists():
    for step, modules in step_table().items():
        assert modules, step
        for module in modules:
            assert (ROOT / module).is_file(), (step, module)


@pytest.fixture(scope="module")
def top_level_steps(tmp_path_factory) -> set[str]:
    corpus = tmp_path_factory.mktemp("corpus") / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "one small document"}) + "\n")
    steps = set()
    for context in ("document", "related"):  # both with speech, the default, and every optional step
        pipeline = beam.Pipeline(options=PipelineOptions(RUNNER))
        build_pipeline(
            pipeline,
            prepare(
                BuildConfig(
                    output=str(corpus.parent / context), inputs=(str(corpus),), context=context, long_documents=500
                )
            ),
        )
        proto = pipeline.to_runner_api()
        transforms = proto.components.transforms
        steps |= {
            transforms[part].unique_name for root in proto.root_transform_ids for part in transforms[root].subtransforms
        }
    return steps


def test_the_table_lists_exactly_the_builds_steps(top_level_steps):
    assert set(step_table()) == top_level_steps
