"""Progress bars for local builds, drawn from what the build writes under DIR/.vocaloom-tmp/.

Beam's local runners report metrics only when a pipeline ends, so the bars watch the files instead: tokens
tokenised so far (the spill files' size) and shards written (the shard temp files). Neither step knows its total
in advance, so the bars count and show a rate, not a percentage. They are drawn only for a local runner writing
to a local directory, and only on a terminal (tqdm stays quiet under cron, systemd and CI).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading

from tqdm import tqdm

from pipelines.build import TEMP_DIR
from schemas.config import ConfigError, add_build_arguments, config_from_args
from transforms.spill import TOKEN

LOCAL_RUNNERS = (None, "FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner")
POLL_SECONDS = 0.5


class TempDirProgress:
    """Two bars fed by one look at the temporary folder per `poll`."""

    def __init__(self, temp_dir: str, file=None, disable: bool | None = None):
        self._spill, self._shards = os.path.join(temp_dir, "spill"), os.path.join(temp_dir, "shards")
        bar = dict(file=file or sys.stderr, disable=disable, dynamic_ncols=True)
        self.tokens = tqdm(desc="tokenised", unit="tok", unit_scale=True, position=0, **bar)
        self.shards = tqdm(desc="shards written", unit="shard", position=1, **bar)

    def poll(self) -> None:
        self._advance(self.tokens, sum(e.stat().st_size for e in _files(self._spill)) // TOKEN.itemsize)
        self._advance(self.shards, sum(1 for _ in _files(self._shards)))

    @staticmethod
    def _advance(bar: tqdm, total: int) -> None:
        if total > bar.n:
            bar.update(total - bar.n)

    def close(self) -> None:
        self.tokens.close()
        self.shards.close()


def _files(directory: str):
    try:
        yield from (entry for entry in os.scandir(directory) if entry.is_file())
    except FileNotFoundError:  # not written yet, or already cleaned up by the commit step
        return


def local_temp_dir(argv: list[str]) -> str | None:
    """The build's temporary folder when the build runs locally into a local directory; else None."""
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    add_build_arguments(parser)
    parser.add_argument("--runner")
    try:
        args, _ = parser.parse_known_args(argv)
        runner = vars(args).pop("runner")
        output = config_from_args(args).output
    except (ConfigError, argparse.ArgumentError):  # the build reports bad options itself, once
        return None
    if runner not in LOCAL_RUNNERS or "://" in output:
        return None
    return os.path.join(output, TEMP_DIR)


@contextlib.contextmanager
def build_progress(argv: list[str]):
    """Draws the bars while the body (the build) runs."""
    temp_dir = local_temp_dir(argv) if sys.stderr.isatty() else None
    if temp_dir is None:
        yield
        return
    progress, stop = TempDirProgress(temp_dir), threading.Event()

    def watch():
        while not stop.wait(POLL_SECONDS):
            progress.poll()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
        progress.close()
