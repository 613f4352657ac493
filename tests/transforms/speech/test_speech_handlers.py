"""The text-to-token model slot (transforms/speech/speech_handlers.py): precision in cache keys, how a span is sized
for batching and how a GPU-sized batch is split into model calls."""

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
