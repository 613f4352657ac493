"""Evaluate the student text-to-token model against its teacher on held-out sentences; print one JSON object.

Figures (unit error rates are corpus-level: total edit distance over total teacher units):
  unit_error_rate          student vs teacher
  dedup_unit_error_rate    the same after collapsing runs of repeated units in both
  length_error             mean |student units - teacher units| / teacher units
  tokens_per_word          units per whitespace-separated word, teacher and student
  teacher_floor_uer        the teacher against itself: the same sentence spoken after the previous one (another
                           engine state) vs from a fresh state; no student can be expected to beat it
  lookup_uer               word-lookup baseline: each word's most typical unit sequence in the training pairs
                           (the medoid under edit distance), concatenated
  *_speech_s_per_cpu_s     seconds of speech (units / 12.5) produced per CPU-second, this machine, this run, one
                           thread each (the teacher's includes its espeak-ng server and forked children)
With --device cuda the student's GPU throughput (speech seconds per wall second) is added.

    python3 scripts/eval_text_to_token.py --sentences assets/eval/sentences.txt
"""
import argparse
import collections
import json
import resource
import string
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vocaloom import assets  # noqa: E402
import unit_metrics  # noqa: E402
from train_text_to_token import Pairs  # noqa: E402
from vocaloom.text_to_token.model_file import read_model  # noqa: E402
from vocaloom.text_to_token.speech_tokenizer import FRAME_RATE_HZ  # noqa: E402
from vocaloom.text_to_token.teacher import Teacher  # noqa: E402

MEDOID_SAMPLES = 12  # occurrences of a word compared when choosing its most typical unit sequence


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def teacher_units(tokenizer: str, sentences: list[str]) -> tuple[list, list, float]:
    """Fresh-state units, units after the previous sentence, and CPU-seconds of the fresh pass (the server's
    start-up included: its CPU time is only known once it has exited)."""
    cpu, children = time.process_time(), children_cpu_s()
    with Teacher(tokenizer) as teacher:
        fresh = [teacher.speak(s)[0].tolist() for s in tqdm(sentences, desc="teacher", unit="sentence")]
    cpu_s = time.process_time() - cpu + children_cpu_s() - children
    with Teacher(tokenizer) as teacher:
        shifted = [teacher.speak(s, prelude=before)[0].tolist()
                   for s, before in tqdm(list(zip(sentences, sentences[-1:] + sentences[:-1])),
                                         desc="teacher after other text", unit="sentence")]
    return fresh, shifted, cpu_s


def student_units(model_dir: str, sentences: list[str], device: str, batch_size: int) -> list[list[int]]:
    spec = read_model(model_dir)
    model = spec.load(device)
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i].encode("utf-8")))
    units = [None] * len(sentences)
    for begin in range(0, len(order), batch_size):
        items = order[begin:begin + batch_size]
        encoded = [spec.encode_text(sentences[i]) for i in items]
        inputs = torch.zeros(len(items), max(map(len, encoded)), dtype=torch.long)
        for row, ids in enumerate(encoded):
            inputs[row, :len(ids)] = torch.tensor(ids)
        lengths = torch.tensor([len(ids) for ids in encoded])
        for i, out in zip(items, model.generate(inputs.to(device), lengths.to(device))):
            units[i] = out.tolist()
    return units


def timed_student(model_dir, sentences, device, batch_size) -> tuple[list, float]:
    """Units and seconds spent: CPU-seconds on CPU, wall seconds on a GPU (synchronised)."""
    student_units(model_dir, sentences[:batch_size], device, batch_size)  # warm-up: lazy initialisation
    if device == "cpu":
        start = time.process_time()
        units = student_units(model_dir, sentences, device, batch_size)
        return units, time.process_time() - start
    torch.cuda.synchronize()
    start = time.perf_counter()
    units = student_units(model_dir, sentences, device, batch_size)
    torch.cuda.synchronize()
    return units, time.perf_counter() - start


def word_key(word: str) -> str:
    return word.lower()


def bare_key(word: str) -> str:
    return word.lower().strip(string.punctuation)


