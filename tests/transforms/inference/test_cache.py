from pathlib import Path
from typing import NamedTuple

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, PredictionResult
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import labelled_totals
from vocaloom.schemas.counts import (
    EMBEDDING_CACHE_ENTRIES_INVALID,
    EMBEDDINGS_CACHED,
    EMBEDDINGS_COMPUTED,
    EMBEDDINGS_FAILED,
)
from vocaloom.transforms.counting import COUNTS
from vocaloom.transforms.inference.cache import (
    DEAD_LETTER,
    CachedInference,
    Counters,
    Failed,
    OneByOne,
    cache_files,
    cache_key,
    model_cache_dir,
)

COUNTERS = Counters(EMBEDDINGS_CACHED, EMBEDDINGS_COMPUTED, EMBEDDINGS_FAILED, EMBEDDING_CACHE_ENTRIES_INVALID)


class Example(NamedTuple):
    name: str
    text: str
    key: str


def example(name: str, text: str) -> Example:
    return Example(name, text, cache_key("fake", text))


class LengthHandler(ModelHandler):
    """A fake model: a text's output is its length; a text holding "boom" fails its whole batch, one holding
    "fizz" fails alone (Failed)."""

    def load_model(self):
        return len

    def run_inference(self, batch, model, inference_args=None):
        if any("boom" in e.text for examples in batch for e in examples):
            raise ValueError("boom")
        return [
            PredictionResult(examples, [Failed("fizzled") if "fizz" in e.text else model(e.text) for e in examples])
            for examples in batch
        ]

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 1}


def run(examples, files, directory, expected, counts, letters):
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(examples) | CachedInference(LengthHandler(), files, directory, COUNTERS, OneByOne())
        assert_that(
            out["outputs"] | "Names" >> beam.Map(lambda pair: (pair[0].name, pair[1])),
            equal_to(expected),
            label="outputs",
        )
        assert_that(
            labelled_totals(out[COUNTS]), equal_to([(f"ordering.embeddings_{k}", n) for k, n in counts]), label="counts"
        )
        assert_that(
            out[DEAD_LETTER] | "Letters" >> beam.Map(lambda pair: (pair[0].name, pair[1])),
            equal_to(letters),
            label="letters",
        )


def test_each_text_computed_once_then_served_from_the_cache(tmp_path):
    examples = [
        example("a", "one  two"),
        example("b", "one two"),
        example("c", "three"),
        example("d", "boom"),
        example("e", "fizz"),
    ]
    # "one  two" normalises to "one two": computed once, from the first example in sorted order ("a", 8 chars)
    expected = [("a", 8), ("b", 8), ("c", 5), ("d", None), ("e", None)]
    letters = [("d", "ValueError: ValueError('boom')"), ("e", "fizzled")]
    run(examples, [], model_cache_dir(str(tmp_path), "f" * 64), expected, [("computed", 3), ("failed", 2)], letters)
    files = cache_files(str(tmp_path), "f" * 64)
    assert len(files) >= 1
    # a second run: every stored text served without the model; the failures were not stored, so they fail again
    run(examples, files, None, expected, [("cached", 3), ("failed", 2)], letters)


def test_a_damaged_cache_file_is_skipped_and_its_texts_computed_again(tmp_path):
    examples = [example("a", "one two"), example("c", "three")]
    directory = model_cache_dir(str(tmp_path), "f" * 64)
    run(examples, [], directory, [("a", 7), ("c", 5)], [("computed", 2)], [])
    good = cache_files(str(tmp_path), "f" * 64)
    damaged = tmp_path / "damaged.jsonl.zst"
    damaged.write_bytes(Path(good[0]).read_bytes()[:-8])  # a truncated file
    run(examples, [str(damaged)], None, [("a", 7), ("c", 5)], [("computed", 2)], [])
    run(examples, [str(damaged), *good], None, [("a", 7), ("c", 5)], [("cached", 2)], [])
