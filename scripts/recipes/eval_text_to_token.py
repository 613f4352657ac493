"""Evaluate the student text-to-token model against its teacher on held-out sentences; print one JSON object.

Figures (unit error rates are corpus-level: total edit distance over total teacher units):
  unit_error_rate          student vs teacher
  dedup_unit_error_rate    the same after collapsing runs of repeated units in both
  length_error             mean |student units - teacher units| / teacher units
  tokens_per_word          units per whitespace-separated word, teacher and student
  teacher_floor_uer        the teacher against itself: the same sentence spoken after the previous one (another
                           engine state) vs from a fresh state; no student can be expected to beat it
  uer_given_teacher_durations  the student's unit error rate when given the teacher's word durations: what is
                           left is in the units it picks, the difference to unit_error_rate in its durations
  uer_given_jittered_durations  the same with each teacher word start moved by Gaussian noise of 0.1 and 0.25
                           units (8 and 20 ms): how precise word boundaries must be for a unit error rate
  word_end_error           mean |student's word end - teacher's| in units, the student's own durations summed
  lookup_uer               word-lookup baseline: each word's most typical unit sequence in the training pairs
                           (the medoid under edit distance), concatenated
  *_speech_s_per_cpu_s     seconds of speech (units / 12.5) produced per CPU-second, this machine, this run, one
                           thread each (the teacher's includes its espeak-ng server and forked children; the
                           student runs as a build runs it: the pipeline's handler and batches, --batch-characters)
With --device cuda the student's GPU throughput (speech seconds per wall second) is added.

With --sentences FILE it prints one JSON object for that file; without, it evaluates every default set
(scripts/recipes/make_eval_sets.py: the in-domain held-out sentences and each domain that never entered training)
and prints a table of the main figures per domain, the model's learning curve (its config's training history, where it
has one), then one JSON object holding every set's figures and the targets met.

    python3 -m scripts.recipes.eval_text_to_token --sentences assets/eval/sentences.txt
    python3 -m scripts.recipes.eval_text_to_token
"""

import argparse
import collections
import json
import resource
import string
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vocaloom import assets
from vocaloom.text_to_token import unit_metrics
from vocaloom.text_to_token.model_file import read_model
from vocaloom.text_to_token.pairs import Pairs, pairs_problem
from vocaloom.text_to_token.speech_tokenizer import FRAME_RATE_HZ
from vocaloom.text_to_token.student import word_ends
from vocaloom.text_to_token.teacher import Teacher
from vocaloom.transforms.inference.cache import cache_key
from vocaloom.transforms.speech.speech_conversion import cut_batches
from vocaloom.transforms.speech.speech_handlers import BATCH_CHARACTERS, Span, TextToTokenHandler

MEDOID_SAMPLES = 12  # occurrences of a word compared when choosing its most typical unit sequence
IN_DOMAIN = "in-domain"
IN_DOMAIN_FLOOR_MULTIPLE = 1.5
OUT_OF_TRAINING_FLOOR_MULTIPLE = 2.0
LOOKUP_MARGIN = 0.25
JITTER_UNITS = (0.1, 0.25)  # standard deviations of the noise put on the teacher's word starts, in units (80 ms)
MAX_LENGTH_ERROR = 0.03


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def teacher_units(tokenizer: str, sentences: list[str]) -> tuple[list, list, list, float]:
    """Fresh-state units, their word starts, units after the previous sentence, and CPU-seconds of the fresh pass
    (the server's start-up included: its CPU time is only known once it has exited)."""
    cpu, children = time.process_time(), children_cpu_s()
    with Teacher(tokenizer) as teacher:
        spoken = [teacher.speak(s) for s in tqdm(sentences, desc="teacher", unit="sentence")]
    cpu_s = time.process_time() - cpu + children_cpu_s() - children
    with Teacher(tokenizer) as teacher:
        shifted = [
            teacher.speak(s, prelude=before)[0].tolist()
            for s, before in tqdm(
                list(zip(sentences, sentences[-1:] + sentences[:-1])), desc="teacher after other text", unit="sentence"
            )
        ]
    return [units.tolist() for units, _ in spoken], [starts for _, starts in spoken], shifted, cpu_s


