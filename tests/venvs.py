"""Fresh virtual environments with vocaloom installed from its wheel, as users and worker machines get it.

They install from `.wheelhouse/` with --no-index (scripts/ci/fetch_wheelhouse.py, which .ci/run calls), so nothing
reaches the network. Commands run outside the checkout: a checkout in the working folder is importable.
"""

import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = ROOT / ".wheelhouse"
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}, "HF_HUB_OFFLINE": "1"}


def sh(*args, cwd=None, check=True, env=None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd or tempfile.gettempdir(),
        env=env or ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check and result.returncode:
        raise AssertionError(f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def build_dist(out: Path) -> Path:
    """The sdist and the wheel built from it, as `python -m build` makes them; returns the wheel."""
    sh(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT)
    return next(out.glob("vocaloom-*.whl"))


def make_venv(path: Path) -> Path:
    venv.create(path, with_pip=True, clear=True)
    return path / "bin"


def pip_install(bin_dir: Path, *args) -> None:
    # --no-compile: Python compiles what a test imports; compiling all of torch and Beam up front took minutes
    sh(bin_dir / "python", "-m", "pip", "install", "-q", "--no-index", "--no-compile", *args)


def pipeline_venv(path: Path, wheel: Path) -> Path:
    """A venv holding the wheel with its pipeline and gcp extras at constraints.txt's versions, as a worker that
    writes to GCS has it; returns its bin folder."""
    bin_dir = make_venv(path)
    pip_install(
        bin_dir, "--find-links", WHEELHOUSE / "pipeline", "-c", ROOT / "constraints.txt", f"{wheel}[pipeline,gcp]"
    )
    return bin_dir
