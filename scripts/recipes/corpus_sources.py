"""Real English documents read from installed packages.

The sample corpus, the tokenizer, the benchmark corpus and the text-to-token
model's training and evaluation text are all built from these generators, so
they must work offline and give the same documents, in the same order, on every
run. Each document is a dict {"id", "text", "source"}.

Debian packages used: bible-kjv (the `bible` command), fortunes, dict-gcide,
wordnet-base, dict-devil (public domain or free text); for evaluation only, r-cran-janeaustenr
(Jane Austen's novels, read with the `rdata` package, no R needed), iso-codes,
tzdata and netbase (reference lists), and the Python standard library's own
docstrings (technical documentation).
"""

import ast
import functools
import gzip
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import unicodedata
import warnings
import zlib
from pathlib import Path

FORTUNE_DIR = Path("/usr/share/games/fortunes")
GCIDE_DICT = Path("/usr/share/dictd/gcide.dict.dz")
GCIDE_INDEX = Path("/usr/share/dictd/gcide.index")
DEVIL_DICT = Path("/usr/share/dictd/devil.dict.dz")
DEVIL_INDEX = Path("/usr/share/dictd/devil.index")
WORDNET_DIR = Path("/usr/share/wordnet")
# Fixed part-of-speech order so the glosses always come out in the same order.
WORDNET_PARTS = ("noun", "verb", "adj", "adv")
# R's lazy-load database of the package's data: an index (.rdx) and the objects (.rdb), each serialized by R.
AUSTEN_DATA = Path("/usr/lib/R/site-library/janeaustenr/data/Rdata")
ISO_CODES_DIR = Path("/usr/share/iso-codes/json")
ZONE_TABLE = Path("/usr/share/zoneinfo/zone1970.tab")
SERVICES = Path("/etc/services")
# Each Debian package these documents come from, and how to tell it is installed.
PACKAGES = {
    "bible-kjv": lambda: shutil.which("bible") is not None,
    "fortunes": FORTUNE_DIR.is_dir,
    "dict-gcide": GCIDE_DICT.is_file,
    "wordnet-base": WORDNET_DIR.is_dir,
    "dict-devil": DEVIL_DICT.is_file,
    "r-cran-janeaustenr": AUSTEN_DATA.with_suffix(".rdb").is_file,
    "iso-codes": ISO_CODES_DIR.is_dir,
    "tzdata": ZONE_TABLE.is_file,
    "netbase": SERVICES.is_file,
}
# Gutenberg's _emphasis_ markup and chapter headings are not text anyone would speak.
AUSTEN_EMPHASIS = re.compile(r"_([^_]+)_")
AUSTEN_HEADING = re.compile(r"^(CHAPTER|Chapter|VOLUME|Volume)\b|^[A-Z0-9 ,.()]+$")

# Whole Bible in one call; a huge line width keeps each verse on one line.
BIBLE_COMMAND = ("bible", "-l100000", "Gen1:1-Rev22:21")
# Pretty-printed output: "Book N" headers, then "  N verse text" lines.
CHAPTER_HEADER = re.compile(r"^(\S.*) (\d+)$")
VERSE_LINE = re.compile(r"^\s+\d+ (.*)$")

