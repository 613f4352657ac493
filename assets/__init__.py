"""Files shipped with the package: the sample corpus and the default models.

Each path is made by a script in `scripts/` (named beside it) and committed, so builds and tests run offline.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent

# scripts/prepare_sample.py: public-domain English text from Debian packages, one JSON record per document.
SAMPLE_CORPUS = ROOT / "sample" / "sample.jsonl.zst"
# scripts/train_tokenizer.py: a SentencePiece unigram model trained on SAMPLE_CORPUS.
TOKENIZER_MODEL = ROOT / "tokenizer" / "sample_sp.model"
