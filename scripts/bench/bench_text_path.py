"""The text path against its raw limit and against HF datatrove, on the same real corpus, in one run.

Four jobs per corpus scale, each in its own process tree, timed by wall clock with peak memory sampled across the
whole tree (Beam's worker processes included) and the kernel's high-water mark of the tree's largest process:
  raw        zstd decode + SentencePiece batch encode + pyarrow IPC write, no Beam (the limit)
  bare-beam  the same per file in a bare Beam pipeline (the reference point: read-tokenise-write only)
  vocaloom   `vocaloom build` text-only: read, validate, dedup, decomposition, packing, sharding, manifest; on
             Beam's in-process runner (the default), with --workers worker processes, and with --remainders drop
  datatrove  datatrove's JsonlReader + DocumentTokenizer with the same vocabulary (converted tokenizer.json)
Run it where `pip install -c constraints.txt -e '.[bench]'` installed the package, without the test extras: Beam imports
pandas and the Google Cloud clients at start-up when they are installed, which the README's first command does not
install.
Usage: python -m scripts.bench.bench_text_path [--scales 1 4] [--workers 2] [--data bench_data] [--repeats 3]
       [--memory-repeats 5]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from vocaloom import assets

ROOT = Path(__file__).resolve().parents[2]


def measure(cmd: list[str], env: dict | None = None) -> dict:
    """Runs cmd; returns wall seconds, the peak summed RSS of its process tree (sampled every 50 ms) and the exact
    high-water RSS of its largest process (the kernel's, from wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, done = 0, threading.Event()

    def sample():
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert proc.stdout is not None  # started with stdout=PIPE
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{output[-3000:]}")
    return {"seconds": seconds, "peak_rss_mb": peak / 2**20, "max_rss_mb": usage.ru_maxrss / 1024, "output": output}


def encode_file(sp, path: str, out_path: str, num_threads: int) -> int:
    """One corpus file to one Arrow file of token lists (each document's tokens, then eos); returns its tokens."""
    import numpy as np
    import orjson
    import pyarrow as pa
    import zstandard

    with open(path, "rb") as f:
        lines = zstandard.ZstdDecompressor().stream_reader(f).read().splitlines()
    texts = [orjson.loads(line)["text"] for line in lines]
    # numpy output: an int32 array per document, no Python int per token (the fastest SentencePiece path)
    encoded = sp.encode(texts, num_threads=num_threads, out_type="numpy")
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum(np.fromiter(map(len, encoded), np.int32, len(encoded)) + 1, out=offsets[1:])
    values = np.full(offsets[-1], sp.eos_id(), dtype=np.int32)  # each document's eos stays where its text ends
    is_text = np.ones(values.size, dtype=bool)
    is_text[offsets[1:] - 1] = False
    values[is_text] = np.concatenate(encoded)
    table = pa.table({"input_ids": pa.ListArray.from_arrays(offsets, values)})
    with pa.OSFile(out_path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return int(values.size)


def corpus_files(input_dir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(input_dir, "*.jsonl.zst")))


def raw_limit(input_dir: str, out_dir: str) -> None:
    """The least work that turns the corpus into token shards: no validation, dedup, buckets or manifest. One file
    per core at a time, each encoded by one SentencePiece thread: SentencePiece's own threads share out one batch
    less well (2.3 s instead of 1.9 s at scale 1 here)."""
    from concurrent.futures import ThreadPoolExecutor

    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(assets.TOKENIZER_MODEL))
    os.makedirs(out_dir, exist_ok=True)
    files = corpus_files(input_dir)
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        tokens = sum(
            pool.map(
                lambda i: encode_file(sp, files[i], os.path.join(out_dir, f"part-{i:05d}.arrow"), 1), range(len(files))
            )
        )
    print(json.dumps({"tokens": tokens}))


def bare_beam(input_dir: str, out_dir: str) -> None:
    """The reference point: a bare Beam pipeline (the in-process runner) doing only read-tokenise-write,
    one file per element, SentencePiece on every core."""
    import apache_beam as beam
    import sentencepiece as spm

    class EncodeFileFn(beam.DoFn):
        def setup(self):
            self._sp = spm.SentencePieceProcessor(model_file=str(assets.TOKENIZER_MODEL))

        def process(self, path: str):
            name = os.path.basename(path).replace(".jsonl.zst", ".arrow")
            yield encode_file(self._sp, path, os.path.join(out_dir, name), os.cpu_count() or 1)

    os.makedirs(out_dir, exist_ok=True)
    with beam.Pipeline(runner="FnApiRunner") as p:
        (
            p
            | "Files" >> beam.Create(corpus_files(input_dir))
            | "Encode" >> beam.ParDo(EncodeFileFn())
            | "Sum" >> beam.CombineGlobally(sum)
            | "Print" >> beam.Map(lambda n: print(json.dumps({"tokens": n})))
        )


