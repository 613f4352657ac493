"""A local build killed (SIGKILL) at any moment leaves nothing `verify` or the reader accepts as a dataset, and the
same command run again gives the clean build's shards, byte for byte."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import RUNNER, TEXT_ONLY
from vocaloom.pipelines.build import run
from vocaloom.pipelines.verify import verify
from vocaloom.schemas.manifest import MANIFEST, ManifestError
from vocaloom.schemas.shard import TEMP_DIR

ENV = dict(os.environ, HF_HUB_OFFLINE="1")
pytestmark = pytest.mark.integration

BUILD = ["build", *TEXT_ONLY, "--runner=FnApiRunner"]  # the bundled sample: a few seconds of work to kill into
# Runs `vocaloom` and SIGKILLs itself on call number N+1 of a function of transforms/io/commit.py: kills that land
# between two renames of the commit step, where an outside signal would land only by luck.
KILL_AT_CALL = """
import os, signal, sys
import vocaloom.transforms.io.commit as commit
from vocaloom.pipelines.cli import main
name, calls_allowed = sys.argv[1], int(sys.argv[2])
original, calls = getattr(commit, name), []
def dies_after(*args, **kwargs):
    calls.append(args)
    if len(calls) > calls_allowed:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
setattr(commit, name, dies_after)
sys.exit(main(sys.argv[3:]))
"""


def dataset_files(output: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(output)): p.read_bytes()
        for folder in ("data", "rejects")
        for p in sorted((output / folder).rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[str, bytes]:
    output = tmp_path_factory.mktemp("clean") / "sample"
    run(["--output", str(output), *TEXT_ONLY, *RUNNER])
    return dataset_files(output)


def kill_when(output: Path, appears: str) -> int:
    """Starts the build and SIGKILLs it as soon as `appears` (a path under the output) exists."""
    process = subprocess.Popen(
        [sys.executable, "-m", "vocaloom", *BUILD, "--output", str(output)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not (output / appears).exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    return process.wait()


def kill_at_call(output: Path, function: str, calls_allowed: int) -> int:
    return subprocess.run(
        [sys.executable, "-c", KILL_AT_CALL, function, str(calls_allowed), *BUILD, "--output", str(output)],
        env=ENV,
        capture_output=True,
        timeout=240,
    ).returncode


def assert_not_a_dataset(output: Path) -> None:
    assert not (output / MANIFEST).exists()
    with pytest.raises(ManifestError, match="not a complete dataset"):
        verify(str(output))
    from vocaloom import loader

    with pytest.raises(ManifestError):
        loader.BucketLoader(str(output), tokens_per_batch=8192)


@pytest.mark.parametrize(
    "kill",
    [
        pytest.param(lambda out: kill_when(out, TEMP_DIR), id="as-the-temp-folder-appears"),
        pytest.param(lambda out: kill_when(out, f"{TEMP_DIR}/shards"), id="while-shards-are-written"),
        pytest.param(lambda out: kill_at_call(out, "_move", 3), id="after-three-shards-are-renamed"),
        pytest.param(lambda out: kill_at_call(out, "write_atomically", 0), id="before-the-figures"),
        pytest.param(lambda out: kill_at_call(out, "write_atomically", 3), id="after-report-before-manifest"),
    ],
)
def test_killed_build_is_refused_then_rerun_gives_the_clean_shards(kill, clean, tmp_path):
    output = tmp_path / "sample"
    assert kill(output) == -signal.SIGKILL
    assert output.exists()  # the kill landed mid-build, after it had started writing
    assert_not_a_dataset(output)
    rerun = subprocess.run(
        [sys.executable, "-m", "vocaloom", *BUILD, "--output", str(output)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert verify(str(output)) == []
    assert dataset_files(output) == clean
    assert not (output / TEMP_DIR).exists()