DICTD_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# Pronunciation ("\Al*low"ance\") and an optional respelling "(l[add])" after it.
GCIDE_PRONUNCIATION = re.compile(r"\\[^\\]{0,300}\\(?:\s*\([^()\n]{0,60}\))?")
# Editorial source tags such as "[1913 Webster]" or "[WordNet 1.5 +PJC]".
GCIDE_SOURCE_TAG = re.compile(r"\[[^\[\]]*\b(?:Webster|WordNet|PJC|Century Dict|RHUD|RDH|MI11)\b[^\[\]]*\]")
# Letter codes like ["o], ['e], [=a], [ae]; translated by _gcide_letter.
GCIDE_LETTER = re.compile(r"\[([\"'`^~=.,*-]?)([A-Za-z]{1,6})(\^?)\]")
GCIDE_MARKS = {
    '"': "\u0308",
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    ",": "\u0327",
    "-": "\u0306",
    "*": "\u030a",
}
GCIDE_NAMED = {
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "eth": "ð",
    "thorn": "þ",
    "deg": "°",
    "sect": "§",
    "pounds": "£",
    "ng": "ŋ",
    "yogh": "ȝ",
    "root": "√",
    "imac": "ī",
    "aum": "ä",
    "add": "a\u0324",
    "asl": "a",
    "udd": "u\u0324",
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "Delta": "Δ",
    "theta": "θ",
    "iota": "ι",
    "pi": "π",
    "tau": "τ",
    "phi": "φ",
}
QUESTION_RUN = re.compile(r"\?{3,}")
SPACE_BEFORE_PUNCT = re.compile(r" +([,.;:])")


def missing_packages(*packages: str) -> str | None:
    """One line naming those of `packages` (PACKAGES' names) that are not installed, or None: a script stops with it
    before it starts work."""
    absent = [package for package in packages if not PACKAGES[package]()]
    return f"not installed: apt-get install {' '.join(absent)}" if absent else None


def normalize_space(text):
    """Collapse all runs of whitespace (line breaks included) to one space."""
    return " ".join(text.split())


def group_documents(texts, group, prefix, source):
    """Join `group` consecutive texts per document, one per line.

    Different group sizes give distinct documents from the same text, which the
    benchmark needs because the pipeline drops exact duplicates.
    """
    batch = []
    n = 0
    for text in texts:
        batch.append(text)
        if len(batch) == group:
            yield {"id": f"{prefix}/g{group}/{n}", "text": "\n".join(batch), "source": source}
            batch = []
            n += 1
    if batch:
        yield {"id": f"{prefix}/g{group}/{n}", "text": "\n".join(batch), "source": source}


def _bible_text():
    """Run `bible` once for the whole text; one process beats 31,102 lookups."""
    result = subprocess.run(BIBLE_COMMAND, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True)
    return result.stdout


def kjv_chapters():
    """Yield the 1,189 KJV chapters, verses joined with spaces, numbers dropped.

    Ids use the book name with spaces as underscores ("kjv/1_Samuel/3") so they
    stay single tokens in paths and logs.
    """
    book, chapter = None, None
    verses: list[str] = []
    for line in _bible_text().splitlines():
        header = CHAPTER_HEADER.match(line)
        verse = VERSE_LINE.match(line)
        if header:
            if verses:
                yield _chapter(book, chapter, verses)
            book, chapter, verses = header.group(1), header.group(2), []
        elif verse:
            verses.append(verse.group(1).strip())
    if verses:
        yield _chapter(book, chapter, verses)


def _chapter(book, chapter, verses):
    """Build one chapter document."""
    return {"id": f"kjv/{book.replace(' ', '_')}/{chapter}", "text": " ".join(verses), "source": "kjv"}


def fortune_files():
    """List the fortune text files by name, leaving out index files and links."""
    return sorted(
        path
        for path in FORTUNE_DIR.iterdir()
        if path.is_file() and not path.is_symlink() and path.suffix not in (".dat", ".u8")
    )


def fortunes():
    """Yield each non-empty fortune, whitespace-normalised, numbered per file."""
    for path in fortune_files():
        chunks = re.split(r"^%$", path.read_text(encoding="utf-8"), flags=re.M)
        texts = (normalize_space(chunk) for chunk in chunks)
        for n, text in enumerate(text for text in texts if text):
            yield {"id": f"fortunes/{path.name}/{n}", "text": text, "source": "fortunes"}


def _dictd_number(digits):
    """Decode the base-64 numbers used in dictd index files."""
    value = 0
    for digit in digits:
        value = value * 64 + DICTD_DIGITS.index(digit)
    return value


