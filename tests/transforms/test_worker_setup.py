import pytest
from apache_beam.runners.runner import PipelineState

from vocaloom.pipelines.job import wait_watching
from vocaloom.transforms.worker_setup import BuildStops, WorkerSetupError, setup_failure


def test_a_failed_setup_is_one_line_left_for_the_launcher(tmp_path):
    failures = BuildStops(str(tmp_path / "failures"))
    assert failures.first() is None
    with pytest.raises(WorkerSetupError) as raised, failures.guard("Tokenize"):
        raise FileNotFoundError("no such file: tok.model\nsecond line")
    line = str(raised.value)
    assert line.startswith("Tokenize could not start on worker ") and line.endswith(
        ": FileNotFoundError: no such file: tok.model"
    )
    assert failures.first() == line
    remote = RuntimeError(
        f"Pipeline failed: Traceback ...\nvocaloom.transforms.worker_setup.WorkerSetupError: {line}\n"
    )
    assert setup_failure(remote) == line == setup_failure(raised.value)
    assert setup_failure(RuntimeError("a bug")) is None


class Job:
    """A runner's result that keeps running until cancelled."""

    def __init__(self):
        self.cancelled, self.looks = False, 0

    @property
    def state(self):
        self.looks += 1
        return PipelineState.CANCELLED if self.cancelled else PipelineState.RUNNING

    def wait_until_finish(self, duration=None):
        raise AssertionError("a running job is watched, not waited for")

    def cancel(self):
        self.cancelled = True


def test_the_launcher_cancels_a_job_whose_workers_cannot_start(tmp_path, monkeypatch):
    monkeypatch.setattr("vocaloom.pipelines.job.WATCH_SECONDS", 0)
    failures, job = BuildStops(str(tmp_path)), Job()
    (tmp_path / "x.txt").write_text("Embed could not start on worker w1: ArtifactError: gone")
    with pytest.raises(WorkerSetupError, match="Embed could not start on worker w1"):
        wait_watching(job, failures)
    assert job.cancelled and job.looks == 1


def test_a_finished_job_is_waited_for(tmp_path):
    class Done:
        state, waited = PipelineState.DONE, False

        def wait_until_finish(self, duration=None):
            self.waited = True
            return self.state

    done = Done()
    wait_watching(done, BuildStops(str(tmp_path)))
    assert done.waited
