"""Shared fixtures. Tests never reach the network: Beam runs in-process (FnApiRunner) and hubs are offline."""
import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402

from tests.venvs import WHEELHOUSE, build_dist, pipeline_venv  # noqa: E402
from vocaloom import assets  # noqa: E402

RUNNER = ["--runner=FnApiRunner"]
# Builds that test the text path say so: the default turns 30% of words into speech.
TEXT_ONLY = ["--speech-ratio", "0"]


def labelled_totals(counts):
    """A step's COUNTS output summed per key, keys as people read them ("counts.rejected/malformed_json")."""
    import apache_beam as beam
    from vocaloom.schemas.counts import label
    return (counts | "SumPerKey" >> beam.CombinePerKey(sum)
            | "Label" >> beam.MapTuple(lambda key, n: (label(key), n)))


@pytest.fixture(scope="session")
def tokenizer_path() -> str:
    return str(assets.TOKENIZER_MODEL)


@pytest.fixture(scope="session", autouse=True)
def spark_local_dirs(tmp_path_factory):
    """Spark's scratch folders (300 MB a job server) under pytest's temporary folder, not left in /tmp."""
    os.environ["SPARK_LOCAL_DIRS"] = str(tmp_path_factory.mktemp("spark-local"))


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel built from it, as `python -m build` makes them."""
    out = tmp_path_factory.mktemp("dist")
    build_dist(out)
    return out


@pytest.fixture(scope="session")
def wheel(dist) -> Path:
    return next(dist.glob("vocaloom-*.whl"))


@pytest.fixture(scope="session")
def pipeline_env(tmp_path_factory, wheel) -> Path:
    """The bin folder of one venv holding the wheel with its pipeline extra, shared by the tests that need one and
    removed after them: with torch's CUDA libraries it takes 6 GB, and CI's disk is shared."""
    if not WHEELHOUSE.is_dir():
        pytest.skip("run scripts/fetch_wheelhouse.py first")
    folder = tmp_path_factory.mktemp("pipeline-env")
    yield pipeline_venv(folder / "venv", wheel)
    shutil.rmtree(folder)


def pytest_configure(config):
    config.addinivalue_line("markers", "runners: Spark/Flink portable runner tests")
