"""TokenizeFn's exact output: each document's tokens and eos in a spill file; in an interleaved build, only its
text segments' tokens (SampleSpans), with the layout and span texts that WeaveSpeech needs."""

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import RUNNER
from vocaloom.schemas.vocab import Vocabulary
from vocaloom.transforms.artifacts import read_artifact
from vocaloom.transforms.documents import doc_texts, unpack_docs
from vocaloom.transforms.io.spill import read_spans
from vocaloom.transforms.speech.synthetic_interleaving import Interleaving, sample_spans, segments, word_bounds
from vocaloom.transforms.text.tokenize import TokenizeFn, load_sentencepiece

TEXTS = [
    "In the beginning God created the heaven and the earth.",
    "And the ark rested in the seventh month upon the mountains of Ararat, and the waters decreased.",
]
DOCUMENTS = doc_texts((["a", "b"], TEXTS, ["in.jsonl", "in.jsonl"], [1, 2]), {})


def spilled(batch):
    for doc in unpack_docs(batch):
        (tokens,) = read_spans(doc.spill, [(doc.offset, doc.n_tokens)])
        yield doc.id, tokens.tolist(), doc.layout, doc.spans, doc.n_words


def tokenize(tmp_path, tokenizer_path, interleaved):
    sp = load_sentencepiece(tokenizer_path)
    eos = Vocabulary.build(sp.get_piece_size(), sp.eos_id() if sp.eos_id() >= 0 else None).eos
    fn = TokenizeFn(read_artifact("bundled:tokenizer"), eos, str(tmp_path), interleaved)
    return sp, eos, fn


def test_each_document_is_its_tokens_then_eos(tmp_path, tokenizer_path):
    sp, eos, fn = tokenize(tmp_path, tokenizer_path, False)
    expected = [(doc_id, [*sp.encode(text), eos], (), (), 0) for doc_id, text in zip("ab", TEXTS)]
    with TestPipeline(argv=RUNNER) as p:
        assert_that(p | beam.Create([DOCUMENTS]) | beam.ParDo(fn) | beam.FlatMap(spilled), equal_to(expected))


def test_interleaved_documents_spill_only_their_text_segments(tmp_path, tokenizer_path):
    interleaving = Interleaving((0.5,), 3.0, 7)
    sp, eos, fn = tokenize(tmp_path, tokenizer_path, True)
    expected = []
    for doc_id, text in zip("ab", TEXTS):
        plan = segments(text, interleaving.ratios[0], *interleaving[1:], doc_id)
        assert any(s.speech for s in plan) and any(not s.speech for s in plan)
        pieces = [sp.encode(text[s.start : s.end]) for s in plan if not s.speech]
        layout, texts = iter(pieces), iter([text[s.start : s.end] for s in plan])
        expected.append(
            (
                doc_id,
                [t for piece in pieces for t in piece] + [eos],
                tuple(-1 if s.speech else len(next(layout)) for s in plan),
                tuple(t for s, t in zip(plan, texts) if s.speech),
                len(word_bounds(text)),
            )
        )
    with TestPipeline(argv=RUNNER) as p:
        spans = p | beam.Create([DOCUMENTS]) | "SampleSpans" >> beam.Map(sample_spans, interleaving)
        assert_that(spans | beam.ParDo(fn) | beam.FlatMap(spilled), equal_to(expected))
