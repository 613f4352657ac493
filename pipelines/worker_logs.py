"""What a local build prints besides vocaloom's own lines: every warning and error, and the INFO lines of Beam and
other libraries only with --verbose, whether the build runs in one process or several.

Worker processes (--direct_running_mode=multi_processing) send their log records to the launcher, where Beam logs
each one as "Worker: <the record as a protobuf dump>" on one logger. Those records are read back here: Beam's own
notes about its workers' internals ("No semi_persistent_directory found", the SDK harness starting) are dropped
unless --verbose; any other warning or error, vocaloom's included, is kept and printed as one plain line.
"""

from __future__ import annotations

import logging
import os
import sys

import vocaloom.transforms  # noqa: F401  (first: it imports Beam quietly)

# isort: split

FORWARDED = "apache_beam.runners.portability.local_job_service"
LOCAL_RUNNERS = (None, "FnApiRunner", "DirectRunner", "SwitchingDirectRunner")
WORKER_COMMAND = f"{sys.executable} -m vocaloom.pipelines.sdk_worker"


def _beam_dir() -> str:
    import apache_beam

    return os.path.dirname(apache_beam.__file__) + os.sep


class WorkerRecords(logging.Filter):
    """On the launcher's Worker logger: a worker's record kept (re-worded) or dropped."""

    def __init__(self, verbose: bool):
        super().__init__()
        self._verbose, self._beam = verbose, _beam_dir()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "Worker: %s" or not isinstance(record.args, tuple) or len(record.args) != 1:
            return True
        from apache_beam.portability.api import beam_fn_api_pb2
        from google.protobuf import text_format

        entry = beam_fn_api_pb2.LogEntry()
        try:
            text_format.Parse(str(record.args[0]), entry)
        except text_format.ParseError:
            return True  # not what this filter knows: shown as Beam wrote it
        from_beam = entry.log_location.startswith(self._beam)
        if not self._verbose and (record.levelno < logging.WARNING or (from_beam and record.levelno < logging.ERROR)):
            return False
        where = entry.log_location.rsplit(os.sep, 1)[-1]
        record.msg, record.args = "worker (%s): %s%s", (where, entry.message, f"\n{entry.trace}" if entry.trace else "")
        return True


def local_runner(options):
    """For a local multi-process build, Beam's FnApiRunner with worker processes started as vocaloom's
    (pipelines/sdk_worker.py), which write nothing to the terminal themselves; else None (the runner the options
    name)."""
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.transforms.environments import SubprocessSDKEnvironment

    if (
        options.view_as(StandardOptions).runner not in LOCAL_RUNNERS
        or options.view_as(DirectOptions).direct_running_mode != "multi_processing"
    ):
        return None

    class QuietWorkersRunner(FnApiRunner):
        """FnApiRunner keeps its workers' environment: Beam's run_pipeline would set its own worker command."""

        _workers = SubprocessSDKEnvironment.from_command_string(command_string=WORKER_COMMAND)

        @property
        def _default_environment(self):
            return self._workers

        @_default_environment.setter
        def _default_environment(self, _):
            pass

    return QuietWorkersRunner()


def configure_logging(verbose: bool) -> None:
    """The launcher's logging for a build or nightly run: INFO and up with --verbose, else WARNING and up."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    forwarded = logging.getLogger(FORWARDED)
    forwarded.filters[:] = [f for f in forwarded.filters if not isinstance(f, WorkerRecords)]
    forwarded.addFilter(WorkerRecords(verbose))
