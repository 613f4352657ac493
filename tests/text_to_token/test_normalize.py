import pytest

from tests.text_to_token.test_model_file import _edit
from tests.text_to_token.toy_models import make_toy_model
from vocaloom.text_to_token.model_file import ModelFileError, read_model
from vocaloom.text_to_token.normalize import cardinal, numbers_en


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (99, "ninety nine"),
        (100, "one hundred"),
        (533, "five hundred thirty three"),
        (1024, "one thousand twenty four"),
        (1_000_000, "one million"),
        (2_000_000_017, "two billion seventeen"),
        (
            999_999_999_999,
            "nine hundred ninety nine billion nine hundred "
            "ninety nine million nine hundred ninety nine "
            "thousand nine hundred ninety nine",
        ),
    ],
)
def test_cardinals(n, words):
    assert cardinal(n) == words


@pytest.mark.parametrize(
    "text, spoken",
    [
        ("Aruba, AW, ABW, 533", "Aruba, AW, ABW, five hundred thirty three"),
        ("1,024.5 bytes", "one thousand twenty four point five bytes"),
        ("the 1st, 2nd, 3rd, 12th, 21st and 40th", "the first, second, third, twelfth, twenty first and fortieth"),
        ("007 and 0", "zero zero seven and zero"),  # a leading zero: a code, read digit by digit
        ("x86 and 2401/tcp", "x eighty six and two thousand four hundred one/tcp"),  # set apart from letters
        ("1234567890123", "one two three four five six seven eight nine zero one two three"),  # too long to be a count
        ("no digits here: naïve café!", "no digits here: naïve café!"),
    ],
)
def test_numbers_become_words(text, spoken):
    assert numbers_en(text) == spoken
    assert numbers_en(spoken) == spoken  # once is enough: the teacher's pairs are stored normalised


def test_a_model_that_asks_for_it_reads_normalised_text(tmp_path):
    folder = make_toy_model(tmp_path / "m")
    assert read_model(folder).encode_text("route 66") == list(b"route 66")
    _edit(tmp_path / "m", input={"kind": "bytes", "normalize": "numbers-en/1"})
    assert read_model(folder).encode_text("route 66") == list(b"route sixty six")


def test_an_unknown_normaliser_is_refused_in_one_line(tmp_path):
    make_toy_model(tmp_path / "m")
    _edit(tmp_path / "m", input={"kind": "bytes", "normalize": "roman-numerals/1"})
    with pytest.raises(ModelFileError, match=r"unknown input normalize 'roman-numerals/1' \(known: numbers-en/1\)"):
        read_model(str(tmp_path / "m"))
