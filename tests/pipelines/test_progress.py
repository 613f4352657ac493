import io

import numpy as np

from vocaloom.pipelines.build import TOKEN_SPILL, run
from vocaloom.pipelines.progress import TempDirProgress, build_progress, local_temp_dir
from tests.conftest import RUNNER, TEXT_ONLY


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_count_spilled_tokens_and_shard_files(tmp_path):
    out = io.StringIO()
    progress = TempDirProgress(str(tmp_path), file=out, disable=False)
    progress.poll()  # nothing written yet
    spill = tmp_path / TOKEN_SPILL
    spill.mkdir(parents=True)
    (spill / "a.i32").write_bytes(np.zeros(1500, "<i4").tobytes())
    (spill / "b.i32").write_bytes(np.zeros(500, "<i4").tobytes())
    (tmp_path / "spill" / "woven.i32").write_bytes(np.zeros(700, "<i4").tobytes())  # not the tokenizer's
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / "bucket-00256-slot-00000.arrow").write_bytes(b"x")
    progress.poll()
    assert (progress.tokens.n, progress.shards.n) == (2000, 1)
    progress.close()
    assert "tokens" in out.getvalue() and "shards written" in out.getvalue()


def test_bars_end_on_the_manifests_figures(tmp_path):
    terminal = Terminal()
    argv = ["--output", str(tmp_path / "ds"), "--shard-tokens", "200000", *TEXT_ONLY, *RUNNER]
    with build_progress(argv, file=terminal) as progress:
        manifest = run(argv)
        progress.finish(manifest)
    counts = manifest["counts"]
    produced, shards = counts["text_tokens"] + counts["speech_tokens"], sum(len(b["shards"]) for b in manifest["buckets"])
    assert shards > 1
    assert (progress.tokens.n, progress.tokens.total) == (produced, produced)
    assert (progress.shards.n, progress.shards.total) == (shards, shards)
    last_lines = terminal.getvalue().rsplit("\r", 4)
    assert any(f"{shards}/{shards}" in line for line in last_lines), terminal.getvalue()[-400:]


def test_bars_only_for_local_runners_and_directories():
    assert local_temp_dir(["--output", "o"]) == "o/.vocaloom-tmp"
    assert local_temp_dir(["--output", "o", "--runner", "DirectRunner"]) == "o/.vocaloom-tmp"
    assert local_temp_dir(["--output", "o", "--runner=FlinkRunner"]) is None
    assert local_temp_dir(["--output", "gs://bucket/o"]) is None
    assert local_temp_dir(["--output", "o", "--min-bucket", "x"]) is None  # the build reports it, once
