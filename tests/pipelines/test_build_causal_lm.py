"""A speech build whose text-to-token model is a Hugging Face causal LM (a tiny Llama the tests make): its units in
the shards, its dead letters, one line for a broken directory, and the same shards in one process and in two
worker processes (the model's batches are formed by the pipeline, not by how a runner bundles spans)."""

import subprocess
import sys

import pytest

from tests.conftest import speech_of
from tests.pipelines.test_build_speech import build, build_sample, rows, write_corpus
from tests.pipelines.test_runners import dataset_files
from tests.text_to_token.causal_lms import UNITS, make_causal_lm
from tests.venvs import ENV
from vocaloom.pipelines.verify import verify

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(make_causal_lm(tmp_path_factory.mktemp("lm") / "lm", max_units_per_character=64.0))


@pytest.fixture(scope="module")
def built(tmp_path_factory, model):
    return build_sample(tmp_path_factory, model)


def test_the_causal_lms_units_are_in_the_shards(built):
    folder, _, manifest = built
    assert verify(str(folder / "out")) == []
    speech, vocab = manifest["speech"], manifest["vocab"]
    assert speech["spans"] == speech["spans_converted"] > 0 and speech["spans_failed"] == 0
    assert (speech["codebook_size"], speech["dtype"], speech["frame_rate_hz"]) == (UNITS, "float32", 12.5)
    assert vocab["speech_size"] == UNITS and manifest["counts"]["speech_tokens"] > 0
    speech_ids = range(vocab["speech_offset"], vocab["size"])
    assert any(any(t in speech_ids for t in row) for row in rows(folder / "out", manifest))


def test_two_worker_processes_write_the_same_shards(built, model, tmp_path):
    folder, corpus, _ = built
    build(corpus, tmp_path / "mp", model, "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    assert dataset_files(tmp_path / "mp") == dataset_files(folder / "out")


def test_spans_past_the_length_cap_are_dead_letters(tmp_path):
    model = make_causal_lm(tmp_path / "lm", max_units_per_character=1.0)
    manifest = build(write_corpus(tmp_path / "in"), tmp_path / "out", str(model), "--max-failed-batch-share", "1")
    speech = speech_of(manifest)
    assert speech["spans_failed"] > 0 and speech["spans_converted"] > 0
    assert verify(str(tmp_path / "out")) == []  # dead letters counted, their words kept as text


def test_a_broken_causal_lm_directory_fails_before_work_in_one_line(tmp_path):
    model = make_causal_lm(tmp_path / "lm")
    (model / "vocaloom-causal-lm.json").write_text('{"format": "vocaloom-causal-lm/1"}')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vocaloom",
            "build",
            "--output",
            str(tmp_path / "out"),
            "--text-to-token-model",
            str(model),
            "--runner=FnApiRunner",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"vocaloom: error: {model}: vocaloom-causal-lm.json: lacks prompt, unit_offset, unit_count, end_token, "
        "frame_rate_hz, max_units_per_character"
    ]
    assert not (tmp_path / "out").exists()
