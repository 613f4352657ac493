from typing import cast

import yaml

from vocaloom.schemas.manifest import Manifest
from vocaloom.schemas.vocab import Vocabulary
from vocaloom.transforms.io.dataset_card import render_card


def manifest(generation: int, rows: list[int]) -> Manifest:
    """A manifest of the fields the card reads."""
    buckets = [
        {"length": 32 << i, "rows": n, "tokens": n * ((32 << i) + 1), "shards": [{"path": "x"}] if n else []}
        for i, n in enumerate(rows)
    ]
    return cast(
        Manifest,
        {
            "format": "vocaloom/1",
            "generation": generation,
            "buckets": buckets,
            "vocab": Vocabulary.build(100, text_eos=2, speech_size=16).to_json(),
            "counts": {"tokens_written": sum(b["tokens"] for b in buckets), "documents_kept": 3},
        },
    )


def header(card: str) -> dict:
    return yaml.safe_load(card.split("---\n")[1]) or {}


def test_a_config_per_bucket_with_rows_and_one_over_all_in_the_manifests_generation():
    card = render_card(manifest(2, [5, 0, 7]))
    configs = {c["config_name"]: c for c in header(card)["configs"]}
    assert list(configs) == ["all", "bucket-00032", "bucket-00128"]  # the empty bucket has no files to match
    assert configs["all"]["default"] and configs["all"]["data_files"] == [
        {"split": "train", "path": "generations/00002/data/bucket-*/shard-*.arrow"}
    ]
    assert configs["bucket-00128"]["data_files"][0]["path"] == "generations/00002/data/bucket-00128/shard-*.arrow"
    assert "speech `[102, 118)`" in card and "| 128 | 7 | 903 | 1 |" in card


def test_a_dataset_without_rows_gets_no_configs():
    assert header(render_card(manifest(0, [0, 0]))) == {}
