"""The last step of a build: final shard and reject names, the accounting check, report.md and its figures, the
dataset card (README.md), then manifest.json.

The manifest is written last and atomically (temporary name, then rename): no manifest, no dataset.
"""

from __future__ import annotations

from collections import defaultdict
from typing import cast

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from vocaloom.schemas.counts import Totals, count_blocks
from vocaloom.schemas.manifest import MANIFEST, Manifest, accounting_errors, dump_manifest, structure_problem, utc_now
from vocaloom.schemas.shard import (
    DEAD_LETTER_DIR,
    FIGURES_DIR,
    REJECTS_DIR,
    REPORT,
    bucket_lengths,
    generation_dir,
    row_tokens,
    shard_path,
)
from vocaloom.transforms.io.atomic import write_atomically
from vocaloom.transforms.io.dataset_card import CARD, render_card
from vocaloom.transforms.io.objects import move, remove
from vocaloom.transforms.io.rejects import record_path
from vocaloom.transforms.io.report import render_figures, render_report
from vocaloom.transforms.worker_setup import BuildStopped


class AccountingError(RuntimeError):
    """The build lost or invented documents or tokens: no manifest is written."""


def _move(temp: str, final: str) -> None:
    """Idempotent on retry: a temp file already moved is left alone."""
    if not FileSystems.exists(temp) and FileSystems.exists(final):
        return
    parent = final.rsplit("/", 1)[0]
    if not FileSystems.exists(parent):
        FileSystems.mkdirs(parent)
    move(temp, final)


