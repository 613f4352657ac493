"""The registry of text-to-token architectures a model file may name.

An architecture is a torch.nn.Module built from its config's `hyperparameters`, whose `generate(inputs, lengths)`
maps a padded batch of input ids [B, T] and their lengths [B] to one 1-D tensor of unit ids per item, greedily
(deterministic: the same batch always gives the same units; the pipeline forms the same batches on every runner).
"""

from __future__ import annotations

ARCHITECTURES: dict[str, type] = {}


def register(name: str):
    """Class decorator: makes the architecture loadable by the name a model file's config gives."""

    def add(cls):
        ARCHITECTURES[name] = cls
        return cls

    return add
