"""A tiny Hugging Face causal LM whose greedy output is known, in vocaloom's causal LM format, made by the tests.

It is scripts/recipes/make_causal_lm.py's Llama (bytes 0-255, padding 256, the end token 257, then UNITS speech units)
with random layers, but with embeddings that dominate the residual stream and an output layer set so that the prompt's
last byte b is followed by unit b mod UNITS, unit u by unit u + 1, and the last unit by the end token.
"""

from pathlib import Path

import torch

from scripts.recipes.make_causal_lm import END, UNIT_OFFSET, llama, save

UNITS, HIDDEN = 64, 128


def expected_units(text: str) -> list[int]:
    """What the model says for a text: from its last byte's unit up to the last unit."""
    return list(range(text.encode()[-1] % UNITS, UNITS))


def make_causal_lm(folder: Path, seed: int = 0, **settings) -> Path:
    model = llama(
        {
            "hidden_size": HIDDEN,
            "intermediate_size": 2 * HIDDEN,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
        },
        UNITS,
        seed,
    )
    vocab = UNIT_OFFSET + UNITS
    with torch.no_grad():
        embeddings = torch.nn.functional.normalize(torch.randn(vocab, HIDDEN), dim=1)
        model.model.embed_tokens.weight.copy_(embeddings * HIDDEN**0.5)
        head = torch.zeros(vocab, HIDDEN)
        for byte in range(256):
            head[UNIT_OFFSET + byte % UNITS] += embeddings[byte]
        for unit in range(1, UNITS):
            head[UNIT_OFFSET + unit] += embeddings[UNIT_OFFSET + unit - 1]
        head[END] = embeddings[UNIT_OFFSET + UNITS - 1]
        model.lm_head.weight.copy_(head)
    return save(folder, model, UNITS, **{"max_units_per_character": 8.0, **settings})
