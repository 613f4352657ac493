"""`run()` inside someone else's process: what the build changes there, put back when it ends.

The in-process runner runs every DoFn's setup() in the caller's process, and those tune it for a build (the garbage
collector, torch's threads, an environment variable for offline model hubs); Beam adds logging handlers. Worker
processes may keep such changes; the caller's process gets back what it had.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import warnings


@contextlib.contextmanager
def as_guest():
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    environment = dict(os.environ)
    root = logging.getLogger()
    handlers, filters, level = list(root.handlers), list(root.filters), root.level
    warning_filters = list(warnings.filters)
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch else None
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if not frozen and gc.get_freeze_count():
            gc.unfreeze()
        for name in set(os.environ) - set(environment):
            del os.environ[name]
        for name, value in environment.items():
            if os.environ.get(name) != value:
                os.environ[name] = value
        root.handlers[:], root.filters[:] = handlers, filters
        root.setLevel(level)
        warnings.filters[:] = warning_filters  # type: ignore[index]  # a list, which typeshed calls a Sequence
        if torch and torch_threads is not None and torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)
