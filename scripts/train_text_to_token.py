"""Train the student text-to-token model (text_to_token/student.py) on teacher pairs, on CPU.

Reads scripts/synthesize_teacher_pairs.py's output, holds out --validation pairs, and trains for a fixed number of
steps (reproducible given --seed and the thread count) with AdamW, linear warm-up and cosine decay. Batches hold
fragments of similar length up to --batch-units teacher units. The loss is unit cross-entropy under the teacher's
word durations plus the squared error of log(1 + units) per word. Writes the model directory (config.json +
model.safetensors) in the text-to-token model-file format.

    python3 scripts/train_text_to_token.py --pairs build/teacher_pairs --out assets/text_to_token
"""
import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from tqdm import tqdm


from vocaloom import assets  # noqa: E402
from vocaloom.text_to_token.model_file import FORMAT, write_model  # noqa: E402
from vocaloom.text_to_token.speech_tokenizer import FRAME_RATE_HZ, SpeechTokenizer  # noqa: E402
from vocaloom.text_to_token.student import DurationUnits, word_ends  # noqa: E402

ARCHITECTURE = "duration-units-v1"


class Pairs:
    """Teacher pairs in memory: texts as UTF-8 bytes, units, word starts (in units)."""

    def __init__(self, folder: str):
        self.texts = [t.encode("utf-8") for t in (Path(folder) / "texts.txt").read_text("utf-8").splitlines()]
        tensors = load_file(str(Path(folder) / "pairs.safetensors"))
        self.units, self.unit_offsets = tensors["units"].long(), tensors["unit_offsets"]
        self.word_starts, self.word_offsets = tensors["word_starts"], tensors["word_offsets"]

    def __len__(self):
        return len(self.texts)

    def unit_count(self, i: int) -> int:
        return int(self.unit_offsets[i + 1] - self.unit_offsets[i])

    def batch(self, items: list[int]):
        """Padded tensors: bytes [B, T], byte lengths [B], word starts [B, W], unit counts [B], units [B, F]."""
        texts = [self.texts[i] for i in items]
        units = [self.units[self.unit_offsets[i]:self.unit_offsets[i + 1]] for i in items]
        starts = [self.word_starts[self.word_offsets[i]:self.word_offsets[i + 1]] for i in items]
        inputs = torch.zeros(len(items), max(map(len, texts)), dtype=torch.long)
        for row, text in enumerate(texts):
            inputs[row, :len(text)] = torch.tensor(list(text))
        return (inputs, torch.tensor([len(t) for t in texts]),
                torch.nn.utils.rnn.pad_sequence(starts, batch_first=True),
                torch.tensor([len(u) for u in units]),
                torch.nn.utils.rnn.pad_sequence(units, batch_first=True, padding_value=-100))


