import io

import numpy as np

from pipelines.progress import TempDirProgress, local_temp_dir


def test_bars_count_spilled_tokens_and_shard_files(tmp_path):
    out = io.StringIO()
    progress = TempDirProgress(str(tmp_path), file=out, disable=False)
    progress.poll()  # nothing written yet
    (tmp_path / "spill").mkdir()
    (tmp_path / "spill" / "a.i32").write_bytes(np.zeros(1500, "<i4").tobytes())
    (tmp_path / "spill" / "b.i32").write_bytes(np.zeros(500, "<i4").tobytes())
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / "bucket-00256-slot-00000.arrow").write_bytes(b"x")
    progress.poll()
    assert (progress.tokens.n, progress.shards.n) == (2000, 1)
    progress.close()
    assert "tokenised" in out.getvalue() and "shards written" in out.getvalue()


def test_bars_only_for_local_runners_and_directories():
    assert local_temp_dir(["--output", "o"]) == "o/.vocaloom-tmp"
    assert local_temp_dir(["--output", "o", "--runner", "DirectRunner"]) == "o/.vocaloom-tmp"
    assert local_temp_dir(["--output", "o", "--runner=FlinkRunner"]) is None
    assert local_temp_dir(["--output", "gs://bucket/o"]) is None
    assert local_temp_dir(["--output", "o", "--min-bucket", "x"]) is None  # the build reports it, once
