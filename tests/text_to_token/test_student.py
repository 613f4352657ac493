from typing import Any

import pytest
import torch

from vocaloom import assets
from vocaloom.text_to_token.model_file import WEIGHTS, read_model, write_model
from vocaloom.text_to_token.student import DurationUnits

TEXTS = [
    "Hello there, my friend.",
    "a",
    "  In the beginning God created  the heaven and the earth ",
    "naïve café, 1990!",
    "",
    "   ",
]


@pytest.fixture(scope="module")
def bundled():
    spec = read_model(str(assets.TEXT_TO_TOKEN_MODEL))
    return spec, spec.load()


def batch(spec, texts):
    ids = [spec.encode_text(t) for t in texts]
    inputs = torch.zeros(len(ids), max(1, max(map(len, ids))), dtype=torch.long)
    for row, i in enumerate(ids):
        inputs[row, : len(i)] = torch.tensor(i, dtype=torch.long)
    return inputs, torch.tensor([len(i) for i in ids])


def test_bundled_model_reads_back_as_the_student(bundled):
    spec, model = bundled
    assert spec.architecture is DurationUnits and isinstance(model, DurationUnits)
    assert (spec.frame_rate_hz, spec.codebook_size) == (12.5, 256)
    assert spec.config["input"] == {"kind": "bytes", "normalize": "numbers-en/1"}
    assert spec.config["hyperparameters"]["durations"] == "bytes"
    assert (assets.TEXT_TO_TOKEN_MODEL / WEIGHTS).stat().st_size <= 20 * 1024 * 1024


def test_generate_shape_and_plausible_length(bundled):
    spec, model = bundled
    units = model.generate(*batch(spec, TEXTS))
    assert len(units) == len(TEXTS) and all(u.dtype == torch.long and u.dim() == 1 for u in units)
    assert all(int(u.min()) >= 0 and int(u.max()) < spec.codebook_size for u in units if len(u))
    assert [len(u) for u in units[-2:]] == [0, 0]  # no words, no speech
    words = len(TEXTS[2].split())
    assert 2.5 * words <= len(units[2]) <= 6.5 * words  # ~3 a word for KJV prose, ~4.4 over the eval sentences


def test_generate_is_deterministic_and_masks_padding(bundled):
    """Batch-mates may change a unit only through float rounding (the pipeline forms the same batches on every
    runner); on these texts, alone or together, in any order, nothing changes."""
    spec, model = bundled
    together = model.generate(*batch(spec, TEXTS))
    assert [u.tolist() for u in model.generate(*batch(spec, TEXTS))] == [u.tolist() for u in together]
    for text, units in zip(TEXTS, together):
        assert model.generate(*batch(spec, [text]))[0].tolist() == units.tolist()
    reversed_units = model.generate(*batch(spec, TEXTS[::-1]))[::-1]
    assert [u.tolist() for u in reversed_units] == [u.tolist() for u in together]


def test_training_pass_shapes():
    torch.manual_seed(0)
    model = DurationUnits(codebook_size=32, dim=32, heads=2, feedforward=64, encoder_layers=1, decoder_layers=1)
    inputs = torch.tensor([list(b"ab cd"), list(b"e") + [0] * 4])
    starts = torch.tensor([[0.0, 2.5], [0.0, 0.0]])
    logits, frame_mask, log_durations, word_mask = model(inputs, torch.tensor([5, 1]), starts, torch.tensor([6, 3]))
    assert logits.shape == (2, 6, 32) and frame_mask.sum(1).tolist() == [6, 3]
    assert log_durations.shape == (2, 2) and word_mask.tolist() == [[True, True], [True, False]]


def test_byte_durations_add_up_over_a_word():
    """durations="bytes": a word lasts the sum of its bytes' durations, so more letters make a longer word."""
    torch.manual_seed(0)
    model = DurationUnits(
        codebook_size=32, dim=32, heads=2, feedforward=64, encoder_layers=1, decoder_layers=1, durations="bytes"
    ).eval()
    with torch.no_grad():
        _, _, _, short = model.encode(torch.tensor([list(b"ab")]), torch.tensor([2]))
        _, _, _, long = model.encode(torch.tensor([list(b"abab")]), torch.tensor([4]))
    assert short.shape == (1, 1) and float(long[0, 0]) > float(short[0, 0]) > 0
    with pytest.raises(ValueError, match="durations must be 'words' or 'bytes'"):
        DurationUnits(codebook_size=32, durations="phones")


def test_small_student_round_trip(tmp_path, bundled):
    spec, _ = bundled
    torch.manual_seed(0)
    hyperparameters: dict[str, Any] = {  # DurationUnits' keyword arguments, as a model file holds them
        "codebook_size": 32,
        "dim": 32,
        "heads": 2,
        "feedforward": 64,
        "encoder_layers": 1,
        "decoder_layers": 1,
    }
    model = DurationUnits(**hyperparameters).eval()
    write_model(str(tmp_path / "m"), {**spec.config, "codebook_size": 32, "hyperparameters": hyperparameters}, model)
    loaded = read_model(str(tmp_path / "m")).load()
    assert isinstance(loaded, DurationUnits)
    inputs, lengths = batch(spec, TEXTS[:3])
    assert [u.tolist() for u in loaded.generate(inputs, lengths)] == [
        u.tolist() for u in model.generate(inputs, lengths)
    ]
