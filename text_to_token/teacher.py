"""The teacher (InSerter's route): espeak-ng speaks the text, the speech tokenizer turns the audio into units.

Every sentence is spoken from the same fresh engine state (see espeak_zygote), so the same text always gives the
same units in any process and any order. Leading and trailing silence (espeak-ng's exact zeros) is trimmed: a
span's units are its speech, not the engine's margins. Text is normalised (text_to_token/normalize.py, NORMALIZER)
before it is spoken, as the bundled student's input is: word starts are those of the normalised text's words.
"""

from __future__ import annotations

import ctypes
import struct
import subprocess
import sys
from dataclasses import dataclass

import numpy as np

from vocaloom.text_to_token.espeak_zygote import LIBRARY, SAMPLE_RATE
from vocaloom.text_to_token.normalize import NORMALIZERS
from vocaloom.text_to_token.speech_tokenizer import FRAME_RATE_HZ, SpeechTokenizer

MISSING = "espeak-ng is not installed: apt-get install espeak-ng"
NORMALIZER = "numbers-en/1"


class EspeakMissing(RuntimeError):
    """espeak-ng's shared library or voice data is absent."""


def check_espeak() -> None:
    """Raises EspeakMissing (one line naming the Debian package) unless espeak-ng can be loaded."""
    try:
        ctypes.CDLL(LIBRARY)
    except OSError:
        raise EspeakMissing(MISSING) from None


def espeak_version() -> str:
    """The installed espeak-ng's version ("1.51"): the teacher's audio, and so its units, depend on it."""
    check_espeak()
    info = ctypes.CDLL(LIBRARY).espeak_Info
    info.restype, info.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
    return info(None).decode()


@dataclass(frozen=True)
class Utterance:
    audio: np.ndarray  # int16 at SAMPLE_RATE, silence margins trimmed
    word_starts_s: np.ndarray  # float64 [words]: start of each whitespace-separated word, seconds into `audio`


def word_starts(text: str, events: np.ndarray, lead_s: float, duration_s: float) -> np.ndarray:
    """Start time of every whitespace-separated word from espeak-ng's word events (character offset, ms).

    espeak-ng may emit several events per word ("1990") or none (a lone dash), and offsets that point at the
    space before a word: each event goes to the word at or after its offset, a word takes its earliest event,
    and a word without one starts where the next word starts (zero duration). Starts are made non-decreasing.
    """
    spans, position = [], 0
    for word in text.split():
        position = text.index(word, position)
        spans.append(position + len(word))
        position += len(word)
    starts = np.full(len(spans), np.inf)
    ends = np.asarray(spans)
    for offset, ms in events:
        k = int(np.searchsorted(ends, offset, side="right"))  # the word the event falls in
        if k < len(starts):
            starts[k] = min(starts[k], ms / 1000.0 - lead_s)
    starts = np.minimum.accumulate(np.minimum(starts, duration_s)[::-1])[::-1]
    return np.clip(starts, 0.0, duration_s)


class EspeakProcess:
    """A client of one espeak_zygote server process."""

    def __init__(self):
        check_espeak()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vocaloom.text_to_token.espeak_zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdin and self.process.stdout  # both piped
        self._requests, self._replies = self.process.stdin, self.process.stdout

    def speak(self, text: str, prelude: str = "") -> Utterance:
        """Speaks `text` from a fresh engine state (after speaking `prelude`, if given, to change that state)."""
        data, before = text.encode("utf-8"), prelude.encode("utf-8")
        self._requests.write(struct.pack("<II", len(before), len(data)) + before + data)
        self._requests.flush()
        n, count = struct.unpack("<iI", self._read(8))
        if n < 0:
            raise RuntimeError(f"espeak-ng failed on {text[:40]!r}: {self._read(count).decode()}")
        audio = np.frombuffer(self._read(2 * n), "<i2")
        events = np.frombuffer(self._read(8 * count), "<i4").reshape(-1, 2)
        voiced = np.flatnonzero(audio)
        first, last = (voiced[0], voiced[-1] + 1) if len(voiced) else (0, 0)
        starts = word_starts(text, events, first / SAMPLE_RATE, (last - first) / SAMPLE_RATE)
        return Utterance(audio[first:last], starts)

    def _read(self, n: int) -> bytes:
        data = self._replies.read(n)
        if len(data) != n:
            raise RuntimeError(f"espeak-ng server stopped (exit status {self.process.poll()})")
        return data

    def close(self) -> None:
        if self.process.poll() is None:
            self._requests.close()
            self.process.wait()


class Teacher:
    """Text to units through espeak-ng and the speech tokenizer: the slow reference path (`--speech-source tts`)."""

    def __init__(self, tokenizer_dir: str):
        self.tokenizer = SpeechTokenizer.load(str(tokenizer_dir))
        self.engine = EspeakProcess()

    @staticmethod
    def normalize(text: str) -> str:
        """The text as the teacher speaks it."""
        return NORMALIZERS[NORMALIZER](text)

    def speak(self, text: str, prelude: str = "") -> tuple[np.ndarray, np.ndarray]:
        """Units of one text and the start of each word of `normalize(text)` in units (fractional), for building
        training pairs."""
        utterance = self.engine.speak(self.normalize(text), self.normalize(prelude))
        return self.tokenizer.units(utterance.audio, SAMPLE_RATE), utterance.word_starts_s * FRAME_RATE_HZ

    def units(self, texts: list[str]) -> list[list[int]]:
        return [self.speak(text)[0].tolist() for text in texts]

    def close(self) -> None:
        self.engine.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
