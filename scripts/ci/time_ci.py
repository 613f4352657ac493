"""How long the README's two commands and the fast tier take on this machine, one after the other, on a clean clone
of HEAD: `.ci/run` (the README's second command), then the unit tier alone (`pytest -m unit`) in that clone, which
CI has just installed, then the README's first command in a fresh virtual environment (pip's cache as it is).
Prints a Markdown table with the commit; each run's output goes to a log file beside the clone.

    python3 -m scripts.ci.time_ci [--workdir /tmp/time-ci]

.ci/run installs the clone in development mode, so afterwards `vocaloom` imports from the clone: run
`pip install --no-deps -e .` in the checkout to point it back.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def timed(command: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> tuple[int, float]:
    started = time.monotonic()
    with open(log, "wb") as out:
        status = subprocess.call(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    return status, time.monotonic() - started


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {round(seconds % 60)} s"


def readme_commands(readme: Path) -> list[str]:
    """The commands of the README's "Two commands" block, in order (its comments left out)."""
    block = readme.read_text().split("## Two commands", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


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
    shutil.rmtree(clone / "out", ignore_errors=True)
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    first = readme_commands(clone / "README.md")[0]
    with_venv = dict(os.environ, PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", VIRTUAL_ENV=str(venv))
    first_status, first_seconds = timed(["bash", "-c", first], clone, workdir / "command1.log", with_venv)
    print(f"commit {commit.stdout.strip()}, logs in {workdir}\n")
    print("| run | exit status | time |\n|---|---:|---:|")
    print(f"| `.ci/run` (install, fetch, quality gate, every test) | {ci_status} | {minutes(ci_seconds)} |")
    print(f"| `pytest -m unit` (the fast tier) | {unit_status} | {minutes(unit_seconds)} |")
    print(f"| README command 1 (fresh venv: install, build the sample) | {first_status} | {minutes(first_seconds)} |")
    return ci_status or unit_status or first_status


if __name__ == "__main__":
    sys.exit(main())
