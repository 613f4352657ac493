"""Speech tokens per second of the conversion stage, batched and one span at a time, for the bundled student and for
a Hugging Face causal LM (random weights of a realistic shape, for speed only), on CPU and on CUDA where present.

Spans are sampled from the bundled sample corpus exactly as a build samples them (--speech-ratio 0.3,
--span-lambda 10) and cut into the batches a build makes (transforms/speech/speech_conversion.py: cut_batches);
each model runs through the pipeline's handler. One span at a time does not depend on a batch budget, so it runs
once per model and device. One run, every figure side by side:

    python3 scripts/bench_speech.py [--spans 2000] [--budgets 1024 16384 65536] [--causal-lm DIR]
        [--lm-spans 32] [--lm-batches 1 8 32]
        [--cuda-spans 100000] [--cuda-budgets 16384 ... 1048576] [--cuda-lm-spans 2048] [--cuda-lm-batches 64 ...]

The --cuda-* sizes apply on a GPU (the sample's spans repeated up to --cuda-spans, enough work to fill it).
--causal-lm DIR: a model directory (scripts/make_causal_lm.py --shape 0.5b writes one); without it, that part is
skipped. Its tokens are counted as generated (each row until its end token or its length cap), since random weights
make no end token and mostly ids that are not units.
"""
from __future__ import annotations

import argparse
import itertools
import json
import time

import torch
import zstandard

from vocaloom import assets
from vocaloom.text_to_token.causal_lm import read_causal_lm
from vocaloom.text_to_token.model_file import read_model
from vocaloom.transforms.inference_cache import Failed, cache_key
from vocaloom.transforms.speech.speech_conversion import cut_batches
from vocaloom.transforms.speech.speech_handlers import CausalLMHandler, Span, TextToTokenHandler
from vocaloom.transforms.speech.synthetic_interleaving import segments


def sample_spans(limit: int) -> list[Span]:
    """The first `limit` spans a build would speak in the sample corpus, repeated when it holds fewer."""
    with open(assets.SAMPLE_CORPUS, "rb") as f:
        docs = [json.loads(line) for line in zstandard.ZstdDecompressor().stream_reader(f).read().splitlines()]
    spans = []
    for doc in docs:
        for i, s in enumerate(x for x in segments(doc["text"], 0.3, 10.0, 0, doc["id"]) if x.speech):
            text = doc["text"][s.start:s.end]
            spans.append(Span(doc["id"], b"", i, text, cache_key("bench", text)))
            if len(spans) == limit:
                return spans
    return [spans[i % len(spans)] for i in range(limit)]


def timed(convert, batches: list[tuple[Span, ...]], tokens) -> tuple[int, float]:
    convert(batches[0])  # warm-up
    start, total = time.perf_counter(), 0
    for batch in batches:
        total += tokens(batch, convert(batch))
    return total, time.perf_counter() - start


def student_runs(spans: list[Span], budgets: list[int], device: str):
    handler = TextToTokenHandler(read_model(str(assets.TEXT_TO_TOKEN_MODEL)), device)
    model = handler.load_model()
    runs = [(None, False)] + [(budget, True) for budget in budgets]
    for budget, batched in runs:
        batches = list(cut_batches(spans, budget)) if batched else [(span,) for span in spans]
        units, seconds = timed(lambda b: handler.convert(model, [s.text for s in b]), batches,
                               lambda _, out: sum(map(len, out)))
        yield {"model": "student", "device": device, "budget_chars": budget, "batches": len(batches),
               "mode": "batched" if batched else "one-at-a-time", "speech_tokens": units,
               "seconds": round(seconds, 2), "speech_tokens_per_s": round(units / seconds)}


def causal_lm_runs(directory: str, spans: list[Span], batch_sizes: list[int], device: str):
    spec = read_causal_lm(directory)
    handler = CausalLMHandler(spec, device)
    model = handler.load_model()  # on CPU with one thread, as in each Beam worker process
    parameters = sum(p.numel() for p in model.model.parameters())

    def generated(batch, outputs) -> int:
        return sum(spec.unit_cap(span.text) + 1 if isinstance(out, Failed) else len(out) + 1
                   for span, out in zip(batch, outputs, strict=True))
    ordered = sorted(spans, key=lambda s: (len(s.text), s.key))
    for size in batch_sizes:
        batches = [tuple(ordered[i:i + size]) for i in range(0, len(ordered), size)]
        tokens, seconds = timed(lambda b: handler.convert(model, [s.text for s in b]), batches, generated)
        yield {"model": f"causal LM ({parameters / 1e6:.0f}M parameters, {spec.dtype(device)})", "device": device,
               "batch_spans": size, "batches": len(batches), "mode": "one-at-a-time" if size == 1 else "batched",
               "speech_tokens": tokens, "seconds": round(seconds, 2), "speech_tokens_per_s": round(tokens / seconds)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=2000)
    parser.add_argument("--budgets", type=int, nargs="+", default=[1024, 16384, 65536])
    parser.add_argument("--causal-lm", help="a causal LM directory (scripts/make_causal_lm.py)")
    parser.add_argument("--lm-spans", type=int, default=32)
    parser.add_argument("--lm-batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--cuda-spans", type=int, default=100_000)
    parser.add_argument("--cuda-budgets", type=int, nargs="+", default=[16384, 65536, 262144, 1048576])
    parser.add_argument("--cuda-lm-spans", type=int, default=2048)
    parser.add_argument("--cuda-lm-batches", type=int, nargs="+", default=[64, 256, 1024])
    args = parser.parse_args(argv)
    if min(args.spans, args.lm_spans, args.cuda_spans, args.cuda_lm_spans, *args.budgets, *args.lm_batches,
           *args.cuda_budgets, *args.cuda_lm_batches) < 1:
        parser.error("span counts, budgets and batch sizes must be at least 1")
    sizes = {"cpu": (args.spans, args.budgets, args.lm_spans, args.lm_batches),
             "cuda": (args.cuda_spans, args.cuda_budgets, args.cuda_lm_spans, args.cuda_lm_batches)}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = {"cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "runs": []}
    for device in devices:
        span_count, budgets, lm_spans, lm_batches = sizes[device]
        spans = sample_spans(span_count)
        results[f"{device}_spans"] = len(spans)
        runs = student_runs(spans, budgets, device)
        if args.causal_lm:
            runs = itertools.chain(runs, causal_lm_runs(args.causal_lm, sample_spans(lm_spans), lm_batches, device))
        for run in runs:  # each printed as it ends: a long run's earlier figures are not lost
            size = f"budget {run['budget_chars'] or '-':>7} chars" if "budget_chars" in run else \
                f"batch {run['batch_spans']:>5} spans"
            print(f"{device:>4} {run['model']:<44} {size} {run['mode']:<13} {run['speech_tokens_per_s']:>10,} "
                  f"speech tokens/s ({run['batches']} batches, {run['seconds']} s)", flush=True)
            results["runs"].append(run)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
