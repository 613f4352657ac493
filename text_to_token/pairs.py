"""Teacher pairs, the student's training data: texts with the teacher's units and word starts, as
scripts/recipes/synthesize_teacher_pairs.py writes them (texts.txt, pairs.safetensors, meta.json)."""

from pathlib import Path

import torch
from safetensors.torch import load_file


class Pairs:
    """Teacher pairs in memory: texts as UTF-8 bytes, units, word starts (in units)."""

    def __init__(self, folder: str):
        self.texts = [t.encode("utf-8") for t in (Path(folder) / "texts.txt").read_text("utf-8").splitlines()]
        tensors = load_file(str(Path(folder) / "pairs.safetensors"))
        self.units, self.unit_offsets = tensors["units"].long(), tensors["unit_offsets"]
        self.word_starts, self.word_offsets = tensors["word_starts"], tensors["word_offsets"]

    def __len__(self):
        return len(self.texts)

    def unit_count(self, i: int) -> int:
        return int(self.unit_offsets[i + 1] - self.unit_offsets[i])

    def batch(self, items: list[int]):
        """Padded tensors: bytes [B, T], byte lengths [B], word starts [B, W], unit counts [B], units [B, F]."""
        texts = [self.texts[i] for i in items]
        units = [self.units[self.unit_offsets[i] : self.unit_offsets[i + 1]] for i in items]
        starts = [self.word_starts[self.word_offsets[i] : self.word_offsets[i + 1]] for i in items]
        inputs = torch.zeros(len(items), max(map(len, texts)), dtype=torch.long)
        for row, text in enumerate(texts):
            inputs[row, : len(text)] = torch.tensor(list(text))
        return (
            inputs,
            torch.tensor([len(t) for t in texts]),
            torch.nn.utils.rnn.pad_sequence(starts, batch_first=True),
            torch.tensor([len(u) for u in units]),
            torch.nn.utils.rnn.pad_sequence(units, batch_first=True, padding_value=-100),
        )


def pairs_problem(folder: str) -> str | None:
    """One line naming what a pairs folder lacks, or None when it holds synthesize_teacher_pairs.py's files."""
    missing = [name for name in ("texts.txt", "pairs.safetensors", "meta.json") if not (Path(folder) / name).is_file()]
    if missing:
        return (
            f"--pairs {folder}: no {', '.join(missing)} (make them with "
            f"python3 -m scripts.recipes.synthesize_teacher_pairs --out {folder})"
        )
    return None
