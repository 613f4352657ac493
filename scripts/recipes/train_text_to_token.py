"""Train the student text-to-token model (text_to_token/student.py) on teacher pairs, on CPU.

Reads scripts/recipes/synthesize_teacher_pairs.py's output, holds out --validation pairs, and trains for a fixed number
of steps (reproducible given --seed and the thread count) with AdamW, linear warm-up and cosine decay. Batches hold
fragments of similar length up to --batch-units teacher units. The loss is unit cross-entropy under the teacher's
word durations, plus the squared error of log(1 + units) per word, plus --drift-weight times the mean distance in
units between predicted and true word ends: a frame's units depend on where its word starts, so small duration
errors that add up along an utterance cost more than the per-word error shows.

Every --checkpoint-every steps the whole training state (weights, optimiser, batch order, random state, learning
curve; safetensors and JSON, no pickle) goes to --checkpoint, and a run started with the same settings resumes from
it, giving the weights an uninterrupted run gives: a long training can span sessions. Writes the model directory
(config.json + model.safetensors) in the text-to-token model-file format, the learning curve in its config.

    python3 -m scripts.recipes.train_text_to_token --pairs build/teacher_pairs --out build/text_to_token
"""

import argparse
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from vocaloom import assets
from vocaloom.text_to_token import unit_metrics
from vocaloom.text_to_token.model_file import FORMAT, write_model
from vocaloom.text_to_token.pairs import Pairs, pairs_problem
from vocaloom.text_to_token.speech_tokenizer import FRAME_RATE_HZ, SpeechTokenizer
from vocaloom.text_to_token.student import DurationUnits, word_ends
from vocaloom.text_to_token.teacher import NORMALIZER

ARCHITECTURE = "duration-units-v1"


