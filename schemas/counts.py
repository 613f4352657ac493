"""Every count a build's steps emit: the step that emits it, the manifest block it is summarised into, and its type.

This is the one definition of the figures behind manifest.json's `counts`, `speech` and `ordering` blocks
(docs/format.md): steps emit `Count`s declared here (transforms/counting.py), the commit turns the summed totals
into blocks with `count_blocks`, and readers check the `counts` block against `FORMAT_COUNTS`. A figure lands in
the block its declaration names; nothing is routed by how its name is spelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BLOCKS = ("counts", "speech", "ordering", "sources")


@dataclass(frozen=True)
class Count:
    block: str  # the manifest block summarised from it
    name: str  # its key in that block's figures
    producers: tuple[str, ...]  # the build steps that emit it (their labels in pipelines/build.py)
    per: str | None = None  # counted per reason (or span length): the figure is {detail: n}
    kind: type = int  # int counts, or float sums (similarities)
    since_v1: bool = False  # added to the `counts` block after format vocaloom/1: readers accept its absence

    @property
    def key(self) -> tuple[str, str]:
        return self.block, self.name

    def zero(self) -> dict | int | float:
        return {} if self.per else self.kind()


# The dataset format's accounting. Kept documents and their tokens are counted where they are decomposed: that is
# where a document is kept for good (after exact and semantic dedup) and holds its final tokens (after speech is
# woven in).
DECOMPOSITION = ("DatasetDecomposition", "PackLeftovers", "RelatedDecomposition")
RECORDS_READ = Count("counts", "records_read", ("ReadCorpus",))
REJECTED = Count("counts", "rejected", ("ReadCorpus",), per="reason")
# Documents left out: empty, a near copy (--semantic-dedup), or with no token in any row (too short, when remainders
# are dropped; at the very end of a pack group).
FILTERED = Count("counts", "filtered", ("ReadCorpus", "PlaceDocuments", *DECOMPOSITION), per="reason")
DUPLICATES = Count("counts", "duplicates", ("ExactDedup",))
DOCUMENTS_KEPT = Count("counts", "documents_kept", DECOMPOSITION)
TEXT_TOKENS = Count("counts", "text_tokens", DECOMPOSITION)
SPEECH_TOKENS = Count("counts", "speech_tokens", DECOMPOSITION)
# The committed buckets' tokens: set by the commit, which is where shards become the dataset.
TOKENS_WRITTEN = Count("counts", "tokens_written", ("CommitDataset",))
TOKENS_DROPPED = Count("counts", "tokens_dropped", DECOMPOSITION)
# The same tokens by why: a document shorter than the shortest row or the end of a longer one (remainders dropped),
# the end of a pack group or of a related segment (fewer than the shortest row's tokens).
TOKENS_DROPPED_BY_REASON = Count("counts", "tokens_dropped_by_reason", DECOMPOSITION, per="reason", since_v1=True)

# Speech: what was spoken, and how the spans were converted.
WORDS = Count("speech", "words", ("WeaveSpeech",))
SPEECH_WORDS = Count("speech", "speech_words", ("WeaveSpeech",))
SPAN_WORDS = Count("speech", "span_words", ("WeaveSpeech",), per="words")
SPANS_CACHED = Count("speech", "spans_cached", ("ConvertSpans",))
SPANS_CONVERTED = Count("speech", "spans_converted", ("ConvertSpans",))
SPANS_FAILED = Count("speech", "spans_failed", ("ConvertSpans",))
# Inference cache entries that were not what the model makes (edited, damaged): skipped, their spans converted again.
SPAN_CACHE_ENTRIES_INVALID = Count("speech", "cache_entries_invalid", ("ConvertSpans",))

# Ordering (--context related): the embeddings, and In-Context Pretraining's path and its quality.
EMBEDDINGS_CACHED = Count("ordering", "embeddings_cached", ("Embed",))
EMBEDDINGS_COMPUTED = Count("ordering", "embeddings_computed", ("Embed",))
EMBEDDINGS_FAILED = Count("ordering", "embeddings_failed", ("Embed",))
EMBEDDING_CACHE_ENTRIES_INVALID = Count("ordering", "embedding_cache_entries_invalid", ("Embed",))
ORDERED_DOCUMENTS = Count("ordering", "documents", ("InContextPretraining",))
SEGMENTS = Count("ordering", "segments", ("InContextPretraining",))
PARTITIONS = Count("ordering", "partitions", ("InContextPretraining",))
ADJACENT_SIMILARITY_SUM = Count("ordering", "adjacent_similarity_sum", ("InContextPretraining",), kind=float)
ADJACENT_PAIRS = Count("ordering", "adjacent_pairs", ("InContextPretraining",))
BEST_NEIGHBOUR_SIMILARITY_SUM = Count(
    "ordering", "best_neighbour_similarity_sum", ("InContextPretraining",), kind=float
)
BEST_NEIGHBOUR_DOCUMENTS = Count("ordering", "best_neighbour_documents", ("InContextPretraining",))
RANDOM_PAIR_SIMILARITY = Count("ordering", "random_pair_similarity", ("InContextPretraining",), kind=float)
APPROXIMATE_PARTITIONS = Count("ordering", "approximate_partitions", ("InContextPretraining",))
RECALL_SUM = Count("ordering", "recall_sum", ("InContextPretraining",), kind=float)
SAMPLE_EDGES = Count("ordering", "sample_edges", ("InContextPretraining",))
SAMPLE_EDGES_LOST = Count("ordering", "sample_edges_lost", ("InContextPretraining",))
DOCUMENT_MODE_TOKENS_DROPPED = Count("ordering", "document_mode_tokens_dropped", ("RelatedDecomposition",))

# Per named source (detail: its index in the build's sorted source names): summarised into the manifest's `sources`.
SOURCE_RECORDS_READ = Count("sources", "records_read", ("ReadCorpus",), per="source")
SOURCE_REJECTED = Count("sources", "rejected", ("ReadCorpus",), per="source")
SOURCE_DOCUMENTS_KEPT = Count("sources", "documents_kept", DECOMPOSITION, per="source")

DECLARED = {c.key: c for c in globals().copy().values() if isinstance(c, Count)}
# The `counts` block, as docs/format.md lists it: what verify and the reader require of every manifest.
FORMAT_COUNTS = tuple(c for c in DECLARED.values() if c.block == "counts")

# A summed count as it travels between steps: ((block, name, detail), n); detail is "" unless the count is `per`.
Totals = dict[tuple[str, str, str], "int | float"]


def tokens_produced(counts: Mapping[str, Any]) -> int:
    """The tokens a build made, text and speech, from a manifest's `counts` block: each is written or dropped."""
    return counts[TEXT_TOKENS.name] + counts[SPEECH_TOKENS.name]


def label(key: tuple[str, str, str]) -> str:
    """A count's key as people read it (Beam's metric names): "counts.rejected/malformed_json"."""
    block, name, detail = key
    return f"{block}.{name}{'/' + detail if detail else ''}"


def count_blocks(totals: Totals) -> dict[str, dict]:
    """Summed counts to their blocks' figures, every declared count present (zero when no step emitted it)."""
    blocks: dict[str, dict] = {block: {} for block in BLOCKS}
    for each in DECLARED.values():
        blocks[each.block][each.name] = each.zero()
    for (block, name, detail), n in sorted(totals.items()):
        declared = DECLARED.get((block, name))
        if declared is None or bool(detail) != bool(declared.per):
            raise ValueError(f"count {label((block, name, detail))} is not declared in schemas/counts.py")
        if declared.per:
            blocks[block][name][detail] = n
        else:
            blocks[block][name] = n
    return blocks