def _dictd_spans(index):
    """Return each (offset, length) of a dictd index once, in index order, skipping metadata.

    Several headwords share one entry ("Law", "Law Latin", ...); keeping only
    the first keeps the same definition from repeating.
    """
    seen = set()
    spans = []
    for line in index.read_text(encoding="utf-8").splitlines():
        headword, offset, length = line.split("\t")
        span = (_dictd_number(offset), _dictd_number(length))
        if headword.startswith("00-") or span in seen:
            continue
        seen.add(span)
        spans.append(span)
    return spans


def devil_entries():
    """Yield each entry of Ambrose Bierce's "The Devil's Dictionary" (dict-devil): definitions, verse, quotations."""
    with gzip.open(DEVIL_DICT) as handle:
        data = handle.read()
    for n, (offset, length) in enumerate(_dictd_spans(DEVIL_INDEX)):
        text = normalize_space(data[offset : offset + length].decode("utf-8").replace("_", ""))
        if text:
            yield {"id": f"devil/{n}", "text": text, "source": "devil"}


def _gcide_letter(match):
    """Turn a gcide letter code into the Unicode letter it stands for."""
    mark, letters, breve = match.groups()
    if letters in GCIDE_NAMED and not mark and not breve:
        return GCIDE_NAMED[letters]
    if len(letters) > 2 or (len(letters) == 2 and not mark):
        return match.group(0)
    accent = "\u0306" if breve else GCIDE_MARKS.get(mark, "")
    return unicodedata.normalize("NFC", letters[0] + accent + letters[1:])


def clean_gcide(raw):
    """Strip gcide markup so an entry reads as plain text on one line."""
    text = GCIDE_PRONUNCIATION.sub("", raw)
    text = GCIDE_SOURCE_TAG.sub("", text)
    text = GCIDE_LETTER.sub(_gcide_letter, text)
    text = QUESTION_RUN.sub("", text).replace("{", "").replace("}", "")
    return SPACE_BEFORE_PUNCT.sub(r"\1", normalize_space(text))


