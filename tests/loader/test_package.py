import subprocess
import sys


def test_loader_imports_without_beam():
    # A training image need not have Beam: with apache_beam unimportable, `import vocaloom.loader` still works, and
    # imports nothing of the pipeline.
    code = (
        "import sys; sys.modules['apache_beam'] = None\n"
        "import vocaloom.loader\n"
        "loaded = {m for m in sys.modules if m.startswith('vocaloom.')}\n"
        "assert not {m.split('.')[1] for m in loaded} - {'loader', 'schemas'}, sorted(loaded)\n"
        "print(vocaloom.loader.BucketLoader.__name__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "BucketLoader", result.stderr
