"""Write a randomly initialised Hugging Face causal LM in vocaloom's causal LM format (text_to_token/causal_lm.py):
a Llama of the shape asked for, a byte-level tokenizer (ids 0-255, no merges), padding and end tokens, the rest of
a text vocabulary of --text-vocab ids (unused by the byte tokenizer, there for the model's size), then the speech
units. For speed measurements and smoke tests only: its units mean nothing.

    python3 -m scripts.recipes.make_causal_lm --out DIR [--shape 0.5b|tiny] [--units 16384] [--text-vocab 60000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# ~0.5B parameters: Qwen2.5-0.5B's layer shape (24 layers of width 896); with a 60,000-id text vocabulary and a
# 16,384-unit codebook, untied input and output embeddings.
SHAPES = {
    "0.5b": {
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
    },
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
}
PAD, END, UNIT_OFFSET = 256, 257, 258


def byte_tokenizer():
    """Every byte one token (GPT-2's byte-level alphabet, no merges), then <pad> and <end>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    char_of = {b: chr(b) for b in printable} | {b: chr(256 + i) for i, b in enumerate(others)}
    vocab = {char_of[b]: b for b in range(256)} | {"<pad>": PAD, "<end>": END}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<end>")


def llama(shape: dict, units: int, seed: int = 0, unit_offset: int = UNIT_OFFSET):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=unit_offset + units,
        max_position_embeddings=4096,
        pad_token_id=PAD,
        eos_token_id=END,
        tie_word_embeddings=False,
        **shape,
    )
    return LlamaForCausalLM(config)


def save(folder: Path, model, units: int, unit_offset: int = UNIT_OFFSET, **settings) -> Path:
    """The model, the byte tokenizer and vocaloom-causal-lm.json (prompt: the span's text alone)."""
    model.save_pretrained(folder, safe_serialization=True)
    byte_tokenizer().save_pretrained(folder)
    (folder / "vocaloom-causal-lm.json").write_text(
        json.dumps(
            {
                "format": "vocaloom-causal-lm/1",
                "prompt": "{text}",
                "unit_offset": unit_offset,
                "unit_count": units,
                "end_token": END,
                "frame_rate_hz": 12.5,
                "max_units_per_character": 2.0,
                **settings,
            },
            indent=1,
        )
    )
    return folder


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="0.5b")
    parser.add_argument("--units", type=int, default=16384)
    parser.add_argument("--text-vocab", type=int, default=60000, help="ids before the units (at least 258)")
    args = parser.parse_args(argv)
    if args.text_vocab < UNIT_OFFSET:
        parser.error(f"--text-vocab must be at least {UNIT_OFFSET} (bytes, padding, end)")
    model = llama(SHAPES[args.shape], args.units, unit_offset=args.text_vocab)
    save(args.out, model, args.units, args.text_vocab, dtype="bfloat16")
    print(f"{args.out}: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters")


if __name__ == "__main__":
    main()