def hf_tokenizer_json(path: str) -> None:
    """The bundled SentencePiece model as a HF tokenizers file (transformers' own converter, its own protobuf)."""
    from transformers.convert_slow_tokenizer import SpmConverter
    from transformers.utils import sentencepiece_model_pb2_new as model_pb2

    # ModelProto is made at import time by protobuf's builder (into the module's globals), unseen by mypy
    proto = model_pb2.ModelProto()  # type: ignore[attr-defined]
    proto.ParseFromString(assets.TOKENIZER_MODEL.read_bytes())
    tokenizer = SpmConverter.build_tokenizer_from_spm_proto(proto, [(p.piece, p.score) for p in proto.pieces])
    tokenizer.save(path)


def datatrove_job(input_dir: str, out_dir: str, tokenizer_json: str, workers: int) -> None:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.tokens import DocumentTokenizer

    files = len(corpus_files(input_dir))
    LocalPipelineExecutor(
        pipeline=[
            JsonlReader(input_dir, glob_pattern="*.jsonl.zst", compression="zstd"),
            DocumentTokenizer(
                os.path.join(out_dir, "tokens"),
                tokenizer_name_or_path=tokenizer_json,
                eos_token="</s>",
                shuffle_documents=False,
            ),
        ],
        tasks=files,
        workers=workers,
        logging_dir=os.path.join(out_dir, "logs"),
    ).run()
    token_bytes = sum(os.path.getsize(p) for p in glob.glob(os.path.join(out_dir, "tokens", "*.ds")))
    print(json.dumps({"tokens": token_bytes // 2}))  # uint16 tokens: the vocabulary is under 65,536


def last_json(output: str) -> dict:
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


def bench_scale(scale: int, data: Path, workers: int, repeats: int) -> dict:
    """Every job `repeats` times, the jobs interleaved (a slow spell of the machine hits them all alike); each
    job's median time, its spread, and its highest memory."""
    corpus = data / f"corpus-x{scale}"
    if not corpus.exists():
        from scripts.bench import prepare_bench_corpus

        prepare_bench_corpus.main(["--out", str(corpus), "--scale", str(scale)])
    text_mb = sum(json.loads(line)["text"].encode().__len__() for line in _corpus_lines(corpus)) / 1e6
    out = data / f"out-x{scale}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    tokenizer_json = str(out / "tokenizer.json")
    hf_tokenizer_json(tokenizer_json)
    me = [
        sys.executable,
        "-m",
        "scripts.bench.bench_text_path",
        "--input",
        str(corpus),
        "--tokenizer-json",
        tokenizer_json,
        "--workers",
        str(workers),
    ]

    def stage(name: str):
        def run(output: Path) -> dict:
            job = measure([*me, "--stage", name, "--out", str(output)])
            return dict(job, tokens=last_json(job["output"])["tokens"])

        return run

    def build(flags: list[str]):
        return lambda output: vocaloom_build(corpus, output, flags)

    jobs = {
        "raw": stage("raw"),
        "bare-beam": stage("bare-beam"),
        "vocaloom": build([]),  # the default: Beam's in-process runner
        f"vocaloom-{workers}p": build([f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]),
        "vocaloom-drop": build(["--remainders", "drop"]),  # as vocaloom built before it packed what rows leave over
        "datatrove": stage("datatrove"),
    }
    runs: dict[str, list[dict]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            runs[name].append(job(out / name))
            shutil.rmtree(out / name, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    result = {"scale": scale, "text_mb": round(text_mb, 1)}
    for name, job_runs in runs.items():
        seconds = sorted(run["seconds"] for run in job_runs)
        median = seconds[len(seconds) // 2]
        result[name] = {
            "seconds": round(median, 2),
            "spread": [round(seconds[0], 2), round(seconds[-1], 2)],
            "tokens": job_runs[0]["tokens"],
            "tokens_per_s": round(job_runs[0]["tokens"] / median),
            "peak_rss_mb": round(max(run["peak_rss_mb"] for run in job_runs)),
            "max_rss_mb": round(max(run["max_rss_mb"] for run in job_runs)),
        }
        if name != "raw":
            result[name]["over_raw"] = round(result[name]["tokens_per_s"] / result["raw"]["tokens_per_s"], 3)
        if name.startswith("vocaloom"):
            result[name]["duplicates_removed"] = job_runs[0]["duplicates"]
            result[name]["tokens_written"] = job_runs[0]["written"]
    for name in jobs:
        if name.startswith("vocaloom"):
            result[name]["over_datatrove"] = round(
                result[name]["tokens_per_s"] / result["datatrove"]["tokens_per_s"], 3
            )
    return result


def vocaloom_build(corpus: Path, output: Path, beam_flags: list[str]) -> dict:
    """`vocaloom build` text-only with these flags; its time, memory, text tokens, tokens written and duplicates
    removed."""
    run = measure(
        [
            sys.executable,
            "-m",
            "vocaloom",
            "build",
            "--input",
            str(corpus / "*.jsonl.zst"),
            "--output",
            str(output),
            "--speech-ratio",
            "0",
            "--runner=FnApiRunner",
            *beam_flags,
        ]
    )
    counts = json.loads((output / "manifest.json").read_text())["counts"]
    return dict(run, tokens=counts["text_tokens"], duplicates=counts["duplicates"], written=counts["tokens_written"])


def _corpus_lines(corpus: Path):
    import zstandard

    for path in corpus_files(str(corpus)):
        with open(path, "rb") as f:
            yield from zstandard.ZstdDecompressor().stream_reader(f).read().splitlines()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--data", type=Path, default=ROOT / "bench_data")
    parser.add_argument("--repeats", type=int, default=3, help="runs of every job per scale, interleaved")
    parser.add_argument(
        "--memory-repeats",
        type=int,
        default=0,
        help="then this many more in-process builds per scale, for the spread of their peak memory",
    )
    parser.add_argument("--stage", choices=["raw", "bare-beam", "datatrove"], help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer-json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.stage == "raw":
        return raw_limit(args.input, args.out)
    if args.stage == "bare-beam":
        return bare_beam(args.input, args.out)
    if args.stage == "datatrove":
        return datatrove_job(args.input, args.out, args.tokenizer_json, args.workers)
    results = [bench_scale(scale, args.data, args.workers, args.repeats) for scale in args.scales]
    print(
        f"{'scale':>5} {'text MB':>8} {'job':>12} {'seconds':>8} {'spread':>13} {'Mtok/s':>7} {'peak MB':>8} "
        f"{'max MB':>7} {'/raw':>6} {'/trove':>6}"
    )
    for r in results:
        for name in [key for key in r if isinstance(r[key], dict)]:
            j = r[name]
            spread = f"{j['spread'][0]}-{j['spread'][1]}"
            print(
                f"{r['scale']:>5} {r['text_mb']:>8} {name:>12} {j['seconds']:>8} {spread:>13} "
                f"{j['tokens_per_s'] / 1e6:>7.2f} {j['peak_rss_mb']:>8} {j['max_rss_mb']:>7} "
                f"{j.get('over_raw', ''):>6} {j.get('over_datatrove', ''):>6}"
            )
    if args.memory_repeats:
        print(memory_spread(args.scales, args.data, args.memory_repeats))
    print(json.dumps(results, indent=1))


def memory_spread(scales: list[int], data: Path, repeats: int) -> str:
    """The in-process build's high-water RSS over `repeats` more runs per scale, the scales interleaved: one run's
    peak moves by a few percent with thread timing, so flat-or-growing is judged on the spread."""
    peaks: dict[int, list[float]] = {scale: [] for scale in scales}
    for _ in range(repeats):
        for scale in scales:
            output = data / f"out-x{scale}" / "memory"
            shutil.rmtree(output, ignore_errors=True)
            peaks[scale].append(vocaloom_build(data / f"corpus-x{scale}", output, [])["max_rss_mb"])
            shutil.rmtree(output, ignore_errors=True)
    return "\n".join(
        f"scale {scale}: high-water RSS over {repeats} runs: min {min(p):.0f} MB, median "
        f"{sorted(p)[len(p) // 2]:.0f} MB, max {max(p):.0f} MB"
        for scale, p in peaks.items()
    )


if __name__ == "__main__":
    main()
