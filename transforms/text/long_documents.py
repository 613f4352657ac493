"""Long documents apart (--long-documents N): a document of at least N tokens as written (speech included) moves to
its source's long documents' source (`web` to `web.long`), before it is cut into rows. Every piece of it, its rows
and its packed end alike, is then of that source, so that a loader reading that source more often upsamples long
documents by their whole length, not only their longest piece.
"""

from __future__ import annotations

from vocaloom.schemas.sources import LONG_SUFFIX
from vocaloom.transforms.documents import DocBatch, pack_docs, unpack_docs


class LongDocuments:
    """Moves long documents to their long source: `sources` are the build's (config.sources), which hold a
    NAME.long for every input source NAME."""

    def __init__(self, min_tokens: int, sources: tuple[str, ...]):
        self._min_tokens = min_tokens
        self._long = {
            i: sources.index(name + LONG_SUFFIX) for i, name in enumerate(sources) if name + LONG_SUFFIX in sources
        }

    def doc(self, doc):
        if doc.n_tokens >= self._min_tokens and doc.source_index in self._long:
            return doc._replace(source_index=self._long[doc.source_index])
        return doc

    def batch(self, batch: DocBatch) -> DocBatch:
        """A DocBatch (document context)."""
        return pack_docs([self.doc(doc) for doc in unpack_docs(batch)])

    def placed(self, element: tuple) -> tuple:
        """A placed document, (segment, (position, doc)) (related context): a long one leaves its segment for a
        segment of its source's long documents, in the same order."""
        segment, (position, doc) = element
        moved = self.doc(doc)
        return (f"{segment}{LONG_SUFFIX}" if moved is not doc else segment), (position, moved)
