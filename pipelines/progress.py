"""Progress bars for local builds: one for each long stage, drawn as it starts.

Beam's local runners report metrics only when a pipeline ends, so the bars watch what the build leaves under
DIR/.vocaloom-tmp/: the counts its steps tally as they emit them (transforms/progress_tally.py: records read, speech
spans converted or served from the cache, embeddings, documents ordered), the tokenizer's spill files (tokens) and
the shard files (shards written). Totals are not known before a stage ends, so a bar counts and shows its recent
rate; when the build ends every bar is set to the manifest's figure, total and count alike, so the last lines a
person sees are what the dataset holds. They are drawn only for a local runner writing to a local directory, and
only on a terminal (tqdm stays quiet under cron, systemd and CI).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import NamedTuple

from tqdm import tqdm

from vocaloom.pipelines.build import TOKEN_SPILL
from vocaloom.pipelines.output_dir import staging_dir
from vocaloom.schemas.config import ArgumentParser, ConfigError, add_build_arguments, config_from_args
from vocaloom.schemas.counts import tokens_produced
from vocaloom.schemas.manifest import MANIFEST, Manifest
from vocaloom.schemas.paths import is_local
from vocaloom.schemas.shard import TEMP_DIR
from vocaloom.transforms.io.spill import TOKEN
from vocaloom.transforms.progress_tally import PROGRESS_DIR, read_tallies

LOCAL_RUNNERS = (None, "FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner")
POLL_SECONDS = 0.5
PROGRESS = "progress"  # under the temporary folder: the tallies


class Stage(NamedTuple):
    bar: str
    unit: str
    tallies: tuple[str, ...]  # the counts (labels) it sums; none: it counts files instead

    def final(self, manifest: Manifest) -> int:
        """The stage's figure in the manifest."""
        counts, speech, ordering = manifest["counts"], manifest["speech"], manifest["ordering"]
        return {
            "records read": counts["records_read"],
            "tokens": tokens_produced(counts),
            "speech spans": speech["spans"] if speech else 0,
            "embeddings": ordering["embeddings_cached"] + ordering["embeddings_computed"] if ordering else 0,
            "ordered documents": ordering["documents"] if ordering else 0,
            "shards written": sum(len(bucket["shards"]) for bucket in manifest["buckets"]),
        }[self.bar]


STAGES = (
    Stage("records read", "rec", ("counts.records_read",)),
    Stage("tokens", "tok", ()),
    # The model's outputs as they come (its counts come only once every batch is done), and cache hits.
    Stage("speech spans", "span", ("speech.spans_cached", "progress.speech.spans_converted")),
    Stage("embeddings", "doc", ("ordering.embeddings_cached", "progress.ordering.embeddings_computed")),
    Stage("ordered documents", "doc", ("ordering.documents",)),
    Stage("shards written", "shard", ()),
)


class TempDirProgress:
    """A bar per stage that has begun, fed by one look at the temporary folder per `poll`."""

    def __init__(self, temp_dir: str, file=None, disable: bool | None = None):
        self._spill, self._shards = os.path.join(temp_dir, TOKEN_SPILL), os.path.join(temp_dir, "shards")
        self.tallies = os.path.join(temp_dir, PROGRESS)
        self._style = {"file": file or sys.stderr, "disable": disable, "dynamic_ncols": True}
        self.bars: dict[str, tqdm] = {}
        self._finished = False
        self._lock = threading.Lock()  # the watcher polls while the build's thread finishes

    def poll(self) -> None:
        with self._lock:
            if self._finished:
                return
            tallies = read_tallies(self.tallies)
            for stage in STAGES:
                self._advance(stage, self._seen(stage, tallies))

    def _seen(self, stage: Stage, tallies) -> int:
        if stage.tallies:
            return int(sum(tallies.get(label, 0) for label in stage.tallies))
        if stage.bar == "tokens":
            return sum(e.stat().st_size for e in _files(self._spill)) // TOKEN.itemsize
        return sum(1 for _ in _files(self._shards))

    def _advance(self, stage: Stage, seen: int) -> None:
        if seen and stage.bar not in self.bars:  # a stage's bar appears when it begins, below the earlier ones
            self.bars[stage.bar] = tqdm(
                desc=stage.bar, unit=stage.unit, unit_scale=stage.unit == "tok", position=len(self.bars), **self._style
            )  # "13.0 shards": counts unscaled
        bar = self.bars.get(stage.bar)
        if bar is not None and seen > bar.n:
            bar.update(seen - bar.n)

    def finish(self, manifest: Manifest) -> None:
        """Every bar ends on the manifest's figure; a stage the build had (its figure is not 0) gets its bar."""
        with self._lock:
            self._finished = True
            for stage in STAGES:
                final = stage.final(manifest)
                self._advance(stage, final)
                bar = self.bars.get(stage.bar)
                if bar is not None:
                    bar.total = bar.n = final
                    if stage.bar == "shards written":  # what the dataset holds, beside the tokens made above
                        bar.set_postfix_str(f"{manifest['counts']['tokens_written']:,} tokens", refresh=False)
                    bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


class _NoProgress:
    def finish(self, manifest: Manifest) -> None:
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
    saved = os.environ.get(PROGRESS_DIR)
    os.environ[PROGRESS_DIR] = progress.tallies  # where the steps' tallies go: worker processes inherit it
    watcher.start()
    try:
        yield progress
    finally:
        stop.set()
        watcher.join()
        progress.close()
        if saved is None:
            os.environ.pop(PROGRESS_DIR, None)
        else:
            os.environ[PROGRESS_DIR] = saved
