"""How far two speech builds of the same JSONL inputs agree: each span's units in one build's inference cache against
the other's (for example a CPU build and a `--device cuda` build), and which shards are byte-identical.

    python3 -m scripts.recipes.unit_agreement REFERENCE_DIR CANDIDATE_DIR [--json FILE]

Both builds must have run with `--cache` (the units are read from there) on local `.jsonl` / `.jsonl.zst` inputs,
with the same speech ratio, span lambda and seed. Every span is found again as a build finds it
(synthetic_interleaving.segments over each record's text, keyed by its id), so the two caches are joined span by
span even where their keys differ (bf16 units are cached under another key than float32 ones). Figures: the share of
spans with identical units, of spans with the same number of units, the unit agreement 1 - UER (edit distance over
the reference's units, corpus-level), the share of unit positions equal in both, and the shards whose sha256 agree.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import zstandard

from vocaloom.schemas.manifest import MANIFEST
from vocaloom.text_to_token.unit_metrics import unit_error_rate
from vocaloom.transforms.inference.cache import cache_key, model_cache_dir
from vocaloom.transforms.speech.speech_handlers import units_identity
from vocaloom.transforms.speech.synthetic_interleaving import segments


def read_manifest(directory: str) -> dict:
    try:
        manifest = json.loads((Path(directory) / MANIFEST).read_bytes())
    except (OSError, ValueError) as e:
        raise SystemExit(f"unit_agreement: {directory}: no readable {MANIFEST} ({e})") from None
    if not manifest.get("speech") or not manifest["config"].get("cache"):
        raise SystemExit(f"{directory}: not a speech build with --cache")
    return manifest


def cached_units(manifest: dict) -> dict[str, list[int]]:
    folder = Path(model_cache_dir(manifest["config"]["cache"], manifest["speech"]["sha256"]))
    entries = {}
    for file in sorted(folder.glob("*.jsonl.zst")):
        for line in zstandard.ZstdDecompressor().stream_reader(file.open("rb")).read().splitlines():
            entry = json.loads(line)
            entries[entry["key"]] = entry["value"]
    return entries


def records(path: str):
    with open(path, "rb") as f:
        data = zstandard.ZstdDecompressor().stream_reader(f).read() if path.endswith(".zst") else f.read()
    for line in data.splitlines():
        if line.strip():
            yield json.loads(line)


def span_texts(manifest: dict):
    config = manifest["config"]
    for source in manifest["inputs"]:
        for record in records(source["path"]):
            text, doc_id = record[config["text_field"]], str(record[config["id_field"]])
            for segment in segments(text, config["speech_ratio"], config["span_lambda"], config["seed"], doc_id):
                if segment.speech:
                    yield text[segment.start : segment.end]


def agreement(reference: dict, candidate: dict) -> dict:
    options = ("inputs", "speech_ratio", "span_lambda", "seed", "text_field", "id_field")
    if any(reference["config"][k] != candidate["config"][k] for k in options):
        raise SystemExit(f"the builds differ in one of {', '.join(options)}: their spans cannot be compared")
    ids = {
        name: units_identity(m["speech"]["sha256"], m["speech"].get("dtype", "float32"))
        for name, m in (("reference", reference), ("candidate", candidate))
    }
    units = {"reference": cached_units(reference), "candidate": cached_units(candidate)}
    pairs = {}
    for text in span_texts(reference):
        ref = units["reference"].get(cache_key(ids["reference"], text))
        cand = units["candidate"].get(cache_key(ids["candidate"], text))
        if ref is not None and cand is not None:
            pairs[text] = (ref, cand)
    refs, cands = [p[0] for p in pairs.values()], [p[1] for p in pairs.values()]
    total = max(1, sum(map(len, refs)))
    shards = {s["path"]: s["sha256"] for m in (reference,) for b in m["buckets"] for s in b["shards"]}
    same_shards = sum(shards.get(s["path"]) == s["sha256"] for b in candidate["buckets"] for s in b["shards"])
    identical = sum(r == c for r, c in zip(refs, cands))
    same_length = sum(len(r) == len(c) for r, c in zip(refs, cands))
    same_position = sum(a == b for r, c in zip(refs, cands) for a, b in zip(r, c))
    return {
        "reference": f"{reference['config']['device']} {reference['speech'].get('dtype', 'float32')}",
        "candidate": f"{candidate['config']['device']} {candidate['speech'].get('dtype', 'float32')}",
        "spans": len(pairs),
        "reference_units": sum(map(len, refs)),
        "identical_spans": identical,
        "identical_span_share": round(identical / max(1, len(pairs)), 6),
        "same_length_spans": same_length,
        "same_length_share": round(same_length / max(1, len(pairs)), 6),
        "unit_agreement": round(1 - unit_error_rate(refs, cands), 6),
        "same_position_units": same_position,
        "same_position_share": round(same_position / total, 6),
        "shards_identical": f"{same_shards} of {sum(len(b['shards']) for b in candidate['buckets'])}",
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("candidate")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    figures = agreement(read_manifest(args.reference), read_manifest(args.candidate))
    print(json.dumps(figures, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
