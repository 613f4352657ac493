"""Build the speech tokenizer's codebook: k-means (faiss) over pooled log-mel of hours of espeak-ng speech.

Speaks --fragments training fragments (scripts/recipes/teacher_text.py; about 4 s each), turns each into 12.5 Hz
mean-pooled log-mel vectors, standardises them and learns a --codebook-size k-means codebook with a fixed seed on
one thread (faiss sums in thread order, so a fixed thread count keeps it reproducible). With --sweep, every
listed size is also fitted and reported (distortion, codebook perplexity, and the teacher's own noise floor: units
of the same text spoken from two engine states) so the chosen size can be justified from figures.

    python3 -m scripts.recipes.build_speech_tokenizer --out assets/speech_tokenizer --sweep 64,128,256,512,1024
"""

import argparse
import json
import sys

import faiss
import numpy as np
from tqdm import tqdm

from scripts.recipes import corpus_sources, teacher_text
from vocaloom import assets
from vocaloom.text_to_token import unit_metrics
from vocaloom.text_to_token.espeak_zygote import RATE_WPM, SAMPLE_RATE, VOICE
from vocaloom.text_to_token.speech_tokenizer import SpeechTokenizer, resample, unit_features
from vocaloom.text_to_token.teacher import EspeakProcess

FLOOR_SEED_OFFSET = 1  # the floor fragments are drawn with seed + 1, apart from the codebook's


def spoken_features(engine: EspeakProcess, texts: list[str], desc: str, prelude=None) -> list[np.ndarray]:
    preludes = prelude or [""] * len(texts)
    return [
        unit_features(resample(engine.speak(text, before).audio, SAMPLE_RATE) / 32768.0)
        for text, before in tqdm(list(zip(texts, preludes)), desc=desc, unit="utt")
    ]


def fit_codebook(vectors: np.ndarray, size: int, seed: int) -> np.ndarray:
    kmeans = faiss.Kmeans(vectors.shape[1], size, niter=25, seed=seed, max_points_per_centroid=len(vectors))
    kmeans.train(vectors)
    assert kmeans.centroids is not None  # set by train
    return kmeans.centroids.copy()


def codebook_report(tokenizer: SpeechTokenizer, vectors: np.ndarray, fresh: list, shifted: list) -> dict:
    """Quality figures of one codebook: how much variance it keeps, how evenly it is used, how stable it is."""
    index = faiss.IndexFlatL2(vectors.shape[1])
    index.add(tokenizer.centroids)
    distances, assigned = index.search(vectors, 1)
    counts = np.bincount(assigned[:, 0], minlength=tokenizer.codebook_size) / len(vectors)
    used = counts[counts > 0]

    def quantise(features):
        return index.search(tokenizer.standardised(features), 1)[1][:, 0].tolist()

    floor = unit_metrics.unit_error_rate([quantise(f) for f in fresh], [quantise(f) for f in shifted])
    return {
        "codebook_size": tokenizer.codebook_size,
        "residual_variance": float(distances.sum() / ((vectors - vectors.mean(0)) ** 2).sum()),
        "perplexity": float(np.exp(-(used * np.log(used)).sum())),
        "teacher_floor_uer": round(floor, 4),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(assets.SPEECH_TOKENIZER))
    parser.add_argument("--fragments", type=int, default=6000, help="training fragments to speak")
    parser.add_argument("--floor-fragments", type=int, default=300, help="fragments for the noise-floor figure")
    parser.add_argument("--codebook-size", type=int, default=256)
    parser.add_argument("--sweep", default="", help="comma-separated sizes to fit and report as well")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if problem := corpus_sources.missing_packages(*teacher_text.PACKAGES):
        parser.error(problem)
    faiss.omp_set_num_threads(1)

    train, _ = teacher_text.split_corpus()
    texts = teacher_text.training_fragments(train, args.fragments, args.seed)
    floor_texts = teacher_text.training_fragments(train, args.floor_fragments + 1, args.seed + FLOOR_SEED_OFFSET)
    engine = EspeakProcess()
    try:
        features = spoken_features(engine, texts, "codebook speech")
        fresh = spoken_features(engine, floor_texts[1:], "floor speech, fresh state")
        shifted = spoken_features(engine, floor_texts[1:], "floor speech, after other text", floor_texts[:-1])
    finally:
        engine.close()
    raw = np.concatenate(features)
    mean, std = raw.mean(0), raw.std(0) + 1e-6
    vectors = ((raw - mean) / std).astype(np.float32)
    hours = len(raw) / 12.5 / 3600
    print(f"{len(raw)} unit frames, {hours:.2f} hours of speech", file=sys.stderr)

    sizes = sorted({args.codebook_size, *(int(s) for s in args.sweep.split(",") if s)})
    reports = []
    for size in tqdm(sizes, desc="k-means", unit="codebook"):
        tokenizer = SpeechTokenizer(mean, std, fit_codebook(vectors, size, args.seed))
        reports.append(codebook_report(tokenizer, vectors, fresh, shifted))
        if size == args.codebook_size:
            tokenizer.save(
                args.out,
                {
                    "voice": VOICE.decode(),
                    "rate_wpm": RATE_WPM,
                    "seed": args.seed,
                    "training_fragments": args.fragments,
                    "training_hours": round(hours, 2),
                    "report": reports[-1],
                },
            )
    for report in reports:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
