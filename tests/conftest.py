"""Shared fixtures. Tests never reach the network: Beam runs in-process (FnApiRunner) and hubs are offline."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest

from tests.prerequisites import MISSING, missing
from tests.venvs import WHEELHOUSE, build_dist, pipeline_venv
from vocaloom import assets
from vocaloom.schemas.manifest import Manifest, Ordering, Speech

# The GCS and S3 servers on loopback and the `bucket` fixture, for every module that reads or writes a bucket.
pytest_plugins = ["tests.object_stores"]

RUNNER = ["--runner=FnApiRunner"]
# Builds that test the text path say so: the default turns 30% of words into speech.
TEXT_ONLY = ["--speech-ratio", "0"]


def labelled_totals(counts):
    """A step's COUNTS output summed per key, keys as people read them ("counts.rejected/malformed_json")."""
    import apache_beam as beam

    from vocaloom.schemas.counts import label

    return counts | "SumPerKey" >> beam.CombinePerKey(sum) | "Label" >> beam.MapTuple(lambda key, n: (label(key), n))


def speech_of(manifest: Manifest) -> Speech:
    """The speech block of a build the test made with speech."""
    assert manifest["speech"] is not None, "a build without speech"
    return manifest["speech"]


def ordering_of(manifest: Manifest) -> Ordering:
    """The ordering block of a build the test made with --context related."""
    assert manifest["ordering"] is not None, "a build without related context"
    return manifest["ordering"]


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
def pipeline_env(tmp_path_factory, wheel) -> Iterator[Path]:
    """The bin folder of one venv holding the wheel with its pipeline extra, shared by the tests that need one and
    removed after them: with torch's CUDA libraries it takes 6 GB, and CI's disk is shared."""
    if not WHEELHOUSE.is_dir():
        missing(f"no {WHEELHOUSE}: run python3 -m scripts.ci.fetch_wheelhouse")
    folder = tmp_path_factory.mktemp("pipeline-env")
    yield pipeline_venv(folder / "venv", wheel)
    shutil.rmtree(folder)


# pytest.ini says what each tier holds; a test's timeout is its tier's unless it sets its own (pytest.ini's: 20 min).
TIER_TIMEOUTS = {"unit": 120, "integration": 600, "engines": None, "install": None}


def pytest_addoption(parser):
    parser.addoption(
        "--require-prerequisites",
        action="store_true",
        help="fail, rather than skip, a test whose prerequisite is missing (tests/prerequisites.py): CI's setting",
    )


# Fixtures that install the wheel: the modules using any of them share one pytest-xdist worker, and so one venv.
WHEEL_FIXTURES = {"dist", "wheel", "pipeline_env"}


def pytest_collection_modifyitems(items):
    """A test of no other tier is a unit test, so that `-m unit` selects the fast tier; each gets its tier's
    timeout. Under pytest-xdist's `--dist loadgroup` (CI's `-n 2`), a module's tests run in one worker, so that
    its fixtures are made once, and the modules that install the wheel in the same one."""
    installing = {item.module for item in items if WHEEL_FIXTURES & set(item.fixturenames)}
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            group = "wheel" if item.module in installing else item.module.__name__
            item.add_marker(pytest.mark.xdist_group(group))
        tier = next((tier for tier in TIER_TIMEOUTS if item.get_closest_marker(tier)), None)
        if tier is None:
            tier = "unit"
            item.add_marker(pytest.mark.unit)
        if TIER_TIMEOUTS[tier] and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(TIER_TIMEOUTS[tier]))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.skipped and MISSING in str(report.longrepr) and item.config.getoption("require_prerequisites"):
        report.outcome = "failed"
    return report
