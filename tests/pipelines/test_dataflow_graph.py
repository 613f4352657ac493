"""The build's graph for DataflowRunner, made offline with Beam's own `--dry_run=True`: DataflowRunner translates
and serialises the job, packages the workers' code through `--setup_file`, and submits nothing."""

import tarfile

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from tests.pipelines.test_worker_pools import hidden_checkout
from tests.prerequisites import MISSING, needs_wheelhouse
from tests.venvs import ENV, ROOT, WHEELHOUSE, pip_install, sh
from vocaloom import assets
from vocaloom.pipelines.build import build_pipeline
from vocaloom.pipelines.plan import prepare
from vocaloom.schemas.config import BuildConfig
from vocaloom.transforms.artifacts import read_artifact

pytestmark = pytest.mark.engines

pytest.importorskip(
    "apache_beam.runners.dataflow.internal.apiclient", reason=f"{MISSING}apache-beam[gcp]: install the test extra"
)

STEPS = (
    "ReadCorpus",
    "Tokenize",
    "ExactDedup",
    "SpeechSpans",
    "ConvertSpans",
    "WeaveSpeech",
    "DatasetDecomposition",
    "WriteShards",
    "WriteRejects",
    "WriteDeadLetters",
    "SumCounts",
    "CommitDataset",
)
DATAFLOW = [
    "--runner=DataflowRunner",
    "--dry_run=True",
    "--project=vocaloom-offline",
    "--region=europe-west4",
    "--temp_location=gs://vocaloom-offline/tmp",
    f"--setup_file={ROOT / 'setup.py'}",
]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus") / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "one small document"}\n')
    plan = prepare(BuildConfig(output="gs://vocaloom-offline/out", inputs=(str(corpus),)))  # speech: the default
    pipeline = beam.Pipeline(options=PipelineOptions(DATAFLOW))
    build_pipeline(pipeline, plan)
    # with --dry_run, the translated job, never sent: DataflowRunner sets `job` on the plain PipelineResult it returns
    return pipeline.run().job  # type: ignore[attr-defined]


def test_graph_holds_every_labelled_step(job):
    names = {t.unique_name for t in job.proto_pipeline.components.transforms.values()}
    assert set(STEPS) <= names
    assert "CommitDataset/Commit" in names


def test_job_serialises(job):
    assert job.proto_pipeline.SerializeToString()
    assert '"type": "JOB_TYPE_BATCH"' in job.json()


def staged_files(job) -> dict[str, str]:
    """What the job stages for its workers: staged name -> local file."""
    staged = {}
    for environment in job.proto_pipeline.components.environments.values():
        for artifact in environment.dependencies:
            payload = beam.portability.api.beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(
                artifact.role_payload
            )
            file = beam.portability.api.beam_runner_api_pb2.ArtifactFilePayload.FromString(artifact.type_payload)
            staged[payload.staged_name] = file.path
    return staged


def test_workers_get_the_package_built_from_setup_py(job):
    staged = staged_files(job)
    assert "workflow.tar.gz" in staged  # Beam's name for the --setup_file sdist; workers pip install it
    with tarfile.open(staged["workflow.tar.gz"]) as sdist:
        names = sdist.getnames()
    for module in (
        "pipelines/build.py",
        "transforms/io/commit.py",
        "schemas/config.py",
        "assets/tokenizer/sample_sp.model",
    ):
        assert any(name.endswith(module) for name in names), module


@needs_wheelhouse
def test_the_staged_package_resolves_every_bundled_reference_without_the_checkout(job, tmp_path, pipeline_env):
    """A Dataflow worker: the staged sdist installed over an image holding the pipeline's dependencies (README
    "Dataflow"), ahead of the wheel that image also holds. There, with this checkout hidden, every bundled reference
    resolves to the bytes the launcher fingerprinted."""
    sdist = staged_files(job)["workflow.tar.gz"]
    staged = tmp_path / "staged"
    pip_install(pipeline_env, "--find-links", WHEELHOUSE / "pipeline", "--no-deps", "--target", staged, sdist)
    code = (
        f"import vocaloom; assert vocaloom.__file__.startswith({str(staged)!r}), vocaloom.__file__\n"
        "from vocaloom import assets; from vocaloom.transforms.artifacts import read_artifact, localize\n"
        "for name in sorted(assets.BUNDLED):\n"
        "    artifact = read_artifact(assets.bundled(name)); localize(artifact); print(name, artifact.sha256)"
    )
    resolved = sh(
        *hidden_checkout([str(pipeline_env / "python"), "-c", code]), env=dict(ENV, PYTHONPATH=str(staged))
    ).stdout.split()
    here = [item for name in sorted(assets.BUNDLED) for item in (name, read_artifact(assets.bundled(name)).sha256)]
    assert resolved == here
