"""Speech tokens per second of the conversion stage, batched and one span at a time, for the bundled student and for
a Hugging Face causal LM (random weights of a realistic shape, for speed only), on CPU and on CUDA where present.

Spans are sampled from the bundled sample corpus exactly as a build samples them (--speech-ratio 0.3,
--span-lambda 10) and cut into the batches a build makes (transforms/speech/speech_conversion.py: cut_batches);
each model runs through the pipeline's handler. One run, every figure side by side:

    python3 -m scripts.bench.bench_speech [--devices cpu cuda] [--models student causal-lm] [--spans 2000]
        [--budgets 1024 16384 65536] [--causal-lm DIR] [--lm-batches 1 8 32] [--lm-batch-count 4]
        [--cuda-spans 100000] [--cuda-budgets 16384 ... 1048576] [--cuda-dtypes float32 bfloat16]
        [--cuda-lm-batches 64 256 1024] [--cuda-lm-batch-count 2] [--cuda-profile] [--cuda-lm-static]

The --cuda-* sizes apply on a GPU (the sample's spans repeated up to --cuda-spans, enough work to fill it). On CUDA
each run also reports the model alone (its batches already encoded and on the GPU: what the handler's Python work
costs is the difference), the GPU's peak memory and mean utilisation (NVML, sampled every 20 ms), and whether the
first batch converted again gives the same units. --cuda-profile adds the kernels that take the GPU's time in one
batch of each model; --cuda-lm-static times the causal LM's largest batch with transformers' static KV cache (which
transformers compiles), beside its default dynamic cache.
--causal-lm DIR: a model directory (scripts/recipes/make_causal_lm.py --shape 0.5b writes one); without it, that part is
skipped. Its tokens are counted as generated (each row until its end token or its length cap), since random weights
make no end token and mostly ids that are not units.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import threading
import time
from typing import Any

import torch
import zstandard

from vocaloom import assets
from vocaloom.text_to_token.causal_lm import read_causal_lm
from vocaloom.text_to_token.failed import Failed
from vocaloom.text_to_token.model_file import DTYPES, read_model
from vocaloom.transforms.inference.cache import cache_key
from vocaloom.transforms.speech.speech_conversion import cut_batches
from vocaloom.transforms.speech.speech_handlers import (
    CausalLMHandler,
    Span,
    TextToTokenHandler,
    model_calls,
    padded_batch,
    precision,
)
from vocaloom.transforms.speech.synthetic_interleaving import segments


def sample_spans(limit: int) -> list[Span]:
    """The first `limit` spans a build would speak in the sample corpus, repeated when it holds fewer."""
    with open(assets.SAMPLE_CORPUS, "rb") as f:
        docs = [json.loads(line) for line in zstandard.ZstdDecompressor().stream_reader(f).read().splitlines()]
    spans = []
    for doc in docs:
        for i, s in enumerate(x for x in segments(doc["text"], 0.3, 10.0, 0, doc["id"]) if x.speech):
            text = doc["text"][s.start : s.end]
            spans.append(Span(doc["id"], b"", i, text, cache_key("bench", text)))
            if len(spans) == limit:
                return spans
    return [spans[i % len(spans)] for i in range(limit)]


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class GpuMonitor:
    """Peak memory torch allocated, and the GPU's utilisation and memory in use as NVML reports them every 20 ms
    (None where NVML is missing), over a `with` block; a no-op on the CPU."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.figures: dict = {}

    def __enter__(self):
        if not self.cuda:
            return self
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        self._samples: list[tuple[int, int]] = []  # (utilisation %, memory used in bytes), one per NVML sample
        self._stop = threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        except Exception:
            handle = None
        if handle is not None:

            def sample():
                while not self._stop.wait(0.02):
                    self._samples.append(
                        (pynvml.nvmlDeviceGetUtilizationRates(handle).gpu, pynvml.nvmlDeviceGetMemoryInfo(handle).used)
                    )

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if not self.cuda:
            return
        torch.cuda.synchronize()
        self._stop.set()
        if getattr(self, "_thread", None):
            self._thread.join()
        samples = self._samples
        self.figures = {
            "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "gpu_util_mean_pct": round(sum(u for u, _ in samples) / len(samples), 1) if samples else None,
            "gpu_memory_used_max_gib": round(max(m for _, m in samples) / 2**30, 2) if samples else None,
        }


