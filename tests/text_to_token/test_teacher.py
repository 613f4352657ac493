"""Needs espeak-ng (Debian: apt-get install espeak-ng)."""

import numpy as np
import pytest

from vocaloom import assets
from vocaloom.text_to_token import teacher
from vocaloom.text_to_token.teacher import EspeakMissing, Teacher, check_espeak, word_starts

pytestmark = pytest.mark.integration

SENTENCE = "Hello there, my friend; how are you today?"


@pytest.fixture(scope="module")
def speaker():
    with Teacher(str(assets.SPEECH_TOKENIZER)) as t:
        yield t


def test_same_sentence_same_units_whatever_was_spoken_before(speaker):
    first = speaker.units([SENTENCE])[0]
    speaker.units(
        [
            "In the beginning God created the heaven and the earth.",
            "A very different, longer text that leaves the engine in another state, if it kept any.",
        ]
    )
    again = speaker.units([SENTENCE])[0]
    assert first == again
    shifted, _ = speaker.speak(SENTENCE, prelude="Something else entirely, spoken first.")
    assert shifted.tolist() != first  # the prelude does change espeak-ng's state: resetting it is what matters


def test_a_new_process_gives_the_same_units(speaker):
    with Teacher(str(assets.SPEECH_TOKENIZER)) as other:
        assert other.units([SENTENCE]) == speaker.units([SENTENCE])


def test_units_and_word_starts_are_plausible(speaker):
    units, starts = speaker.speak(SENTENCE)
    words = len(SENTENCE.split())
    assert 3.5 <= len(units) / words <= 6.5  # about 5 units a word at 12.5 Hz
    assert len(starts) == words and starts[0] == 0 and np.all(np.diff(starts) > 0) and starts[-1] < len(units)


def test_numbers_are_spoken_as_the_normalised_text_says(speaker):
    """The teacher reads text through its normaliser, as the bundled student does: word starts are those of the
    normalised words, so a training pair's text and timings agree."""
    units, starts = speaker.speak("Route 66, built in 1926.")
    written, written_starts = speaker.speak("Route sixty six, built in one thousand nine hundred twenty six.")
    assert units.tolist() == written.tolist() and starts.tolist() == written_starts.tolist() and len(starts) == 11


def test_silent_text_gives_no_units(speaker):
    assert speaker.units(["", "   "]) == [[], []]


def test_word_starts_from_espeak_events():
    text = "one 1990 - two"
    # events: "one" at 10 ms, "1990" twice, none for "-", "two" given at the space before it
    events = np.array([[0, 10], [4, 300], [5, 500], [10, 900]])
    starts = word_starts(text, events, lead_s=0.01, duration_s=2.0)
    assert starts.tolist() == pytest.approx([0.0, 0.29, 0.89, 0.89])


def test_missing_espeak_is_one_line(monkeypatch):
    monkeypatch.setattr(teacher, "LIBRARY", "libespeak-ng-not-here.so.1")
    with pytest.raises(EspeakMissing, match=r"^espeak-ng is not installed: apt-get install espeak-ng$"):
        check_espeak()
