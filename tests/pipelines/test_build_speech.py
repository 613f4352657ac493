import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import zstandard

from tests.conftest import RUNNER, speech_of
from tests.text_to_token.toy_models import make_toy_model
from vocaloom import assets
from vocaloom.pipelines.build import run
from vocaloom.pipelines.cli import main
from vocaloom.pipelines.verify import verify
from vocaloom.schemas.config import ConfigError
from vocaloom.schemas.manifest import Manifest
from vocaloom.transforms.text.tokenize import load_sentencepiece

pytestmark = pytest.mark.integration

SENTENCES = [
    "the cat sat on the warm mat by the door",
    "rain fell softly over the quiet harbour town",
    "seven ships sailed north before the winter storms",
    "a zebra grazed beside the river at dawn",
]


def corpus_lines(with_zebra: bool):
    for i in range(40):
        words = " ".join(SENTENCES[(i + j) % (4 if with_zebra else 3)] for j in range(3 + i % 9))
        yield {"id": f"doc{i:02d}", "text": words + f" number {i}"}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_toy_model(tmp_path_factory.mktemp("model") / "toy")


def write_corpus(folder: Path, with_zebra: bool = False) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "c.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in corpus_lines(with_zebra)))
    return str(path)


def build(corpus: str, output: Path, model: str, *extra: str) -> Manifest:
    return run(
        [
            "--input",
            corpus,
            "--output",
            str(output),
            "--speech-ratio",
            "0.3",
            "--span-lambda",
            "3",
            "--text-to-token-model",
            model,
            "--min-bucket",
            "5",
            "--max-bucket",
            "7",
            "--shard-tokens",
            "3000",
            *RUNNER,
            *extra,
        ]
    )


def rows(output: Path, manifest: Manifest):
    for bucket in manifest["buckets"]:
        for shard in bucket["shards"]:
            yield from pa.ipc.open_file(str(output / shard["path"])).read_all().column("input_ids").to_pylist()


def pieces(output: Path, manifest: dict):
    """Every row's pieces (its documents' tokens, split at doc_starts): packed rows hold several."""
    for bucket in manifest["buckets"]:
        for shard in bucket["shards"]:
            table = pa.ipc.open_file(str(output / shard["path"])).read_all()
            for row, starts in zip(table.column("input_ids").to_pylist(), table.column("doc_starts").to_pylist()):
                yield from (row[start:end] for start, end in zip(starts, [*starts[1:], len(row)]))


def build_sample(tmp_path_factory, model: str) -> tuple[Path, str, Manifest]:
    """The sample corpus built with `model`: (folder, corpus, manifest); the dataset is folder/out."""
    folder = tmp_path_factory.mktemp("speech")
    corpus = write_corpus(folder / "in")
    return folder, corpus, build(corpus, folder / "out", model)


@pytest.fixture(scope="module")
def built(tmp_path_factory, model):
    return build_sample(tmp_path_factory, model)


def test_speech_build_accounts_for_every_token(built):
    folder, _, manifest = built
    assert verify(str(folder / "out")) == []
    counts, speech = manifest["counts"], manifest["speech"]
    assert counts["speech_tokens"] > 0 and counts["documents_kept"] == 40
    assert speech["spans"] == speech["spans_converted"] > 0 and speech["spans_failed"] == 0
    assert abs(speech["achieved_word_share"] - 0.3) < 0.03
    assert manifest["vocab"]["speech_size"] == speech["codebook_size"] == 64
    assert (speech["frame_rate_hz"], speech["source"]) == (12.5, "text-to-token")
    assert "| achieved word share |" in (folder / "out" / "report.md").read_text()
    # every converted span is in the length histogram, with exactly the spoken words
    assert sum(speech["span_words"].values()) == speech["spans"]
    assert manifest["counts"].keys().isdisjoint({"span_words"})
    assert (folder / "out" / "figures" / "span_lengths.png").exists()


def test_speech_runs_are_wrapped_and_text_is_kept(built):
    folder, _, manifest = built
    vocab = manifest["vocab"]
    boa, eoa = vocab["specials"]["begin_of_audio"], vocab["specials"]["end_of_audio"]
    speech_ids = range(vocab["speech_offset"], vocab["size"])
    saw_speech = False
    for piece in pieces(folder / "out", manifest):
        inside = None  # unknown at a piece's start: a document's rows may begin inside a run
        for token in piece:
            if token == boa:
                assert inside is not True
                inside = True
            elif token == eoa:
                assert inside is not False
                inside = False
            elif token in speech_ids:
                assert inside is not False
                saw_speech = True
            else:
                assert inside is not True  # text never inside a speech run
    assert saw_speech