def length_batches(pairs: Pairs, items: list[int], batch_units: int, rng: random.Random) -> list[list[int]]:
    """One epoch of batches: shuffled, then sorted by length within windows of ~50 batches so padding is small,
    each batch up to `batch_units` teacher units (padded), batches in random order."""
    items = items[:]
    rng.shuffle(items)
    batches: list[list[int]] = []
    window = 50 * max(1, batch_units // 60)
    for begin in range(0, len(items), window):
        chunk = sorted(items[begin : begin + window], key=lambda i: len(pairs.texts[i]))
        batch: list[int] = []
        longest = 0
        for i in chunk:
            longest_if_added = max(longest, pairs.unit_count(i), 1)
            if batch and longest_if_added * (len(batch) + 1) > batch_units:
                batches.append(batch)
                batch, longest_if_added = [], max(pairs.unit_count(i), 1)
            batch.append(i)
            longest = longest_if_added
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches


def losses(model: DurationUnits, batch, bf16: bool, drift_weight: float) -> tuple[torch.Tensor, ...]:
    """(unit loss, duration loss, unit logits under the teacher's durations): the duration loss is the log-duration
    error plus drift_weight x the word-end error in units."""
    inputs, lengths, word_starts, totals, units = batch
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits, frame_mask, log_durations, word_mask = model(inputs, lengths, word_starts, totals)
    unit_loss = torch.nn.functional.cross_entropy(logits[frame_mask].float(), units[frame_mask])
    durations = (word_ends(word_starts, word_mask.sum(1), totals) - word_starts).clamp(min=0.0)
    duration_loss = (log_durations.float() - torch.log1p(durations))[word_mask].pow(2).mean()
    predicted = torch.where(word_mask, torch.expm1(log_durations.float()), 0.0).cumsum(1)
    drift = (predicted - torch.where(word_mask, durations, 0.0).cumsum(1)).abs()[word_mask].mean()
    return unit_loss, duration_loss + drift_weight * drift, logits


def learning_rate(step: int, steps: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def validate(model: DurationUnits, pairs: Pairs, items: list[int]) -> dict:
    """Validation figures: unit loss and unit error rate under the teacher's durations, log-duration error, and for
    generated units (the model's own durations) the unit error rate against the teacher and the length error. The
    two unit error rates apart say how much of the error is in where words go rather than in how they sound."""
    model.eval()
    unit_total, duration_total, frames, length_error, teacher, student, given = 0.0, 0.0, 0, 0.0, [], [], []
    for begin in range(0, len(items), 32):
        batch = pairs.batch(items[begin : begin + 32])
        unit_loss, duration_loss, logits = losses(model, batch, False, 0.0)
        count = int(batch[3].sum())
        unit_total += float(unit_loss) * count
        duration_total += float(duration_loss) * len(batch[3])
        frames += count
        generated = model.generate(batch[0], batch[1])
        length_error += sum(abs(len(g) - int(n)) / max(int(n), 1) for g, n in zip(generated, batch[3]))
        teacher += [units[: int(n)].tolist() for units, n in zip(batch[4], batch[3])]
        student += [g.tolist() for g in generated]
        given += [row[: int(n)].argmax(-1).tolist() for row, n in zip(logits, batch[3])]
    model.train()
    return {
        "unit_loss": round(unit_total / max(frames, 1), 4),
        "duration_loss": round(duration_total / len(items), 4),
        "unit_error_rate": round(unit_metrics.unit_error_rate(teacher, student), 4),
        "uer_given_teacher_durations": round(unit_metrics.unit_error_rate(teacher, given), 4),
        "length_error": round(length_error / len(items), 4),
    }


class Checkpoint:
    """The whole training state in a folder: weights.safetensors, optimizer.safetensors (AdamW's tensors) and
    state.json (step, batch order, random state, learning curve, the settings it belongs to). Written to a new
    folder that then replaces the old one, so a run killed at any moment leaves one complete checkpoint."""

    def __init__(self, folder: str, settings: dict):
        self.folder, self.settings = Path(folder), settings

    def load(self, model, optimizer) -> dict | None:
        """The saved state (model and optimizer restored in place), or None when there is none yet."""
        folder = self.folder if self.folder.exists() else self.folder.with_suffix(".old")
        if not (folder / "state.json").exists():
            return None
        state = json.loads((folder / "state.json").read_text())
        if state["settings"] != self.settings:
            changed = sorted(k for k in self.settings if state["settings"].get(k) != self.settings[k])
            raise SystemExit(
                f"{folder} is a checkpoint of other settings ({', '.join(changed)}): "
                "remove it or pass another --checkpoint"
            )
        model.load_state_dict(load_file(str(folder / "weights.safetensors")))
        tensors = load_file(str(folder / "optimizer.safetensors"))
        optimizer.load_state_dict(
            {
                "state": {
                    int(index): {name: tensors[f"{index}.{name}"] for name in names}
                    for index, names in state["optimizer"]["state"].items()
                },
                "param_groups": state["optimizer"]["param_groups"],
            }
        )
        return state

    def save(self, model, optimizer, state: dict) -> None:
        saved = optimizer.state_dict()
        fresh, old = self.folder.with_suffix(".new"), self.folder.with_suffix(".old")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(fresh / "weights.safetensors"))
        save_file(
            {f"{index}.{name}": value for index, values in saved["state"].items() for name, value in values.items()},
            str(fresh / "optimizer.safetensors"),
        )
        state = {
            **state,
            "settings": self.settings,
            "optimizer": {
                "state": {str(index): sorted(values) for index, values in saved["state"].items()},
                "param_groups": saved["param_groups"],
            },
        }
        (fresh / "state.json").write_text(json.dumps(state))
        shutil.rmtree(old, ignore_errors=True)
        if self.folder.exists():
            self.folder.rename(old)
        fresh.rename(self.folder)
        shutil.rmtree(old, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="build/teacher_pairs")
    parser.add_argument("--tokenizer", default=str(assets.SPEECH_TOKENIZER))
    parser.add_argument("--out", default="build/text_to_token", help="the model directory to write")
    parser.add_argument("--checkpoint", default="build/text_to_token_checkpoint")
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="checkpoint and stop after this many minutes of this run (resume later)",
    )
    parser.add_argument("--steps", type=int, default=9000)
    parser.add_argument("--batch-units", type=int, default=2400, help="padded teacher units per batch")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--dim", type=int, default=192)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--feedforward", type=int, default=576)
    parser.add_argument("--encoder-layers", type=int, default=3)
    parser.add_argument("--decoder-layers", type=int, default=4)
    parser.add_argument("--durations", choices=("words", "bytes"), default="bytes")
    parser.add_argument("--drift-weight", type=float, default=0.1)
    parser.add_argument("--validation", type=int, default=500, help="pairs held out for validation")
    parser.add_argument("--validate-every", type=int, default=1000)
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (fast on CPUs with AVX512-BF16)")
    # One thread: on a shared 2-core machine two OpenMP threads wait at every barrier for a descheduled partner
    # (measured 12x slower while another job ran); the arithmetic is the same either way.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if problem := pairs_problem(args.pairs):
        parser.error(problem)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    pairs = Pairs(args.pairs)
    codebook_size = SpeechTokenizer.load(args.tokenizer).codebook_size
    validation = list(range(len(pairs) - args.validation, len(pairs)))  # the fragments are in random order
    training = list(range(len(pairs) - args.validation))
    hyperparameters = {
        "codebook_size": codebook_size,
        "dim": args.dim,
        "heads": args.heads,
        "feedforward": args.feedforward,
        "encoder_layers": args.encoder_layers,
        "decoder_layers": args.decoder_layers,
        "durations": args.durations,
    }
    model = DurationUnits(**hyperparameters)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "checkpoint", "checkpoint_every", "minutes")}
    settings["pairs_meta"] = json.loads((Path(args.pairs) / "meta.json").read_text())
    checkpoint = Checkpoint(args.checkpoint, settings)
    state = checkpoint.load(model, optimizer) or {
        "step": 0,
        "epoch": 0,
        "batches": [],
        "history": [],
        "minutes": 0.0,
        "rng": None,
    }
    if state["rng"]:
        rng.setstate((state["rng"][0], tuple(state["rng"][1]), state["rng"][2]))
    print(
        f"{sum(p.numel() for p in model.parameters()):,} parameters, {len(training):,} training pairs"
        + (f", resuming at step {state['step']:,}" if state["step"] else ""),
        file=sys.stderr,
    )

    batches, epoch, history, started = state["batches"], state["epoch"], state["history"], time.time()

    def minutes() -> float:
        return round(state["minutes"] + (time.time() - started) / 60, 1)

    progress = tqdm(
        range(state["step"], args.steps), desc="training", unit="step", initial=state["step"], total=args.steps
    )
    for step in progress:
        if not batches:
            batches, epoch = length_batches(pairs, training, args.batch_units, rng), epoch + 1
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.steps, args.lr, args.warmup)
        unit_loss, duration_loss, _ = losses(model, pairs.batch(batches.pop()), args.bf16, args.drift_weight)
        optimizer.zero_grad()
        (unit_loss + duration_loss).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        progress.set_postfix(epoch=epoch, units=f"{unit_loss.item():.3f}", durations=f"{duration_loss.item():.4f}")
        if (step + 1) % args.validate_every == 0 or step + 1 == args.steps:
            history.append(
                {"step": step + 1, "epoch": epoch, "minutes": minutes(), **validate(model, pairs, validation)}
            )
            tqdm.write(json.dumps(history[-1]), file=sys.stderr)
        out_of_time = args.minutes is not None and time.time() - started >= 60 * args.minutes
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.steps or out_of_time:
            random_state = rng.getstate()
            checkpoint.save(
                model,
                optimizer,
                {
                    "step": step + 1,
                    "epoch": epoch,
                    "batches": batches,
                    "history": history,
                    "minutes": minutes(),
                    "rng": [random_state[0], list(random_state[1]), random_state[2]],
                },
            )
        if out_of_time and step + 1 < args.steps:
            progress.close()
            print(
                f"stopped at step {step + 1:,} of {args.steps:,} after {args.minutes:g} minutes; the same command "
                f"resumes from {args.checkpoint}",
                file=sys.stderr,
            )
            return

    config = {
        "format": FORMAT,
        "architecture": ARCHITECTURE,
        "frame_rate_hz": FRAME_RATE_HZ,
        "codebook_size": codebook_size,
        "input": {"kind": "bytes", "normalize": NORMALIZER},
        "hyperparameters": hyperparameters,
        "training": {
            "pairs": args.pairs,
            "training_pairs": len(training),
            "steps": args.steps,
            "batch_units": args.batch_units,
            "lr": args.lr,
            "drift_weight": args.drift_weight,
            "bf16": args.bf16,
            "threads": args.threads,
            "seed": args.seed,
            "minutes": minutes(),
            "validation": history[-1],
            "history": history,
        },
    }
    write_model(args.out, config, model.eval())
    print(json.dumps(config["training"]))


if __name__ == "__main__":
    main()
