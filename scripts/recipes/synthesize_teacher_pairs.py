"""Synthesise the student's training pairs with the teacher.

Each pair is a training fragment (scripts/recipes/teacher_text.py: 1-60 word spans of training documents) as the teacher
normalises it, its teacher units and each word's start in units (from espeak-ng's word events). Output directory:
  texts.txt            one fragment a line
  pairs.safetensors    units (int16, concatenated) + unit_offsets, word_starts (float32, in units) + word_offsets
  meta.json            counts, hours of speech, seed, tokenizer
Fragments are spoken by --workers teacher processes; results keep the fragments' order, so a fixed --seed gives
identical files.

    python3 -m scripts.recipes.synthesize_teacher_pairs --out build/teacher_pairs --fragments 80000
"""

import argparse
import json
import multiprocessing
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tqdm import tqdm

from scripts.recipes import corpus_sources, teacher_text
from vocaloom import assets
from vocaloom.text_to_token.speech_tokenizer import FRAME_RATE_HZ
from vocaloom.text_to_token.teacher import Teacher

TEACHER: Teacher | None = None  # one per worker process


def start_worker(tokenizer: str) -> None:
    global TEACHER
    TEACHER = Teacher(tokenizer)


def speak(text: str) -> tuple[np.ndarray, np.ndarray]:
    assert TEACHER is not None, "start_worker runs first, in each worker process"
    units, starts = TEACHER.speak(text)
    return units.astype(np.int16), starts.astype(np.float32)


def concatenated(arrays: list[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0] + [len(a) for a in arrays]).astype(np.int64)
    return (np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)), offsets


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/teacher_pairs")
    parser.add_argument("--fragments", type=int, default=80000)
    parser.add_argument("--tokenizer", default=str(assets.SPEECH_TOKENIZER))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2, help="the codebook used seeds 0 and 1")
    args = parser.parse_args(argv)
    if problem := corpus_sources.missing_packages(*teacher_text.PACKAGES):
        parser.error(problem)

    train, _ = teacher_text.split_corpus()
    # as the teacher speaks them (numbers in words), so that word starts and texts agree
    texts = [Teacher.normalize(t) for t in teacher_text.training_fragments(train, args.fragments, args.seed)]

    with multiprocessing.get_context("spawn").Pool(args.workers, start_worker, (args.tokenizer,)) as pool:
        pairs = list(tqdm(pool.imap(speak, texts, chunksize=64), total=len(texts), desc="teacher pairs", unit="pair"))
    units, unit_offsets = concatenated([u for u, _ in pairs], np.int16)
    starts, word_offsets = concatenated([s for _, s in pairs], np.float32)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "texts.txt").write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    save_file(
        {"units": units, "unit_offsets": unit_offsets, "word_starts": starts, "word_offsets": word_offsets},
        str(out / "pairs.safetensors"),
    )
    meta = {
        "pairs": len(texts),
        "units": len(units),
        "hours": round(len(units) / FRAME_RATE_HZ / 3600, 2),
        "words": len(starts),
        "seed": args.seed,
        "tokenizer": args.tokenizer,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
