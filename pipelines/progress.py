"""Progress bars for local builds, drawn from what the build writes under DIR/.vocaloom-tmp/.

Beam's local runners report metrics only when a pipeline ends, so the bars watch the files instead: tokens
tokenised so far (the tokenizer's spill files) and shards written (the shard temp files). Neither total is known in
advance, so the bars count and show a rate; when the build ends, both are set to the manifest's figures, total and
count alike (tokens produced for the kept documents, text and speech; shards committed), so the last line a person
sees is what the dataset holds. They are drawn only for a local runner writing to a local directory, and only on a
terminal (tqdm stays quiet under cron, systemd and CI).
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading

from tqdm import tqdm

from vocaloom.pipelines.build import TOKEN_SPILL
from vocaloom.pipelines.output_dir import TEMP_DIR, staging_dir
from vocaloom.schemas.config import ArgumentParser, ConfigError, add_build_arguments, config_from_args
from vocaloom.schemas.manifest import MANIFEST
from vocaloom.schemas.paths import is_local
from vocaloom.transforms.io.spill import TOKEN

LOCAL_RUNNERS = (None, "FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner")
POLL_SECONDS = 0.5


class TempDirProgress:
    """Two bars fed by one look at the temporary folder per `poll`."""

    def __init__(self, temp_dir: str, file=None, disable: bool | None = None):
        self._spill, self._shards = os.path.join(temp_dir, TOKEN_SPILL), os.path.join(temp_dir, "shards")
        bar = dict(file=file or sys.stderr, disable=disable, dynamic_ncols=True)
        self.tokens = tqdm(desc="tokens", unit="tok", unit_scale=True, position=0, **bar)
        self.shards = tqdm(desc="shards written", unit="shard", position=1, **bar)
        self._lock = threading.Lock()  # the watcher polls while the build's thread finishes

    def poll(self) -> None:
        with self._lock:
            if self.tokens.total is None:
                self._advance(self.tokens, sum(e.stat().st_size for e in _files(self._spill)) // TOKEN.itemsize)
                self._advance(self.shards, sum(1 for _ in _files(self._shards)))

    @staticmethod
    def _advance(bar: tqdm, total: int) -> None:
        if total > bar.n:
            bar.update(total - bar.n)

    def finish(self, manifest: dict) -> None:
        """Both bars end on the manifest's figures: tokens produced for the kept documents, shards committed."""
        counts = manifest["counts"]
        with self._lock:
            for bar, final in ((self.tokens, counts["text_tokens"] + counts["speech_tokens"]),
                               (self.shards, sum(len(bucket["shards"]) for bucket in manifest["buckets"]))):
                bar.total = bar.n = final
                bar.refresh()

    def close(self) -> None:
        self.tokens.close()
        self.shards.close()


class _NoProgress:
    def finish(self, manifest: dict) -> None:
        pass


def _files(directory: str):
    try:
        yield from (entry for entry in os.scandir(directory) if entry.is_file())
    except FileNotFoundError:  # not written yet, or already cleaned up by the commit step
        return


def local_temp_dir(argv: list[str]) -> str | None:
    """The build's temporary folder when the build runs locally into a local directory; else None."""
    parser = ArgumentParser(add_help=False)
    add_build_arguments(parser)
    parser.add_argument("--runner")
    try:
        args, _ = parser.parse_known_args(argv)
        runner = vars(args).pop("runner")
        config = config_from_args(args)
    except ConfigError:  # the build reports bad options itself, once
        return None
    output = config.output
    if runner not in LOCAL_RUNNERS or not is_local(output):
        return None
    replaced = config.overwrite and os.path.exists(os.path.join(output, MANIFEST))  # built beside the old dataset
    return os.path.join(staging_dir(output) if replaced else output, TEMP_DIR)


@contextlib.contextmanager
def build_progress(argv: list[str], file=None):
    """Draws the bars while the body (the build) runs; the body calls finish(manifest) on what this yields."""
    stream = file or sys.stderr
    temp_dir = local_temp_dir(argv) if stream.isatty() else None
    if temp_dir is None:
        yield _NoProgress()
        return
    progress, stop = TempDirProgress(temp_dir, file=stream), threading.Event()

    def watch():
        while not stop.wait(POLL_SECONDS):
            progress.poll()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield progress
    finally:
        stop.set()
        watcher.join()
        progress.close()
