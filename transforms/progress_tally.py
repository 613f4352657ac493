"""Counts as steps emit them, for the launcher's progress bars (pipelines/progress.py).

Beam's local runners report metrics only when a pipeline ends. So while the launcher draws bars, it names a folder
in the environment (PROGRESS_DIR), which worker processes inherit, and every process that emits a count
(transforms/counting.py) keeps a running total per count and writes it there, as JSON in one file per process,
at most every FLUSH_SECONDS. The bars read these files; none of this reaches the dataset.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter

from vocaloom.schemas.local_files import read_regular

PROGRESS_DIR = "VOCALOOM_PROGRESS_DIR"
FLUSH_SECONDS = 0.5
MAX_TALLY_BYTES = 1 << 20  # a process's totals: a few dozen counts

_lock = threading.Lock()
_totals: dict[str, dict[str, int | float]] = {}  # per progress folder: a process may run several builds
_flushed: dict[str, float] = {}


def tally(label: str, n: int | float) -> None:
    """Adds `n` to count `label` ("speech.spans_converted") when the launcher is drawing bars."""
    directory = os.environ.get(PROGRESS_DIR)
    if not directory:
        return
    with _lock:
        totals = _totals.setdefault(directory, {})
        totals[label] = totals.get(label, 0) + n
        now = time.monotonic()
        if now - _flushed.get(directory, 0.0) < FLUSH_SECONDS:
            return
        _flushed[directory] = now
        data = json.dumps(totals)
    try:
        os.makedirs(directory, exist_ok=True)
        temp = os.path.join(directory, f".{os.getpid()}-{threading.get_ident()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "w") as f:  # never through a link
            f.write(data)
        os.replace(temp, os.path.join(directory, f"{os.getpid()}.json"))
    except OSError:  # the build committed and removed its temporary folder meanwhile: the bars have ended
        pass


def progress_label(declared) -> str:
    """The tally of work a declared count will count when its step ends (a model's outputs, batch by batch)."""
    return f"progress.{declared.block}.{declared.name}"


def read_tallies(directory: str) -> Counter[str]:
    """Every process's totals in `directory`, summed."""
    summed: Counter[str] = Counter()
    try:
        names = [name for name in os.listdir(directory) if name.endswith(".json")]
    except FileNotFoundError:
        return summed
    for name in names:
        try:
            summed.update(json.loads(read_regular(os.path.join(directory, name), MAX_TALLY_BYTES, "progress tally")))
        except (OSError, ValueError):  # removed at the commit, not a regular file, too large, or not JSON
            continue
    return summed
