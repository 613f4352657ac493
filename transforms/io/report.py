"""report.md and its figures: what a person reads after a build, rendered from the manifest alone."""

from __future__ import annotations

import io

from vocaloom.schemas.counts import tokens_produced
from vocaloom.schemas.manifest import Counts, Manifest, Ordering, Speech
from vocaloom.schemas.shard import FIGURES_DIR


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.2f}%" if whole else "n/a"


def provenance_lines(made: dict | None) -> list[str]:
    """Who made the build and when (absent from manifests written before vocaloom recorded it)."""
    if not isinstance(made, dict):
        return []
    vocaloom, beam, runner, started, finished = (
        made.get(key, "?") for key in ("vocaloom", "apache_beam", "runner", "started", "finished")
    )
    return [f"built by vocaloom {vocaloom} (Apache Beam {beam}, {runner}), {started} to {finished}", ""]


def render_report(manifest: Manifest, figures: tuple[str, ...] = ()) -> str:
    """The report's Markdown; `figures` (file names under FIGURES_DIR) are linked below the title."""
    counts, config = manifest["counts"], manifest["config"]
    produced = tokens_produced(counts)
    lines = [
        f"# vocaloom build: {config['output']}",
        "",
        f"format `{manifest['format']}`, context `{config['context']}`, seed {config['seed']}, "
        f"tokenizer `{manifest['tokenizer']['path']}` ({manifest['tokenizer']['text_size']} pieces)",
        "",
        *provenance_lines(manifest.get("provenance")),
        *(line for name in figures for line in (f"![{name[:-4]}]({FIGURES_DIR}/{name})", "")),
        "## Documents",
        "",
        "| | count |",
        "|---|---:|",
        f"| records read | {counts['records_read']:,} |",
        f"| rejected | {sum(counts['rejected'].values()):,} |",
        f"| filtered | {sum(counts['filtered'].values()):,} |",
        f"| exact duplicates | {counts['duplicates']:,} |",
        f"| documents kept | {counts['documents_kept']:,} |",
        "",
    ]
    for group in ("rejected", "filtered"):
        if counts[group]:
            lines += [
                f"{group.capitalize()} by reason: "
                + ", ".join(f"`{reason}` {n:,}" for reason, n in sorted(counts[group].items())),
                "",
            ]
    lines += [
        "## Tokens",
        "",
        "| | tokens | share |",
        "|---|---:|---:|",
        f"| text | {counts['text_tokens']:,} | {_pct(counts['text_tokens'], produced)} |",
        f"| speech | {counts['speech_tokens']:,} | {_pct(counts['speech_tokens'], produced)} |",
        f"| written to shards | {counts['tokens_written']:,} | {_pct(counts['tokens_written'], produced)} |",
        f"| dropped | {counts['tokens_dropped']:,} | {_pct(counts['tokens_dropped'], produced)} |",
        "",
    ]
    if counts.get("tokens_dropped_by_reason"):
        lines += [
            "Dropped by reason: "
            + ", ".join(f"`{reason}` {n:,}" for reason, n in sorted(counts["tokens_dropped_by_reason"].items())),
            "",
        ]
    lines += _source_lines(manifest["sources"], counts["tokens_written"]) if manifest.get("sources") else []
    lines += _speech_lines(speech) if (speech := manifest["speech"]) else []
    lines += _ordering_lines(ordering) if (ordering := manifest["ordering"]) else []
    lines += [
        "## Buckets",
        "",
        "| length | rows | tokens | share of written | shards |",
        "|---:|---:|---:|---:|---:|",
    ]
    for bucket in manifest["buckets"]:
        lines.append(
            f"| {bucket['length']:,} | {bucket['rows']:,} | {bucket['tokens']:,} | "
            f"{_pct(bucket['tokens'], counts['tokens_written'])} | {len(bucket['shards'])} |"
        )
    return "\n".join(lines) + "\n"


