import os
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "pipelines.cli"]
ENV = dict(os.environ, HF_HUB_OFFLINE="1")


def vocaloom(*args):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=ENV, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["build", "--output", "o", "--speech-ratio", "1.5"], "--speech-ratio must be in [0, 1)"),
    (["build", "--output", "o", "--input", "/missing/x.jsonl"], "matches no file"),
    (["build", "--output", "o", "--min-bucket", "x"], "invalid int value"),
])
def test_bad_build_options_exit_nonzero_with_one_line(args, message):
    result = vocaloom(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len([line for line in result.stderr.splitlines() if "error" in line]) == 1


def test_build_inspect_verify(tmp_path):
    out = str(tmp_path / "ds")
    built = vocaloom("build", "--output", out, "--runner=FnApiRunner")
    assert built.returncode == 0, built.stderr
    assert "| records read |" in built.stdout
    inspected = vocaloom("inspect", out)
    assert inspected.returncode == 0 and "## Buckets" in inspected.stdout
    assert vocaloom("verify", out).returncode == 0
    os.remove(os.path.join(out, "manifest.json"))
    missing = vocaloom("verify", out)
    assert missing.returncode == 1 and "no manifest.json" in missing.stderr


def test_beams_bigquery_notice_is_kept_out_of_the_output():
    import logging

    from pipelines.cli import _not_beam_bigquery_notice

    def record(message):
        return logging.LogRecord("root", logging.WARNING, __file__, 1, message, None, None)
    assert not _not_beam_bigquery_notice(record("apitools not found, and bigquery client libraries are not available"))
    assert _not_beam_bigquery_notice(record("shard 3 failed"))


def test_beams_batch_size_fit_warnings_are_ignored():
    import warnings

    from apache_beam.transforms.util import _BatchSizeEstimator

    from pipelines.cli import _ignore_batch_size_fit_warnings

    def degenerate_fit():  # one batch of another size among ten alike, as a build's first batches are
        _BatchSizeEstimator.linear_regression_numpy([1] * 10 + [2], [1, 1.1, 0.9, 1, 1.2, 0.8, 1, 1.05, 0.95, 1, 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        degenerate_fit()
        assert caught, "numpy no longer warns here: the filter has nothing to do"
        caught.clear()
        _ignore_batch_size_fit_warnings()
        degenerate_fit()
    assert caught == []