def timed(convert, batches: list[tuple[Span, ...]], tokens, device: str) -> tuple[int, float, dict]:
    convert(batches[0])  # warm-up
    with GpuMonitor(device) as monitor:
        start, total = time.perf_counter(), 0
        for batch in batches:
            total += tokens(batch, convert(batch))
        seconds = time.perf_counter() - start
    return total, seconds, monitor.figures


def student_runs(spans: list[Span], budgets: list[int], device: str, dtype: str, single_spans: int):
    spec = read_model(str(assets.TEXT_TO_TOKEN_MODEL))
    spec = dataclasses.replace(spec, config={**spec.config, "dtype": dtype})
    handler = TextToTokenHandler(spec, device)
    model = handler.load_model()
    label = f"student ({spec.dtype(device)})".replace("torch.", "")
    for budget in [None, *budgets]:  # None: one span at a time
        batched = budget is not None
        batches = (
            list(cut_batches(spans, budget, handler.span_size))
            if budget is not None
            else [(span,) for span in spans[:single_spans]]
        )

        def convert(batch):
            return handler.convert(model, [s.text for s in batch])

        units, seconds, gpu = timed(convert, batches, lambda _, out: sum(map(len, out)), device)
        run = {
            "model": label,
            "device": device,
            "budget_chars": budget,
            "batches": len(batches),
            "mode": "batched" if batched else "one-at-a-time",
            "speech_tokens": units,
            "seconds": round(seconds, 2),
            "speech_tokens_per_s": round(units / seconds),
            **gpu,
        }
        if device.startswith("cuda") and batched:
            run["repeatable"] = convert(batches[0]) == convert(batches[0])
            run.update(model_alone(handler, model, spec, batches, device))
        yield run


def model_alone(handler, model, spec, batches, device: str) -> dict:
    """The student's generate over batches already encoded and on the GPU (split into the handler's model calls),
    timed with one synchronisation: what the GPU does when the handler's Python work (encoding, padding, copying
    units back) is not in its way."""
    encoded = []
    for batch in batches:
        ids = [spec.encode_text(span.text) for span in batch]
        encoded += [
            padded_batch(ids[call.start : call.stop], torch.device(device)) for call in model_calls(list(map(len, ids)))
        ]
    context = precision(torch.device(device), spec.dtype(device))

    def run_all():
        with torch.inference_mode(), context:
            return sum(len(u) for inputs, lengths in encoded for u in model.generate(inputs, lengths))

    run_all()  # warm-up
    synchronize()
    start = time.perf_counter()
    units = run_all()
    synchronize()
    seconds = time.perf_counter() - start
    return {"model_alone_speech_tokens_per_s": round(units / seconds), "model_alone_seconds": round(seconds, 2)}


def causal_lm_runs(directory: str, batch_sizes: list[int], batch_count: int, device: str, dtype: str):
    spec = read_causal_lm(directory)
    spec = dataclasses.replace(spec, settings={**spec.settings, "dtype": dtype})
    handler = CausalLMHandler(spec, device)
    model = handler.load_model()  # on CPU with one thread, as in each Beam worker process
    parameters = sum(p.numel() for p in model.loaded()[0].parameters())

    def generated(batch, outputs) -> int:
        return sum(
            spec.unit_cap(span.text) + 1 if isinstance(out, Failed) else len(out) + 1
            for span, out in zip(batch, outputs, strict=True)
        )

    for size in batch_sizes:
        ordered = sorted(sample_spans(size * batch_count), key=lambda s: (len(s.text), s.key))
        batches = [tuple(ordered[i : i + size]) for i in range(0, len(ordered), size)]
        tokens, seconds, gpu = timed(lambda b: handler.convert(model, [s.text for s in b]), batches, generated, device)
        yield {
            "model": f"causal LM ({parameters / 1e6:.0f}M parameters, {spec.dtype(device)})".replace("torch.", ""),
            "device": device,
            "batch_spans": size,
            "batches": len(batches),
            "mode": "one-at-a-time" if size == 1 else "batched",
            "speech_tokens": tokens,
            "seconds": round(seconds, 2),
            "speech_tokens_per_s": round(tokens / seconds),
            **gpu,
        }


