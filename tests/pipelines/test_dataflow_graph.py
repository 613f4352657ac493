"""The build's graph for DataflowRunner, made offline with Beam's own `--dry_run=True`: DataflowRunner translates
and serialises the job, packages the workers' code through `--setup_file`, and submits nothing."""
import tarfile
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from vocaloom.pipelines.build import build_pipeline, prepare
from vocaloom.schemas.config import BuildConfig

pytest.importorskip("apache_beam.runners.dataflow.internal.apiclient", reason="needs apache-beam[gcp]")

ROOT = Path(__file__).resolve().parents[2]
STEPS = ("ReadCorpus", "Tokenize", "ExactDedup", "SpeechSpans", "ConvertSpans", "WeaveSpeech", "DatasetDecomposition",
         "WriteShards", "WriteRejects", "WriteDeadLetters", "SumCounts", "CommitDataset")
DATAFLOW = ["--runner=DataflowRunner", "--dry_run=True", "--project=vocaloom-offline", "--region=europe-west4",
            "--temp_location=gs://vocaloom-offline/tmp", f"--setup_file={ROOT / 'setup.py'}"]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus") / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "one small document"}\n')
    plan = prepare(BuildConfig(output="gs://vocaloom-offline/out", inputs=(str(corpus),)))  # speech: the default
    pipeline = beam.Pipeline(options=PipelineOptions(DATAFLOW))
    build_pipeline(pipeline, plan)
    return pipeline.run().job  # with --dry_run, the translated job, never sent


def test_graph_holds_every_labelled_step(job):
    names = {t.unique_name for t in job.proto_pipeline.components.transforms.values()}
    assert set(STEPS) <= names
    assert "CommitDataset/Commit" in names


def test_job_serialises(job):
    assert job.proto_pipeline.SerializeToString()
    assert '"type": "JOB_TYPE_BATCH"' in job.json()


def test_workers_get_the_package_built_from_setup_py(job):
    staged = {}
    for environment in job.proto_pipeline.components.environments.values():
        for artifact in environment.dependencies:
            payload = beam.portability.api.beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(
                artifact.role_payload)
            file = beam.portability.api.beam_runner_api_pb2.ArtifactFilePayload.FromString(artifact.type_payload)
            staged[payload.staged_name] = file.path
    assert "workflow.tar.gz" in staged  # Beam's name for the --setup_file sdist; workers pip install it
    with tarfile.open(staged["workflow.tar.gz"]) as sdist:
        names = sdist.getnames()
    for module in ("pipelines/build.py", "transforms/commit.py", "schemas/config.py", "assets/tokenizer/sample_sp.model"):
        assert any(name.endswith(module) for name in names), module
