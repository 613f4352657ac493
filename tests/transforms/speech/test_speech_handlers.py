"""The text-to-token model slot (transforms/speech/speech_handlers.py): precision in cache keys, how a span is sized
for batching and how a GPU-sized batch is split into model calls."""

import re

import pytest

from tests.text_to_token.toy_models import make_toy_model
from vocaloom.text_to_token.model_file import read_model
from vocaloom.transforms.speech.speech_handlers import (
    TextToTokenHandler,
    model_calls,
    precision_name,
    units_identity,
)


def test_bf16_units_get_their_own_cache_identity(tmp_path):
    folder = make_toy_model(tmp_path / "m")
    spec = read_model(folder)
    bf16 = spec.__class__(spec.path, {**spec.config, "dtype": "bfloat16"}, spec.sha256, spec.architecture)
    assert precision_name(spec, "cuda") == "float32" and precision_name(bf16, "cpu") == "float32"
    assert precision_name(bf16, "cuda") == "bfloat16"
    assert units_identity(spec.sha256, "float32") == spec.sha256
    assert units_identity(spec.sha256, "bfloat16") == f"{spec.sha256}+bfloat16"


def test_a_span_is_sized_by_what_the_model_reads(tmp_path):
    """The bundled student reads numbers as words: a digit run is sized by its words, not its characters."""
    from vocaloom import assets

    handler = TextToTokenHandler(read_model(str(assets.TEXT_TO_TOKEN_MODEL)))
    assert handler.span_size("hello") == 5
    assert handler.span_size("1764") > 4 * 5  # "one thousand seven hundred sixty-four" or the like
    toy = TextToTokenHandler(read_model(make_toy_model(tmp_path / "m")))
    assert toy.span_size("") == 1 and toy.span_size("é") == 2  # UTF-8 bytes; never 0


def test_model_calls_split_a_batch_where_rows_times_longest_squared_would_pass_the_cells():
    assert model_calls([1, 2, 3], cells=100) == [range(3)]
    assert model_calls([5, 5, 5, 5, 10], cells=100) == [range(4), range(4, 5)]  # 5 x 10^2 > 100
    assert model_calls([20], cells=100) == [range(1)]  # a row alone always makes a call
    assert model_calls([], cells=100) == []


def test_the_teachers_identity_is_its_speech_tokenizer_and_its_espeak_ng_and_a_worker_checks_the_second():
    """The teacher's units depend on espeak-ng as much as on the speech tokenizer: another version gets other cache
    entries, and a worker with another version stops the build rather than make other units."""
    import dataclasses
    import hashlib

    from vocaloom import assets
    from vocaloom.text_to_token.teacher import espeak_version
    from vocaloom.transforms.artifacts import read_artifact
    from vocaloom.transforms.speech.speech_handlers import TeacherHandler, read_teacher
    from vocaloom.transforms.worker_setup import BuildStops, WorkerSetupError

    spec = read_teacher(read_artifact(assets.bundled("speech-tokenizer")))
    version = espeak_version()
    assert spec.espeak_version == version and version[:1].isdigit()
    expected = hashlib.sha256(f"{spec.tokenizer_sha256}\0espeak-ng {version}".encode()).hexdigest()
    assert spec.sha256 == expected != spec.tokenizer_sha256
    elsewhere = dataclasses.replace(spec, espeak_version="0.1")
    assert elsewhere.sha256 != spec.sha256
    with pytest.raises(
        WorkerSetupError, match=rf"espeak-ng {re.escape(version)} here, the build was planned with 0\.1"
    ):
        TeacherHandler(elsewhere, BuildStops()).load_model()
