import math

import numpy as np
import pytest

from vocaloom import assets
from vocaloom.text_to_token.speech_tokenizer import FRAME_RATE_HZ, SAMPLE_RATE, SpeechTokenizer, resample, unit_features


@pytest.fixture(scope="module")
def tokenizer():
    return SpeechTokenizer.load(str(assets.SPEECH_TOKENIZER))


@pytest.mark.parametrize("seconds", [0.05, 0.08, 1.0, 2.37, 7.0])
def test_units_per_second_of_audio_is_12_5(tokenizer, seconds):
    audio = np.random.default_rng(0).integers(-3000, 3000, round(seconds * 22050)).astype(np.int16)
    units = tokenizer.units(audio, 22050)
    assert FRAME_RATE_HZ == 12.5
    assert len(units) == math.ceil(round(seconds * SAMPLE_RATE) / 1280)  # whole 80 ms units, the last padded
    assert abs(len(units) - seconds * 12.5) < 1
    assert units.min() >= 0 and units.max() < tokenizer.codebook_size


def test_resampling_keeps_pitch_and_duration():
    tone = np.sin(2 * np.pi * 1000 * np.arange(22050) / 22050)
    out = resample(tone, 22050)
    assert len(out) == SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) == 1000  # 1 Hz bins over one second


def test_exact_silence_is_floored_not_infinite():
    features = unit_features(np.zeros(16000, np.float32))
    assert features.shape == (13, 80) and np.isfinite(features).all()


def test_bundled_codebook(tokenizer):
    assert tokenizer.codebook_size == 256 and tokenizer.centroids.shape == (256, 80)


def test_missing_tokenizer_is_one_line(tmp_path):
    with pytest.raises(ValueError, match="not a speech tokenizer directory") as error:
        SpeechTokenizer.load(str(tmp_path))
    assert "\n" not in str(error.value)
