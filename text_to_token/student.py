"""The student: a non-autoregressive text-to-token model trained to imitate the espeak-ng teacher.

UTF-8 bytes -> convolution + transformer encoder -> one vector per whitespace-separated word (mean of its bytes,
then a word-level transformer layer) -> each word's duration in units (`durations="words"`: from the word's vector;
`"bytes"`: the sum of a duration per byte, so a word's length adds up from its letters as espeak-ng's adds up from
its phonemes, for words never seen) -> every unit frame reads the word's bytes
through Gaussian attention centred where the frame sits within the word (as in Non-Attentive Tacotron's Gaussian
upsampling, here over bytes) -> transformer decoder over the frames -> unit logits, argmax.

Non-autoregressive because the teacher is fast (hundreds of seconds of speech per CPU-second): one pass per batch
keeps the student at least as fast on CPU, and explicit durations give the length control that frame-by-frame
decoding lacks. Word durations are trained on espeak-ng's word timings, units with the true durations
(teacher forcing); generation uses the predicted ones. Every attention masks padding, so an item's units depend
on its batch-mates only through float rounding.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vocaloom.text_to_token.architectures import register

WHITESPACE_BYTES = (9, 10, 11, 12, 13, 32)


def sinusoids(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sinusoidal encoding of (possibly fractional) positions, [..., dim]."""
    freqs = torch.exp(torch.arange(0, dim, 2, device=positions.device) * (-math.log(10000.0) / dim))
    angles = positions.unsqueeze(-1).float() * freqs
    return torch.cat([angles.sin(), angles.cos()], -1)


class Words:
    """Where the whitespace-separated words of a padded byte batch are."""

    def __init__(self, inputs: torch.Tensor, lengths: torch.Tensor):
        batch, length = inputs.shape
        position = torch.arange(length, device=inputs.device)
        self.char_mask = position < lengths[:, None]  # [B, T]
        inside = self.char_mask & ~torch.isin(inputs, torch.tensor(WHITESPACE_BYTES, device=inputs.device))
        before = nn.functional.pad(inside, (1, 0))[:, :-1]
        after = nn.functional.pad(inside, (0, 1))[:, 1:]
        starts, ends = inside & ~before, inside & ~after
        self.counts = starts.sum(1)  # [B]
        width = max(int(self.counts.max()), 1) if batch else 1
        self.mask = torch.arange(width, device=inputs.device) < self.counts[:, None]  # [B, W]
        index = starts.long().cumsum(1) - 1  # word of each byte (spaces: the word before them)
        # [B, W, T]: which bytes belong to which word, spaces and padding excluded
        self.members = inside[:, None, :] & (index[:, None, :] == torch.arange(width, device=inputs.device)[:, None])
        self.first = torch.zeros(batch, width, device=inputs.device)
        self.last = torch.zeros(batch, width, device=inputs.device)
        self.first[self.mask] = position.expand(batch, -1)[starts].float()
        self.last[self.mask] = position.expand(batch, -1)[ends].float() + 1


class Frames:
    """Unit frames laid out over words: which word each frame is in and where inside it."""

    def __init__(self, starts: torch.Tensor, ends: torch.Tensor, totals: torch.Tensor, word_mask: torch.Tensor):
        """starts, ends: [B, W] word boundaries in frames (fractional); totals: [B] frame counts."""
        batch = starts.shape[0]
        width = max(int(totals.max()), 1) if batch else 1
        centre = torch.arange(width, device=starts.device).float() + 0.5
        self.mask = centre < totals[:, None]  # [B, F]
        # the word whose [start, end) holds the frame centre: count the words ending at or before it
        ends_or_inf = torch.where(word_mask, ends, torch.full_like(ends, float("inf")))
        last_word = (word_mask.sum(1) - 1).clamp(min=0)
        self.word = torch.minimum((ends_or_inf[:, None, :] <= centre[None, :, None]).sum(2), last_word[:, None])
        start = starts.gather(1, self.word)
        length = (ends - starts).gather(1, self.word)
        self.offset = ((centre - start) / length.clamp(min=1e-3)).clamp(0.0, 1.0)  # 0..1 through the word
        self.features = torch.stack(
            [self.offset, (centre - start) / 10.0, (start + length - centre) / 10.0, torch.log1p(length)], -1
        )
        self.position = centre - 0.5


