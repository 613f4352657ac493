"""Text normalisation that a text-to-token model and its teacher share: numbers written out as words.

A student learns how letters sound from the teacher's pairs; digits do not sound like their bytes ("533" is eleven
spoken syllables), so the bundled student and the teacher that trained it both read numbers through `numbers_en`
first. A model directory asks for it in `config.json` (`"input": {"kind": "bytes", "normalize": "numbers-en/1"}`);
the pipeline's handlers apply what the model asks for, so the teacher path (`--speech-source tts`) speaks the same
text the student was trained on.

numbers-en/1: a digit run with optional thousands commas and decimals becomes English words ("1,024.5" -> "one
thousand twenty four point five"); ordinals keep their sense ("21st" -> "twenty first"); a run with a leading zero
or longer than 12 digits is read digit by digit ("007" -> "zero zero seven"). A number glued to letters is set apart
by spaces ("x86" -> "x eighty six"). Nothing else changes.
"""

from __future__ import annotations

import re

ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
SCALES = ((10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
ORDINAL = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
ORDINAL_SUFFIX = re.compile(r"(?:st|nd|rd|th)\b")
MAX_CARDINAL_DIGITS = 12


def cardinal(n: int) -> str:
    """0 <= n < 10**12 in words, without "and": 1024 -> "one thousand twenty four"."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        return ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + cardinal(n % 100))
    for scale, name in SCALES:
        if n >= scale:
            return cardinal(n // scale) + " " + name + ("" if n % scale == 0 else " " + cardinal(n % scale))
    raise AssertionError(n)


def ordinal(words: str) -> str:
    """The ordinal of a cardinal in words: "twenty one" -> "twenty first", "forty" -> "fortieth"."""
    *head, last = words.split()
    if last in ORDINAL:
        last = ORDINAL[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*head, last])


def digits(run: str) -> str:
    return " ".join(ONES[int(d)] for d in run)


def number_words(text: str) -> str:
    """One matched number (digits, thousands commas, decimals) in words."""
    whole, _, decimals = text.replace(",", "").partition(".")
    if (len(whole) > 1 and whole[0] == "0" and "," not in text) or len(whole) > MAX_CARDINAL_DIGITS:
        spoken = digits(whole)
    else:
        spoken = cardinal(int(whole))
    return spoken + (" point " + digits(decimals) if decimals else "")


def numbers_en(text: str) -> str:
    out, end = [], 0
    for match in NUMBER.finditer(text):
        start, stop = match.span()
        spoken = number_words(match.group())
        suffix = ORDINAL_SUFFIX.match(text, stop)
        if suffix and "." not in match.group():
            spoken, stop = ordinal(spoken), suffix.end()
        before = text[end:start]
        if before and before[-1].isalnum():
            before += " "
        out += [before, spoken]
        if stop < len(text) and text[stop].isalnum():
            out.append(" ")
        end = stop
    out.append(text[end:])
    return "".join(out)


NORMALIZERS = {"numbers-en/1": numbers_en}