def student_units(model_dir: str, sentences: list[str], device: str, budget: int) -> list[list[int]]:
    """The student's units as a build converts them: the pipeline's handler over the batches the pipeline cuts
    (similar lengths, within `budget` padded characters of what the model reads)."""
    handler = TextToTokenHandler(read_model(model_dir), device)
    model = handler.load_model()
    spans = [Span("eval", b"", index, text, cache_key("eval", text)) for index, text in enumerate(sentences)]
    units: dict[int, list[int]] = {}  # by sentence (each span's ordinal); every span is in one batch
    for batch in cut_batches(spans, budget, handler.span_size):
        for span, span_units in zip(batch, handler.convert(model, [span.text for span in batch])):
            units[span.ordinal] = span_units
    return [units[ordinal] for ordinal in range(len(sentences))]


@torch.no_grad()
def student_given_durations(model_dir: str, sentences: list[str], teacher: list, starts: list) -> dict:
    """The student given the teacher's text (normalised) and word timings instead of its own: its units under the
    teacher's word starts (what remains of its error is in the units it picks, the rest of unit_error_rate is in
    where it puts words), under those starts each moved by Gaussian noise of JITTER_UNITS (how precise boundaries
    must be), and the mean distance in units between its own word ends and the teacher's."""
    spec = read_model(model_dir)
    model = spec.load("cpu")
    exact: list[list[int]] = []
    jittered: dict[float, list[list[int]]] = {sigma: [] for sigma in JITTER_UNITS}
    end_errors: list[float] = []
    for index, (sentence, reference, word_starts) in enumerate(zip(sentences, teacher, starts)):
        text = spec.encode_text(Teacher.normalize(sentence))
        inputs, lengths = torch.tensor([text]), torch.tensor([len(text)])
        true_starts, total = torch.tensor(word_starts, dtype=torch.float32)[None], torch.tensor([len(reference)])
        logits, _, log_durations, _ = model(inputs, lengths, true_starts, total)
        exact.append(logits[0, : len(reference)].argmax(-1).tolist())
        if len(word_starts):
            true_ends = word_ends(true_starts, torch.tensor([len(word_starts)]), total)[0]
            end_errors += (torch.expm1(log_durations[0]).clamp(min=0.0).cumsum(0) - true_ends).abs().tolist()
        noise = torch.randn(true_starts.shape, generator=torch.Generator().manual_seed(index))
        noise[:, 0] = 0.0  # the first word starts the utterance
        for sigma in JITTER_UNITS:
            moved = (true_starts + sigma * noise).clamp(0.0, float(len(reference)))
            logits, _, _, _ = model(inputs, lengths, moved, total)
            jittered[sigma].append(logits[0, : len(reference)].argmax(-1).tolist())
    return {"exact": exact, "jittered": jittered, "word_end_error": float(np.mean(end_errors)) if end_errors else 0.0}


def timed_student(model_dir, sentences, device, budget) -> tuple[list, float]:
    """Units and seconds spent: CPU-seconds on CPU, wall seconds on a GPU (synchronised)."""
    student_units(model_dir, sentences[:8], device, budget)  # warm-up: lazy initialisation
    if device == "cpu":
        start = time.process_time()
        units = student_units(model_dir, sentences, device, budget)
        return units, time.process_time() - start
    torch.cuda.synchronize()
    start = time.perf_counter()
    units = student_units(model_dir, sentences, device, budget)
    torch.cuda.synchronize()
    return units, time.perf_counter() - start


def word_key(word: str) -> str:
    return word.lower()


def bare_key(word: str) -> str:
    return word.lower().strip(string.punctuation)


class Lookup:
    """The word-lookup baseline: each word's most typical unit sequence in the training pairs (keys: the word as
    written, lower-cased, and without surrounding punctuation), the medoid of its first MEDOID_SAMPLES occurrences.
    A word never seen gets the most common unit, repeated for the pairs' mean units per character."""

    def __init__(self, pairs: Pairs, sentences: list[str]):
        wanted = {k for s in sentences for w in Teacher.normalize(s).split() for k in (word_key(w), bare_key(w))}
        occurrences: collections.defaultdict[str, list[list[int]]] = collections.defaultdict(list)
        for i in tqdm(range(len(pairs)), desc="lookup table", unit="pair"):
            units = pairs.units[pairs.unit_offsets[i] : pairs.unit_offsets[i + 1]].tolist()
            starts = pairs.word_starts[pairs.word_offsets[i] : pairs.word_offsets[i + 1]].tolist()
            bounds = [round(s) for s in starts] + [len(units)]
            for w, word in enumerate(pairs.texts[i].decode("utf-8").split()):
                for key in {word_key(word), bare_key(word)} & wanted:
                    if len(occurrences[key]) < MEDOID_SAMPLES:
                        occurrences[key].append(units[bounds[w] : bounds[w + 1]])
        self.table = {
            key: min(seqs, key=lambda a: sum(unit_metrics.edit_distance(a, b) for b in seqs))
            for key, seqs in occurrences.items()
        }
        self.most_common = int(np.bincount(pairs.units.numpy(), minlength=1).argmax())
        self.units_per_char = len(pairs.units) / sum(len(t) for t in pairs.texts)

    def units(self, sentences: list[str]) -> tuple[list[list[int]], float]:
        """The baseline's units per sentence, and the share of words found in the table."""
        words = [Teacher.normalize(s).split() for s in sentences]  # the pairs' texts are normalised too
        found, out = 0, []
        for ws in words:
            units: list[int] = []
            for w in ws:
                sequence = self.table.get(word_key(w), self.table.get(bare_key(w)))
                found += sequence is not None
                units += sequence if sequence is not None else [self.most_common] * round(self.units_per_char * len(w))
            out.append(units)
        return out, found / max(1, sum(map(len, words)))


