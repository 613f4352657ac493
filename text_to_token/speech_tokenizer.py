"""The speech tokenizer: audio to one stream of discrete units at 12.5 Hz.

16 kHz audio -> 80-bin log-mel every 10 ms (25 ms Hann window) -> mean of 8 frames (80 ms, 12.5 Hz) ->
per-dimension standardisation -> nearest centroid of a k-means codebook (learned with faiss by
scripts/recipes/build_speech_tokenizer.py). A tokenizer directory holds config.json and codebook.safetensors
(mean, std, centroids); no pickle.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

SAMPLE_RATE = 16000
HOP = 160  # 10 ms
WINDOW = 400  # 25 ms
N_FFT = 512
N_MELS = 80
FRAMES_PER_UNIT = 8  # 8 x 10 ms = 80 ms: 12.5 units per second
SAMPLES_PER_UNIT = HOP * FRAMES_PER_UNIT
FRAME_RATE_HZ = SAMPLE_RATE / SAMPLES_PER_UNIT
# espeak-ng's silence is exact zeros: without a floor its log-mel is -inf. 1e-5 is ~80 dB below full-scale speech.
MEL_FLOOR = 1e-5
CONFIG, CODEBOOK = "config.json", "codebook.safetensors"
FORMAT = "vocaloom-speech-tokenizer/1"


def _smooth_length(n: int) -> int:
    """The smallest 5-smooth number >= n: FFT lengths with large prime factors are many times slower."""
    best = 1 << max(0, (n - 1).bit_length())
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            length = power35
            while length < n:
                length *= 2
            best = min(best, length)
            power35 *= 3
        power5 *= 5
    return best


def resample(audio: np.ndarray, rate: int) -> np.ndarray:
    """Band-limited resampling to 16 kHz by truncating or zero-padding the spectrum. The signal is zero-padded to
    a length whose both FFTs are fast and the result cut back to round(len * 16000 / rate) samples; the circular
    edge effect is harmless because utterances start and end near silence."""
    n_out = round(len(audio) * SAMPLE_RATE / rate)
    if rate == SAMPLE_RATE or len(audio) == 0:
        return np.asarray(audio, np.float32)
    step = rate // math.gcd(rate, SAMPLE_RATE)  # padded lengths are multiples of this, so both lengths are whole
    padded = step * _smooth_length(-(-len(audio) // step))
    spectrum = np.fft.rfft(np.asarray(audio, np.float64), padded)
    padded_out = padded * SAMPLE_RATE // rate
    bins = padded_out // 2 + 1
    spectrum = spectrum[:bins] if len(spectrum) >= bins else np.pad(spectrum, (0, bins - len(spectrum)))
    return (np.fft.irfft(spectrum, padded_out)[:n_out] * (padded_out / padded)).astype(np.float32)


def _mel_filters() -> np.ndarray:
    """HTK-style triangular mel filters over 0-8 kHz, [N_MELS, N_FFT // 2 + 1]."""

    def mel(hz):
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(0.0), mel(SAMPLE_RATE / 2), N_MELS + 2))
    freqs = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


MEL_FILTERS = _mel_filters()
HANN = np.hanning(WINDOW + 1)[:-1].astype(np.float32)


def unit_features(audio16k: np.ndarray) -> np.ndarray:
    """Mean-pooled log-mel, [ceil(seconds * 12.5), N_MELS]. The audio is zero-padded to whole 80 ms units, so a
    unit covers exactly 1280 samples and the unit count is the duration times 12.5, rounded up."""
    n_units = -(-len(audio16k) // SAMPLES_PER_UNIT)
    if n_units == 0:
        return np.zeros((0, N_MELS), np.float32)
    padded = np.zeros(n_units * SAMPLES_PER_UNIT + WINDOW - HOP, np.float32)
    start = (WINDOW - HOP) // 2  # centres frame i on sample i * HOP + HOP / 2
    padded[start : start + len(audio16k)] = audio16k
    frames = np.lib.stride_tricks.sliding_window_view(padded, WINDOW)[::HOP][: n_units * FRAMES_PER_UNIT]
    power = (np.abs(np.fft.rfft(frames * HANN, N_FFT)) ** 2).astype(np.float32)
    # A stack of small products (one per unit): numpy hands each to BLAS alone, below OpenBLAS's threading
    # threshold. One large product wakes its thread pool, whose spinning costs ~20x the arithmetic on a busy
    # 2-core machine.
    mel = power.reshape(n_units, FRAMES_PER_UNIT, -1) @ MEL_FILTERS.T
    return np.log(np.maximum(mel, MEL_FLOOR)).mean(axis=1)


@dataclass(frozen=True)
class SpeechTokenizer:
    mean: np.ndarray  # [N_MELS]
    std: np.ndarray  # [N_MELS]
    centroids: np.ndarray  # [K, N_MELS], in standardised space

    @property
    def codebook_size(self) -> int:
        return len(self.centroids)

    def standardised(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.std).astype(np.float32)

    def units(self, audio: np.ndarray, rate: int) -> np.ndarray:
        """Unit ids (int64) of one utterance given as samples at `rate` Hz (int16 range or float)."""
        features = self.standardised(unit_features(resample(audio, rate) / 32768.0))
        products = (features[:, None, :] @ self.centroids.T)[:, 0]  # one small product a unit, as in unit_features
        return ((self.centroids**2).sum(1) - 2 * products).argmin(1).astype(np.int64)

    def save(self, path: str, config: dict) -> None:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"mean": self.mean, "std": self.std, "centroids": self.centroids}, str(folder / CODEBOOK))
        full = {
            "format": FORMAT,
            "frame_rate_hz": FRAME_RATE_HZ,
            "codebook_size": self.codebook_size,
            "sample_rate": SAMPLE_RATE,
            "n_mels": N_MELS,
            "hop": HOP,
            "window": WINDOW,
            "frames_per_unit": FRAMES_PER_UNIT,
            "mel_floor": MEL_FLOOR,
            **config,
        }
        (folder / CONFIG).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str) -> SpeechTokenizer:
        folder = Path(path)
        try:
            config = json.loads((folder / CONFIG).read_text())
            tensors = load_file(str(folder / CODEBOOK))
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: not a speech tokenizer directory ({e})") from None
        if config.get("format") != FORMAT:
            raise ValueError(f"{path}: {CONFIG} format is {config.get('format')!r}, expected {FORMAT!r}")
        return cls(tensors["mean"], tensors["std"], tensors["centroids"])
