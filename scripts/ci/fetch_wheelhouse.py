"""Fetches what the install tests (tests/test_install.py) put into fresh virtual environments, into `.wheelhouse/`
(git-ignored), so that the tests themselves install with `--no-index` and never reach the network.

    .wheelhouse/pipeline/  vocaloom[pipeline,gcp]'s dependencies (and setuptools) at constraints.txt's versions
    .wheelhouse/oldest/    the reader's dependencies at their floors (constraints-oldest.txt)
    .wheelhouse/clashes/   PyPI's `transforms`, `loader`, `pipelines` and `schemas`: top-level names vocaloom once used

    python3 -m scripts.ci.fetch_wheelhouse [--dest .wheelhouse]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DEST = ROOT / ".wheelhouse"
# Installed beside vocaloom without their own dependencies (old pins that would replace ours): only their files
# matter, which claim the top-level names vocaloom's folders have.
CLASHES = ("transforms==0.2.1", "loader==2017.9.11", "pipelines==0.0.14", "schemas==0.7.1")


def pip(command: str, *args: str) -> None:
    # No cache: the wheelhouse is the only copy kept (torch's CUDA wheels twice over would be 11 GB).
    subprocess.run([sys.executable, "-m", "pip", "-q", command, "--no-cache-dir", *args], check=True)


def build_wheel(out: Path) -> Path:
    """vocaloom's wheel, built from its sdist (as `python -m build` does), without build isolation."""
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("vocaloom-*.whl"))


def fetch(dest: Path) -> None:
    with tempfile.TemporaryDirectory() as temp:
        wheel = build_wheel(Path(temp))
        # setuptools: what an sdist install (the staged package of a Dataflow job) builds with.
        # gcp: the worker pool's workers write to a GCS server (tests/pipelines/test_worker_pools.py).
        pip(
            "download",
            "-d",
            str(dest / "pipeline"),
            "-c",
            str(ROOT / "constraints.txt"),
            f"{wheel}[pipeline,gcp]",
            "setuptools",
        )
    (dest / "pipeline" / wheel.name).unlink()  # the tests build their own, from this checkout
    for sdist in (dest / "pipeline").glob("*.tar.gz"):  # built here, where the build backend can be fetched
        pip("wheel", "--no-deps", "-w", str(dest / "pipeline"), str(sdist))
        sdist.unlink()
    pip("download", "-d", str(dest / "oldest"), "-r", str(ROOT / "constraints-oldest.txt"))
    pip("wheel", "--no-deps", "-w", str(dest / "clashes"), *CLASHES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = parser.parse_args(argv)
    try:
        fetch(args.dest)
    except subprocess.CalledProcessError as e:
        print(f"fetch_wheelhouse: error: {' '.join(e.cmd[:5])} ... exited with {e.returncode}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
