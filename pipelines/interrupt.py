"""Ctrl-C while a build runs: Beam re-raises the KeyboardInterrupt from inside a step as a RuntimeError, so SIGINT is
remembered here, for the command to end with one line and exit 130 whatever the runner made of it."""

from __future__ import annotations

import contextlib
import signal
import threading


class Interrupted:
    seen = False

    @classmethod
    def handle(cls, signum, frame):
        cls.seen = True
        raise KeyboardInterrupt


@contextlib.contextmanager
def remembering_sigint():
    """SIGINT handled by Interrupted while inside (in the main thread only: signals go there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    Interrupted.seen = False
    previous = signal.signal(signal.SIGINT, Interrupted.handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def reraise_if_interrupted() -> None:
    """In a handler of any Exception: a failure that was Ctrl-C becomes KeyboardInterrupt again."""
    if Interrupted.seen:
        raise KeyboardInterrupt from None