class GaussianReader(nn.Module):
    """Each frame reads its word's bytes through Gaussians centred at its relative place in the word; every head
    has a learned width and offset, so heads can look a few bytes ahead or behind."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.values = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.log_width = nn.Parameter(torch.linspace(0.0, 1.5, heads))
        self.shift = nn.Parameter(torch.linspace(-1.0, 1.0, heads))

    def forward(self, chars, char_mask, words: Words, frames: Frames):
        batch, length, dim = chars.shape
        first, last = words.first.gather(1, frames.word), words.last.gather(1, frames.word)  # [B, F]
        centre = first + frames.offset * (last - first)  # in bytes
        byte_centres = torch.arange(length, device=chars.device).float() + 0.5
        distance = byte_centres[None, None, None, :] - centre[:, None, :, None] - self.shift[None, :, None, None]
        logits = -0.5 * (distance / self.log_width.exp()[None, :, None, None]) ** 2  # [B, H, F, T]
        logits = logits.masked_fill(padding(char_mask)[:, None, None, :], float("-inf"))
        values = self.values(chars).view(batch, length, self.heads, dim // self.heads).transpose(1, 2)
        read = (logits.softmax(-1) @ values).transpose(1, 2).reshape(batch, -1, dim)
        return self.out(read)


def word_ends(word_starts: torch.Tensor, counts: torch.Tensor, totals: torch.Tensor) -> torch.Tensor:
    """Each word ends where the next starts and the last at the utterance's end: [B, W] from starts [B, W],
    word counts [B] and unit counts [B] (entries past a row's words are meaningless)."""
    ends = torch.cat([word_starts[:, 1:], word_starts[:, -1:]], 1)
    last = torch.arange(ends.shape[1], device=ends.device) == (counts - 1)[:, None]
    return torch.where(last, totals[:, None].float(), ends)


def full_precision(like: torch.Tensor):
    """float32 inside a bf16 autocast region (the handler's on CUDA): for the few small products whose rounding
    would change the units."""
    return torch.autocast(like.device.type, enabled=False)


def padding(mask: torch.Tensor) -> torch.Tensor:
    """Key padding mask for a transformer; position 0 always counts as real, so a row with nothing in it (an
    empty text, a text without words) attends to something instead of producing NaN (its output is unused)."""
    padded = ~mask
    padded[:, 0] = False
    return padded


class EncoderLayer(nn.TransformerEncoderLayer):
    """torch's pre-norm encoder layer without dropout, always computed as written here: at inference torch
    otherwise takes a fused "fast path" whose masked softmax is slower on CPU for padded batches (longest lines
    worst), for the same units. Same parameters and state-dict keys as torch's layer."""

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = self.norm1(src)
        src = (
            src
            + self.self_attn(
                x,
                x,
                x,
                attn_mask=src_mask,
                key_padding_mask=src_key_padding_mask,
                need_weights=False,
                is_causal=is_causal,
            )[0]
        )
        return src + self.linear2(self.activation(self.linear1(self.norm2(src))))


def transformer(dim: int, heads: int, layers: int, feedforward: int) -> nn.TransformerEncoder:
    # no dropout: the student sees each training pair about once, so it cannot overfit them
    layer = EncoderLayer(dim, heads, feedforward, 0.0, batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


@register("duration-units-v1")
class DurationUnits(nn.Module):
    def __init__(
        self,
        codebook_size: int,
        dim: int = 128,
        heads: int = 4,
        feedforward: int = 384,
        encoder_layers: int = 2,
        decoder_layers: int = 3,
        durations: str = "words",
    ):
        super().__init__()
        if durations not in ("words", "bytes"):
            raise ValueError(f"durations must be 'words' or 'bytes', not {durations!r}")
        self.dim, self.durations = dim, durations
        self.embed = nn.Embedding(256, dim)
        self.convolutions = nn.Sequential(
            nn.Conv1d(dim, dim, 5, padding=2), nn.GELU(), nn.Conv1d(dim, dim, 5, padding=2), nn.GELU()
        )
        self.encoder = transformer(dim, heads, encoder_layers, feedforward)
        self.word_context = transformer(dim, heads, 1, feedforward)
        self.duration = nn.Linear(dim, 1)  # of a word's vector, or of each byte's
        self.reader = GaussianReader(dim, heads)
        self.word_to_frame = nn.Linear(dim, dim)
        self.frame_features = nn.Linear(4, dim)
        self.decoder = transformer(dim, heads, decoder_layers, feedforward)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, codebook_size)

    def encode(self, inputs: torch.Tensor, lengths: torch.Tensor):
        """Byte states [B, T, D], the word layout, word states [B, W, D] and log(1 + frames) per word [B, W]."""
        words = Words(inputs, lengths)
        mask = words.char_mask
        x = self.embed(inputs) * mask[..., None]
        x = x + self.convolve(x, mask)
        x = x + sinusoids(torch.arange(inputs.shape[1], device=inputs.device), self.dim)
        chars = self.encoder(x, src_key_padding_mask=padding(mask))
        members = words.members.float()
        pooled = members @ chars / members.sum(2, keepdim=True).clamp(min=1.0)
        word_states = self.word_context(pooled, src_key_padding_mask=padding(words.mask))
        with full_precision(inputs):  # a duration's rounding decides how many units a word gets
            if self.durations == "words":
                return chars, words, word_states, self.duration(word_states.float()).squeeze(-1)
            per_byte = nn.functional.softplus(self.duration(chars.float()).squeeze(-1)) * mask
            return chars, words, word_states, torch.log1p(members @ per_byte[..., None]).squeeze(-1)

    def convolve(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The two convolutions, each output masked: the second must read zeros past the text's end, as it does
        for an unpadded text, not the first one's response to padding."""
        first_conv, first_gelu, second_conv, second_gelu = self.convolutions
        h = first_gelu(first_conv(x.transpose(1, 2))) * mask[:, None, :]
        return (second_gelu(second_conv(h)) * mask[:, None, :]).transpose(1, 2)

    def unit_logits(self, chars, words: Words, word_states, frames: Frames) -> torch.Tensor:
        x = self.reader(chars, words.char_mask, words, frames)
        x = x + self.word_to_frame(word_states.gather(1, frames.word[..., None].expand(-1, -1, self.dim)))
        x = x + self.frame_features(frames.features) + sinusoids(frames.position, self.dim)
        states = self.norm(self.decoder(x, src_key_padding_mask=padding(frames.mask)))
        with full_precision(x):  # the unit is an argmax: bf16 logits would tie and flip; the head is cheap
            return self.head(states.float())

    def forward(self, inputs, lengths, word_starts, totals):
        """Training pass with the teacher's durations: (unit logits [B, F, K], frame mask, log-duration
        predictions [B, W], word mask). word_starts: [B, W] teacher word starts in frames; totals: [B] units."""
        chars, words, word_states, log_durations = self.encode(inputs, lengths)
        frames = Frames(word_starts, word_ends(word_starts, words.counts, totals), totals, words.mask)
        return self.unit_logits(chars, words, word_states, frames), frames.mask, log_durations, words.mask

    @torch.no_grad()
    def generate(self, inputs: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """Units of each item of a padded batch, in one pass. Masking makes batch-mates irrelevant up to float
        rounding (sums over differently padded shapes can differ in the last bits and flip a duration's rounding),
        so the pipeline forms the same batches on every runner (speech_conversion.SpanBatches)."""
        chars, words, word_states, log_durations = self.encode(inputs, lengths)
        durations = torch.where(words.mask, torch.expm1(log_durations).clamp(min=0.0), 0.0)
        ends = durations.cumsum(1)
        totals = ends.gather(1, (words.counts - 1).clamp(min=0)[:, None]).squeeze(1).round() * (words.counts > 0)
        frames = Frames(ends - durations, ends, totals, words.mask)
        units = self.unit_logits(chars, words, word_states, frames).argmax(-1)
        return [units[i, :n] for i, n in enumerate(totals.long().tolist())]  # one device sync, not one a row
