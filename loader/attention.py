"""Attention and loss helpers for a batch: document boundaries for variable-length attention, and loss masks.

A batch's inputs are input_ids[:, :-1] (rows x L positions) and its targets input_ids[:, 1:].
"""

from __future__ import annotations

import torch

from vocaloom.schemas.vocab import BEGIN_OF_AUDIO, END_OF_AUDIO, Vocabulary

LOSS_EXCLUSIONS = ("speech", "text")


def cu_seqlens(batch: dict) -> tuple[torch.Tensor, int]:
    """Start of every document piece over the flattened inputs (rows * L positions), then rows * L, as int32, and
    the longest piece: the `cu_seqlens` and `max_seqlen` of flash-attention's varlen functions."""
    length, starts, offsets = batch["bucket"], batch["doc_starts"], batch["doc_offsets"]
    rows = len(offsets) - 1
    row_of_start = torch.repeat_interleave(torch.arange(rows), torch.diff(offsets))
    flat_starts = (row_of_start * length + starts)[starts < length]  # a piece starting at L is a target only
    boundaries = torch.cat([flat_starts, torch.tensor([rows * length])]).to(torch.int32)
    return boundaries, int(torch.diff(boundaries).max())


def position_ids(batch: dict) -> torch.Tensor:
    """Each input position's offset from the start of its document piece, [rows, L] int64 (for RoPE)."""
    boundaries, _ = cu_seqlens(batch)
    starts = boundaries[:-1].long()
    piece_of = torch.repeat_interleave(torch.arange(len(starts)), torch.diff(boundaries))
    return (torch.arange(int(boundaries[-1])) - starts[piece_of]).view(len(batch["doc_offsets"]) - 1, -1)


def speech_token_mask(token_ids: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    """True for speech tokens: speech ids and the begin/end_of_audio markers; the rest (eos included) is text."""
    speech_end = vocab.speech_offset + vocab.speech_size
    markers = torch.tensor([vocab.specials[BEGIN_OF_AUDIO], vocab.specials[END_OF_AUDIO]], device=token_ids.device)
    return ((token_ids >= vocab.speech_offset) & (token_ids < speech_end)) | torch.isin(token_ids, markers)


def loss_mask(input_ids: torch.Tensor, vocab: Vocabulary, exclude: str | None = None) -> torch.Tensor:
    """[rows, L] bool, True where a target counts in the loss: all, or all but speech ("speech", as InSerter
    trains on text only) or all but text ("text") tokens."""
    targets = input_ids[:, 1:]
    if exclude is None:
        return torch.ones_like(targets, dtype=torch.bool)
    if exclude not in LOSS_EXCLUSIONS:
        raise ValueError(f"exclude {exclude!r} is none of None, {', '.join(map(repr, LOSS_EXCLUSIONS))}")
    speech = speech_token_mask(targets, vocab)
    return ~speech if exclude == "speech" else speech