def _source_lines(sources: dict, tokens_written: int) -> list[str]:
    """Named sources (--input NAME=PATTERN): what each gave the dataset."""
    lines = [
        "## Sources",
        "",
        "| source | inputs | records read | rejected | documents kept | tokens written | share | speech ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, source in sorted(sources.items()):
        lines.append(
            f"| {name} | {source['inputs']:,} | {source['records_read']:,} | {source['rejected']:,} | "
            f"{source['documents_kept']:,} | {source['tokens_written']:,} | "
            f"{_pct(source['tokens_written'], tokens_written)} | {source['speech_ratio']} |"
        )
    return [*lines, ""]


def _speech_lines(speech: Speech) -> list[str]:
    return [
        "## Speech",
        "",
        f"source `{speech['source']}`, model `{speech['model']}` ({speech['codebook_size']} units at "
        f"{speech['frame_rate_hz']} Hz), target share {speech['speech_ratio']}, span lambda {speech['span_lambda']}",
        "",
        "| | value |",
        "|---|---:|",
        f"| achieved word share | {speech['achieved_word_share']:.4f} |",
        f"| spans | {speech['spans']:,} |",
        f"| from the inference cache | {speech['spans_cached']:,} ({speech['cache_hit_rate']:.2%}) |",
        f"| converted now | {speech['spans_converted']:,} |",
        f"| failed (kept as text, see dead_letter/) | {speech['spans_failed']:,} |",
        *(
            [f"| invalid cache entries (converted again) | {speech['cache_entries_invalid']:,} |"]
            if speech.get("cache_entries_invalid")
            else []
        ),
        f"| mean spoken span (words) | {mean_span_words(speech['span_words']):.2f} |",
        "",
    ]


def _ordering_lines(ordering: Ordering) -> list[str]:
    """`--context related`: how well the path keeps related documents together, and where embeddings came from."""

    def share(value) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    recall = ordering["approximate_recall"]
    return [
        "## Ordering (In-Context Pretraining)",
        "",
        f"embedder `{ordering['embedder']}`, {ordering['knn']} neighbours, {ordering['partitions']:,} partitions "
        f"({ordering['approximate_partitions']:,} searched approximately"
        + (f", recall {recall:.4f})" if recall is not None else ")"),
        "",
        "| | value |",
        "|---|---:|",
        f"| documents ordered | {ordering['documents']:,} |",
        f"| segments | {ordering['segments']:,} |",
        f"| quality (0: a random order, 1: each beside its best neighbour) | {share(ordering['quality'])} |",
        f"| mean similarity of adjacent documents | {share(ordering['mean_adjacent_similarity'])} |",
        f"| in a random order | {share(ordering['random_order_similarity'])} |",
        f"| of each document's best neighbour | {share(ordering['best_neighbour_similarity'])} |",
        f"| kNN edges lost to partitions (sampled) | {share(ordering['edges_lost_fraction'])} |",
        f"| embeddings from the cache | {ordering['embeddings_cached']:,} "
        f"({ordering['embedding_cache_hit_rate']:.2%}) |",
        f"| embeddings computed now | {ordering['embeddings_computed']:,} |",
        *(
            [f"| invalid cache entries (computed again) | {ordering['embedding_cache_entries_invalid']:,} |"]
            if ordering.get("embedding_cache_entries_invalid")
            else []
        ),
        f"| tokens dropped (as each document alone would drop) | {ordering['tokens_dropped']:,} "
        f"({ordering['tokens_dropped_document_mode']:,}) |",
        "",
    ]


def mean_span_words(span_words: dict) -> float:
    spans = sum(span_words.values())
    return sum(int(words) * n for words, n in span_words.items()) / spans if spans else 0.0


def render_figures(manifest: Manifest) -> dict[str, bytes]:
    """PNG figures by file name: tokens and rows per bucket, what happened to the records and tokens, and for
    speech builds the speech share, where the spans' units came from and the spoken spans' lengths."""
    import matplotlib

    matplotlib.use("Agg")  # no display on build workers
    from matplotlib.figure import Figure

    figures = {
        "buckets.png": _buckets_figure(Figure(figsize=(8, 3.6)), manifest),
        "accounting.png": _accounting_figure(Figure(figsize=(9, 4.2)), manifest["counts"]),
    }
    if manifest["speech"]:
        figures["speech.png"] = _speech_figure(Figure(figsize=(9, 3.2)), manifest["counts"], manifest["speech"])
        figures["span_lengths.png"] = _span_lengths_figure(Figure(figsize=(8, 3.2)), manifest["speech"])
    return {name: _png(figure) for name, figure in figures.items()}


def _margins(figure, left: float, bottom: float, gap: float = 0.0, top: float = 0.4, right: float = 0.15):
    """Places the axes by margins in inches, fixed for each figure's labels: tight_layout measured every label by
    drawing the figure once more, a quarter of a text-only build's report time."""
    width, height = figure.get_size_inches()
    columns = len(figure.axes)
    axis_width = (width - left - right - gap * (columns - 1)) / columns
    figure.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=gap / axis_width,
    )
    return figure


def _label_inches(labels: list[str], fontsize: float = 10) -> float:
    """About how wide the longest label is, in inches (DejaVu Sans averages 0.6 of the font size per character)."""
    return max(map(len, labels), default=0) * 0.6 * fontsize / 72


def _power_of_ten_label(value: float, _position=None) -> str:
    """A log axis tick as 0, 1, 10, 100, 1k ... 100M: short, and no mathtext."""
    for power, suffix in ((9, "G"), (6, "M"), (3, "k"), (0, "")):
        if value >= 10**power:
            return f"{value / 10**power:g}{suffix}"
    return f"{value:g}"


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})  # no version stamp in the bytes
    return buffer.getvalue()


