"""The student's training script on a few synthetic pairs: a run stopped and resumed ends with the weights of a run
that was never stopped, and a checkpoint of other settings is refused."""

import json

import pytest
from safetensors.torch import load_file

from tests.scripts.recipes.conftest import train
from vocaloom.text_to_token.model_file import WEIGHTS, read_model


def test_a_stopped_run_resumes_to_the_same_weights(pairs, tmp_path):
    train(pairs, tmp_path / "straight")
    train(pairs, tmp_path / "stopped", "--minutes", "0")  # stops after its first step
    assert not (tmp_path / "stopped" / "model").exists()
    assert json.loads((tmp_path / "stopped" / "checkpoint" / "state.json").read_text())["step"] == 1
    train(pairs, tmp_path / "stopped")
    straight, resumed = (load_file(str(tmp_path / run / "model" / WEIGHTS)) for run in ("straight", "stopped"))
    assert straight.keys() == resumed.keys() and all((straight[k] == resumed[k]).all() for k in straight)
    spec = read_model(str(tmp_path / "stopped" / "model"))
    assert spec.config["input"] == {"kind": "bytes", "normalize": "numbers-en/1"}
    history = spec.config["training"]["history"]
    assert [h["step"] for h in history] == [4, 8]
    assert all(0 <= h["uer_given_teacher_durations"] <= 1.5 and h["unit_error_rate"] >= 0 for h in history)
    assert spec.encode_text("route 66") == list(b"route sixty six")


def test_a_checkpoint_of_other_settings_is_refused(pairs, tmp_path):
    train(pairs, tmp_path / "run", "--minutes", "0")
    with pytest.raises(SystemExit, match=r"checkpoint of other settings \(lr\): remove it or pass another"):
        train(pairs, tmp_path / "run", "--lr", "0.01")


def test_missing_pairs_are_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train(tmp_path / "nowhere", tmp_path / "run")
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        "no texts.txt, pairs.safetensors, meta.json (make them with python3 -m scripts.recipes.synthesize_teacher_pairs"
        in error
    )
