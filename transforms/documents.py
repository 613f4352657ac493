"""The records documents travel as, in packed batches (DocBatch): a read document by its text (DocText) up to
tokenisation, and after it by reference to its tokens in a spill file (DocTokens).
"""

from __future__ import annotations

from typing import NamedTuple

from vocaloom.transforms.columns import from_columns, pack, unpack
from vocaloom.transforms.io.records import DocumentColumns
from vocaloom.transforms.text.dedup import fingerprint


class DocText(NamedTuple):
    """A read document before tokenisation: its text, with the fingerprint dedup compares and its source index
    (as in DocTokens). In interleaved builds `segments` (SampleSpans) cuts the text into runs of whole words,
    (start, end, speech) each, plain tuples so that batches stay primitives."""

    fingerprint: bytes
    id: str
    text: str
    source: str
    line: int
    source_index: int = 0
    segments: tuple = ()


class DocTokens(NamedTuple):
    """A tokenised document by reference: its tokens are `n_tokens` int32 at `offset` in the `spill` file, the
    last one `eos`. `n_speech` of them are speech ids. `source` is the input file it was read from, `source_index`
    the named source (--input NAME=PATTERN) that file belongs to, as an index into the build's sorted source names.

    Before speech is woven in (interleaved builds), the spill holds only the text segments' tokens: `layout` gives
    each segment in order, its token count for text or -1 for a speech span, and `spans` the spans' texts.
    `embedding_text` (related builds) is the text the document is embedded from: the decoded first tokens of its
    whole text, whichever words become speech.
    """

    fingerprint: bytes
    id: str
    source: str
    line: int
    n_tokens: int
    spill: str
    offset: int
    n_speech: int = 0
    layout: tuple = ()
    spans: tuple = ()
    n_words: int = 0
    source_index: int = 0
    embedding_text: str = ""


# DocTokens packed as columns of primitives (transforms/columns.py): the form documents travel in between steps,
# which Beam encodes and sizes natively instead of pickling each record.
DocBatch = tuple


def pack_docs(docs: list[DocTokens]) -> DocBatch:
    return pack(docs)


def packed_columns(record_type, **columns) -> DocBatch:
    """A batch of `record_type` from whole columns, built without a record per document; a field given one value
    (not a list) or not given at all has that value, or its default, for every document."""
    n = len(columns["id"])
    return from_columns(
        [
            values if isinstance(values, list) else [values] * n
            for values in (columns.get(field, record_type._field_defaults.get(field)) for field in record_type._fields)
        ]
    )


def doc_batch(**columns) -> DocBatch:
    return packed_columns(DocTokens, **columns)


def doc_texts(documents: DocumentColumns, sources: dict[str, int]) -> DocBatch:
    """Read documents (`sources`: input file to source index) as a batch of DocText."""
    ids, texts, paths, lines = documents
    return packed_columns(
        DocText,
        fingerprint=list(map(fingerprint, texts)),
        id=list(ids),
        text=list(texts),
        source=list(paths),
        line=list(lines),
        source_index=[sources.get(path, 0) for path in paths],
    )


def unpack_docs(batch: DocBatch) -> list[DocTokens]:
    return unpack(DocTokens, batch)
