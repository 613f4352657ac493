import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_loader_imports_without_beam():
    # A training image need not have Beam: with apache_beam unimportable, `import loader` still works.
    code = ("import sys; sys.modules['apache_beam'] = None\n"
            "import loader\n"
            "assert not {'pipelines', 'transforms'} & {m.split('.')[0] for m in sys.modules}, sorted(sys.modules)\n"
            "print(loader.BucketLoader.__name__)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "BucketLoader", result.stderr