def causal_lm_static_run(directory: str, size: int, batch_count: int, device: str):
    """The largest batch again with transformers' static KV cache (compiled by transformers on CUDA): prompts padded
    to one length and one max_new_tokens for every batch, so that the compiled graph is made once, in the warm-up."""
    from transformers import GenerationConfig

    spec = read_causal_lm(directory)
    spec = dataclasses.replace(spec, settings={**spec.settings, "dtype": "bfloat16"})
    model, tokenizer = CausalLMHandler(spec, device).load_model().loaded()
    spans = sorted(sample_spans(size * (batch_count + 1)), key=lambda s: (len(s.text), s.key))
    prompts = [spec.settings["prompt"].replace("{text}", s.text) for s in spans]
    longest = max(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    new_tokens = max(spec.unit_cap(s.text) for s in spans) + 1
    config = GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        use_cache=True,
        cache_implementation="static",
        eos_token_id=spec.settings["end_token"],
        pad_token_id=tokenizer.pad_token_id,
    )
    batches = [prompts[i : i + size] for i in range(0, len(prompts), size)]

    def generate(batch):
        inputs = tokenizer(
            batch, return_tensors="pt", padding="max_length", max_length=longest, add_special_tokens=False
        ).to(model.device)
        with torch.inference_mode():
            return model.generate(**inputs, generation_config=config)

    start = time.perf_counter()
    generate(batches[0])  # warm-up: compiles
    compile_seconds = time.perf_counter() - start
    with GpuMonitor(device) as monitor:
        start = time.perf_counter()
        for batch in batches[1:]:
            generate(batch)
        seconds = time.perf_counter() - start
    tokens = new_tokens * size * (len(batches) - 1)
    return {
        "model": "causal LM (bfloat16, static KV cache, compiled)",
        "device": device,
        "batch_spans": size,
        "batches": len(batches) - 1,
        "mode": "batched",
        "speech_tokens": tokens,
        "seconds": round(seconds, 2),
        "speech_tokens_per_s": round(tokens / seconds),
        "warm_up_seconds": round(compile_seconds, 1),
        "new_tokens_per_row": new_tokens,
        **monitor.figures,
    }


