"""report.md: what a person reads after a build, rendered from the manifest alone."""
from __future__ import annotations


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.2f}%" if whole else "n/a"


def render_report(manifest: dict) -> str:
    counts, config = manifest["counts"], manifest["config"]
    produced = counts["text_tokens"] + counts["speech_tokens"]
    lines = [
        f"# vocaloom build: {config['output']}",
        "",
        f"format `{manifest['format']}`, context `{config['context']}`, seed {config['seed']}, "
        f"tokenizer `{manifest['tokenizer']['path']}` ({manifest['tokenizer']['text_size']} pieces)",
        "",
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
            lines += [f"{group.capitalize()} by reason: "
                      + ", ".join(f"`{reason}` {n:,}" for reason, n in sorted(counts[group].items())), ""]
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
    lines += _speech_lines(manifest["speech"]) if manifest["speech"] else []
    lines += [
        "## Buckets",
        "",
        "| length | rows | tokens | share of written | shards |",
        "|---:|---:|---:|---:|---:|",
    ]
    for bucket in manifest["buckets"]:
        lines.append(f"| {bucket['length']:,} | {bucket['rows']:,} | {bucket['tokens']:,} | "
                     f"{_pct(bucket['tokens'], counts['tokens_written'])} | {len(bucket['shards'])} |")
    return "\n".join(lines) + "\n"


def _speech_lines(speech: dict) -> list[str]:
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
        f"| from the conversion cache | {speech['spans_cached']:,} ({speech['cache_hit_rate']:.2%}) |",
        f"| converted now | {speech['spans_converted']:,} |",
        f"| failed (kept as text, see dead_letter/) | {speech['spans_failed']:,} |",
        "",
    ]
