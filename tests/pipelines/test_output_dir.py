"""Whose directory --output is (pipelines/output_dir.py): a user's files are never cleared, one build at a time, and
--overwrite keeps the old dataset complete until the new one is."""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import RUNNER, TEXT_ONLY
from tests.prerequisites import needs_root
from vocaloom.pipelines.cli import main
from vocaloom.pipelines.output_dir import MARKER, staging_dir
from vocaloom.pipelines.verify import verify
from vocaloom.schemas.manifest import MANIFEST
from vocaloom.schemas.shard import TEMP_DIR

pytestmark = pytest.mark.integration

ENV = dict(os.environ, HF_HUB_OFFLINE="1")
BUILD = ["build", *TEXT_ONLY, *RUNNER]


def cli(capsys, *args) -> tuple[int, str]:
    status = main([*BUILD, *map(str, args)])
    return status, capsys.readouterr().err


def files(folder: Path) -> dict[str, bytes]:
    """Every file's bytes but the lock's (which names the build that holds it)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def start_build(output: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vocaloom", *BUILD, "--output", str(output), *extra],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen, text: str = "") -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and (not text or text in path.read_text(errors="replace")):
            return
        time.sleep(0.005)
    raise AssertionError(f"{path} did not appear; the build exited {process.poll()}")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("built") / "ds"
    assert main([*BUILD, "--output", str(output)]) == 0
    return output


@pytest.mark.parametrize("theirs", ["data/notes.txt", "figures/plot.png", "report.md", "README.md"])
def test_a_users_directory_is_refused_and_kept(capsys, tmp_path, theirs):
    (tmp_path / theirs).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / theirs).write_text("the user's")
    before = files(tmp_path)
    status, err = cli(capsys, "--output", tmp_path)
    assert status == 2 and err.count("\n") == 1
    assert "is not empty and holds no vocaloom dataset" in err and theirs.split("/")[0] in err
    assert files(tmp_path) == before


def test_an_input_inside_the_output_is_refused_before_anything_is_cleared(capsys, tmp_path, built):
    output = tmp_path / "ds"
    shutil.copytree(built, output)
    (output / "data" / "mine.jsonl").write_text(json.dumps({"id": "a", "text": "kept"}) + "\n")
    before = files(output)
    status, err = cli(capsys, "--output", output, "--input", output / "data" / "mine.jsonl", "--overwrite")
    assert status == 2 and "is inside --output" in err and err.count("\n") == 1
    assert files(output) == before


def test_an_output_that_is_a_file_is_one_line(capsys, tmp_path):
    (tmp_path / "ds").write_text("")
    status, err = cli(capsys, "--output", tmp_path / "ds")
    assert status == 2 and "is not a directory" in err and err.count("\n") == 1


def build_under_mount(folder: Path, mount: str) -> subprocess.CompletedProcess:
    """The build in a private mount namespace in which `mount` (a shell command) was run on `folder`."""
    build = shlex.join([sys.executable, "-m", "vocaloom", *BUILD, "--output", str(folder / "ds")])
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", f"{mount} && exec {build}"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


@needs_root
@pytest.mark.parametrize(
    "mount, status, expected",
    [
        (
            "mount --bind {0} {0} && mount -o remount,bind,ro {0}",
            2,
            "--output {0}/ds cannot be written: Read-only file system",
        ),
        ("mount -t tmpfs -o size=512k none {0}", 1, "the build failed: no space left on device writing "),
    ],
    ids=["read-only", "full-disk"],
)
def test_an_output_that_cannot_take_the_dataset_is_one_line(tmp_path, mount, status, expected):
    result = build_under_mount(tmp_path, mount.format(tmp_path))
    assert result.returncode == status and result.stderr.count("\n") == 1, result.stderr[-3000:]
    assert result.stderr.startswith(f"vocaloom: error: {expected.format(tmp_path)}"), result.stderr


def test_a_second_build_into_the_same_output_exits_3_and_the_first_completes(capsys, tmp_path):
    output = tmp_path / "ds"
    first = start_build(output)
    wait_for(output / MARKER, first, "pid=")
    status, err = cli(capsys, "--output", output)
    assert status == 3 and err.count("\n") == 1
    assert f"is being written by another build (pid={first.pid} since=" in err
    assert first.stderr is not None  # piped by start_build
    assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    assert verify(str(output)) == []


def test_overwrite_keeps_the_old_dataset_until_the_new_one_is_complete(capsys, tmp_path, built):
    output = tmp_path / "ds"
    shutil.copytree(built, output)
    old = files(output)
    staging = Path(staging_dir(str(output)))
    replacing = start_build(output, "--overwrite", "--seed", "7")
    wait_for(staging / TEMP_DIR / "shards", replacing)
    assert verify(str(output)) == []  # readable while it is being replaced
    replacing.send_signal(signal.SIGKILL)
    replacing.wait()
    assert files(output) == old and verify(str(output)) == []  # a failed replacement changes nothing
    assert main([*BUILD, "--output", str(output), "--overwrite", "--seed", "7"]) == 0
    capsys.readouterr()
    assert json.loads((output / MANIFEST).read_text())["config"]["seed"] == 7
    assert verify(str(output)) == [] and not staging.exists()
    assert not [p for p in output.iterdir() if p.name.endswith(".old") or p.name == TEMP_DIR]


def test_overwrite_refuses_while_the_dataset_folder_holds_files_of_yours(capsys, tmp_path, built):
    output = tmp_path / "ds"
    shutil.copytree(built, output)
    (output / "notes.txt").write_text("the user's")
    before = files(output)
    status, err = cli(capsys, "--output", output, "--overwrite")
    assert status == 2 and err.count("\n") == 1 and "holds files that are not the dataset's (notes.txt)" in err
    assert files(output) == before
