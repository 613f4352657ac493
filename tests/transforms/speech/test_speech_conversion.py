"""ConvertSpans' exact output with a small deterministic model (tests/text_to_token/toy_models.py): the units of
each span, and a batch the model fails on as dead letters whose spans get no units."""

import apache_beam as beam
import torch
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import RUNNER, labelled_totals
from tests.text_to_token.toy_models import FailsOnZebra, make_toy_model
from vocaloom.text_to_token.model_file import read_model
from vocaloom.transforms.counting import COUNTS
from vocaloom.transforms.documents import DocTokens, pack_docs
from vocaloom.transforms.inference.cache import DEAD_LETTER, cache_key
from vocaloom.transforms.speech.speech_conversion import (
    SPREAD_CHARACTERS,
    ConvertSpans,
    cut_batches,
    length_group,
    speech_spans,
)
from vocaloom.transforms.speech.speech_handlers import Span, speech_handler
from vocaloom.transforms.worker_setup import BuildStops


def spans(texts: list[str]) -> list[Span]:
    return [Span(f"d{i}", b"f", 0, text, f"{i:064x}") for i, text in enumerate(texts)]


def convert(spec, texts):
    """The pipeline's outputs for `texts`: ConvertSpans with the spec's model, no cache."""
    p = TestPipeline(argv=RUNNER)
    converted = (
        p
        | beam.Create(spans(texts))
        | ConvertSpans(speech_handler(spec, "cpu", BuildStops()), [], None, spec.codebook_size)
    )
    return p, converted


def test_each_span_gets_the_models_units(tmp_path):
    spec = read_model(make_toy_model(tmp_path / "m", "toy-fails-on-zebra"))
    model = spec.load()
    assert isinstance(model, FailsOnZebra)
    texts = ["hello there", "in the beginning", "a"]
    expected = []
    for span in spans(texts):
        ids = spec.encode_text(span.text)
        expected.append((span.doc_id, model.generate(torch.tensor([ids]), torch.tensor([len(ids)]))[0].tolist()))
    p, converted = convert(spec, texts)
    assert_that(
        converted["units"] | beam.Map(lambda pair: (pair[0].doc_id, list(pair[1]))), equal_to(expected), label="Units"
    )
    assert_that(converted[DEAD_LETTER], equal_to([]), label="NoDeadLetters")
    assert_that(labelled_totals(converted[COUNTS]), equal_to([("speech.spans_converted", 3)]), label="Counts")
    p.run().wait_until_finish()


def test_a_failed_batch_is_dead_letters_and_no_units(tmp_path):
    spec = read_model(make_toy_model(tmp_path / "m", "toy-fails-on-zebra"))
    p, converted = convert(spec, ["a zebra", "zebra crossing"])
    assert_that(
        converted["units"] | beam.Map(lambda pair: (pair[0].doc_id, pair[1])),
        equal_to([("d0", None), ("d1", None)]),
        label="NoUnits",
    )
    assert_that(
        converted[DEAD_LETTER]
        | beam.Map(lambda r: (r["doc_id"], r["span_index"], r["text"], "cannot say zebra" in r["error"])),
        equal_to([("d0", 0, "a zebra", True), ("d1", 0, "zebra crossing", True)]),
        label="DeadLetters",
    )
    assert_that(labelled_totals(converted[COUNTS]), equal_to([("speech.spans_failed", 2)]), label="Counts")
    p.run().wait_until_finish()


def test_speech_spans_are_each_documents_spans_with_their_cache_keys():
    docs = [
        DocTokens(b"f" * 16, "d", "src", 1, 9, "spill", 0, layout=(2, -1, 3, -1), spans=("one two", "three")),
        DocTokens(b"g" * 16, "e", "src", 2, 4, "spill", 9),
    ]
    assert list(speech_spans(pack_docs(docs), "m" * 64)) == [
        Span("d", b"f" * 16, 0, "one two", cache_key("m" * 64, "one two")),
        Span("d", b"f" * 16, 1, "three", cache_key("m" * 64, "three")),
    ]


def test_span_batches_are_sorted_by_size_and_cut_by_padded_characters():
    sized = [Span(f"d{n}", b"f", 0, "w" * n, f"{n:064x}") for n in (5, 3, 3, 9, 1, 4)]
    batches = [[len(s.text) for s in batch] for batch in cut_batches(reversed(sized), budget=12)]
    # Sorted 1 3 3 4 5 9; a batch's count times its longest stays within 12 (4 more would make 4 x 4 = 16).
    assert batches == [[1, 3, 3], [4, 5], [9]]
    # sized by the caller's measure (a handler's span_size): here twice the characters
    batches = [[len(s.text) for s in batch] for batch in cut_batches(sized, budget=12, size=lambda t: 2 * len(t))]
    assert batches == [[1, 3], [3], [4], [5], [9]]


def test_a_larger_budget_spreads_a_length_class_over_fewer_groups():
    """64 hash shards per length class at the CPU's budget; a GPU's budget gets one group per class, so that its
    batches fill instead of holding a 64th of the class each."""
    keys = [f"{n:08x}" + "0" * 56 for n in range(0, 2**32, 2**32 // 1000)]
    span = Span("d", b"f", 0, "w" * 40, "")
    for budget, groups in ((2048, 64), (16384, 8), (262144, 1), (1 << 20, 1)):
        assert len({length_group(span._replace(key=key), 40, budget) for key in keys}) == groups
    assert SPREAD_CHARACTERS // 2048 == 64


def test_a_causal_lm_converts_batches_and_dead_letters_the_spans_past_their_cap(tmp_path):
    from tests.text_to_token.causal_lms import expected_units, make_causal_lm
    from vocaloom.text_to_token.causal_lm import read_causal_lm

    spec = read_causal_lm(str(make_causal_lm(tmp_path / "lm", max_units_per_character=4.0)))
    texts = ["hello there", "in the beginning", "why?", "a"]  # "a": 31 units, past its cap of 4
    p, converted = convert(spec, texts)
    assert_that(
        converted["units"] | beam.Map(lambda pair: (pair[0].text, pair[1])),
        equal_to([(text, expected_units(text)) for text in texts[:3]] + [("a", None)]),
        label="Units",
    )
    assert_that(
        converted[DEAD_LETTER] | beam.Map(lambda r: (r["text"], r["error"])),
        equal_to([("a", "no end token within the length cap of 4 units")]),
        label="DeadLetters",
    )
    assert_that(
        labelled_totals(converted[COUNTS]),
        equal_to([("speech.spans_converted", 3), ("speech.spans_failed", 1)]),
        label="Counts",
    )
    p.run().wait_until_finish()
