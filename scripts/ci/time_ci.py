"""How long CI and the fast tier take on this machine, one after the other: `.ci/run` on a clean clone of HEAD, then
the unit tier alone (`pytest -m unit`) in that clone, which CI has just installed. Prints a Markdown table with the
commit; each run's output goes to a log file beside the clone.

    python3 scripts/ci/time_ci.py [--workdir /tmp/time-ci]

.ci/run installs the clone in development mode, so afterwards `vocaloom` imports from the clone: run
`pip install --no-deps -e .` in the checkout to point it back.
"""

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def timed(command: list[str], cwd: Path, log: Path) -> tuple[int, float]:
    started = time.monotonic()
    with open(log, "wb") as out:
        status = subprocess.call(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    return status, time.monotonic() - started


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {round(seconds % 60)} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/time-ci"))
    workdir = parser.parse_args().workdir
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    clone = workdir / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True)
    ci_status, ci_seconds = timed(["bash", ".ci/run"], clone, workdir / "ci.log")
    unit_status, unit_seconds = timed(
        [sys.executable, "-m", "pytest", "-q", "-m", "unit", "tests"], clone, workdir / "unit.log"
    )
    print(f"commit {commit.stdout.strip()}, logs in {workdir}\n")
    print("| run | exit status | time |\n|---|---:|---:|")
    print(f"| `.ci/run` (install, fetch, quality gate, every test) | {ci_status} | {minutes(ci_seconds)} |")
    print(f"| `pytest -m unit` (the fast tier) | {unit_status} | {minutes(unit_seconds)} |")
    return ci_status or unit_status


if __name__ == "__main__":
    sys.exit(main())
