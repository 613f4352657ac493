"""Files shipped with the package: the sample corpus and the default models.

Each path is made by a script in `scripts/` (named beside it) and committed, so builds and tests run offline.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent

# scripts/prepare_sample.py: public-domain English text from Debian packages, one JSON record per document.
SAMPLE_CORPUS = ROOT / "sample" / "sample.jsonl.zst"
# scripts/train_tokenizer.py: a SentencePiece unigram model trained on SAMPLE_CORPUS.
TOKENIZER_MODEL = ROOT / "tokenizer" / "sample_sp.model"
# scripts/build_speech_tokenizer.py: the teacher's speech tokenizer (log-mel k-means codebook, 12.5 Hz units).
SPEECH_TOKENIZER = ROOT / "speech_tokenizer"
# scripts/train_text_to_token.py: the student text-to-token model (text_to_token/student.py), trained on teacher pairs.
TEXT_TO_TOKEN_MODEL = ROOT / "text_to_token"
# scripts/synthesize_teacher_pairs.py: held-out sentences for scripts/eval_text_to_token.py (not package data).
EVAL_SENTENCES = ROOT / "eval" / "sentences.txt"
