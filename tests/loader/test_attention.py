import pytest
import torch

from vocaloom.loader.attention import cu_seqlens, loss_mask, position_ids
from vocaloom.schemas.vocab import Vocabulary

# Two rows of bucket 8: row 0 holds pieces at 0 and 3; row 1 at 0 and 5, and one at 8, which is a target only.
BATCH = {
    "bucket": 8,
    "doc_starts": torch.tensor([0, 3, 0, 5, 8], dtype=torch.int32),
    "doc_offsets": torch.tensor([0, 2, 5], dtype=torch.int32),
}


def test_cu_seqlens_over_the_flattened_inputs():
    boundaries, longest = cu_seqlens(BATCH)
    assert boundaries.dtype == torch.int32 and boundaries.tolist() == [0, 3, 8, 13, 16] and longest == 5


def test_cu_seqlens_make_the_block_diagonal_mask_of_the_documents():
    boundaries, _ = cu_seqlens(BATCH)
    piece = torch.repeat_interleave(torch.arange(len(boundaries) - 1), torch.diff(boundaries))
    mask = piece[:, None] == piece[None, :]
    assert mask[0, 2] and not mask[2, 3] and not mask[7, 8] and mask[13, 15] and mask.sum() == 9 + 25 + 25 + 9


def test_position_ids_restart_at_each_piece():
    assert position_ids(BATCH).tolist() == [[0, 1, 2, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 0, 1, 2]]


def test_loss_mask_excludes_speech_or_text_targets():
    vocab = Vocabulary.build(text_size=10, text_eos=2, speech_size=5)  # audio markers 10, 11; speech ids 12..16
    input_ids = torch.tensor([[5, 10, 12, 16, 11, 2, 17]])
    targets_are_speech = [True, True, True, True, False, False]  # 17 is outside the vocabulary's speech range
    assert loss_mask(input_ids, vocab).tolist() == [[True] * 6]
    assert loss_mask(input_ids, vocab, exclude="speech").tolist() == [[not s for s in targets_are_speech]]
    assert loss_mask(input_ids, vocab, exclude="text").tolist() == [targets_are_speech]
    with pytest.raises(ValueError, match="exclude 'audio' is none of"):
        loss_mask(input_ids, vocab, exclude="audio")
