"""A few synthetic teacher pairs, in the synthesis script's format, and a tiny training run on them."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from scripts.recipes import train_text_to_token

TEXTS = [
    "the cat sat",
    "on a mat",
    "twenty one words",
    "a",
    "more text to speak here",
    "and some more",
    "hello there",
    "x",
] * 3


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
    save_file(
        {
            "units": np.concatenate(units),
            "unit_offsets": np.cumsum([0] + [len(u) for u in units]),
            "word_starts": np.concatenate(starts),
            "word_offsets": np.cumsum([0, *words]),
        },
        str(folder / "pairs.safetensors"),
    )
    (folder / "meta.json").write_text(json.dumps({"pairs": len(TEXTS)}))
    return folder


def train(pairs, folder, *extra):
    train_text_to_token.main(
        [
            "--pairs",
            str(pairs),
            "--out",
            str(folder / "model"),
            "--checkpoint",
            str(folder / "checkpoint"),
            "--steps",
            "8",
            "--batch-units",
            "40",
            "--dim",
            "16",
            "--heads",
            "2",
            "--feedforward",
            "32",
            "--encoder-layers",
            "1",
            "--decoder-layers",
            "1",
            "--validation",
            "4",
            "--validate-every",
            "4",
            "--checkpoint-every",
            "3",
            "--warmup",
            "2",
            *extra,
        ]
    )