def profile(name: str, convert, batch) -> dict:
    """One batch under torch's profiler: wall time, the GPU's kernel time, and the kernels that took most of it."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity

    convert(batch)  # warm-up
    with torch.profiler.profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        convert(batch)
        synchronize()
        wall = time.perf_counter() - start
    averages = prof.key_averages()
    events = [e for e in averages if e.device_type == DeviceType.CUDA] or [
        e for e in averages if getattr(e, "self_device_time_total", 0) > 0 and not e.key.startswith("aten::")
    ]
    gpu_us = sum(e.self_device_time_total for e in events)
    top = sorted(events, key=lambda e: -e.self_device_time_total)[:8]
    return {
        "profile": name,
        "wall_s": round(wall, 3),
        "gpu_kernel_s": round(gpu_us / 1e6, 3),
        "gpu_busy_share": round(gpu_us / 1e6 / wall, 3),
        "kernel_launches": sum(e.count for e in events),
        "top_kernels": [
            {"name": e.key[:90], "calls": e.count, "gpu_ms": round(e.self_device_time_total / 1e3, 1)} for e in top
        ],
    }


def profiles(args, device: str) -> list[dict]:
    spec = read_model(str(assets.TEXT_TO_TOKEN_MODEL))
    spec = dataclasses.replace(spec, config={**spec.config, "dtype": "bfloat16"})
    handler = TextToTokenHandler(spec, device)
    model = handler.load_model()
    batch = next(cut_batches(sample_spans(args.cuda_spans), max(args.cuda_budgets), handler.span_size))
    found = [
        profile(
            f"student bf16, a batch of {len(batch)} spans, budget {max(args.cuda_budgets)}",
            lambda b: handler.convert(model, [s.text for s in b]),
            batch,
        )
    ]
    if args.causal_lm:
        lm_spec = read_causal_lm(args.causal_lm)
        lm_spec = dataclasses.replace(
            lm_spec, settings={**lm_spec.settings, "dtype": "bfloat16", "max_units_per_character": 0.25}
        )  # a short batch to profile
        lm_handler = CausalLMHandler(lm_spec, device)
        lm = lm_handler.load_model()
        size = max(args.cuda_lm_batches)
        batch = tuple(sample_spans(size))
        found.append(
            profile(
                f"causal LM bf16, a batch of {size} spans, at most 0.25 tokens per character",
                lambda b: lm_handler.convert(lm, [s.text for s in b]),
                batch,
            )
        )
    return found


def print_run(run: dict) -> None:
    size = (
        f"budget {run['budget_chars'] or '-':>7} chars"
        if "budget_chars" in run
        else f"batch {run['batch_spans']:>5} spans"
    )
    gpu = ""
    if "peak_allocated_gib" in run:
        gpu = f"; peak {run['peak_allocated_gib']} GiB, GPU busy {run['gpu_util_mean_pct']}%"
    if "model_alone_speech_tokens_per_s" in run:
        gpu += f"; model alone {run['model_alone_speech_tokens_per_s']:,}/s, repeatable {run['repeatable']}"
    print(
        f"{run['device']:>4} {run['model']:<44} {size} {run['mode']:<13} {run['speech_tokens_per_s']:>10,} "
        f"speech tokens/s ({run['batches']} batches, {run['seconds']} s{gpu})",
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--devices",
        nargs="+",
        choices=["cpu", "cuda"],
        default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []),
    )
    parser.add_argument("--spans", type=int, default=2000)
    parser.add_argument("--budgets", type=int, nargs="+", default=[1024, 16384, 65536])
    parser.add_argument("--single-spans", type=int, default=2000, help="spans converted one at a time")
    parser.add_argument(
        "--models",
        nargs="*",
        choices=["student", "causal-lm"],
        default=["student", "causal-lm"],
        help="the models timed (the causal LM only with --causal-lm); none: only --cuda-profile and --cuda-lm-static",
    )
    parser.add_argument("--causal-lm", help="a causal LM directory (scripts/recipes/make_causal_lm.py)")
    parser.add_argument("--lm-batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--lm-batch-count", type=int, default=4, help="batches timed per batch size")
    parser.add_argument("--cuda-spans", type=int, default=100_000)
    parser.add_argument("--cuda-budgets", type=int, nargs="+", default=[16384, 65536, 262144, 1048576])
    parser.add_argument("--cuda-single-spans", type=int, default=500)
    parser.add_argument("--cuda-dtypes", nargs="+", choices=sorted(DTYPES), default=["float32", "bfloat16"])
    parser.add_argument("--cuda-lm-batches", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--cuda-lm-batch-count", type=int, default=2)
    parser.add_argument("--cuda-profile", action="store_true", help="profile one batch of each model")
    parser.add_argument(
        "--cuda-lm-static",
        action="store_true",
        help="also the causal LM's largest batch with a static, compiled KV cache",
    )
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(argv)
    if (
        min(
            args.spans,
            args.single_spans,
            args.lm_batch_count,
            args.cuda_spans,
            args.cuda_single_spans,
            args.cuda_lm_batch_count,
            *args.budgets,
            *args.lm_batches,
            *args.cuda_budgets,
            *args.cuda_lm_batches,
        )
        < 1
    ):
        parser.error("span counts, budgets, batch sizes and counts must be at least 1")
    if "cuda" in args.devices and not torch.cuda.is_available():
        parser.error("--devices cuda: torch sees no CUDA device")
    results: dict[str, Any] = {
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "runs": [],
        "profiles": [],
    }
    for device in args.devices:
        cuda = device == "cuda"
        spans = sample_spans(args.cuda_spans if cuda else args.spans)
        results[f"{device}_spans"] = len(spans)
        for dtype in (args.cuda_dtypes if cuda else ["float32"]) if "student" in args.models else []:
            for run in student_runs(
                spans,
                args.cuda_budgets if cuda else args.budgets,
                device,
                dtype,
                args.cuda_single_spans if cuda else args.single_spans,
            ):
                print_run(run)  # each printed as it ends: a long run's earlier figures are not lost
                results["runs"].append(run)
        for dtype in (
            (args.cuda_dtypes if cuda else ["float32"]) if args.causal_lm and "causal-lm" in args.models else []
        ):
            for run in causal_lm_runs(
                args.causal_lm,
                args.cuda_lm_batches if cuda else args.lm_batches,
                args.cuda_lm_batch_count if cuda else args.lm_batch_count,
                device,
                dtype,
            ):
                print_run(run)
                results["runs"].append(run)
        if cuda and args.cuda_profile:
            for found in profiles(args, device):
                print(json.dumps(found), flush=True)
                results["profiles"].append(found)
        if cuda and args.cuda_lm_static and args.causal_lm:
            run = causal_lm_static_run(args.causal_lm, max(args.cuda_lm_batches), args.cuda_lm_batch_count, device)
            print_run(run)
            results["runs"].append(run)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
