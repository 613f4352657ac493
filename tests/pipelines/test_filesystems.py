"""A path whose filesystem is not installed stops `vocaloom build`, `verify` and `inspect` before any work, in one
line naming the extra to install (Beam's own error is a traceback that names apache-beam[gcp] for any scheme)."""

import pytest
from apache_beam.io.filesystems import FileSystems

from vocaloom.pipelines.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def no_object_stores(monkeypatch):
    """An install without the gcp and aws extras: Beam finds no filesystem for gs:// or s3://."""
    real = FileSystems.get_filesystem

    def get_filesystem(path):
        if path.startswith(("gs://", "s3://")):
            raise ValueError(
                "Unable to get filesystem from specified path, please use the correct path or ensure "
                f"the required dependency is installed, e.g., pip install apache-beam[gcp]. Path "
                f"specified: {path}"
            )
        return real(path)

    monkeypatch.setattr(FileSystems, "get_filesystem", get_filesystem)


@pytest.mark.parametrize(
    "argv, extra",
    [
        (["build", "--output", "gs://bucket/ds", "--speech-ratio", "0"], "gcp"),
        (["build", "--output", "OUT", "--input", "s3://bucket/corpus/*.jsonl", "--speech-ratio", "0"], "aws"),
        (["build", "--output", "OUT", "--cache", "gs://bucket/cache", "--speech-ratio", "0"], "gcp"),
        (["build", "--output", "OUT", "--tokenizer", "s3://bucket/sp.model", "--speech-ratio", "0"], "aws"),
        (["verify", "gs://bucket/ds"], "gcp"),
        (["inspect", "s3://bucket/ds"], "aws"),
    ],
)
def test_a_missing_extra_is_one_line_before_any_work(argv, extra, no_object_stores, tmp_path, capsys):
    argv = [str(tmp_path / "out") if arg == "OUT" else arg for arg in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"needs vocaloom's {extra} extra: pip install 'vocaloom[pipeline,{extra}]'" in err
    assert not (tmp_path / "out").exists()  # nothing was claimed or written


def test_a_file_url_is_a_local_path(tmp_path, capsys):
    assert main(["verify", f"file://{tmp_path}/none"]) == 1
    assert f"{tmp_path}/none: no manifest.json" in capsys.readouterr().err
