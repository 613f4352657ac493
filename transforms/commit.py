"""The last step of a build: final shard and reject names, the accounting check, report.md, then manifest.json.

The manifest is written last and atomically (temporary name, then rename): no manifest, no dataset.
"""
from __future__ import annotations

from collections import defaultdict

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from schemas.manifest import MANIFEST, accounting_errors, dump_manifest
from schemas.shard import bucket_lengths, shard_path
from transforms.counting import nested_counts
from transforms.rejects import record_path
from transforms.report import render_report


class AccountingError(RuntimeError):
    """The build lost or invented documents or tokens: no manifest is written."""


def _move(temp: str, final: str) -> None:
    """Idempotent on retry: a temp file already moved is left alone."""
    if not FileSystems.exists(temp) and FileSystems.exists(final):
        return
    parent = final.rsplit("/", 1)[0]
    if not FileSystems.exists(parent):
        FileSystems.mkdirs(parent)
    FileSystems.rename([temp], [final])


def _write_atomically(path: str, data: bytes) -> None:
    temp = path + ".tmp"
    with FileSystems.create(temp, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([temp], [path])


def commit_buckets(output: str, shard_files, min_bucket: int, max_bucket: int) -> list[dict]:
    by_length = defaultdict(list)
    for shard in shard_files:
        by_length[shard.length].append(shard)
    buckets = []
    for length in bucket_lengths(min_bucket, max_bucket):
        shards = sorted(by_length.pop(length, []), key=lambda s: s.index)
        entries = []
        for i, shard in enumerate(shards):
            path = shard_path(length, i, len(shards))
            _move(shard.temp_path, FileSystems.join(output, path))
            entries.append({"path": path, "rows": shard.rows, "bytes": shard.bytes, "sha256": shard.sha256})
        rows = sum(s.rows for s in shards)
        buckets.append({"length": length, "rows": rows, "tokens": rows * (length + 1), "shards": entries})
    if by_length:
        raise AccountingError(f"shards for unexpected bucket lengths {sorted(by_length)}")
    return buckets


SPEECH_COUNTS = ("words", "speech_words", "spans_cached", "spans_converted", "spans_failed")


def speech_summary(speech: dict | None, counts: dict) -> dict | None:
    """The manifest's speech block: the model's facts, plus what this build converted (its counts move here)."""
    figures = {key: counts.pop(key, 0) for key in SPEECH_COUNTS}
    if speech is None:
        return None
    spans = figures["spans_cached"] + figures["spans_converted"] + figures["spans_failed"]
    return dict(speech, spans=spans, **{k: figures[k] for k in SPEECH_COUNTS[2:]},
                cache_hit_rate=round(figures["spans_cached"] / spans, 6) if spans else 0.0,
                achieved_word_share=round(figures["speech_words"] / figures["words"], 6) if figures["words"] else 0.0)


class CommitDatasetFn(beam.DoFn):
    def __init__(self, output: str, temp_dir: str, manifest_base: dict):
        self._output, self._temp_dir, self._base = output, temp_dir, manifest_base

    def process(self, _, shard_files, record_files, totals):
        config = self._base["config"]
        buckets = commit_buckets(self._output, shard_files, config["min_bucket"], config["max_bucket"])
        written = {"rejects": 0, "dead_letter": 0}
        for kind in written:
            files = sorted((f for f in record_files if f.kind == kind), key=lambda f: f.index)
            for i, record_file in enumerate(files):
                _move(record_file.temp_path, FileSystems.join(self._output, record_path(kind, i)))
                written[kind] += record_file.records
        counts = nested_counts(totals)
        speech = speech_summary(self._base["speech"], counts)
        counts["tokens_written"] = sum(b["tokens"] for b in buckets)
        errors = accounting_errors(counts)
        if written["rejects"] != sum(counts["rejected"].values()):
            errors.append(f"{written['rejects']} rejects written, {sum(counts['rejected'].values())} counted")
        if speech and written["dead_letter"] != speech["spans_failed"]:
            errors.append(f"{written['dead_letter']} dead letters written, {speech['spans_failed']} spans failed")
        if errors:
            raise AccountingError("; ".join(errors))
        manifest = dict(self._base, speech=speech, buckets=buckets, counts=counts)
        _write_atomically(FileSystems.join(self._output, "report.md"), render_report(manifest).encode())
        _write_atomically(FileSystems.join(self._output, MANIFEST), dump_manifest(manifest))
        FileSystems.delete([self._temp_dir])
        yield manifest


class CommitDataset(beam.PTransform):
    def __init__(self, output: str, temp_dir: str, manifest_base: dict):
        super().__init__()
        self._fn = CommitDatasetFn(output, temp_dir, manifest_base)

    def expand(self, inputs):
        shard_files, record_files, totals = inputs
        return (shard_files.pipeline
                | "Once" >> beam.Create([None])
                | "Commit" >> beam.ParDo(self._fn, beam.pvalue.AsList(shard_files),
                                         beam.pvalue.AsList(record_files), beam.pvalue.AsDict(totals)))
