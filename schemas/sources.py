"""Named sources: `--input NAME=PATTERN` gives the documents a pattern matches to source NAME (a plain PATTERN: the
source `default`), and `--speech-ratio NAME=R` gives one source its own share of speech. Labs mix sources by weight
when they train (web, books, code), and speak some and not others: code is not read aloud.

A pattern that itself holds "=" (a file named `a=b.jsonl`) is written `./a=b.jsonl` or with a source name in front.
"""

from __future__ import annotations

import re

DEFAULT_SOURCE = "default"
SOURCE_NAME = re.compile(r"[a-z0-9_-]{1,64}")
# A build with --long-documents N puts each source's documents of at least N tokens, every piece of them, in a
# source of this suffix ("web.long"): a loader that upsamples it upsamples long documents by their whole length.
LONG_SUFFIX = ".long"
_NAMED = re.compile(r"([a-z0-9_-]{1,64})=(.*)", re.DOTALL)


def split_source(given: str) -> tuple[str, str]:
    """(source name, pattern) of one --input."""
    named = _NAMED.fullmatch(given)
    return (named.group(1), named.group(2)) if named else (DEFAULT_SOURCE, given)


def source_names(inputs: tuple[str, ...]) -> tuple[str, ...]:
    """The build's sources, sorted: a row's source is stored as its index in this tuple."""
    return tuple(sorted({split_source(given)[0] for given in inputs})) or (DEFAULT_SOURCE,)


def split_ratio(given: str) -> tuple[str | None, str]:
    """(source name or None for every source, the ratio as written) of one --speech-ratio."""
    named = _NAMED.fullmatch(given)
    return (named.group(1), named.group(2)) if named else (None, given)


def base_source(name: str) -> str:
    """The source a long-document source belongs to ("web" for "web.long"; any other name itself)."""
    return name[: -len(LONG_SUFFIX)] if name.endswith(LONG_SUFFIX) else name


def with_long_sources(sources: tuple[str, ...]) -> tuple[str, ...]:
    """`sources` and each one's long documents' source, sorted."""
    return tuple(sorted(sources + tuple(name + LONG_SUFFIX for name in sources)))


def is_source_name(name: str) -> bool:
    """A name a dataset's source may have: an input source's, or its long documents' source's."""
    return bool(SOURCE_NAME.fullmatch(base_source(name)))
