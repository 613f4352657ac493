"""The one vocabulary of every shard: SentencePiece ids, then special tokens, then speech tokens (docs/format.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BEGIN_OF_AUDIO, END_OF_AUDIO, EOS = "begin_of_audio", "end_of_audio", "eos"


@dataclass(frozen=True)
class Vocabulary:
    text_size: int
    specials: dict[str, int]
    speech_offset: int
    speech_size: int

    @property
    def size(self) -> int:
        return self.speech_offset + self.speech_size

    @property
    def eos(self) -> int:
        return self.specials[EOS]

    @classmethod
    def build(cls, text_size: int, text_eos: int | None, speech_size: int = 0) -> Vocabulary:
        """`text_eos`: the SentencePiece model's own eos id, or None when it has none (then eos is appended)."""
        names = [BEGIN_OF_AUDIO, END_OF_AUDIO] + ([EOS] if text_eos is None else [])
        specials = {name: text_size + i for i, name in enumerate(names)}
        if text_eos is not None:
            specials[EOS] = text_eos
        return cls(text_size, specials, text_size + len(names), speech_size)

    def to_json(self) -> dict:
        return {
            "text_size": self.text_size,
            "specials": dict(sorted(self.specials.items())),
            "speech_offset": self.speech_offset,
            "speech_size": self.speech_size,
            "size": self.size,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Vocabulary:
        return cls(obj["text_size"], dict(obj["specials"]), obj["speech_offset"], obj["speech_size"])
