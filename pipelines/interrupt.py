"""Ctrl-C while a build runs: Beam re-raises the KeyboardInterrupt from inside a step as a RuntimeError, so SIGINT is
remembered here, for the command to end with one line and exit 130 whatever the runner made of it.

A KeyboardInterrupt lands wherever the main thread is, and a runner caught between its threads there may never
unwind: so the first Ctrl-C also starts a watchdog that ends the process, with the same line and status, once
GRACE_SECONDS have passed. What a build leaves when it ends that way is what a killed build leaves, which a rerun
takes over (docs/operations.md#a-killed-build).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

INTERRUPTED = "vocaloom: error: interrupted"
GRACE_SECONDS = 30.0


class Interrupted:
    seen = False
    _reported = False
    _report_lock = threading.Lock()

    @classmethod
    def handle(cls, signum, frame):
        if not cls.seen:
            cls.seen = True
            watchdog = threading.Timer(GRACE_SECONDS, cls._end_now)
            watchdog.daemon = True
            watchdog.start()
        raise KeyboardInterrupt

    @classmethod
    def report(cls) -> int:
        """Says the one line, once whoever asks (the command on its way out, or the watchdog); the exit status."""
        with cls._report_lock:
            if not cls._reported:
                cls._reported = True
                print(INTERRUPTED, file=sys.stderr, flush=True)
        return 130

    @classmethod
    def _end_now(cls):
        os._exit(cls.report())


@contextlib.contextmanager
def remembering_sigint():
    """SIGINT handled by Interrupted while inside (in the main thread only: signals go there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    Interrupted.seen = Interrupted._reported = False
    previous = signal.signal(signal.SIGINT, Interrupted.handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def reraise_if_interrupted() -> None:
    """In a handler of any Exception: a failure that was Ctrl-C becomes KeyboardInterrupt again."""
    if Interrupted.seen:
        raise KeyboardInterrupt from None
