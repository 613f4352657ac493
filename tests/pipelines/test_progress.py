import io
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
from apache_beam.ml.inference.base import PredictionResult

from tests.conftest import RUNNER, TEXT_ONLY
from vocaloom.pipelines.build import TOKEN_SPILL, run
from vocaloom.pipelines.progress import PROGRESS, TempDirProgress, build_progress, local_temp_dir
from vocaloom.schemas.counts import SPANS_CACHED, SPANS_CONVERTED
from vocaloom.transforms import progress_tally
from vocaloom.transforms.counting import counted
from vocaloom.transforms.inference.cache import outputs_by_key
from vocaloom.transforms.progress_tally import PROGRESS_DIR, progress_label

pytestmark = pytest.mark.integration


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_count_tallies_spilled_tokens_and_shard_files(tmp_path, monkeypatch):
    out = io.StringIO()
    progress = TempDirProgress(str(tmp_path), file=out, disable=False)
    progress.poll()  # nothing written yet: no bar
    assert progress.bars == {}
    spill = tmp_path / TOKEN_SPILL
    spill.mkdir(parents=True)
    (spill / "a.i32").write_bytes(np.zeros(1500, "<i4").tobytes())
    (spill / "b.i32").write_bytes(np.zeros(500, "<i4").tobytes())
    (tmp_path / "spill" / "woven.i32").write_bytes(np.zeros(700, "<i4").tobytes())  # not the tokenizer's
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / "bucket-00256-slot-00000.arrow").write_bytes(b"x")
    monkeypatch.setenv(PROGRESS_DIR, progress.tallies)
    monkeypatch.setattr(progress_tally, "FLUSH_SECONDS", 0.0)
    examples = [SimpleNamespace(key=f"k{i}") for i in range(7)]
    list(outputs_by_key(PredictionResult(examples, [[1]] * 7), progress_label(SPANS_CONVERTED)))  # a model's batch
    counted(SPANS_CACHED, 3)  # as a step emits its counts, in any process
    counted(SPANS_CONVERTED, 7)  # once every batch is done: tallied apart, not counted twice
    (tmp_path / PROGRESS / "12345.json").write_text(json.dumps({"progress.speech.spans_converted": 1}))  # another
    progress.poll()
    assert {bar: progress.bars[bar].n for bar in progress.bars} == {
        "tokens": 2000,
        "speech spans": 11,
        "shards written": 1,
    }
    assert [abs(bar.pos) for bar in progress.bars.values()] == [0, 1, 2]  # stacked in the order stages begin
    progress.close()
    assert "speech spans" in out.getvalue() and "shards written" in out.getvalue()


def test_bars_end_on_the_manifests_figures(tmp_path):
    terminal = Terminal()
    argv = ["--output", str(tmp_path / "ds"), "--shard-tokens", "200000", *TEXT_ONLY, *RUNNER]
    with build_progress(argv, file=terminal) as progress:
        manifest = run(argv)
        progress.finish(manifest)
    assert PROGRESS_DIR not in os.environ
    counts = manifest["counts"]
    produced = counts["text_tokens"] + counts["speech_tokens"]
    shards = sum(len(b["shards"]) for b in manifest["buckets"])
    assert shards > 1
    figures = {"records read": counts["records_read"], "tokens": produced, "shards written": shards}
    assert {bar: (progress.bars[bar].n, progress.bars[bar].total) for bar in progress.bars} == {
        bar: (n, n) for bar, n in figures.items()
    }  # a text-only build: no speech or ordering bars
    last_lines = terminal.getvalue().rsplit("\r", 6)
    assert any(
        f"{shards}/{shards}" in line and f"{counts['tokens_written']:,} tokens" in line for line in last_lines
    ), terminal.getvalue()[-400:]


def test_bars_only_for_local_runners_and_directories():
    assert local_temp_dir(["--output", "o"]) == "o/.vocaloom-tmp"
    assert local_temp_dir(["--output", "o", "--runner", "DirectRunner"]) == "o/.vocaloom-tmp"
    assert local_temp_dir(["--output", "o", "--runner=FlinkRunner"]) is None
    assert local_temp_dir(["--output", "gs://bucket/o"]) is None
    assert local_temp_dir(["--output", "o", "--min-bucket", "x"]) is None  # the build reports it, once
