"""vocaloom as a user installs it: the wheel (built from the sdist) in fresh virtual environments, beside packages
that claim the top-level names vocaloom's folders have, and the reader alone at its oldest supported versions.

The environments (tests/venvs.py) install from a wheelhouse: nothing here reaches the network. Each takes about a
minute (torch).
"""

import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import RUNNER, TEXT_ONLY
from tests.prerequisites import needs_wheelhouse
from tests.venvs import ROOT, WHEELHOUSE, make_venv, pip_install, sh

pytestmark = [pytest.mark.install, needs_wheelhouse]
# A user's own module named like vocaloom's old top-level package, in the folder they work in.
USERS_LOADER = "BucketLoader = 'the user\\'s own'\n"
READ_BATCHES = """
import hashlib, sys
from vocaloom.loader import BucketLoader
digest = hashlib.sha256()
for i, batch in zip(range(20), BucketLoader(sys.argv[1], tokens_per_batch=1024, curriculum="grow_p2", seed=3)):
    digest.update(batch["input_ids"].numpy().tobytes() + batch["doc_starts"].numpy().tobytes())
print(digest.hexdigest())
"""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from tests.loader.conftest import build_dataset

    directory = tmp_path_factory.mktemp("install") / "ds"
    build_dataset(directory)
    return directory


def batches_digest(python, directory: Path, cwd: Path) -> str:
    return sh(python, "-c", READ_BATCHES, directory, cwd=cwd).stdout.strip()


def test_the_wheel_holds_one_package_with_its_data_and_licences(wheel, dist):
    names = zipfile.ZipFile(wheel).namelist()
    version = wheel.name.split("-")[1]
    assert {name.split("/")[0] for name in names} == {"vocaloom", f"vocaloom-{version}.dist-info"}
    for shipped in (
        "vocaloom/py.typed",
        "vocaloom/assets/sample/sample.jsonl.zst",
        "vocaloom/assets/sample/COPYING.md",
        "vocaloom/assets/tokenizer/sample_sp.model",
        "vocaloom/assets/text_to_token/model.safetensors",
        "vocaloom/loader/bucket_loader.py",
        "vocaloom/transforms/io/read.py",
    ):
        assert shipped in names
    assert not [name for name in names if "/tests/" in name or "/scripts/" in name]
    metadata = zipfile.ZipFile(wheel).read(f"vocaloom-{version}.dist-info/METADATA").decode()
    assert "License: Apache-2.0" in metadata or "License-Expression: Apache-2.0" in metadata
    assert "Requires-Dist: torch>=2.1" in metadata and "Provides-Extra: pipeline" in metadata
    assert "apache-beam" not in metadata.split("Provides-Extra")[0]  # Beam comes only with the extra
    requirements = [line.split(";")[0] for line in metadata.splitlines() if line.startswith("Requires-Dist")]
    assert requirements and not [line for line in requirements if "==" in line]  # ranges; the pins are CI's
    assert any(name.endswith("licenses/LICENSE") for name in names)
    assert len(list(dist.glob("vocaloom-*.tar.gz"))) == 1


def test_the_wheel_beside_packages_named_like_its_folders(tmp_path, pipeline_env, dataset):
    bin_dir = pipeline_env
    pip_install(bin_dir, "--no-deps", *sorted((WHEELHOUSE / "clashes").glob("*.whl")))  # after vocaloom, as reported
    try:
        clashing_beside_vocaloom(bin_dir, tmp_path, dataset)
    finally:
        sh(bin_dir / "python", "-m", "pip", "uninstall", "-y", "-q", "transforms", "loader", "pipelines", "schemas")
    assert sh(bin_dir / "vocaloom", "verify", tmp_path / "project" / "ds").returncode == 0


def clashing_beside_vocaloom(bin_dir: Path, tmp_path: Path, dataset: Path) -> None:
    site = Path(
        sh(
            bin_dir / "python",
            "-c",
            "import vocaloom, os; print(os.path.dirname(os.path.dirname(vocaloom.__file__)))",
            cwd=tmp_path,
        ).stdout.strip()
    )
    assert site.is_relative_to(bin_dir.parent)
    for name in ("transforms", "loader", "pipelines", "schemas"):
        assert (site / name).is_dir()  # theirs, untouched
    work = tmp_path / "project"
    work.mkdir()
    (work / "loader.py").write_text(USERS_LOADER)
    built = sh(
        bin_dir / "vocaloom", "build", "--output", "ds", "--shard-tokens", "200000", *TEXT_ONLY, *RUNNER, cwd=work
    )
    assert "| records read |" in built.stdout
    assert "apitools" not in built.stderr  # Beam's notice about BigQuery clients, kept out of the output
    assert sh(bin_dir / "vocaloom", "verify", "ds", cwd=work).returncode == 0
    assert (
        sh(bin_dir / "python", "-c", "import loader; print(loader.BucketLoader)", cwd=work).stdout.strip()
        == "the user's own"
    )
    assert batches_digest(bin_dir / "python", dataset, work) == batches_digest(sys.executable, dataset, work)


def test_the_reader_alone_at_its_oldest_versions(tmp_path, wheel, dataset):
    bin_dir = make_venv(tmp_path / "venv")
    oldest = (ROOT / "constraints-oldest.txt").read_text()
    pip_install(bin_dir, "--find-links", WHEELHOUSE / "oldest", "-r", ROOT / "constraints-oldest.txt")
    pip_install(bin_dir, "--find-links", WHEELHOUSE / "oldest", wheel)
    installed = sh(bin_dir / "python", "-m", "pip", "freeze").stdout
    for pin in (line for line in oldest.splitlines() if line and not line.startswith("#")):
        assert pin in installed.splitlines()  # the image's versions stay
    assert "apache-beam" not in installed
    work = tmp_path / "project"
    work.mkdir()
    (work / "loader.py").write_text(USERS_LOADER)
    assert batches_digest(bin_dir / "python", dataset, work) == batches_digest(sys.executable, dataset, work)
    version = sh(bin_dir / "vocaloom", "--version", cwd=work).stdout.strip()
    assert version.startswith("vocaloom ")
    refused = sh(bin_dir / "vocaloom", "build", "--output", "x", cwd=work, check=False)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "pip install 'vocaloom[pipeline]'" in refused.stderr


def test_an_editable_install_maps_the_folders(tmp_path):
    """This checkout is installed editable (the README's commands): from another folder, every module is vocaloom's
    and the old top-level names are not importable."""
    code = (
        "import importlib.util, vocaloom.pipelines.build as b, vocaloom.loader as l\n"
        "print(b.__file__); print(l.__file__)\n"
        "print([n for n in ('pipelines', 'transforms', 'schemas', 'loader', 'assets', 'text_to_token')"
        " if importlib.util.find_spec(n)])"
    )
    lines = sh(sys.executable, "-c", code, cwd=tmp_path).stdout.splitlines()
    assert lines[:2] == [str(ROOT / "pipelines" / "build.py"), str(ROOT / "loader" / "__init__.py")]
    assert lines[2] == "[]"
