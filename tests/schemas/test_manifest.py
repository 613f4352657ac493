"""schemas/manifest.py's types against what the build writes: the `counts` block's keys are the declarations of
schemas/counts.py, and a real manifest has exactly the keys its types name (tests/pipelines/test_build_related.py
checks one with speech, related context and named sources), so the type checker's view of every reader is the
format."""

from typing import get_type_hints, is_typeddict

from vocaloom.schemas import counts
from vocaloom.schemas.manifest import BucketEntry, Counts


def key_problems(value: object, typed, where: str = "manifest") -> list[str]:
    """Each key of `value` that the TypedDict `typed` does not name, and each required key it lacks, through the
    TypedDicts nested in it (in a block that may be null, a list or a mapping by name)."""
    if not isinstance(value, dict):
        return [f"{where} is not an object"]
    hints = get_type_hints(typed)
    problems = [f"{where}.{key}: not in {typed.__name__}" for key in sorted(set(value) - set(hints))]
    problems += [f"{where}.{key}: missing" for key in sorted(typed.__required_keys__ - set(value))]
    for key, hint in hints.items():
        if value.get(key) is not None:
            problems += _nested_problems(value[key], hint, f"{where}.{key}")
    return problems


def _nested_problems(value, hint, where: str) -> list[str]:
    if is_typeddict(hint):
        return key_problems(value, hint, where)
    args: tuple = getattr(hint, "__args__", ())
    origin = getattr(hint, "__origin__", None)
    if origin is list and is_typeddict(args[0]):
        return [p for i, item in enumerate(value) for p in key_problems(item, args[0], f"{where}[{i}]")]
    if origin is dict and is_typeddict(args[1]):
        return [p for name, item in value.items() for p in key_problems(item, args[1], f"{where}.{name}")]
    typed = [arg for arg in args if is_typeddict(arg)]  # Speech | None
    return key_problems(value, typed[0], where) if origin is None and typed else []


def test_the_counts_type_names_the_declared_counts():
    assert set(get_type_hints(Counts)) == {c.name for c in counts.FORMAT_COUNTS}
    assert Counts.__optional_keys__ == {c.name for c in counts.FORMAT_COUNTS if c.since_v1}


def test_key_problems_names_an_unknown_key_and_a_missing_one_in_a_nested_entry():
    shard = {"path": "data/x.arrow", "rows": 1, "bytes": 2, "sha256": "0" * 64}
    bucket = {"length": 32, "rows": 1, "tokens": 33, "shards": [shard]}
    assert key_problems(bucket, BucketEntry) == []
    bucket["shards"] = [{**shard, "crc": 1}, {"path": "data/y.arrow", "rows": 1, "bytes": 2}]
    assert key_problems(bucket, BucketEntry, "bucket") == [
        "bucket.shards[0].crc: not in ShardEntry",
        "bucket.shards[1].sha256: missing",
    ]
