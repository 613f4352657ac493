"""WeaveSpeech's exact output: each span's units between begin_of_audio and end_of_audio, in the document's order;
a span whose conversion failed is tokenised as text; the counts of words and spoken spans."""

import apache_beam as beam
import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import RUNNER, labelled_totals
from vocaloom.schemas.vocab import BEGIN_OF_AUDIO, END_OF_AUDIO, Vocabulary
from vocaloom.transforms.artifacts import read_artifact
from vocaloom.transforms.counting import COUNTS
from vocaloom.transforms.documents import DocTokens, pack_docs, unpack_docs
from vocaloom.transforms.io.spill import read_spans, write_spill
from vocaloom.transforms.speech.speech_handlers import Span
from vocaloom.transforms.speech.weave import Weave
from vocaloom.transforms.text.tokenize import load_sentencepiece


def test_spans_become_audio_runs_and_failed_spans_stay_text(tmp_path, tokenizer_path):
    sp = load_sentencepiece(tokenizer_path)
    vocab = Vocabulary.build(sp.get_piece_size(), sp.eos_id() if sp.eos_id() >= 0 else None, speech_size=16)
    boa, eoa, eos = vocab.specials[BEGIN_OF_AUDIO], vocab.specials[END_OF_AUDIO], vocab.eos
    before, after, spoken = sp.encode("the ark rested"), sp.encode("of ararat"), "upon the mountains"
    spill = write_spill(str(tmp_path), np.array(before + after + [eos] + before + after + [eos], np.int32))
    n = len(before) + len(after) + 1
    docs = [
        DocTokens(
            f"f{i}".encode(),
            doc_id,
            "s",
            i,
            n,
            spill,
            i * n,
            layout=(len(before), -1, len(after)),
            spans=(spoken,),
            n_words=6,
        )
        for i, doc_id in enumerate(["spoken", "failed"])
    ]
    units = [(Span("spoken", b"f0", 0, spoken, "k0"), [3, 4, 5]), (Span("failed", b"f1", 0, spoken, "k1"), None)]
    expected = [
        ("spoken", before + [boa] + [vocab.speech_offset + u for u in (3, 4, 5)] + [eoa] + after + [eos], 3),
        ("failed", before + sp.encode(spoken) + after + [eos], 0),
    ]
    with TestPipeline(argv=RUNNER) as p:
        woven = (p | "Docs" >> beam.Create([pack_docs(docs)]), p | "Units" >> beam.Create(units)) | Weave(
            read_artifact("bundled:tokenizer"), vocab, str(tmp_path)
        )
        tokens = (
            woven.docs
            | beam.FlatMap(unpack_docs)
            | beam.Map(lambda d: (d.id, read_spans(d.spill, [(d.offset, d.n_tokens)])[0].tolist(), d.n_speech))
        )
        assert_that(tokens, equal_to(expected), label="Tokens")
        assert_that(
            labelled_totals(woven[COUNTS]),
            equal_to([("speech.words", 12), ("speech.speech_words", 3), ("speech.span_words/3", 1)]),
            label="Counts",
        )
