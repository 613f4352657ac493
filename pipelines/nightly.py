"""`vocaloom nightly --config FILE --root DIR`: a dated build, verified, then published by moving ROOT/LATEST.

    ROOT/builds/<UTC stamp>/     one build each run; one that failed or did not verify is renamed <stamp>.failed
    ROOT/LATEST                  symlink to builds/<stamp> of the newest verified build, replaced by rename
    ROOT/cache/                  the inference cache (speech units, embeddings) every nightly build reads and extends
    ROOT/nightly.lock            flock'd while a run is in progress

ROOT must be a local (POSIX) directory: the lock is flock(2) and LATEST a symlink. A failed or unverified build
never moves LATEST. Every log line starts with "vocaloom.nightly" and holds key=value pairs, for grep.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from vocaloom.pipelines.lock import LockHeldBy, hold_lock
from vocaloom.schemas.config import ArgumentParser, ConfigError, add_build_arguments
from vocaloom.schemas.manifest import MANIFEST

# Exit codes a scheduler can act on.
OK, CONFIG_ERROR, LOCK_HELD, BUILD_FAILED, VERIFY_FAILED = 0, 2, 3, 4, 5
BUILDS, LATEST, CACHE, LOCK = "builds", "LATEST", "cache", "nightly.lock"
FAILED_SUFFIX = ".failed"

log = logging.getLogger("vocaloom.nightly")


class LockHeld(RuntimeError):
    """Another nightly run holds ROOT/nightly.lock."""


def acquire_lock(root: Path):
    """An open file holding an exclusive flock on ROOT/nightly.lock (pipelines/lock.py)."""
    try:
        return hold_lock(str(root / LOCK))
    except LockHeldBy as e:
        raise LockHeld(f"{root / LOCK} is held by another run ({e})") from None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_build_dir(builds: Path, now: datetime) -> Path:
    """builds/<UTC stamp>; stamps sort in time order, and a second run within one second gets a suffix."""
    stamp = now.strftime("%Y-%m-%dT%H%M%SZ")
    candidate, n = builds / stamp, 0
    while candidate.exists() or candidate.with_name(candidate.name + FAILED_SUFFIX).exists():
        n += 1
        candidate = builds / f"{stamp}.{n}"
    return candidate


def publish(root: Path, build: Path) -> None:
    """Points ROOT/LATEST at `build` atomically: a new symlink under a temporary name renamed over the old one."""
    temp = root / (LATEST + ".tmp")
    temp.unlink(missing_ok=True)
    temp.symlink_to(build.relative_to(root))
    os.replace(temp, root / LATEST)


def latest_build(root: Path) -> Path | None:
    link = root / LATEST
    return link.resolve() if link.is_symlink() else None


def prune(root: Path, keep: int) -> list[Path]:
    """Removes every build but the `keep` newest complete ones and LATEST's; returns what it removed. Failed and
    partial builds stay until the next successful run, for the on-call engineer to look at."""
    builds = sorted((d for d in (root / BUILDS).iterdir() if d.is_dir()), key=lambda d: d.name, reverse=True)
    complete = [d for d in builds if not d.name.endswith(FAILED_SUFFIX) and (d / MANIFEST).exists()]
    kept = set(complete[:keep]) | {latest_build(root)}
    removed = [d for d in builds if d not in kept]
    for d in removed:
        shutil.rmtree(d)
    return removed


def mark_failed(build: Path) -> Path:
    if not build.exists():
        return build
    failed = build.with_name(build.name + FAILED_SUFFIX)
    build.rename(failed)
    return failed


def build_and_verify(config: str, build: Path, cache: Path, beam_args: list[str]) -> int:
    """Runs the build and `verify`; returns an exit code. Only an OK build may be published."""
    from vocaloom.pipelines.build import run
    from vocaloom.pipelines.verify import verify
    started = time.monotonic()
    try:
        manifest = run(["--config", config, "--output", str(build), "--cache", str(cache), *beam_args])
    except ConfigError as e:
        log.error("stage=build status=config_error error=%s", e)
        return CONFIG_ERROR
    except Exception as e:  # any pipeline failure: the run ends with a code, the traceback goes to the log
        log.exception("stage=build status=failed build=%s error=%s", mark_failed(build), e)
        return BUILD_FAILED
    counts, speech, ordering = manifest["counts"], manifest["speech"], manifest["ordering"]
    log.info("stage=build status=ok build=%s seconds=%.1f documents=%d tokens_written=%d cache_hit_rate=%s "
             "embedding_cache_hit_rate=%s", build, time.monotonic() - started, counts["documents_kept"],
             counts["tokens_written"], f"{speech['cache_hit_rate']:.4f}" if speech else "n/a",
             f"{ordering['embedding_cache_hit_rate']:.4f}" if ordering else "n/a")
    problems = verify(str(build))
    if problems:
        for problem in problems:
            log.error("stage=verify problem=%s", problem)
        log.error("stage=verify status=failed build=%s problems=%d", mark_failed(build), len(problems))
        return VERIFY_FAILED
    log.info("stage=verify status=ok build=%s", build)
    return OK


def nightly(config: str, root: Path, keep: int, beam_args: list[str]) -> int:
    if not Path(config).is_file():
        log.error("stage=start status=config_error error=config file not found: %s", config)
        return CONFIG_ERROR
    (root / BUILDS).mkdir(parents=True, exist_ok=True)
    try:
        lock = acquire_lock(root)
    except LockHeld as e:
        log.error("stage=lock status=held error=%s", e)
        return LOCK_HELD
    started = time.monotonic()
    with lock:
        build = new_build_dir(root / BUILDS, utc_now())
        log.info("stage=start root=%s build=%s config=%s previous=%s", root, build, config, latest_build(root))
        status = build_and_verify(config, build, root / CACHE, beam_args)
        if status != OK:
            log.error("stage=done status=failed exit=%d seconds=%.1f latest=%s (unchanged)", status,
                      time.monotonic() - started, latest_build(root))
            return status
        publish(root, build)
        log.info("stage=publish status=ok latest=%s", build)
        for removed in prune(root, keep):
            log.info("stage=prune removed=%s", removed)
        log.info("stage=done status=ok exit=0 seconds=%.1f latest=%s", time.monotonic() - started, build)
        return OK


def add_nightly_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="TOML file with the build options (its output and cache are replaced) [required]")
    parser.add_argument("--root", required=True, type=Path, metavar="DIR",
                        help="local directory holding builds/, LATEST, cache/ [required]")
    parser.add_argument("--keep", type=int, default=3, metavar="N", help="complete builds kept, LATEST included [3]")


def main(argv: list[str]) -> int:
    """Raises ConfigError on bad flags, before any work; otherwise returns the run's exit code."""
    from vocaloom.pipelines.build import check_beam_flags, long_flags
    parser, build_parser = ArgumentParser(prog="vocaloom nightly"), ArgumentParser(prog="vocaloom build")
    add_nightly_arguments(parser)
    add_build_arguments(build_parser)
    args, beam_args = parser.parse_known_args(argv)
    if args.keep < 1:
        raise ConfigError(f"--keep must be at least 1, got {args.keep}")
    if args.root.exists() and not args.root.is_dir():
        raise ConfigError(f"--root {args.root} is not a directory")
    _, rest = build_parser.parse_known_args(beam_args)  # build flags pass through to every build
    check_beam_flags(rest, long_flags(parser) + long_flags(build_parser))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s vocaloom.nightly %(levelname)s %(message)s",
                                           "%Y-%m-%dT%H:%M:%S%z"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        return nightly(args.config, args.root.resolve(), args.keep, beam_args)
    finally:
        log.removeHandler(handler)