def commit_buckets(output: str, shard_files, min_bucket: int, max_bucket: int, generation: int) -> list[dict]:
    by_length = defaultdict(list)
    for shard in shard_files:
        by_length[shard.length].append(shard)
    buckets = []
    for length in bucket_lengths(min_bucket, max_bucket):
        shards = sorted(by_length.pop(length, []), key=lambda s: s.slot)
        entries = []
        for i, shard in enumerate(shards):
            path = shard_path(length, i, len(shards), generation)
            _move(shard.temp_path, FileSystems.join(output, path))
            entries.append(
                {
                    "path": path,
                    "rows": shard.rows,
                    "bytes": shard.bytes,
                    "sha256": shard.sha256,
                    "source_rows": [tokens // row_tokens(length) for tokens in shard.tokens_by_source],
                }
            )
        rows = sum(s.rows for s in shards)
        buckets.append({"length": length, "rows": rows, "tokens": rows * row_tokens(length), "shards": entries})
    if by_length:
        raise AccountingError(f"shards for unexpected bucket lengths {sorted(by_length)}")
    return buckets


def tokens_by_source(shard_files) -> list[int]:
    """Tokens written of each source (by index), summed over the shards."""
    totals: list[int] = []
    for shard in shard_files:
        for index, tokens in enumerate(shard.tokens_by_source):
            totals += [0] * (index + 1 - len(totals))
            totals[index] += tokens
    return totals


def speech_summary(speech: dict | None, figures: dict) -> dict | None:
    """The manifest's speech block: the model's facts, plus what this build spoke and converted (`figures`: the
    speech counts of schemas/counts.py)."""
    if speech is None:
        return None
    spans = figures["spans_cached"] + figures["spans_converted"] + figures["spans_failed"]
    span_words = figures["span_words"]
    return dict(
        speech,
        spans=spans,
        spans_cached=figures["spans_cached"],
        spans_converted=figures["spans_converted"],
        spans_failed=figures["spans_failed"],
        cache_entries_invalid=figures["cache_entries_invalid"],
        span_words={words: span_words[words] for words in sorted(span_words, key=int)},
        cache_hit_rate=round(figures["spans_cached"] / spans, 6) if spans else 0.0,
        achieved_word_share=round(figures["speech_words"] / figures["words"], 6) if figures["words"] else 0.0,
    )


def ordering_summary(ordering: dict | None, figures: dict, knn: int, tokens_dropped: int) -> dict | None:
    """The manifest's ordering block (`figures`: the ordering counts of schemas/counts.py)."""
    if ordering is None:
        return None
    adjacent = figures["adjacent_similarity_sum"] / max(1, figures["adjacent_pairs"])
    ceiling = figures["best_neighbour_similarity_sum"] / max(1, figures["best_neighbour_documents"])
    random_pairs = figures["random_pair_similarity"]
    edges, lost = figures["sample_edges"], figures["sample_edges_lost"]
    approximate = figures["approximate_partitions"]
    cached, computed = figures["embeddings_cached"], figures["embeddings_computed"]
    return dict(
        ordering,
        documents=figures["documents"],
        partitions=figures["partitions"],
        embeddings_cached=cached,
        embeddings_computed=computed,
        embedding_cache_entries_invalid=figures["embedding_cache_entries_invalid"],
        embedding_cache_hit_rate=round(cached / (cached + computed), 6) if cached + computed else 0.0,
        segments=figures["segments"],
        knn=knn,
        mean_adjacent_similarity=round(adjacent, 6),
        random_order_similarity=round(random_pairs, 6),
        best_neighbour_similarity=round(ceiling, 6),
        quality=round((adjacent - random_pairs) / (ceiling - random_pairs), 6) if ceiling > random_pairs else None,
        approximate_partitions=approximate,
        approximate_recall=round(figures["recall_sum"] / approximate, 6) if approximate else None,
        sample_knn_edges=edges,
        sample_knn_edges_lost=lost,
        edges_lost_fraction=round(lost / edges, 6) if edges else 0.0,
        tokens_dropped=tokens_dropped,
        tokens_dropped_document_mode=figures["document_mode_tokens_dropped"],
    )


def summarise(
    base: dict,
    buckets: list[dict],
    totals: Totals,
    written: dict[str, int],
    unreadable: list[dict],
    fingerprints: dict[str, str],
    tokens_by_source: list[int],
) -> Manifest:
    """The manifest of a build (pure): its base (build.py's BuildPlan.manifest_base), the committed buckets, the
    summed counts, the reject and dead-letter records written, the inputs left out as unreadable and the sha256 of
    each input read. Raises AccountingError when the counts do not balance, or the manifest would not pass the
    checks every reader makes (schemas/manifest.py): then no manifest may be written."""
    blocks = count_blocks(totals)
    counts = dict(blocks["counts"], tokens_written=sum(b["tokens"] for b in buckets))
    speech = speech_summary(base["speech"], blocks["speech"])
    ordering = ordering_summary(base["ordering"], blocks["ordering"], base["config"]["knn"], counts["tokens_dropped"])
    errors = accounting_errors(counts)
    if written[REJECTS_DIR] != sum(counts["rejected"].values()):
        errors.append(f"{written['rejects']} rejects written, {sum(counts['rejected'].values())} counted")
    if speech and written[DEAD_LETTER_DIR] != speech["spans_failed"]:
        errors.append(f"{written['dead_letter']} dead letters written, {speech['spans_failed']} spans failed")
    if errors:
        raise AccountingError("; ".join(errors))
    unreadable = sorted(base["inputs_unreadable"] + unreadable, key=lambda item: item["path"])
    inputs = [dict(item, sha256=fingerprints.get(item["path"])) for item in base["inputs"]]
    sources = sources_summary(base["sources"], inputs, blocks["sources"], tokens_by_source)
    for figure in ("records_read", "documents_kept", "tokens_written"):
        if sum(source[figure] for source in sources.values()) != counts[figure]:
            raise AccountingError(f"the sources' {figure} do not add up to {counts[figure]}")
    manifest = dict(
        base,
        inputs=inputs,
        inputs_unreadable=unreadable,
        speech=speech,
        ordering=ordering,
        buckets=buckets,
        counts=counts,
        sources=sources,
    )
    problem = structure_problem(manifest)
    if problem:
        raise AccountingError(f"the manifest would not be readable: {problem}")
    return cast(Manifest, manifest)


def sources_summary(sources: dict, inputs: list[dict], figures: dict, tokens_written: list[int]) -> dict:
    """The manifest's sources block: each source's patterns and speech ratio (`sources`, from the plan), then its
    input files, records read and rejected, documents kept and tokens written (`figures`: the sources counts of
    schemas/counts.py, by source index; `tokens_written`: by source index, from the shards)."""
    summary = {}
    for index, (name, base) in enumerate(sorted(sources.items())):
        key = str(index)
        summary[name] = dict(
            base,
            inputs=sum(item["source"] == name for item in inputs),
            records_read=figures["records_read"].get(key, 0),
            rejected=figures["rejected"].get(key, 0),
            documents_kept=figures["documents_kept"].get(key, 0),
            tokens_written=tokens_written[index] if index < len(tokens_written) else 0,
        )
    return summary


def failed_share_problem(manifest: Manifest, dead_letter_dir: str) -> str | None:
    """Why the build must fail for its failed speech spans (--max-failed-batch-share), or None."""
    speech, share = manifest["speech"], manifest["config"]["max_failed_batch_share"]
    if speech and speech["spans_failed"] > share * speech["spans"]:
        return (
            f"{speech['spans_failed']} of {speech['spans']} speech spans failed to convert, more than "
            f"--max-failed-batch-share {share}: their batches' errors are in {dead_letter_dir}/"
        )
    return None


class CommitDatasetFn(beam.DoFn):
    """The commit's side effects, in order: final names for shards and record files, then the figures and report,
    the card, then manifest.json last (summarise decides what it says). A build of generation g > 0 (a replacement
    in a bucket, pipelines/output_dir.py) puts all but the manifest and the card under generations/<g>/."""

    def __init__(self, output: str, temp_dir: str, manifest_base: dict):
        self._output, self._temp_dir, self._base = output, temp_dir, manifest_base
        generation = manifest_base["generation"]
        self._files = FileSystems.join(output, generation_dir(generation)) if generation else output

    def process(self, _, shard_files, record_files, unreadable, fingerprints, totals):
        config = self._base["config"]
        buckets = commit_buckets(
            self._output, shard_files, config["min_bucket"], config["max_bucket"], self._base["generation"]
        )
        written = {kind: self._move_record_files(record_files, kind) for kind in (REJECTS_DIR, DEAD_LETTER_DIR)}
        manifest = summarise(
            self._base, buckets, totals, written, unreadable, fingerprints, tokens_by_source(shard_files)
        )
        if manifest.get("provenance"):
            manifest["provenance"] = dict(manifest["provenance"], finished=utc_now())
        problem = failed_share_problem(manifest, FileSystems.join(self._files, DEAD_LETTER_DIR))
        if problem:
            raise BuildStopped(problem)
        figures = render_figures(manifest)
        figures_dir = FileSystems.join(self._files, FIGURES_DIR)
        remove(figures_dir)  # a replaced build's figures (a speech figure may not come back)
        for name, png in figures.items():
            write_atomically(FileSystems.join(figures_dir, name), png)
        write_atomically(FileSystems.join(self._files, REPORT), render_report(manifest, tuple(figures)).encode())
        write_atomically(FileSystems.join(self._output, CARD), render_card(manifest).encode())
        write_atomically(FileSystems.join(self._output, MANIFEST), dump_manifest(manifest))
        remove(self._temp_dir)
        yield manifest

    def _move_record_files(self, record_files, kind: str) -> int:
        """Moves one kind's record files to their final names; returns how many records they hold."""
        files = sorted((f for f in record_files if f.kind == kind), key=lambda f: f.slot)
        for i, record_file in enumerate(files):
            _move(record_file.temp_path, FileSystems.join(self._files, record_path(kind, i)))
        return sum(f.records for f in files)


class CommitDataset(beam.PTransform):
    def __init__(self, output: str, temp_dir: str, manifest_base: dict):
        super().__init__()
        self._fn = CommitDatasetFn(output, temp_dir, manifest_base)

    def expand(self, inputs):
        shard_files, record_files, unreadable, fingerprints, totals = inputs
        return (
            shard_files.pipeline
            | "Once" >> beam.Create([None])
            | "Commit"
            >> beam.ParDo(
                self._fn,
                beam.pvalue.AsList(shard_files),
                beam.pvalue.AsList(record_files),
                beam.pvalue.AsList(unreadable),
                beam.pvalue.AsDict(fingerprints),
                beam.pvalue.AsDict(totals),
            ).with_output_types(dict)
        )  # the manifest; declared, Beam skips inferring it from process's bytecode
