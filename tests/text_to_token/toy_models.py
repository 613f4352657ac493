"""Small deterministic text-to-token models for tests (the real one is the bundled model's job)."""

import torch

from vocaloom.text_to_token.architectures import register
from vocaloom.text_to_token.model_file import FORMAT, write_model


@register("toy-byte-pairs")
class BytePairUnits(torch.nn.Module):
    """One unit per two input bytes: argmax of a linear map of their summed embeddings. Padding is byte 0, so a
    span's units do not depend on what it was batched with."""

    def __init__(self, codebook_size: int = 64, dim: int = 16):
        super().__init__()
        self.embed = torch.nn.Embedding(256, dim)
        self.out = torch.nn.Linear(dim, codebook_size)

    def generate(self, inputs: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        if inputs.shape[1] % 2:
            inputs = torch.nn.functional.pad(inputs, (0, 1))
        x = self.embed(inputs)
        units = self.out(x[:, 0::2] + x[:, 1::2]).argmax(-1)
        return [units[i, : (int(n) + 1) // 2] for i, n in enumerate(lengths)]


@register("toy-fails-on-zebra")
class FailsOnZebra(BytePairUnits):
    """Fails a whole batch when any span in it mentions a zebra: a stand-in for a model crashing on bad input."""

    def generate(self, inputs, lengths):
        for row, n in zip(inputs, lengths):
            if b"zebra" in bytes(row[: int(n)].tolist()):
                raise ValueError("this model cannot say zebra")
        return super().generate(inputs, lengths)


def make_toy_model(path, architecture: str = "toy-byte-pairs", codebook_size: int = 64) -> str:
    torch.manual_seed(0)
    model = {"toy-byte-pairs": BytePairUnits, "toy-fails-on-zebra": FailsOnZebra}[architecture](codebook_size)
    config = {
        "format": FORMAT,
        "architecture": architecture,
        "frame_rate_hz": 12.5,
        "codebook_size": codebook_size,
        "input": {"kind": "bytes"},
        "hyperparameters": {"codebook_size": codebook_size},
    }
    write_model(str(path), config, model)
    return str(path)
