"""A Hugging Face causal LM as the text-to-token model (text_to_token/causal_lm.py), on a tiny Llama the tests make
(tests/text_to_token/causal_lms.py): what its directory must hold, greedy batched generation with left padding,
the end token, the length cap and ids that are not units."""

import json

import pytest

from tests.text_to_token.causal_lms import UNITS, expected_units, make_causal_lm
from vocaloom.text_to_token.causal_lm import SETTINGS, CausalLMError, read_causal_lm

# Last bytes: "e" -> unit 37, 27 units; "x" -> 56, 8; "?" -> 63, 1; "a" -> 33, 31 (past a short cap).
TEXTS = ["hello there", "the quick brown fox jumps over the lazy dog", "x", "why?", "in the beginning"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_causal_lm(tmp_path_factory.mktemp("lm") / "lm")


@pytest.fixture(scope="module")
def loaded(model_dir):
    spec = read_causal_lm(str(model_dir))
    return spec, *spec.load()


def test_a_batch_gives_each_text_its_units_until_the_end_token(loaded):
    spec, model, tokenizer = loaded
    assert spec.generate(model, tokenizer, TEXTS) == [expected_units(text) for text in TEXTS]


def test_left_padding_leaves_each_row_as_it_is_alone(loaded):
    spec, model, tokenizer = loaded
    alone = [spec.generate(model, tokenizer, [text])[0] for text in TEXTS]
    assert spec.generate(model, tokenizer, list(reversed(TEXTS))) == list(reversed(alone))


def test_a_row_past_its_length_cap_fails_with_the_reason(tmp_path):
    spec = read_causal_lm(str(make_causal_lm(tmp_path / "lm", max_units_per_character=4.0)))
    model, tokenizer = spec.load()
    results = spec.generate(model, tokenizer, ["a", "x", "why?"])
    # "a": 31 units, cap 4; "x": 8 units, cap 4; "why?": 1 unit, cap 16.
    assert results == ["no end token within the length cap of 4 units"] * 2 + [[UNITS - 1]]


def test_an_id_outside_the_units_fails_the_row(tmp_path):
    spec = read_causal_lm(str(make_causal_lm(tmp_path / "lm", unit_count=UNITS // 2)))
    # "why?" says only the last unit (63), which is no longer a unit; "x" starts at 56.
    model, tokenizer = spec.load()
    results = spec.generate(model, tokenizer, ["why?", "x"])
    assert results == ["generated id 321, which is not a speech unit [258, 290)"] * 1 + [
        "generated id 314, which is not a speech unit [258, 290)"
    ]


def edit_settings(folder, **changes):
    settings = json.loads((folder / SETTINGS).read_text())
    settings.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del settings[key]
    (folder / SETTINGS).write_text(json.dumps(settings))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format": "other/1"}, "format is 'other/1'"),
        ({"prompt": None}, "lacks prompt"),
        ({"prompt": "no slot"}, "prompt must be a string holding {text}"),
        ({"unit_count": 10_000}, "with the units inside the vocabulary of 322"),
        ({"unit_offset": -1}, "with the units inside the vocabulary of 322"),
        ({"end_token": 300}, "end_token must be an id of the vocabulary of 322 outside the units"),
        ({"frame_rate_hz": float("nan")}, "frame_rate_hz must be a number in (0, 1000]"),
        ({"max_units_per_character": 0}, "max_units_per_character must be a number in (0, 1000]"),
        ({"dtype": "float8"}, "dtype must be one of float32, bfloat16"),
    ],
)
def test_settings_that_cannot_work_are_refused_in_one_line(tmp_path, changes, message):
    folder = make_causal_lm(tmp_path / "lm")
    edit_settings(folder, **changes)
    with pytest.raises(
        CausalLMError,
        match="^"
        + str(folder)
        + ".*"
        + message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]"),
    ) as error:
        read_causal_lm(str(folder))
    assert "\n" not in str(error.value)


def test_a_directory_without_safetensors_or_config_is_refused(tmp_path):
    folder = make_causal_lm(tmp_path / "lm")
    (folder / "model.safetensors").unlink()
    with pytest.raises(CausalLMError, match=r"no \.safetensors weights"):
        read_causal_lm(str(folder))
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CausalLMError, match=r"config\.json is not valid JSON"):
        read_causal_lm(str(folder))