def lookup_table(pairs: Pairs, wanted: set[str]) -> dict[str, list]:
    """Each wanted key's most typical unit sequence in the training pairs (keys: the word as written, lower-cased,
    and without surrounding punctuation): the medoid of its first MEDOID_SAMPLES occurrences."""
    occurrences = collections.defaultdict(list)
    for i in tqdm(range(len(pairs)), desc="lookup table", unit="pair"):
        units = pairs.units[pairs.unit_offsets[i]:pairs.unit_offsets[i + 1]].tolist()
        starts = pairs.word_starts[pairs.word_offsets[i]:pairs.word_offsets[i + 1]].tolist()
        bounds = [round(s) for s in starts] + [len(units)]
        for w, word in enumerate(pairs.texts[i].decode("utf-8").split()):
            for key in {word_key(word), bare_key(word)} & wanted:
                if len(occurrences[key]) < MEDOID_SAMPLES:
                    occurrences[key].append(units[bounds[w]:bounds[w + 1]])
    return {key: min(seqs, key=lambda a: sum(unit_metrics.edit_distance(a, b) for b in seqs))
            for key, seqs in occurrences.items()}


def lookup_units(pairs: Pairs, sentences: list[str]) -> tuple[list[list[int]], float]:
    """The baseline's units per sentence, and the share of words found in the table. A word never seen (as
    written or bare) gets the most common unit, repeated for the training pairs' mean units per character."""
    words = [s.split() for s in sentences]
    table = lookup_table(pairs, {k for ws in words for w in ws for k in (word_key(w), bare_key(w))})
    counts = np.bincount(pairs.units.numpy(), minlength=1)
    units_per_char = len(pairs.units) / sum(len(t) for t in pairs.texts)
    found, out = 0, []
    for ws in words:
        units = []
        for w in ws:
            sequence = table.get(word_key(w), table.get(bare_key(w)))
            found += sequence is not None
            units += sequence if sequence is not None else [int(counts.argmax())] * round(units_per_char * len(w))
        out.append(units)
    return out, found / max(1, sum(map(len, words)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", default=str(assets.EVAL_SENTENCES), help="one sentence a line")
    parser.add_argument("--model", default=str(assets.TEXT_TO_TOKEN_MODEL))
    parser.add_argument("--tokenizer", default=str(assets.SPEECH_TOKENIZER))
    parser.add_argument("--pairs", default="build/teacher_pairs", help="training pairs, for the lookup baseline")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="", help="also measure the student's throughput here, e.g. cuda")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # like the teacher: CPU-seconds then count work, not threads spinning at barriers
    sentences = [line.strip() for line in Path(args.sentences).read_text("utf-8").splitlines() if line.strip()]
    words = sum(len(s.split()) for s in sentences)

    teacher, shifted, teacher_cpu_s = teacher_units(args.tokenizer, sentences)
    student, student_cpu_s = timed_student(args.model, sentences, "cpu", args.batch_size)
    lookup, coverage = lookup_units(Pairs(args.pairs), sentences)
    teacher_len = [max(len(t), 1) for t in teacher]
    result = {
        "sentences": len(sentences), "words": words, "teacher_units": sum(map(len, teacher)),
        "unit_error_rate": round(unit_metrics.unit_error_rate(teacher, student), 4),
        "dedup_unit_error_rate": round(unit_metrics.unit_error_rate(
            [unit_metrics.collapse_repeats(t) for t in teacher],
            [unit_metrics.collapse_repeats(s) for s in student]), 4),
        "length_error": round(float(np.mean([abs(len(s) - len(t)) / n
                                             for s, t, n in zip(student, teacher, teacher_len)])), 4),
        "tokens_per_word": {"teacher": round(sum(map(len, teacher)) / words, 3),
                            "student": round(sum(map(len, student)) / words, 3)},
        "teacher_floor_uer": round(unit_metrics.unit_error_rate(teacher, shifted), 4),
        "lookup_uer": round(unit_metrics.unit_error_rate(teacher, lookup), 4),
        "lookup_word_coverage": round(coverage, 4),
        "teacher_speech_s_per_cpu_s": round(sum(map(len, teacher)) / FRAME_RATE_HZ / teacher_cpu_s, 1),
        "student_speech_s_per_cpu_s": round(sum(map(len, student)) / FRAME_RATE_HZ / student_cpu_s, 1),
    }
    if args.device:
        units, seconds = timed_student(args.model, sentences, args.device, args.batch_size)
        result[f"student_{args.device}_speech_s_per_s"] = round(sum(map(len, units)) / FRAME_RATE_HZ / seconds, 1)
        result[f"student_{args.device}_matches_cpu"] = units == student
    print(json.dumps(result))


if __name__ == "__main__":
    main()
