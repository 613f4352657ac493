"""Watching a submitted build until it ends, so that a worker that cannot start a step ends it at once."""

from __future__ import annotations

import contextlib
import time

from apache_beam.runners.runner import PipelineState

from vocaloom.transforms.worker_setup import BuildStops, WorkerSetupError

# How often the launcher looks for a line left by a worker that could not start a step.
WATCH_SECONDS = 2


def wait_watching(result, failures: BuildStops) -> None:
    """Waits for the job; if a worker leaves a setup failure meanwhile, cancels the job and raises it, so that no
    runner keeps the build waiting for workers that cannot start (the portable job servers wait minutes). The job's
    state is polled: a portable runner's wait_until_finish(duration) cannot be called twice."""
    from apache_beam.runners.direct.direct_runner import DirectPipelineResult

    if not isinstance(result, DirectPipelineResult):  # it runs in this process, and reports only when waited for
        while not PipelineState.is_terminal(result.state):
            failure = failures.first()
            if failure:
                with contextlib.suppress(Exception):
                    result.cancel()
                raise WorkerSetupError(failure)
            time.sleep(WATCH_SECONDS)
    result.wait_until_finish()  # raises the runner's own error for a failed job
