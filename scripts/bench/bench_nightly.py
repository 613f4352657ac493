"""`vocaloom nightly` twice in a row on the bundled sample, per config, one run: the second run's time and cache hit
rates against the first's (an unchanged corpus should rebuild in a fraction of a cold build).

Each config gets a fresh root; runs are the real command (`vocaloom nightly`, a subprocess), timed by wall clock;
build seconds and hit rates come from the nightly log lines. Prints a Markdown table.
Usage: python -m scripts.bench.bench_nightly [--root DIR] [Beam flags, e.g. --direct_num_workers=2 ...]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {
    "text only": "speech-ratio = 0\n",
    "speech 0.3 (bundled student) + related order": 'speech-ratio = 0.3\ncontext = "related"\n',
}
BUILD_LINE = re.compile(
    r"stage=build status=ok .*seconds=([\d.]+) .*cache_hit_rate=(\S+) embedding_cache_hit_rate=(\S+)"
)


def nightly(config: Path, root: Path, beam_args: list[str]) -> dict:
    started = time.perf_counter()
    done = subprocess.run(
        ["vocaloom", "nightly", "--config", str(config), "--root", str(root), *beam_args],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"vocaloom nightly exited {done.returncode}:\n{done.stderr[-3000:]}")
    found = BUILD_LINE.search(done.stderr)
    if found is None:
        sys.exit(f"vocaloom nightly printed no build summary:\n{done.stderr[-3000:]}")
    build, speech, embeddings = found.groups()
    return {"wall": wall, "build": float(build), "speech": speech, "embeddings": embeddings}


def rate(value: str) -> str:
    return "n/a" if value == "n/a" else f"{float(value):.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="where the roots go [a temporary folder, removed after]")
    args, beam_args = parser.parse_known_args()
    base = args.root or Path(tempfile.mkdtemp(prefix="bench-nightly-"))
    print(f"beam flags: {' '.join(beam_args) or '(none: FnApiRunner, one worker)'}\n")
    print("| config | 1st run | 2nd run | 2nd / 1st | cache hit rates (2nd): speech, embeddings |")
    print("|---|---:|---:|---:|---|")
    for i, (name, body) in enumerate(CONFIGS.items()):
        root = base / f"root-{i}"
        root.mkdir(parents=True)
        config = root.parent / f"config-{i}.toml"
        config.write_text("min-bucket = 8\nmax-bucket = 11\n" + body)
        first, second = nightly(config, root, beam_args), nightly(config, root, beam_args)
        print(
            f"| {name} | {first['wall']:.1f} s (build {first['build']:.1f} s) | {second['wall']:.1f} s "
            f"(build {second['build']:.1f} s) | {second['wall'] / first['wall']:.2f} | "
            f"{rate(second['speech'])}, {rate(second['embeddings'])} |",
            flush=True,
        )
    if not args.root:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
