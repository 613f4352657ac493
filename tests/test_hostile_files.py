"""Every byte that did not come from the build's own process is hostile: caches, artifacts, locks, configs, special
files. Each case is one the adversarial pass of issue 27 found; each asserts the promised outcome."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import zstandard

from tests.conftest import RUNNER
from tests.pipelines.test_build_speech import build, model, rows, write_corpus  # noqa: F401 (model: a fixture)
from vocaloom import assets
from vocaloom.pipelines.cli import main
from vocaloom.pipelines.verify import verify
from vocaloom.schemas.config import ConfigError
from vocaloom.schemas.manifest import ManifestError, parse_manifest
from vocaloom.transforms.artifacts import CACHE_ENV, Artifact, fingerprint, localize

ENV = dict(os.environ, HF_HUB_OFFLINE="1")


def one_line(capsys, status: int, argv: list[str]) -> str:
    assert main(argv) == status
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vocaloom: error: "), lines
    return lines[0]


def text_build(*extra: str) -> list[str]:
    return ["build", "--speech-ratio", "0", *RUNNER, *extra]


# 1. The artifact cache is checked on every hit, and its default is this user's alone.

def test_a_planted_artifact_in_the_cache_is_replaced_by_the_real_one(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "weights.bin").write_bytes(b"the real weights")
    # A location that is not local makes localize copy it into the cache: Beam's FileSystems know no "mem+" scheme,
    # so an artifact read through a scheme-less path is pretended remote by monkeypatching is_local.
    artifact = fingerprint(str(remote))
    monkeypatch.setattr("vocaloom.transforms.artifacts.is_local", lambda path: False)
    first = Path(localize(artifact))
    (first / "weights.bin").write_bytes(b"planted weights!")  # another local user, under the right name
    again = Path(localize(artifact))
    assert (again / "weights.bin").read_bytes() == b"the real weights"


def test_the_default_artifact_cache_is_this_users_alone(monkeypatch, tmp_path):
    from vocaloom.transforms.artifacts import ArtifactError, cache_root
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path))
    root = cache_root()
    assert root.name == f"vocaloom-artifacts-{os.getuid()}" and root.stat().st_mode & 0o777 == 0o700
    root.chmod(0o777)  # a folder others may write into is not a cache to trust
    with pytest.raises(ArtifactError, match="not a folder of this user's alone"):
        cache_root()


# 2. Lock files never follow a symbolic link.

def test_a_lock_file_that_is_a_link_is_refused_and_its_target_untouched(tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".vocaloom-lock").symlink_to(victim)
    line = one_line(capsys, 2, text_build("--output", str(tmp_path / "out")))
    assert "is a symbolic link: vocaloom never writes through one" in line
    assert victim.read_text() == "precious\n"


def test_nightlys_lock_that_is_a_link_is_refused_and_its_target_untouched(tmp_path):
    victim, root = tmp_path / "victim", tmp_path / "root"
    victim.write_text("precious\n")
    root.mkdir()
    (root / "nightly.lock").symlink_to(victim)
    config = tmp_path / "n.toml"
    config.write_text('speech-ratio = 0\n')
    result = subprocess.run([sys.executable, "-m", "vocaloom", "nightly", "--config", str(config), "--root",
                             str(root), *RUNNER], capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 2 and "stage=lock status=config_error" in result.stderr
    assert victim.read_text() == "precious\n"


# 3. Inference-cache entries are validated when read: a bad one is computed again and counted, never woven.

def edit_cache(cache: Path, edit) -> int:
    """Applies edit(value) to every entry of every cache file; returns how many entries were changed."""
    changed = 0
    for path in cache.rglob("*.jsonl.zst"):
        lines = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes()).splitlines()
        entries = [orjson.loads(line) for line in lines]
        for entry in entries:
            entry["value"] = edit(entry["value"])
        changed += len(entries)
        path.write_bytes(zstandard.ZstdCompressor().compress(b"".join(orjson.dumps(e) + b"\n" for e in entries)))
    return changed


@pytest.mark.parametrize("edit", [
    lambda units: [u + 1000 for u in units],  # beyond the codebook
    lambda units: [-1 - u for u in units],  # negative: would have become text ids
    lambda units: [u + 0.5 for u in units],
    lambda units: [],
    lambda units: "units",
    lambda units: None,
], ids=["beyond-codebook", "negative", "floats", "empty", "string", "null"])
def test_edited_speech_units_in_the_cache_are_recomputed_and_counted(model, tmp_path, edit):  # noqa: F811
    corpus = write_corpus(tmp_path / "in")
    first = build(corpus, tmp_path / "a", model, "--cache", str(tmp_path / "cache"))
    edited = edit_cache(tmp_path / "cache", edit)
    second = build(corpus, tmp_path / "b", model, "--cache", str(tmp_path / "cache"))
    assert second["speech"]["cache_entries_invalid"] == edited > 0
    assert second["speech"]["spans_cached"] == 0
    assert second["speech"]["spans_converted"] == first["speech"]["spans_converted"]
    assert list(rows(tmp_path / "b", second)) == list(rows(tmp_path / "a", first))
    assert verify(str(tmp_path / "b")) == []


# 6. Special and huge files where a build reads: refused before any work, in one line.

@pytest.fixture
def fifo(tmp_path) -> str:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return str(path)


def test_a_fifo_or_device_as_tokenizer_or_config_is_refused_at_once(tmp_path, fifo, capsys):
    out = str(tmp_path / "out")
    for flag, path, kind in (("--tokenizer", fifo, "a FIFO"), ("--tokenizer", "/dev/zero", "a device"),
                             ("--config", fifo, "a FIFO"), ("--config", "/dev/zero", "a device")):
        assert f"{path} is {kind}, not a regular file" in one_line(capsys, 2, text_build("--output", out, flag, path))
    assert not os.path.exists(out)


@pytest.mark.parametrize("special", ["fifo", "device"])
def test_a_special_file_inside_a_model_folder_is_refused_at_once(tmp_path, capsys, special):
    folder = tmp_path / "model"
    folder.mkdir()
    for path in assets.bundled_path("bundled:text-to-token").iterdir():
        (folder / path.name).symlink_to(path)
    if special == "fifo":
        os.mkfifo(folder / "extra")
    else:
        (folder / "extra").symlink_to("/dev/zero")
    line = one_line(capsys, 2, ["build", "--output", str(tmp_path / "out"), "--text-to-token-model", str(folder),
                                *RUNNER])
    assert f"{folder / 'extra'} is {'a FIFO' if special == 'fifo' else 'a device'}, not a regular file" in line


def test_an_empty_or_oversized_tokenizer_is_refused_before_work(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty.model"
    empty.write_bytes(b"")
    assert "is empty" in one_line(capsys, 2, text_build("--output", str(tmp_path / "o"), "--tokenizer", str(empty)))
    monkeypatch.setattr("vocaloom.pipelines.build.MAX_TOKENIZER_BYTES", 1000)
    line = one_line(capsys, 2, text_build("--output", str(tmp_path / "o"), "--tokenizer",
                                          str(assets.bundled_path("bundled:tokenizer"))))
    assert "more than the 1,000 vocaloom reads of one" in line


def test_an_oversized_config_is_refused_unread(tmp_path, capsys):
    config = tmp_path / "big.toml"
    with open(config, "wb") as f:
        f.truncate(8 << 30)  # sparse: 8 GiB that would be read whole
    assert "more than the 1,048,576 vocaloom reads of one" in one_line(
        capsys, 2, text_build("--output", str(tmp_path / "o"), "--config", str(config)))


# 7. --output a symbolic link.

def test_an_output_that_is_a_symbolic_link_is_refused(tmp_path, capsys):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    line = one_line(capsys, 2, text_build("--output", str(tmp_path / "link"), "--overwrite"))
    assert f"is a symbolic link (to {tmp_path / 'real'}): give the directory itself" in line
    assert os.listdir(tmp_path / "real") == [] and (tmp_path / "link").is_symlink()


# 9, 11, 12, 14: operator mistakes refused in one line before work.

def test_an_empty_input_list_in_a_config_is_refused(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("input = []\n")
    assert "input = [] names no input" in one_line(
        capsys, 2, text_build("--output", str(tmp_path / "o"), "--config", str(config)))


@pytest.mark.parametrize("flag", ["--output", "--cache"])
def test_nightly_refuses_the_flags_it_sets_itself(tmp_path, capsys, flag):
    config = tmp_path / "c.toml"
    config.write_text("speech-ratio = 0\n")
    line = one_line(capsys, 2, ["nightly", "--config", str(config), "--root", str(tmp_path / "root"), flag,
                                str(tmp_path / "elsewhere"), *RUNNER])
    assert f"vocaloom nightly sets {flag}" in line
    assert not (tmp_path / "root").exists() and not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("cache", ["a-file", "/proc/vocaloom-cache"])
def test_an_unusable_cache_is_refused_before_the_model_work(tmp_path, capsys, cache):
    (tmp_path / "a-file").write_text("x")
    cache = str(tmp_path / cache) if cache == "a-file" else cache
    assert f"--cache {cache} cannot hold the inference cache" in one_line(
        capsys, 2, ["build", "--output", str(tmp_path / "o"), "--cache", cache, *RUNNER])


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_non_finite_numbers_are_refused(tmp_path, capsys, value):
    assert "must be" in one_line(capsys, 2, ["build", "--output", str(tmp_path / "o"), f"--span-lambda={value}"])
    config = tmp_path / "c.toml"
    config.write_text(f"span-lambda = {value}\n")
    assert "--span-lambda must be" in one_line(capsys, 2, ["build", "--output", str(tmp_path / "o"), "--config",
                                                           str(config)])


# 13. A manifest integer too long for Python's int conversion.

def test_a_manifest_integer_of_thousands_of_digits_is_a_manifest_error(tmp_path, capsys):
    text = '{"format": "vocaloom/1", "seed": ' + "9" * 5000 + "}"
    with pytest.raises(ManifestError, match="not valid JSON"):
        parse_manifest(text)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "manifest.json").write_text(text)
    for command, status in (("verify", 1), ("inspect", 2)):
        assert "not valid JSON" in one_line(capsys, status, [command, str(tmp_path / "ds")])


# 15. Ctrl-C.

def test_ctrl_c_ends_a_build_with_one_line_and_exit_130(tmp_path):
    build_process = subprocess.Popen(
        [sys.executable, "-m", "vocaloom", "build", "--output", str(tmp_path / "o"), *RUNNER],
        stderr=subprocess.PIPE, text=True, env=ENV,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a shell's background job ignores it
    time.sleep(8)
    build_process.send_signal(signal.SIGINT)
    stderr = build_process.communicate(timeout=120)[1]
    assert build_process.returncode == 130 and stderr.splitlines() == ["vocaloom: error: interrupted"]
    assert not os.path.exists(tmp_path / "o" / "manifest.json")
