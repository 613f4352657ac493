"""README.md, the dataset's card: what Hugging Face `datasets` reads to open the whole dataset with
`load_dataset(DIR)`, and the first thing a person opening the folder sees.

Its YAML header gives HF one config per bucket and a default config, `all`, over every bucket. `all` declares
input_ids a plain list, so HF casts each bucket's fixed-size rows into one schema (a glob over every shard fails:
the buckets' schemas differ). Paths are the manifest's folders, so a replaced dataset's card names its generation.
"""

from __future__ import annotations

from vocaloom.schemas.manifest import Manifest
from vocaloom.schemas.shard import bucket_dir, generation_dir

CARD = "README.md"
_FEATURES = (
    "  features:",
    "  - name: input_ids",
    "    sequence: int32",
    "  - name: doc_starts",
    "    sequence: int32",
    "  - name: doc_ids",
    "    sequence: string",
)


def _config(name: str, pattern: str, default: bool = False) -> list[str]:
    return [
        f"- config_name: {name}",
        *(["  default: true"] if default else []),
        "  data_files:",
        "  - split: train",
        f"    path: {pattern}",
    ]


def render_card(manifest: Manifest) -> str:
    """The card of the dataset `manifest` describes (pure: same manifest, same card)."""
    generation = generation_dir(manifest.get("generation", 0))
    prefix = f"{generation}/" if generation else ""
    buckets = [b for b in manifest["buckets"] if b["shards"]]
    header = []
    if buckets:  # a config whose files match nothing is an error in HF: a dataset without rows gets none
        header = ["configs:", *_config("all", f"{prefix}data/bucket-*/shard-*.arrow", default=True)]
        for bucket in buckets:
            header += _config(f"bucket-{bucket['length']:05d}", f"{prefix}{bucket_dir(bucket['length'])}/shard-*.arrow")
        source = ["  - name: source", "    dtype: int16"] if "sources" in manifest else []  # not before sources
        header += ["dataset_info:", "- config_name: all", *_FEATURES, *source]
    vocab, counts = manifest["vocab"], manifest["counts"]
    specials = ", ".join(f"`{name}` {token}" for name, token in sorted(vocab["specials"].items(), key=lambda s: s[1]))
    lines = [
        "---",
        *header,
        "---",
        f"# vocaloom dataset ({manifest['format']})",
        "",
        f"{counts['tokens_written']:,} tokens in {sum(b['rows'] for b in buckets):,} rows, from "
        f"{counts['documents_kept']:,} documents. Rows of bucket L hold L + 1 token ids (`input_ids[:-1]` inputs, "
        "`input_ids[1:]` targets); `doc_starts` marks where each document piece begins and `doc_ids` names it.",
        "",
        f"Token ids: text `[0, {vocab['text_size']})`, specials {specials}, speech "
        f"`[{vocab['speech_offset']}, {vocab['speech_offset'] + vocab['speech_size']})`. Each shard's Arrow schema "
        "metadata holds the same (`vocaloom.vocab`).",
        "",
        "| bucket | rows | tokens | shards |",
        "|---:|---:|---:|---:|",
        *(f"| {b['length']} | {b['rows']:,} | {b['tokens']:,} | {len(b['shards'])} |" for b in buckets),
        "",
        "Open it whole:",
        "",
        "```python",
        'datasets.load_dataset(DIR)                     # config `all`; one config per bucket: "bucket-00512"',
        "rows = vocaloom.loader.arrow_dataset(DIR)      # pyarrow dataset with a `bucket` column",
        "polars.scan_pyarrow_dataset(rows)",
        'duckdb.sql("SELECT bucket, count(*) FROM rows GROUP BY bucket")',
        "```",
        "",
        "For training, `vocaloom.loader.BucketLoader(DIR, ...)`. manifest.json holds every count and checksum; "
        "`vocaloom verify DIR` checks each shard against it; report.md says how the build went.",
        "",
    ]
    return "\n".join(lines)