def _buckets_figure(figure, manifest: Manifest):
    buckets = manifest["buckets"]
    labels = [f"{b['length']:,}" for b in buckets]
    tokens_axis, rows_axis = figure.subplots(1, 2)
    bars = tokens_axis.bar(labels, [b["tokens"] / 1e6 for b in buckets], color="tab:blue")
    tokens_axis.bar_label(
        bars, labels=[_pct(b["tokens"], manifest["counts"]["tokens_written"]) for b in buckets], padding=2, fontsize=8
    )
    tokens_axis.margins(y=0.12)
    tokens_axis.set(title="Tokens per bucket", xlabel="row length L", ylabel="million tokens")
    rows_axis.bar(labels, [b["rows"] for b in buckets], color="tab:gray")
    rows_axis.set(title="Rows per bucket", xlabel="row length L", ylabel="rows")
    for axis in (tokens_axis, rows_axis):
        axis.tick_params(axis="x", labelrotation=45)
    rows_width = _label_inches([f"{max((b['rows'] for b in buckets), default=0):,}"])
    return _margins(figure, left=0.85, bottom=0.85, gap=0.45 + rows_width)


def _accounting_figure(figure, counts: Counts):
    records_axis, tokens_axis = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    records = [("kept", counts["documents_kept"], "tab:green"), ("duplicates", counts["duplicates"], "tab:olive")]
    records += [(f"rejected: {r}", n, "tab:red") for r, n in sorted(counts["rejected"].items())]
    records += [(f"filtered: {r}", n, "tab:orange") for r, n in sorted(counts["filtered"].items())]
    bars = records_axis.barh([r[0] for r in records], [r[1] for r in records], color=[r[2] for r in records])
    records_axis.bar_label(bars, labels=[f"{r[1]:,}" for r in records], padding=3)
    records_axis.invert_yaxis()
    records_axis.margins(x=0.15)
    records_axis.set_xscale("symlog")  # one reject next to millions kept stays visible
    records_axis.xaxis.set_major_formatter(_power_of_ten_label)  # plain text: mathtext's parser is slow to build
    records_axis.set(title=f"{counts['records_read']:,} records read", xlabel="records (log scale)")
    tokens = [("written", counts["tokens_written"], "tab:blue"), ("dropped", counts["tokens_dropped"], "tab:red")]
    bars = tokens_axis.bar([t[0] for t in tokens], [t[1] / 1e6 for t in tokens], color=[t[2] for t in tokens])
    produced = tokens_produced(counts)
    tokens_axis.bar_label(bars, labels=[_pct(t[1], produced) for t in tokens], padding=2)
    tokens_axis.margins(y=0.12)
    tokens_axis.set(title=f"{produced / 1e6:,.2f}M tokens produced", ylabel="million tokens")
    return _margins(figure, left=0.25 + _label_inches([r[0] for r in records]), bottom=0.6, gap=1.1)


def _speech_figure(figure, counts: Counts, speech: Speech):
    share_axis, spans_axis = figure.subplots(1, 2)
    produced, left = tokens_produced(counts), 0.0
    for name, tokens, color in (
        ("text", counts["text_tokens"], "tab:blue"),
        ("speech", counts["speech_tokens"], "tab:purple"),
    ):
        bars = share_axis.barh(["tokens"], [tokens / 1e6], left=[left], color=color)
        share_axis.bar_label(bars, labels=[f"{name} {_pct(tokens, produced)}"], label_type="center", color="white")
        left += tokens / 1e6
    share_axis.set(
        title=f"Speech word share {speech['achieved_word_share']:.3f} (target {speech['speech_ratio']})",
        xlabel="million tokens",
    )
    spans = [
        ("from cache", speech["spans_cached"], "tab:green"),
        ("converted", speech["spans_converted"], "tab:blue"),
        ("failed", speech["spans_failed"], "tab:red"),
    ]
    bars = spans_axis.bar([s[0] for s in spans], [s[1] for s in spans], color=[s[2] for s in spans])
    spans_axis.bar_label(bars, labels=[f"{s[1]:,}" for s in spans], padding=2)
    spans_axis.margins(y=0.12)
    spans_axis.set(
        title=f"{speech['spans']:,} speech spans, cache hit rate {speech['cache_hit_rate']:.1%}", ylabel="spans"
    )
    return _margins(figure, left=0.7, bottom=0.6, gap=0.7 + _label_inches([f"{max(s[1] for s in spans):,}"]))


def _span_lengths_figure(figure, speech: Speech):
    axis = figure.subplots()
    lengths = [int(words) for words in speech["span_words"]]
    axis.bar(lengths, list(speech["span_words"].values()), width=0.8, color="tab:purple")
    axis.axvline(speech["span_lambda"], color="black", linestyle="--", label=f"span lambda {speech['span_lambda']}")
    axis.legend()
    axis.set(
        title=f"Spoken span lengths (mean {mean_span_words(speech['span_words']):.2f} words)",
        xlabel="words in the span",
        ylabel="spans",
    )
    return _margins(
        figure, left=0.45 + _label_inches([f"{max(speech['span_words'].values(), default=0):,}"]), bottom=0.6
    )