def figures(sentences: list[str], args, lookup: Lookup) -> dict:
    """Every figure of the module docstring for one set of sentences."""
    words = sum(len(s.split()) for s in sentences)
    teacher, starts, shifted, teacher_cpu_s = teacher_units(args.tokenizer, sentences)
    student, student_cpu_s = timed_student(args.model, sentences, "cpu", args.batch_characters)
    given = student_given_durations(args.model, sentences, teacher, starts)
    baseline, coverage = lookup.units(sentences)
    teacher_len = [max(len(t), 1) for t in teacher]
    result = {
        "sentences": len(sentences),
        "words": words,
        "teacher_units": sum(map(len, teacher)),
        "unit_error_rate": round(unit_metrics.unit_error_rate(teacher, student), 4),
        "dedup_unit_error_rate": round(
            unit_metrics.unit_error_rate(
                [unit_metrics.collapse_repeats(t) for t in teacher], [unit_metrics.collapse_repeats(s) for s in student]
            ),
            4,
        ),
        "length_error": round(
            float(np.mean([abs(len(s) - len(t)) / n for s, t, n in zip(student, teacher, teacher_len)])), 4
        ),
        "tokens_per_word": {
            "teacher": round(sum(map(len, teacher)) / words, 3),
            "student": round(sum(map(len, student)) / words, 3),
        },
        "teacher_floor_uer": round(unit_metrics.unit_error_rate(teacher, shifted), 4),
        "uer_given_teacher_durations": round(unit_metrics.unit_error_rate(teacher, given["exact"]), 4),
        "uer_given_jittered_durations": {
            f"{sigma:g}": round(unit_metrics.unit_error_rate(teacher, units), 4)
            for sigma, units in given["jittered"].items()
        },
        "word_end_error": round(given["word_end_error"], 3),
        "lookup_uer": round(unit_metrics.unit_error_rate(teacher, baseline), 4),
        "lookup_word_coverage": round(coverage, 4),
        "teacher_speech_s_per_cpu_s": round(sum(map(len, teacher)) / FRAME_RATE_HZ / teacher_cpu_s, 1),
        "student_speech_s_per_cpu_s": round(sum(map(len, student)) / FRAME_RATE_HZ / student_cpu_s, 1),
    }
    if args.device:
        units, seconds = timed_student(args.model, sentences, args.device, args.batch_characters)
        result[f"student_{args.device}_speech_s_per_s"] = round(sum(map(len, units)) / FRAME_RATE_HZ / seconds, 1)
        result[f"student_{args.device}_matches_cpu"] = units == student
    return result


def default_sets() -> dict[str, Path]:
    """The in-domain held-out sentences first, then every out-of-training domain's set, by name."""
    folder = assets.EVAL_SENTENCES.parent
    return {
        IN_DOMAIN: assets.EVAL_SENTENCES,
        **{path.stem: path for path in sorted(folder.glob("*.txt")) if path != assets.EVAL_SENTENCES},
    }


def targets_met(domain: str, result: dict) -> dict:
    """The targets: UER within a multiple of the domain's teacher floor (IN_DOMAIN_FLOOR_MULTIPLE in
    domain, OUT_OF_TRAINING_FLOOR_MULTIPLE elsewhere), LOOKUP_MARGIN below word lookup out of training, and length
    error at most MAX_LENGTH_ERROR; the student at least as fast as the teacher per CPU-second."""
    multiple = IN_DOMAIN_FLOOR_MULTIPLE if domain == IN_DOMAIN else OUT_OF_TRAINING_FLOOR_MULTIPLE
    met = {
        "floor": result["unit_error_rate"] <= multiple * result["teacher_floor_uer"],
        "length": result["length_error"] <= MAX_LENGTH_ERROR,
        "speed": result["student_speech_s_per_cpu_s"] >= result["teacher_speech_s_per_cpu_s"],
    }
    if domain != IN_DOMAIN:
        met["lookup"] = result["unit_error_rate"] <= result["lookup_uer"] - LOOKUP_MARGIN
    return met


