"""Train the default SentencePiece model, assets/tokenizer/sample_sp.model.

The model is trained on the bundled sample corpus so it can be rebuilt offline.
Training is deterministic (no input shuffling, fixed sentence budget) so the
same sample gives the same model.
"""

import argparse
import io
import json
import time
from pathlib import Path

import sentencepiece as spm
import zstandard
from tqdm import tqdm

from vocaloom import assets

VOCAB_SIZE = 8000
# Above the sample's document count, so every document is used.
INPUT_SENTENCE_SIZE = 1_000_000


def read_texts(path):
    """Return each document's text from a .jsonl.zst corpus, in file order."""
    with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        lines = io.TextIOWrapper(reader, encoding="utf-8")
        return [json.loads(line)["text"] for line in tqdm(lines, desc="reading", unit="doc")]


def train(texts, vocab_size):
    """Train a unigram model on whole documents and return its bytes.

    Whole documents (one per sentence) keep the training input identical to what
    the pipeline tokenizes; max_sentence_length is raised to fit the longest.
    The model comes back through model_writer so no .vocab file is written.
    """
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        character_coverage=1.0,
        byte_fallback=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        max_sentence_length=max(len(text.encode("utf-8")) for text in texts) + 1,
        input_sentence_size=INPUT_SENTENCE_SIZE,
        shuffle_input_sentence=False,
        num_threads=2,
        minloglevel=1,
    )
    return model.getvalue()


def main(argv=None):
    """Train the tokenizer on the sample corpus and write the model file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", type=Path, default=assets.SAMPLE_CORPUS, help="training corpus, .jsonl.zst (default: %(default)s)"
    )
    parser.add_argument(
        "--out", type=Path, default=assets.TOKENIZER_MODEL, help="model path to write (default: %(default)s)"
    )
    parser.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    args = parser.parse_args(argv)

    texts = read_texts(args.corpus)
    start = time.perf_counter()
    model = train(texts, args.vocab_size)
    elapsed = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(model)

    vocab = spm.SentencePieceProcessor(model_proto=model).get_piece_size()
    print(
        f"trained on {len(texts):,} documents: vocab size {vocab:,}, "
        f"{elapsed:.1f} s, {len(model):,} bytes -> {args.out}"
    )


if __name__ == "__main__":
    main()
