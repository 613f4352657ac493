"""`vocaloom nightly`: dated builds, verify before publish, an atomic LATEST, keep-N, the lock, exit codes."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.venvs import ROOT
from vocaloom.pipelines import build, nightly
from vocaloom.pipelines.cli import main as vocaloom
from vocaloom.pipelines.nightly_root import LocalRoot
from vocaloom.schemas.config import ArgumentParser, add_build_arguments, config_from_args
from vocaloom.schemas.manifest import MANIFEST

pytestmark = pytest.mark.integration

WORDS = "seven wise owls watch the quick brown fox jump over a lazy dog by the old oak tree".split()


@pytest.fixture
def config(tmp_path) -> Path:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"d{i}",
                    "text": " ".join(WORDS[(i + j) % len(WORDS)] + str(j % (i + 3)) for j in range(30 + 17 * i)),
                }
            )
            + "\n"
            for i in range(30)
        )
    )
    path = tmp_path / "nightly.toml"
    path.write_text(f'input = ["{corpus}"]\nmin-bucket = 5\nmax-bucket = 7\nshard-tokens = 2000\nspeech-ratio = 0\n')
    return path


def nightly_run(config: Path, root: Path, *extra: str) -> int:
    return vocaloom(["nightly", "--config", str(config), "--root", str(root), "--runner=FnApiRunner", *extra])


def builds(root: Path) -> list[str]:
    return sorted(d.name for d in (root / "builds").iterdir())


def shard_bytes(build: Path) -> dict[str, bytes]:
    return {str(p.relative_to(build)): p.read_bytes() for p in sorted((build / "data").rglob("*.arrow"))}


def test_two_runs_in_a_row_publish_verified_builds(config, tmp_path, capsys):
    root = tmp_path / "root"
    assert nightly_run(config, root) == nightly.OK
    first = (root / "LATEST").resolve()
    assert nightly_run(config, root) == nightly.OK
    second = (root / "LATEST").resolve()
    assert os.readlink(root / "LATEST") == f"builds/{second.name}"  # relative: the root can be moved
    assert builds(root) == sorted([first.name, second.name]) and first != second
    assert shard_bytes(first) == shard_bytes(second)
    assert (second / "report.md").exists() and (second / "figures" / "buckets.png").exists()
    log = capsys.readouterr().err
    assert log.count("vocaloom.nightly INFO stage=done status=ok exit=0") == 2
    assert f"stage=start root={root} build={second} config={config} previous={first}" in log


def test_keeps_the_newest_n_builds(config, tmp_path):
    root = tmp_path / "root"
    for _ in range(3):
        assert nightly_run(config, root, "--keep", "2") == nightly.OK
    kept = builds(root)
    assert len(kept) == 2 and (root / "LATEST").resolve().name == kept[-1]


def test_a_second_run_while_one_holds_the_lock_exits_3(config, tmp_path):
    root = tmp_path / "root"
    assert nightly_run(config, root) == nightly.OK
    before = builds(root), os.readlink(root / "LATEST")
    with open(root / "nightly.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = subprocess.run(
            [sys.executable, "-m", "vocaloom", "nightly", "--config", str(config), "--root", str(root)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == nightly.LOCK_HELD == 3
    assert "stage=lock status=held" in result.stderr
    assert (builds(root), os.readlink(root / "LATEST")) == before


def test_a_lock_file_left_by_a_killed_run_is_not_stale(config, tmp_path):
    root = tmp_path / "root"
    (root / "builds").mkdir(parents=True)
    (root / "nightly.lock").write_text("pid=999999 since=2026-01-01T03:00:00Z\n")  # no process holds a flock
    assert nightly_run(config, root) == nightly.OK


def test_config_errors_exit_2_and_leave_latest(config, tmp_path):
    root = tmp_path / "root"
    assert nightly_run(config, root) == nightly.OK
    latest = os.readlink(root / "LATEST")
    assert nightly_run(tmp_path / "missing.toml", root) == nightly.CONFIG_ERROR == 2
    config.write_text(config.read_text() + "min-bucket = 99\n")  # a duplicate key: not valid TOML
    assert nightly_run(config, root) == nightly.CONFIG_ERROR
    assert os.readlink(root / "LATEST") == latest and len(builds(root)) == 1


def test_a_failed_build_exits_4_and_leaves_latest(config, tmp_path, monkeypatch):
    root = tmp_path / "root"
    assert nightly_run(config, root) == nightly.OK
    latest = os.readlink(root / "LATEST")

    def crashes(argv):
        output = Path(argv[argv.index("--output") + 1])
        (output / ".vocaloom-tmp").mkdir(parents=True)
        raise RuntimeError("worker lost")

    monkeypatch.setattr(build, "run", crashes)
    assert nightly_run(config, root) == nightly.BUILD_FAILED == 4
    assert os.readlink(root / "LATEST") == latest
    assert [name.endswith(".failed") for name in builds(root)] == [False, True]


def test_a_build_that_fails_verify_exits_5_is_kept_aside_and_pruned_later(config, tmp_path, monkeypatch):
    root = tmp_path / "root"
    assert nightly_run(config, root) == nightly.OK
    latest = os.readlink(root / "LATEST")
    real_run = build.run

    def corrupts_a_shard(argv):
        manifest = real_run(argv)
        shard = Path(argv[argv.index("--output") + 1]) / manifest["buckets"][0]["shards"][0]["path"]
        data = bytearray(shard.read_bytes())
        data[-100] ^= 0xFF
        shard.write_bytes(bytes(data))
        return manifest

    monkeypatch.setattr(build, "run", corrupts_a_shard)
    assert nightly_run(config, root) == nightly.VERIFY_FAILED == 5
    assert os.readlink(root / "LATEST") == latest
    failed = [name for name in builds(root) if name.endswith(".failed")]
    assert len(failed) == 1 and (root / "builds" / failed[0] / MANIFEST).exists()
    monkeypatch.setattr(build, "run", real_run)
    assert nightly_run(config, root, "--keep", "2") == nightly.OK
    assert not any(name.endswith(".failed") for name in builds(root)) and len(builds(root)) == 2


def test_latest_never_disappears_while_it_moves(tmp_path):
    root = tmp_path / "root"
    targets = [root / "builds" / name for name in ("a", "b")]
    for target in targets:
        target.mkdir(parents=True)
        (target / MANIFEST).write_text(target.name)
    local = LocalRoot(str(root))
    local.publish(str(targets[0]))
    seen, errors, done = set(), [], threading.Event()

    def reader():
        while not done.is_set():
            try:
                seen.add((root / "LATEST" / MANIFEST).read_text())
            except OSError as e:  # LATEST missing or dangling, even for an instant
                errors.append(e)

    thread = threading.Thread(target=reader)
    thread.start()
    publishes, deadline = 0, time.monotonic() + 10
    while (publishes < 200 or len(seen) < 2) and time.monotonic() < deadline:
        local.publish(str(targets[publishes % 2]))
        publishes += 1
        time.sleep(0)  # let the reader in between two publishes
    done.set()
    thread.join()
    assert errors == [] and seen == {"a", "b"} and not (root / "LATEST.tmp").exists()


def test_a_killed_nightly_leaves_latest_and_the_lock_usable(config, tmp_path):
    root = tmp_path / "root"
    assert nightly_run(config, root) == nightly.OK
    latest = os.readlink(root / "LATEST")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vocaloom",
            "nightly",
            "--config",
            str(config),
            "--root",
            str(root),
            "--runner=FnApiRunner",
        ],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list((root / "builds").glob("*/.vocaloom-tmp")) and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert os.readlink(root / "LATEST") == latest and len(builds(root)) == 2  # the killed build's folder stays
    assert nightly_run(config, root, "--keep", "1") == nightly.OK  # the lock died with its process
    assert builds(root) == [(root / "LATEST").resolve().name]  # and the partial build is pruned


def test_the_example_config_is_a_valid_nightly_config(tmp_path):
    """examples/nightly.toml, as a nightly run reads it: every key an option, every value of its type."""
    parser = ArgumentParser()
    add_build_arguments(parser)
    args = parser.parse_args(["--config", str(ROOT / "examples" / "nightly.toml"), "--output", str(tmp_path)])
    config = config_from_args(args)
    assert (config.inputs, config.context, config.remainders, config.compression) == (
        ("/srv/corpus/",),
        "related",
        "pack",
        "zstd",
    )