def ratio(numerator: float, denominator: float) -> str:
    """'-' where a set too small for the figure made the denominator 0 (one sentence the teacher always says alike)."""
    return f"{numerator / denominator:.2f}" if denominator else "-"


def table(results: dict[str, dict]) -> str:
    rows = [
        "| domain | sentences | UER | teacher floor | UER / floor | lookup UER | lookup - UER | length error "
        "| UER given teacher durations | the same, starts jittered 0.1 / 0.25 units | word end error (units) "
        "| student / teacher speed | targets met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for domain, r in results.items():
        met = targets_met(domain, r)
        rows.append(
            f"| {domain} | {r['sentences']} | {r['unit_error_rate']:.3f} | {r['teacher_floor_uer']:.3f} "
            f"| {ratio(r['unit_error_rate'], r['teacher_floor_uer'])} | {r['lookup_uer']:.3f} "
            f"| {r['lookup_uer'] - r['unit_error_rate']:.3f} | {r['length_error']:.3f} "
            f"| {r['uer_given_teacher_durations']:.3f} "
            f"| {' / '.join(f'{uer:.3f}' for uer in r['uer_given_jittered_durations'].values())} "
            f"| {r['word_end_error']:.2f} "
            f"| {ratio(r['student_speech_s_per_cpu_s'], r['teacher_speech_s_per_cpu_s'])} "
            f"| {', '.join(k for k, ok in met.items() if ok) or 'none'} |"
        )
    return "\n".join(rows)


def learning_curve(history: list[dict]) -> str:
    """The training run's validation figures (scripts/recipes/train_text_to_token.py) as a table, one row per
    validation."""
    rows = [
        "| step | epoch | minutes | unit loss | duration loss | UER | UER given teacher durations | length error |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows += [
        f"| {h['step']:,} | {h['epoch']} | {h['minutes']} | {h['unit_loss']:.3f} | {h['duration_loss']:.4f} "
        f"| {h['unit_error_rate']:.3f} | {h.get('uer_given_teacher_durations', float('nan')):.3f} "
        f"| {h['length_error']:.3f} |"
        for h in history
    ]
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", default="", help="one sentence a line (default: every default set)")
    parser.add_argument("--model", default=str(assets.TEXT_TO_TOKEN_MODEL))
    parser.add_argument("--tokenizer", default=str(assets.SPEECH_TOKENIZER))
    parser.add_argument("--pairs", default="build/teacher_pairs", help="training pairs, for the lookup baseline")
    parser.add_argument(
        "--batch-characters",
        type=int,
        default=BATCH_CHARACTERS,
        help="the student's batches as a build cuts them (default: the pipeline's)",
    )
    parser.add_argument("--device", default="", help="also measure the student's throughput here, e.g. cuda")
    args = parser.parse_args(argv)
    if args.sentences and not Path(args.sentences).is_file():
        parser.error(f"--sentences {args.sentences}: no such file")
    if args.batch_characters < 1:
        parser.error(f"--batch-characters must be positive, got {args.batch_characters}")
    if problem := pairs_problem(args.pairs):
        parser.error(problem)
    torch.set_num_threads(1)  # like the teacher: CPU-seconds then count work, not threads spinning at barriers
    sets = {Path(args.sentences).stem: Path(args.sentences)} if args.sentences else default_sets()
    texts = {
        name: [line.strip() for line in path.read_text("utf-8").splitlines() if line.strip()]
        for name, path in sets.items()
    }
    lookup = Lookup(Pairs(args.pairs), [s for sentences in texts.values() for s in sentences])
    results = {name: figures(sentences, args, lookup) for name, sentences in texts.items()}
    if args.sentences:
        print(json.dumps(results[Path(args.sentences).stem]))
        return
    print(table(results))
    if history := read_model(args.model).config.get("training", {}).get("history"):
        print("\n" + learning_curve(history))
    print("\n" + json.dumps({name: {**r, "targets_met": targets_met(name, r)} for name, r in results.items()}))


if __name__ == "__main__":
    main()
