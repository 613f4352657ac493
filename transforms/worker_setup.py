"""A step that cannot start (or go on) on a worker: one line naming the step, the worker and the cause, which ends
the build. Also a worker's other reasons to stop a build in one line, such as an input it cannot read.

A worker that cannot start a step (its model or tokenizer missing or not the launcher's, espeak-ng absent, a model
that does not load) fails its bundles. The runners do not all say so: the portable job servers (Flink, Spark) then
wait minutes for another SDK environment and report only their own timeout. So the worker also leaves the line in
the build's temporary folder, which every worker reaches, and the launcher, watching that folder while the job
runs, cancels the job and says the line alone (pipelines/build.py).
"""

from __future__ import annotations

import contextlib
import re
import socket
import uuid
from typing import NamedTuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


class BuildStopped(RuntimeError):
    """A worker's reason to end the build, said in one line (the user's to fix, not a bug)."""


class WorkerSetupError(BuildStopped):
    """A step could not start on a worker."""


class BuildStops(NamedTuple):
    """Where workers leave the line that ends the build: a step they could not start, an input they cannot read, a
    full disk (None: nowhere, only the exception). The launcher watches it while the job runs."""

    directory: str | None = None

    @contextlib.contextmanager
    def guard(self, step: str):
        """Wraps a setup() body: any error leaves it as one WorkerSetupError line, also written for the launcher."""
        try:
            yield
        except WorkerSetupError:
            raise
        except Exception as e:
            cause = (str(e).strip().splitlines() or [""])[0]
            self.fail(f"{step} could not start on worker {socket.gethostname()}: {type(e).__name__}: {cause}")

    def fail(self, line: str):
        """Ends the build with `line`: left for the launcher, and raised."""
        self._leave(line)
        raise WorkerSetupError(line)

    def _leave(self, line: str) -> None:
        if not self.directory:
            return
        with contextlib.suppress(Exception):  # the exception itself still fails the bundle
            path = FileSystems.join(self.directory, f"{uuid.uuid4().hex}.txt")
            with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                f.write(line.encode("utf-8"))

    def first(self) -> str | None:
        """The launcher's look: a line some worker left, if any."""
        if not self.directory:
            return None
        with contextlib.suppress(Exception):
            found = FileSystems.match([FileSystems.join(self.directory, "*.txt")])[0].metadata_list
            if found:
                with FileSystems.open(min(m.path for m in found), compression_type=CompressionTypes.UNCOMPRESSED) as f:
                    return f.read().decode("utf-8", "replace").strip()
        return None


_LINE = re.compile(r"(?:WorkerSetupError|BuildStopped): ([^\n]+)")
# A full disk, wherever a worker was writing: the user's to fix, so one line rather than a traceback.
_NO_SPACE = re.compile(r"\[Errno 28\] No space left on device(?:: '([^']*)')?")


def setup_failure(error: BaseException | None) -> str | None:
    """The first BuildStopped line in an exception, its causes, or their text (remote tracebacks); or the full
    disk one of them reports."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, BuildStopped):
            return str(error)
        found = _LINE.search(str(error))
        if found:
            return found.group(1).strip()
        full = _NO_SPACE.search(str(error))
        if full:
            where = full.group(1) or "--output or the build's temporary folder"
            return (
                f"no space left on device writing {where}: free space there (or choose another --output) and run again"
            )
        error = error.__cause__ or error.__context__
    return None
