"""Quiet by default: a build in two worker processes prints nothing but the report unless something is wrong;
--verbose shows Beam's INFO lines, the workers' included."""

import json
import logging
import os
import subprocess

import apache_beam
import pytest
from apache_beam.portability.api import beam_fn_api_pb2
from apache_beam.runners.worker.log_handler import LOG_LEVEL_TO_LOGENTRY_MAP

from tests.pipelines.test_cli import CLI, ENV, vocaloom
from vocaloom.pipelines.worker_logs import WorkerRecords

pytestmark = pytest.mark.integration

BEAM_FILE = os.path.join(os.path.dirname(apache_beam.__file__), "runners", "worker", "sdk_worker_main.py")
OURS = "/site-packages/vocaloom/transforms/inference/cache.py"


def forwarded(level: int, location: str, message: str) -> logging.LogRecord:
    """A worker's record as the launcher's local_job_service logs it."""
    entry = beam_fn_api_pb2.LogEntry(
        severity=LOG_LEVEL_TO_LOGENTRY_MAP[level], message=message, log_location=f"{location}:42"
    )
    return logging.LogRecord(
        "apache_beam.runners.portability.local_job_service",
        level,
        __file__,
        1,
        "Worker: %s",
        (str(entry).replace("\n", " "),),
        None,
    )


def test_workers_records_kept_or_dropped():
    quiet, verbose = WorkerRecords(verbose=False), WorkerRecords(verbose=True)
    assert not quiet.filter(forwarded(logging.WARNING, BEAM_FILE, "No semi_persistent_directory found"))
    assert not quiet.filter(forwarded(logging.INFO, OURS, "loaded"))
    assert verbose.filter(forwarded(logging.INFO, BEAM_FILE, "Python sdk harness starting."))
    kept = forwarded(logging.WARNING, OURS, 'an entry "x" was invalid')
    assert quiet.filter(kept) and kept.getMessage() == 'worker (cache.py:42): an entry "x" was invalid'
    assert quiet.filter(forwarded(logging.ERROR, BEAM_FILE, "Error processing instruction"))


def test_a_two_process_build_prints_only_its_report_unless_verbose(tmp_path):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": str(i), "text": "a few more words " * (100 + 20 * i)}) + "\n" for i in range(20))
    )
    flags = [
        "--input",
        str(corpus),
        "--speech-ratio",
        "0",
        "--direct_num_workers=2",
        "--direct_running_mode=multi_processing",
    ]
    quiet = vocaloom("build", "--output", str(tmp_path / "quiet"), *flags)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout.startswith("# vocaloom build")
    # As installed without Beam's [gcp] extra: Beam's import logs "apitools not found" in every process.
    hidden = tmp_path / "hidden" / "apitools"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('apitools, hidden by the test')\n")
    env = dict(ENV, PYTHONPATH=os.pathsep.join(filter(None, [str(hidden.parent), ENV.get("PYTHONPATH")])))
    without_gcp = subprocess.run(
        [*CLI, "build", "--output", str(tmp_path / "no-gcp"), *flags],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert without_gcp.returncode == 0 and without_gcp.stderr == "", without_gcp.stderr[-2000:]
    verbose = vocaloom("build", "--verbose", "--output", str(tmp_path / "verbose"), *flags)
    assert verbose.returncode == 0 and "worker (sdk_worker_main.py" in verbose.stderr
    assert "INFO apache_beam" in verbose.stderr and verbose.stdout.startswith("# vocaloom build")
