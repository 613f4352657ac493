"""unit_agreement.py joins two builds' inference caches span by span, whatever precision keyed them, and counts
what agrees: spans, lengths, units (1 - UER), positions and shards."""

import json

import orjson
import pytest
import zstandard

from scripts.recipes import unit_agreement
from vocaloom.transforms.inference.cache import cache_key, model_cache_dir
from vocaloom.transforms.speech.speech_handlers import units_identity
from vocaloom.transforms.speech.synthetic_interleaving import segments

DOCS = [
    {"id": "a", "text": "one two three four five six seven eight nine ten eleven twelve"},
    {"id": "b", "text": "the quick brown fox jumps over the lazy dog and runs far away"},
]


def build(tmp_path, name: str, device: str, dtype: str, change, shard_sha: str) -> str:
    """A build directory as the script reads it: a manifest and a cache of units for every spoken span."""
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    cache = str(tmp_path / f"{name}-cache")
    config = {
        "inputs": [str(corpus)],
        "speech_ratio": 0.5,
        "span_lambda": 2.0,
        "seed": 0,
        "text_field": "text",
        "id_field": "id",
        "device": device,
        "cache": cache,
    }
    sha = "5" * 64
    lines = []
    for doc in DOCS:
        for s in segments(doc["text"], 0.5, 2.0, 0, doc["id"]):
            if s.speech:
                text = doc["text"][s.start : s.end]
                units = change(text, [len(w) for w in text.split()] * 2)
                lines.append(orjson.dumps({"key": cache_key(units_identity(sha, dtype), text), "value": units}))
    folder = tmp_path / model_cache_dir(cache, sha)
    folder.mkdir(parents=True)
    (folder / "x.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(lines) + b"\n"))
    directory = tmp_path / name
    directory.mkdir()
    (directory / "manifest.json").write_text(
        json.dumps(
            {
                "config": config,
                "inputs": [{"path": str(corpus), "bytes": corpus.stat().st_size}],
                "speech": {"sha256": sha, "dtype": dtype},
                "buckets": [
                    {"shards": [{"path": "data/bucket-00256/shard-00000-of-00001.arrow", "sha256": shard_sha}]}
                ],
            }
        )
    )
    return str(directory)


def test_identical_builds_agree_everywhere(tmp_path):
    same = build(tmp_path, "cpu", "cpu", "float32", lambda text, units: units, "s1")
    other = build(tmp_path, "gpu", "cuda", "float32", lambda text, units: units, "s1")
    figures = unit_agreement.agreement(unit_agreement.read_manifest(same), unit_agreement.read_manifest(other))
    assert figures["spans"] > 0 and figures["identical_spans"] == figures["spans"]
    assert (figures["unit_agreement"], figures["same_position_share"], figures["shards_identical"]) == (
        1.0,
        1.0,
        "1 of 1",
    )


def test_a_bf16_build_is_joined_through_its_own_keys_and_its_differences_counted(tmp_path):
    reference = build(tmp_path, "cpu", "cpu", "float32", lambda text, units: units, "s1")
    first = segments(DOCS[0]["text"], 0.5, 2.0, 0, "a")
    spoken = next(DOCS[0]["text"][s.start : s.end] for s in first if s.speech)

    def change(text, units):  # one span loses its last unit and changes its first
        return [units[0] + 1, *units[1:-1]] if text == spoken else units

    candidate = build(tmp_path, "bf16", "cuda", "bfloat16", change, "s2")
    figures = unit_agreement.agreement(unit_agreement.read_manifest(reference), unit_agreement.read_manifest(candidate))
    assert figures["candidate"] == "cuda bfloat16" and figures["identical_spans"] == figures["spans"] - 1
    assert figures["same_length_spans"] == figures["spans"] - 1
    assert figures["same_position_units"] == figures["reference_units"] - 2  # one unit changed, one missing
    assert figures["unit_agreement"] == pytest.approx(1 - 2 / figures["reference_units"], abs=1e-6)
    assert figures["shards_identical"] == "0 of 1"


def test_builds_with_other_span_options_are_refused(tmp_path):
    reference = unit_agreement.read_manifest(build(tmp_path, "cpu", "cpu", "float32", lambda t, u: u, "s"))
    other = json.loads(json.dumps(reference))
    other["config"]["seed"] = 1
    with pytest.raises(SystemExit, match="differ in one of"):
        unit_agreement.agreement(reference, other)