def length_batches(pairs: Pairs, items: list[int], batch_units: int, rng: random.Random) -> list[list[int]]:
    """One epoch of batches: shuffled, then sorted by length within windows of ~50 batches so padding is small,
    each batch up to `batch_units` teacher units (padded), batches in random order."""
    items = items[:]
    rng.shuffle(items)
    batches = []
    window = 50 * max(1, batch_units // 60)
    for begin in range(0, len(items), window):
        chunk = sorted(items[begin:begin + window], key=lambda i: len(pairs.texts[i]))
        batch, longest = [], 0
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


def losses(model: DurationUnits, batch, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    inputs, lengths, word_starts, totals, units = batch
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits, frame_mask, log_durations, word_mask = model(inputs, lengths, word_starts, totals)
    unit_loss = torch.nn.functional.cross_entropy(logits[frame_mask].float(), units[frame_mask])
    durations = (word_ends(word_starts, word_mask.sum(1), totals) - word_starts).clamp(min=0.0)
    duration_loss = (log_durations.float() - torch.log1p(durations))[word_mask].pow(2).mean()
    return unit_loss, duration_loss


def learning_rate(step: int, steps: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def validate(model: DurationUnits, pairs: Pairs, items: list[int]) -> dict:
    model.eval()
    unit_total, duration_total, frames, length_error = 0.0, 0.0, 0, 0.0
    for begin in range(0, len(items), 32):
        batch = pairs.batch(items[begin:begin + 32])
        unit_loss, duration_loss = losses(model, batch, bf16=False)
        count = int(batch[3].sum())
        unit_total += float(unit_loss) * count
        duration_total += float(duration_loss) * len(batch[3])
        frames += count
        generated = model.generate(batch[0], batch[1])
        length_error += sum(abs(len(g) - int(n)) / max(int(n), 1) for g, n in zip(generated, batch[3]))
    model.train()
    return {"unit_loss": round(unit_total / max(frames, 1), 4),
            "duration_loss": round(duration_total / len(items), 4),
            "length_error": round(length_error / len(items), 4)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="build/teacher_pairs")
    parser.add_argument("--tokenizer", default=str(assets.SPEECH_TOKENIZER))
    parser.add_argument("--out", default=str(assets.TEXT_TO_TOKEN_MODEL))
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-units", type=int, default=2400, help="padded teacher units per batch")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--feedforward", type=int, default=384)
    parser.add_argument("--encoder-layers", type=int, default=2)
    parser.add_argument("--decoder-layers", type=int, default=3)
    parser.add_argument("--validation", type=int, default=500, help="pairs held out for validation")
    parser.add_argument("--validate-every", type=int, default=1000)
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (fast on CPUs with AVX512-BF16)")
    # One thread: on a shared 2-core machine two OpenMP threads wait at every barrier for a descheduled partner
    # (measured 12x slower while another job ran); the arithmetic is the same either way.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    pairs = Pairs(args.pairs)
    codebook_size = SpeechTokenizer.load(args.tokenizer).codebook_size
    validation = list(range(len(pairs) - args.validation, len(pairs)))  # the fragments are in random order
    training = list(range(len(pairs) - args.validation))
    hyperparameters = {"codebook_size": codebook_size, "dim": args.dim, "heads": args.heads,
                       "feedforward": args.feedforward, "encoder_layers": args.encoder_layers,
                       "decoder_layers": args.decoder_layers}
    model = DurationUnits(**hyperparameters)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters, {len(training):,} training pairs",
          file=sys.stderr)

    batches, epoch, history, started = [], 0, [], time.time()
    progress = tqdm(range(args.steps), desc="training", unit="step")
    for step in progress:
        if not batches:
            batches, epoch = length_batches(pairs, training, args.batch_units, rng), epoch + 1
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.steps, args.lr, args.warmup)
        unit_loss, duration_loss = losses(model, pairs.batch(batches.pop()), args.bf16)
        optimizer.zero_grad()
        (unit_loss + duration_loss).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        progress.set_postfix(epoch=epoch, units=f"{float(unit_loss):.3f}", durations=f"{float(duration_loss):.4f}")
        if (step + 1) % args.validate_every == 0 or step + 1 == args.steps:
            history.append({"step": step + 1, "epoch": epoch, **validate(model, pairs, validation)})
            tqdm.write(json.dumps(history[-1]), file=sys.stderr)

    config = {"format": FORMAT, "architecture": ARCHITECTURE, "frame_rate_hz": FRAME_RATE_HZ,
              "codebook_size": codebook_size, "input": {"kind": "bytes"}, "hyperparameters": hyperparameters,
              "training": {"pairs": args.pairs, "training_pairs": len(training), "steps": args.steps,
                           "batch_units": args.batch_units, "lr": args.lr, "bf16": args.bf16,
                           "threads": args.threads, "seed": args.seed,
                           "minutes": round((time.time() - started) / 60, 1), "validation": history[-1]}}
    write_model(args.out, config, model.eval())
    print(json.dumps(config["training"]))


if __name__ == "__main__":
    main()