def _decode(raw):
    """Decode an entry; a few old entries hold Windows-1252 bytes, not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


@functools.lru_cache(maxsize=1)
def gcide_texts():
    """Return every distinct gcide entry as clean text, in index order.

    Cached because callers group the same entries several ways and parsing the
    40 MB dictionary takes seconds.
    """
    with gzip.open(GCIDE_DICT) as handle:
        data = handle.read()
    texts = (clean_gcide(_decode(data[offset : offset + length])) for offset, length in _dictd_spans(GCIDE_INDEX))
    return tuple(text for text in texts if text)


def gcide_entries(group=1):
    """Yield gcide entries, `group` consecutive entries per document."""
    return group_documents(gcide_texts(), group, "gcide", "gcide")


def _wordnet_sentence(line):
    """Render one data-file line as "lemma, lemma: gloss." text."""
    fields, gloss = line.split(" | ", 1)
    parts = fields.split()
    count = int(parts[3], 16)
    words = parts[4 : 4 + 2 * count : 2]
    lemmas = [re.sub(r"\([a-z]+\)$", "", word).replace("_", " ") for word in words]
    gloss = gloss.strip()
    if not gloss.endswith((".", "!", "?")):
        gloss += "."
    return f"{', '.join(lemmas)}: {gloss}"


@functools.lru_cache(maxsize=1)
def wordnet_texts():
    """Return a sentence per synset: nouns, verbs, adjectives, then adverbs.

    Cached for the same reason as gcide_texts.
    """
    return tuple(
        _wordnet_sentence(line)
        for part in WORDNET_PARTS
        for line in (WORDNET_DIR / f"data.{part}").read_text(encoding="utf-8").splitlines()
        if not line.startswith(" ") and " | " in line
    )


def wordnet_glosses(group=1):
    """Yield WordNet gloss sentences, `group` consecutive synsets per document."""
    return group_documents(wordnet_texts(), group, "wordnet", "wordnet")


def _r_object(serialized):
    """One R object from its serialized bytes (R's XDR format), as Python values."""
    import rdata  # only the evaluation scripts need it

    with warnings.catch_warnings():  # bare serialized bytes are what rdata calls an RDS file, and says so
        warnings.simplefilter("ignore", UserWarning)
        return rdata.conversion.convert(rdata.parser.parse_data(serialized))


def austen_paragraphs():
    """Yield each paragraph of Jane Austen's six novels (r-cran-janeaustenr), headings and title pages left out.

    The package keeps each novel as a vector of text lines in R's lazy-load database: a gzip'd index of
    (offset, length) per novel, each entry a 4-byte length and zlib'd serialized bytes.
    """
    index = _r_object(gzip.decompress(AUSTEN_DATA.with_suffix(".rdx").read_bytes()))
    database = AUSTEN_DATA.with_suffix(".rdb").read_bytes()
    for novel, (offset, length) in sorted(index["variables"].items(), key=lambda item: int(item[1][0])):
        lines = _r_object(zlib.decompress(database[int(offset) + 4 : int(offset) + int(length)]))
        paragraph, n = [], 0
        for line in [str(line) for line in lines] + [""]:
            if line.strip():
                paragraph.append(line)
                continue
            text = AUSTEN_EMPHASIS.sub(r"\1", normalize_space(" ".join(paragraph)))
            paragraph = []
            if text and not AUSTEN_HEADING.match(text):
                yield {"id": f"austen/{novel}/{n}", "text": text, "source": "austen"}
                n += 1


def _docstrings(tree):
    """The docstrings of a module, its classes and functions, in source order."""
    nodes = [tree] + [
        node for node in ast.walk(tree) if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    for node in sorted(nodes, key=lambda node: getattr(node, "lineno", 0)):
        doc = ast.get_docstring(node)
        if doc:
            yield doc


def python_docstrings():
    """Yield each prose paragraph of the docstrings in this Python's standard library (read with `ast`, nothing
    imported), one document per module; interactive examples (>>>) and indented code blocks left out."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "idlelib", "lib2to3", "site-packages", "dist-packages", "ensurepip", "turtledemo"}
    for path in sorted(stdlib.rglob("*.py")):
        relative = path.relative_to(stdlib)
        if skip & set(relative.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        paragraphs = [
            normalize_space(block)
            for doc in _docstrings(tree)
            for block in re.split(r"\n\s*\n", doc)
            if block.strip() and not block.lstrip().startswith(">>>") and not block.startswith((" ", "\t"))
        ]
        if paragraphs:
            yield {
                "id": f"python{sys.version_info[0]}.{sys.version_info[1]}/{relative.as_posix()}",
                "text": "\n".join(paragraphs),
                "source": "python-docs",
            }


def reference_lists():
    """Yield reference lists as they are written, one entry a line: countries (ISO 3166-1: name, codes, number),
    currencies (ISO 4217), time zones (tzdata: country, coordinates, zone) and network services (netbase)."""
    countries = json.loads((ISO_CODES_DIR / "iso_3166-1.json").read_text(encoding="utf-8"))["3166-1"]
    yield {
        "id": "iso-3166-1",
        "source": "lists",
        "text": "\n".join(f"{c['name']}, {c['alpha_2']}, {c['alpha_3']}, {c['numeric']}" for c in countries),
    }
    currencies = json.loads((ISO_CODES_DIR / "iso_4217.json").read_text(encoding="utf-8"))["4217"]
    yield {
        "id": "iso-4217",
        "source": "lists",
        "text": "\n".join(f"{c['alpha_3']} {c['numeric']} {c['name']}" for c in currencies),
    }
    zones = [
        line.split("\t")[:3]
        for line in ZONE_TABLE.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    yield {"id": "tzdata-zone1970", "source": "lists", "text": "\n".join(" ".join(zone) for zone in zones)}
    services = [
        normalize_space(line)
        for line in SERVICES.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    yield {"id": "netbase-services", "source": "lists", "text": "\n".join(services)}
