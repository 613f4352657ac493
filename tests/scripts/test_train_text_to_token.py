"""The student's training script on a few synthetic pairs: a run stopped and resumed ends with the weights of a run
that was never stopped, and a checkpoint of other settings is refused."""
import json

import numpy as np
import pytest
from safetensors.numpy import save_file
from safetensors.torch import load_file

from scripts import train_text_to_token
from vocaloom.text_to_token.model_file import WEIGHTS, read_model

TEXTS = ["the cat sat", "on a mat", "twenty one words", "a", "more text to speak here", "and some more",
         "hello there", "x"] * 3


@pytest.fixture
def pairs(tmp_path):
    """Texts with random units (3 per word) and word starts every 3 units, in the synthesis script's format."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "pairs"
    folder.mkdir()
    words = [len(t.split()) for t in TEXTS]
    units = [rng.integers(0, 256, 3 * n).astype(np.int16) for n in words]
    starts = [np.arange(n, dtype=np.float32) * 3 for n in words]
    (folder / "texts.txt").write_text("".join(t + "\n" for t in TEXTS))
    save_file({"units": np.concatenate(units), "unit_offsets": np.cumsum([0] + [len(u) for u in units]),
               "word_starts": np.concatenate(starts), "word_offsets": np.cumsum([0] + words)},
              str(folder / "pairs.safetensors"))
    (folder / "meta.json").write_text(json.dumps({"pairs": len(TEXTS)}))
    return folder


def train(pairs, folder, *extra):
    train_text_to_token.main(["--pairs", str(pairs), "--out", str(folder / "model"), "--checkpoint",
                              str(folder / "checkpoint"), "--steps", "8", "--batch-units", "40", "--dim", "16",
                              "--heads", "2", "--feedforward", "32", "--encoder-layers", "1", "--decoder-layers", "1",
                              "--validation", "4", "--validate-every", "4", "--checkpoint-every", "3", "--warmup", "2",
                              *extra])


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
    assert [h["step"] for h in spec.config["training"]["history"]] == [4, 8]
    assert spec.encode_text("route 66") == list(b"route sixty six")


def test_a_checkpoint_of_other_settings_is_refused(pairs, tmp_path):
    train(pairs, tmp_path / "run", "--minutes", "0")
    with pytest.raises(SystemExit, match=r"checkpoint of other settings \(lr\): remove it or pass another"):
        train(pairs, tmp_path / "run", "--lr", "0.01")


def test_missing_pairs_are_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train(tmp_path / "nowhere", tmp_path / "run")
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no texts.txt, pairs.safetensors, meta.json (make them with scripts/synthesize_teacher_pairs.py" in error
