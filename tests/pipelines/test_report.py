from typing import cast

from vocaloom.schemas.manifest import Manifest
from vocaloom.transforms.io.report import render_figures, render_report

BUCKETS = [
    {"length": 256, "rows": 10, "tokens": 2570, "shards": [{}]},
    {"length": 512, "rows": 2, "tokens": 1026, "shards": [{}]},
]
COUNTS = {
    "records_read": 20,
    "rejected": {"malformed_json": 2},
    "filtered": {"empty_text": 1},
    "duplicates": 3,
    "documents_kept": 14,
    "text_tokens": 3000,
    "speech_tokens": 900,
    "tokens_written": 3596,
    "tokens_dropped": 304,
}
SPEECH = {
    "source": "text-to-token",
    "model": "m",
    "sha256": "0" * 64,
    "frame_rate_hz": 12.5,
    "codebook_size": 64,
    "speech_ratio": 0.3,
    "span_lambda": 10,
    "spans": 40,
    "spans_cached": 30,
    "spans_converted": 9,
    "spans_failed": 1,
    "cache_hit_rate": 0.75,
    "achieved_word_share": 0.29,
    "span_words": {"1": 4, "2": 30, "9": 6},
}


def manifest(speech) -> Manifest:
    """A manifest of the fields the report reads."""
    return cast(
        Manifest,
        {
            "format": "vocaloom/1",
            "config": {"output": "out", "context": "document", "seed": 0},
            "tokenizer": {"path": "sp.model", "text_size": 8000},
            "speech": speech,
            "ordering": None,
            "buckets": BUCKETS,
            "counts": COUNTS,
        },
    )


def test_figures_are_pngs_with_a_speech_figure_only_for_speech_builds():
    assert list(render_figures(manifest(None))) == ["buckets.png", "accounting.png"]
    figures = render_figures(manifest(SPEECH))
    assert list(figures) == ["buckets.png", "accounting.png", "speech.png", "span_lengths.png"]
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in figures.values())


def test_report_links_the_figures_it_is_given():
    report = render_report(manifest(SPEECH), ("buckets.png", "speech.png"))
    assert "![buckets](figures/buckets.png)" in report and "![speech](figures/speech.png)" in report
    assert "figures/" not in render_report(manifest(SPEECH))  # `vocaloom inspect` prints no links
    assert "| mean spoken span (words) | 2.95 |" in report  # (4 * 1 + 30 * 2 + 6 * 9) / 40
