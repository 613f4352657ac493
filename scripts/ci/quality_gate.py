"""The quality gate CI runs before the tests: ruff's lint, ruff's format check and mypy (scripts/ci/typecheck.py),
each over the whole tree, each reporting its findings. Exit status 1 if any of them finds anything.

It needs no git (CI's checkout may be a plain copy); `.pre-commit-config.yaml` runs the same three before each local
commit.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKS = {
    "ruff check": [sys.executable, "-m", "ruff", "check", "."],
    "ruff format": [sys.executable, "-m", "ruff", "format", "--check", "."],
    "mypy": [sys.executable, str(ROOT / "scripts" / "ci" / "typecheck.py")],
}


def main() -> int:
    failed = [name for name, command in CHECKS.items() if subprocess.call(command, cwd=ROOT)]
    print(f"quality gate: {'failed: ' + ', '.join(failed) if failed else 'passed'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
