import json

import pytest
import torch

from tests.text_to_token.toy_models import BytePairUnits, make_toy_model
from vocaloom.text_to_token.model_file import CONFIG, WEIGHTS, ModelFileError, read_model


def test_round_trip_and_deterministic_units(tmp_path):
    spec = read_model(make_toy_model(tmp_path / "m"))
    assert (spec.frame_rate_hz, spec.codebook_size, len(spec.sha256)) == (12.5, 64, 64)
    model = spec.load()
    assert isinstance(model, BytePairUnits)  # make_toy_model's default architecture
    ids = torch.tensor([spec.encode_text("hello there"), spec.encode_text("hi") + [0] * 9])
    units = model.generate(ids, torch.tensor([11, 2]))
    assert [len(u) for u in units] == [6, 1]
    alone = model.generate(torch.tensor([spec.encode_text("hi")]), torch.tensor([2]))
    assert units[1].tolist() == alone[0].tolist()  # batching does not change a span's units


def test_character_input():
    from vocaloom.text_to_token.model_file import ModelSpec

    spec = ModelSpec("x", {"input": {"kind": "characters", "alphabet": "abc", "unknown_id": 3}}, "", object)
    assert spec.encode_text("cab!") == [2, 0, 1, 3]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / CONFIG).unlink(), "no config.json"),
        (lambda d: (d / WEIGHTS).unlink(), "no model.safetensors"),
        (lambda d: (d / CONFIG).write_text("{not json"), "config.json is not valid JSON"),
        (lambda d: _edit(d, format="other/9"), "format is 'other/9'"),
        (lambda d: _edit(d, architecture="transformer-xl"), "unknown architecture 'transformer-xl'"),
        (lambda d: _edit(d, codebook_size=0), "codebook_size must be an integer in [1, 1048576]"),
        (lambda d: _edit(d, frame_rate_hz=float("nan")), "frame_rate_hz must be a number in (0, 1000]"),
        (lambda d: _edit(d, frame_rate_hz=1e300), "frame_rate_hz must be a number in (0, 1000]"),
        (
            lambda d: _edit(d, codebook_size=32, hyperparameters={"codebook_size": 32}),
            "weights do not match architecture 'toy-byte-pairs' with these hyperparameters: ",
        ),
        (
            lambda d: _edit(d, codebook_size=1_000_000, hyperparameters={"codebook_size": 1_000_000}),
            "hyperparameter codebook_size=1000000 is larger than anything in the weights",
        ),
        (
            lambda d: _edit(d, hyperparameters={"codebook_size": 32}),
            "hyperparameters say codebook_size 32, config.json says ",
        ),
        (lambda d: _edit(d, hyperparameters={"layers": 3}), "refuses the hyperparameters: TypeError"),
        (
            lambda d: _edit(d, hyperparameters={"codebook_size": float("inf")}),
            "hyperparameters must map names to finite",
        ),
        (lambda d: (d / WEIGHTS).write_bytes(b"\x00" * 40), "model.safetensors is not a safetensors file"),
        (lambda d: _edit(d, dtype="float16"), "config.json dtype must be one of float32, bfloat16"),
    ],
)
def test_bad_model_files_fail_in_one_line(tmp_path, damage, message):
    folder = tmp_path / "m"
    make_toy_model(folder)
    damage(folder)
    with pytest.raises(ModelFileError) as e:
        read_model(str(folder))
    assert message in str(e.value) and "\n" not in str(e.value)


def _edit(folder, **changes):
    config = json.loads((folder / CONFIG).read_text())
    config.update(changes)
    (folder / CONFIG).write_text(json.dumps(config))


def test_bf16_applies_on_cuda_only(tmp_path):
    folder = tmp_path / "m"
    make_toy_model(folder)
    _edit(folder, dtype="bfloat16")
    spec = read_model(str(folder))
    assert [spec.dtype(device) for device in ("cuda", "cuda:3", "cpu")] == [
        torch.bfloat16,
        torch.bfloat16,
        torch.float32,
    ]
