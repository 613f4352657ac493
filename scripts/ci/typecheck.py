"""mypy over the package, the tests and the scripts, as installed code sees them.

The repository's top-level folders are installed as `vocaloom.<folder>` (setup.py), a mapping mypy cannot follow, so
this links them into `.typecheck/vocaloom/` (git-ignored) and type-checks through the links; findings name the
linked paths, which are the repository's own files under that prefix. Exit status: mypy's.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINKS = ROOT / ".typecheck" / "vocaloom"


def link_tree() -> None:
    """`.typecheck/vocaloom/` as the installed package: its own files, then each mapped folder."""
    found = re.search(r"^FOLDERS = (\(.*?\))$", (ROOT / "setup.py").read_text(), re.M)
    if found is None:
        sys.exit("setup.py: no FOLDERS = (...) line")
    folders = ast.literal_eval(found.group(1))
    LINKS.mkdir(parents=True, exist_ok=True)
    wanted = {path.name: path for path in (ROOT / "vocaloom").iterdir() if path.name != "__pycache__"}
    wanted.update({folder: ROOT / folder for folder in folders})
    for name, target in wanted.items():
        link = LINKS / name
        if link.is_symlink() and link.resolve() == target:
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(target)


if __name__ == "__main__":
    link_tree()
    sys.exit(subprocess.call([sys.executable, "-m", "mypy", *sys.argv[1:]], cwd=ROOT))