def test_same_shards_with_two_worker_processes(built, model, tmp_path):
    _folder, corpus, manifest = built
    other = build(corpus, tmp_path / "mp", model, "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    assert other["buckets"] == manifest["buckets"]


def test_cache_serves_a_second_build(model, tmp_path):
    corpus = write_corpus(tmp_path / "in")
    first = build(corpus, tmp_path / "a", model, "--cache", str(tmp_path / "cache"))
    second = build(corpus, tmp_path / "b", model, "--cache", str(tmp_path / "cache"))
    assert speech_of(first)["cache_hit_rate"] == 0 and speech_of(first)["spans_converted"] > 0
    assert speech_of(second)["cache_hit_rate"] == 1.0 and speech_of(second)["spans_converted"] == 0
    assert second["buckets"] == first["buckets"]


def test_failed_batches_go_to_dead_letter_and_stay_text(tmp_path):
    model = make_toy_model(tmp_path / "zebra", "toy-fails-on-zebra")
    corpus = write_corpus(tmp_path / "in", with_zebra=True)
    manifest = build(corpus, tmp_path / "out", model, "--max-failed-batch-share", "1")
    speech = speech_of(manifest)
    assert speech["spans_failed"] > 0 and speech["spans_converted"] > 0
    assert verify(str(tmp_path / "out")) == []
    letters = [
        json.loads(line)
        for f in sorted((tmp_path / "out" / "dead_letter").iterdir())
        for line in zstandard.ZstdDecompressor().stream_reader(f.read_bytes()).read().splitlines()
    ]
    assert len(letters) == speech["spans_failed"]
    assert all("cannot say zebra" in letter["error"] for letter in letters)
    assert any("zebra" in letter["text"] for letter in letters)
    sp = load_sentencepiece(str(assets.TOKENIZER_MODEL))
    zebra = sp.encode("zebra")
    assert any(
        np.array_equal(row[i : i + len(zebra)], zebra)
        for row in rows(tmp_path / "out", manifest)
        for i in range(len(row))
    )  # a failed span's words are in the shards as text


def test_more_failed_spans_than_allowed_end_the_build_in_one_line(tmp_path, capsys):
    model = make_toy_model(tmp_path / "zebra", "toy-fails-on-zebra")
    corpus = write_corpus(tmp_path / "in", with_zebra=True)
    status = main(
        [
            "build",
            "--input",
            corpus,
            "--output",
            str(tmp_path / "out"),
            "--speech-ratio",
            "0.3",
            "--span-lambda",
            "3",
            "--text-to-token-model",
            model,
            "--min-bucket",
            "5",
            "--max-bucket",
            "7",
            *RUNNER,
        ]
    )
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1, err
    assert (
        "speech spans failed to convert, more than --max-failed-batch-share 0.01: their batches' errors are "
        f"in {tmp_path / 'out' / 'dead_letter'}/" in err
    )
    assert not (tmp_path / "out" / "manifest.json").exists() and any((tmp_path / "out" / "dead_letter").iterdir())


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--speech-ratio", "0.3", "--text-to-token-model", "/nonexistent"], "/nonexistent: no such file or directory"),
        (["--speech-ratio", "0.3", "--text-to-token-model", str(Path(__file__).parent)], "no config.json"),
        (["--speech-ratio", "0.3", "--text-to-token-model", "bundled:tokenizer"], "no config.json"),
    ],
)
def test_speech_options_fail_before_work(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        run(["--output", str(tmp_path / "never"), *extra, *RUNNER])
    assert not (tmp_path / "never").exists()


def test_cuda_asked_for_and_absent(tmp_path, model):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="--device cuda was asked for"):
        run(
            [
                "--output",
                str(tmp_path / "never"),
                "--speech-ratio",
                "0.3",
                "--text-to-token-model",
                model,
                "--device",
                "cuda",
                *RUNNER,
            ]
        )


def test_tts_teacher_is_the_reference_source(tmp_path):
    corpus = write_corpus(tmp_path / "in")
    manifest = run(
        [
            "--input",
            corpus,
            "--output",
            str(tmp_path / "out"),
            "--speech-ratio",
            "0.3",
            "--span-lambda",
            "3",
            "--speech-source",
            "tts",
            "--min-bucket",
            "5",
            "--max-bucket",
            "7",
            *RUNNER,
        ]
    )
    speech = speech_of(manifest)
    assert speech["source"] == "tts" and speech["frame_rate_hz"] == 12.5
    assert speech["spans_converted"] == speech["spans"] > 0 and manifest["counts"]["speech_tokens"] > 0
    assert verify(str(tmp_path / "out")) == []


def test_bundled_student_is_the_default_model(tmp_path):
    corpus = write_corpus(tmp_path / "in")
    manifest = run(
        [
            "--input",
            corpus,
            "--output",
            str(tmp_path / "out"),
            "--speech-ratio",
            "0.3",
            "--min-bucket",
            "5",
            "--max-bucket",
            "7",
            *RUNNER,
        ]
    )
    assert speech_of(manifest)["model"] == "bundled:text-to-token"
    assert speech_of(manifest)["codebook_size"] == 256 and manifest["counts"]["speech_tokens"] > 0
    assert verify(str(tmp_path / "out")) == []
