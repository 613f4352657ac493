"""A property of the whole build (Hypothesis): small random corpora with faults of every kind injected never crash
it, the accounting always balances, every reject has the reason of a fault that was injected, and the same input
gives the same shards."""

import gzip
import hashlib
import json
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import RUNNER, TEXT_ONLY
from vocaloom.pipelines.build import run
from vocaloom.pipelines.verify import verify
from vocaloom.schemas.manifest import Manifest

pytestmark = pytest.mark.integration

MAX_RECORD_BYTES = 2000
WORDS = st.lists(
    st.sampled_from("the quick brown fox jumps over a lazy dog while speech and text interleave".split()),
    min_size=1,
    max_size=60,
).map(" ".join)
# Each fault: the JSONL line that injects it and the reject reason it must give (None: filtered or kept, not a reject).
FAULTS = {
    "malformed_json": (st.just(b'{"id": "x", "text": '), "malformed_json"),
    "trailing_garbage": (st.just(b'{"id": "x", "text": "t"} extra'), "trailing_garbage"),
    "missing_text": (st.just(b'{"id": "x"}'), "missing_text"),
    "not_an_object": (st.just(b"[1, 2, 3]"), "not_an_object"),
    "nul_byte": (st.just(b'{"id": "x", "text": "a\x00b"}'), "nul_byte"),
    "invalid_utf8": (st.just(b'{"id": "x", "text": "\xff\xfe"}'), "invalid_utf8"),
    "too_deeply_nested": (
        st.just(b'{"id": "x", "text": "t", "m": ' + b"[" * 2000 + b"]" * 2000 + b"}"),
        "too_deeply_nested",
    ),
    "record_too_large": (st.just(b'{"id": "x", "text": "' + b"w " * MAX_RECORD_BYTES + b'"}'), "record_too_large"),
    "blank_text": (st.just(b'{"id": "x", "text": "   "}'), None),
}


@st.composite
def corpora(draw):
    """[(file name, bytes)], and the reject reasons the faults in them may give."""
    files, reasons = [], set()
    for index in range(draw(st.integers(1, 4))):
        lines = []
        for number in range(draw(st.integers(0, 25))):
            if draw(st.booleans()):
                fault, reason = FAULTS[draw(st.sampled_from(sorted(FAULTS)))]
                lines.append(draw(fault))
                reasons.add(reason)
            else:
                text = draw(st.one_of(WORDS, st.sampled_from(["a repeated document", "another repeat"])))
                lines.append(json.dumps({"id": f"f{index}-{number}", "text": text}).encode())
        body = b"\n".join(lines) + (b"\n" if lines and draw(st.booleans()) else b"")
        kind = draw(st.sampled_from(["jsonl", "jsonl.gz", "jsonl.zst", "truncated.jsonl.gz", "truncated.jsonl.zst"]))
        if kind.endswith("gz"):
            body = gzip.compress(body)
        elif kind.endswith("zst"):
            body = zstandard.ZstdCompressor().compress(body)
        if kind.startswith("truncated") and len(body) > 20:
            body = body[: draw(st.integers(10, len(body) - 1))]
            reasons.add("corrupt_file")
        files.append((f"part{index}.{kind}", body))
    return files, reasons


def shard_digests(output: Path, manifest: Manifest) -> list[str]:
    return [
        hashlib.sha256((output / s["path"]).read_bytes()).hexdigest()
        for bucket in manifest["buckets"]
        for s in bucket["shards"]
    ]


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(corpus=corpora())
def test_faulty_corpora_build_balanced_and_deterministic(tmp_path_factory, corpus):
    files, reasons = corpus
    folder = tmp_path_factory.mktemp("corpus")
    for name, body in files:
        (folder / name).write_bytes(body)
    (folder / "unreadable.jsonl").mkdir()  # a directory named like an input
    digests = []
    for attempt in range(2):
        output = folder / f"ds{attempt}"
        manifest = run(
            [
                "--input",
                str(folder / "part*"),
                "--input",
                str(folder / "unreadable.jsonl"),
                "--output",
                str(output),
                "--skip-unreadable",
                "--max-record-bytes",
                str(MAX_RECORD_BYTES),
                "--min-bucket",
                "4",
                "--max-bucket",
                "6",
                "--shard-tokens",
                "500",
                *TEXT_ONLY,
                *RUNNER,
                *(["--direct_num_workers=2"] if attempt else []),
            ]
        )
        assert verify(str(output)) == []  # the accounting identities hold, every shard is what the manifest says
        assert set(manifest["counts"]["rejected"]) <= reasons
        assert [u["path"] for u in manifest["inputs_unreadable"]] == [str(folder / "unreadable.jsonl")]
        digests.append(shard_digests(output, manifest))
    assert digests[0] == digests[1]
