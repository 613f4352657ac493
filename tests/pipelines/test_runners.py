"""The bundled sample, and a small speech build, on Beam's portable Spark and Flink runners, each with an embedded
engine (local[2] Spark, [local] Flink) and the Python SDK in LOOPBACK, and the sample on Prism: the shards must be the
bytes FnApiRunner writes. (Workers in other processes that cannot see this checkout: test_worker_pools.py.)

The job servers come from `scripts/ci/fetch_job_servers.py` (which .ci/run calls first); nothing is downloaded here.
Run only these: `pytest -m runners tests/pipelines/test_runners.py`.
"""

import shutil
from pathlib import Path

import pytest

from scripts.ci.fetch_job_servers import DEFAULT_DEST, launcher_path, prism_path
from tests.conftest import RUNNER, TEXT_ONLY, speech_of
from tests.pipelines.test_build_speech import write_corpus
from tests.prerequisites import missing
from tests.text_to_token.toy_models import make_toy_model
from vocaloom.pipelines.build import run
from vocaloom.pipelines.verify import verify
from vocaloom.schemas.manifest import Manifest

pytestmark = pytest.mark.engines

ENGINES = {
    "spark": ["--runner=SparkRunner", "--spark_master_url=local[2]", "--spark_job_server_jar={jar}"],
    "flink": ["--runner=FlinkRunner", "--flink_master=[local]", "--flink_job_server_jar={jar}"],
}


def dataset_files(output: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(output)): p.read_bytes()
        for folder in ("data", "rejects", "dead_letter")
        for p in sorted((output / folder).rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def fnapi_sample(tmp_path_factory) -> tuple[Path, Manifest]:
    output = tmp_path_factory.mktemp("fnapi") / "sample"
    return output, run(["--output", str(output), *TEXT_ONLY, *RUNNER])


def engine_flags(engine: str) -> list[str]:
    jar = launcher_path(DEFAULT_DEST, engine)
    if not jar.exists():
        missing(f"no {engine} job server at {jar}: run python3 -m scripts.ci.fetch_job_servers")
    assert shutil.which("java"), "the job servers need a Java runtime (17)"
    # LOOPBACK: the SDK worker is this process, so the toy model registered here is known to it.
    return [flag.format(jar=jar) for flag in ENGINES[engine]] + ["--environment_type=LOOPBACK"]


@pytest.fixture(scope="module")
def speech_build(tmp_path_factory) -> list[str]:
    """A speech build's options (toy model, no cache: every span goes through RunInference and CoGroupByKey)."""
    folder = tmp_path_factory.mktemp("speech")
    return [
        "--input",
        write_corpus(folder / "in"),
        "--speech-ratio",
        "0.3",
        "--span-lambda",
        "3",
        "--text-to-token-model",
        make_toy_model(folder / "toy"),
        "--min-bucket",
        "5",
        "--max-bucket",
        "7",
        "--shard-tokens",
        "3000",
    ]


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_speech_build_on_portable_runner_matches_fnapi(engine, speech_build, tmp_path):
    expected = run([*speech_build, "--output", str(tmp_path / "fnapi"), *RUNNER])
    manifest = run([*speech_build, "--output", str(tmp_path / engine), *engine_flags(engine)])
    assert speech_of(manifest)["spans_converted"] > 0 and manifest["speech"] == expected["speech"]
    assert dataset_files(tmp_path / engine) == dataset_files(tmp_path / "fnapi")


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_sample_on_portable_runner_matches_fnapi(engine, fnapi_sample, tmp_path):
    expected_dir, expected = fnapi_sample
    output = tmp_path / engine
    manifest = run(["--output", str(output), *TEXT_ONLY, *engine_flags(engine)])
    assert verify(str(output)) == []
    assert manifest["buckets"] == expected["buckets"] and manifest["counts"] == expected["counts"]
    assert dataset_files(output) == dataset_files(expected_dir)


def test_sample_on_prism_matches_fnapi(fnapi_sample, tmp_path):
    """Prism, Beam's own local runner (what DirectRunner tries first in Beam 2.77), built from the Go module proxy
    by scripts/ci/fetch_job_servers.py: offline it needs --prism_location, as the README says."""
    prism = prism_path(DEFAULT_DEST)
    if not prism.exists():
        missing(f"no Prism at {prism}: run python3 -m scripts.ci.fetch_job_servers")
    expected_dir, expected = fnapi_sample
    output = tmp_path / "prism"
    manifest = run(["--output", str(output), *TEXT_ONLY, "--runner=PrismRunner", f"--prism_location={prism}"])
    assert manifest["counts"] == expected["counts"]
    assert dataset_files(output) == dataset_files(expected_dir)
