"""Speech tokens per second of the conversion stage, on CPU (and CUDA where present), batch budget sweep, one run.

Spans are sampled from the bundled sample corpus exactly as a build samples them (--speech-ratio 0.3,
--span-lambda 10); they are grouped by length as the pipeline does (transforms/speech/speech_conversion.py: LengthGroups),
cut into batches of a budget of input characters, and converted by the model handler the pipeline uses.
Usage: python scripts/bench_speech.py [--model DIR] [--spans 4000] [--budgets 1024 4096 16384 65536]
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import zstandard


from vocaloom import assets  # noqa: E402
from vocaloom.text_to_token.model_file import read_model  # noqa: E402
from vocaloom.transforms.inference_cache import cache_key  # noqa: E402
from vocaloom.transforms.speech.speech_conversion import length_group  # noqa: E402
from vocaloom.transforms.speech.synthetic_interleaving import segments  # noqa: E402
from vocaloom.transforms.speech.speech_handlers import Span, TextToTokenHandler, span_size  # noqa: E402


def sample_spans(limit: int) -> list[Span]:
    with open(assets.SAMPLE_CORPUS, "rb") as f:
        docs = [json.loads(line) for line in zstandard.ZstdDecompressor().stream_reader(f).read().splitlines()]
    spans = []
    for doc in docs:
        for i, s in enumerate(x for x in segments(doc["text"], 0.3, 10.0, 0, doc["id"]) if x.speech):
            text = doc["text"][s.start:s.end]
            spans.append(Span(doc["id"], b"", i, text, cache_key("bench", text)))
            if len(spans) == limit:
                return spans
    return spans


def batches(spans: list[Span], budget: int):
    """Length-grouped, shortest first, cut at the budget: the batches RunInference forms in a build."""
    ordered = sorted(spans, key=lambda s: (length_group(s)[0], span_size(s), s.key))
    batch, size = [], 0
    for span in ordered:
        if batch and size + span_size(span) > budget:
            yield batch
            batch, size = [], 0
        batch.append(span)
        size += span_size(span)
    if batch:
        yield batch


def measure(handler: TextToTokenHandler, spans: list[Span], budget: int) -> dict:
    model = handler.load_model()
    work = list(batches(spans, budget))
    handler.run_inference(work[0], model)  # warm-up
    start, units = time.perf_counter(), 0
    for batch in work:
        units += sum(len(r.inference) for r in handler.run_inference(batch, model))
    seconds = time.perf_counter() - start
    return {"budget_chars": budget, "batches": len(work), "speech_tokens": units, "seconds": round(seconds, 2),
            "speech_tokens_per_s": round(units / seconds)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(assets.TEXT_TO_TOKEN_MODEL))
    parser.add_argument("--spans", type=int, default=4000)
    parser.add_argument("--budgets", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    args = parser.parse_args(argv)
    spec = read_model(args.model)
    spans = sample_spans(args.spans)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = {"model": args.model, "spans": len(spans), "span_words": sum(len(s.text.split()) for s in spans),
               "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "runs": []}
    for device in devices:
        for budget in args.budgets:
            run = dict(measure(TextToTokenHandler(spec, device, budget), spans, budget), device=device)
            results["runs"].append(run)
            print(f"{device:>5} budget {budget:>6} chars: {run['speech_tokens_per_s']:>10,} speech tokens/s "
                  f"({run['batches']} batches, {run['seconds']} s)", flush=True)
    results["torch_threads"] = torch.get_num_threads()  # as the handler set it: one a worker process on CPU
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
