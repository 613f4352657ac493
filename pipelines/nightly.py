"""`vocaloom nightly --config FILE --root ROOT`: a dated build, verified, then published by moving ROOT/LATEST.

ROOT is a local directory or a bucket (gs://, s3://); its layout and what each run may do to it are in
pipelines/nightly_root.py. A failed or unverified build never moves LATEST. Every log line starts with
"vocaloom.nightly" and holds key=value pairs, for grep.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import UTC, datetime

from vocaloom.pipelines.interrupt import reraise_if_interrupted
from vocaloom.schemas.config import ArgumentParser, ConfigError, add_build_arguments, read_toml
from vocaloom.schemas.local_files import FileRefused
from vocaloom.schemas.paths import is_local, plain

# Build flags nightly sets itself: given again, they would send the build outside ROOT.
OWN_BUILD_FLAGS = {
    "output": "--output (builds go to ROOT/builds/<stamp>)",
    "cache": "--cache (the cache is ROOT/cache)",
}
# Exit codes a scheduler can act on.
OK, CONFIG_ERROR, LOCK_HELD, BUILD_FAILED, VERIFY_FAILED = 0, 2, 3, 4, 5

log = logging.getLogger("vocaloom.nightly")


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_and_verify(config: str, root, build: str, beam_args: list[str]) -> int:
    """Runs the build and `verify`; returns an exit code. Only an OK build may be published."""
    from vocaloom.pipelines.build import run
    from vocaloom.pipelines.verify import verify

    started = time.monotonic()
    try:
        manifest = run(["--config", config, "--output", build, "--cache", root.cache, *beam_args])
    except ConfigError as e:
        log.error("stage=build status=config_error error=%s", e)
        return CONFIG_ERROR
    except Exception as e:  # any pipeline failure: the run ends with a code, the traceback goes to the log
        reraise_if_interrupted()
        log.exception("stage=build status=failed build=%s error=%s", root.mark_failed(build), e)
        return BUILD_FAILED
    counts, speech, ordering = manifest["counts"], manifest["speech"], manifest["ordering"]
    log.info(
        "stage=build status=ok build=%s seconds=%.1f documents=%d tokens_written=%d cache_hit_rate=%s "
        "embedding_cache_hit_rate=%s",
        build,
        time.monotonic() - started,
        counts["documents_kept"],
        counts["tokens_written"],
        f"{speech['cache_hit_rate']:.4f}" if speech else "n/a",
        f"{ordering['embedding_cache_hit_rate']:.4f}" if ordering else "n/a",
    )
    problems = verify(build)
    if problems:
        for problem in problems:
            log.error("stage=verify problem=%s", problem)
        log.error("stage=verify status=failed build=%s problems=%d", root.mark_failed(build), len(problems))
        return VERIFY_FAILED
    log.info("stage=verify status=ok build=%s", build)
    return OK


def nightly(config: str, root_path: str, keep: int, beam_args: list[str]) -> int:
    from vocaloom.pipelines.lock import LockHeld
    from vocaloom.pipelines.nightly_root import root_at

    try:
        read_toml(config)  # before the lock: a config that cannot be read must not hold it
    except ConfigError as e:
        log.error("stage=start status=config_error error=%s", e)
        return CONFIG_ERROR
    root = root_at(root_path)
    try:
        lock = root.lock()
    except LockHeld as e:
        log.error("stage=lock status=held error=%s", e)
        return LOCK_HELD
    except FileRefused as e:  # a link or a special file where the lock belongs: never written through
        log.error("stage=lock status=config_error error=%s", e)
        return CONFIG_ERROR
    started = time.monotonic()
    with lock:
        build = root.new_build(utc_now())
        log.info("stage=start root=%s build=%s config=%s previous=%s", root, build, config, root.latest())
        status = build_and_verify(config, root, build, beam_args)
        if status != OK:
            log.error(
                "stage=done status=failed exit=%d seconds=%.1f latest=%s (unchanged)",
                status,
                time.monotonic() - started,
                root.latest(),
            )
            return status
        root.publish(build)
        log.info("stage=publish status=ok latest=%s", build)
        for removed in root.prune(keep):
            log.info("stage=prune removed=%s", removed)
        log.info("stage=done status=ok exit=0 seconds=%.1f latest=%s", time.monotonic() - started, build)
        return OK


def add_nightly_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help="TOML file with the build options (its output and cache are replaced) [required]",
    )
    parser.add_argument(
        "--root",
        required=True,
        metavar="ROOT",
        help="local directory or bucket (gs://, s3://) holding builds/, LATEST, cache/ [required]",
    )
    parser.add_argument("--keep", type=int, default=3, metavar="N", help="complete builds kept, LATEST included [3]")


def main(argv: list[str]) -> int:
    """Raises ConfigError on bad flags, before any work; otherwise returns the run's exit code."""
    from vocaloom.pipelines.beam_options import check_beam_flags

    parser, build_parser = ArgumentParser(prog="vocaloom nightly"), ArgumentParser(prog="vocaloom build")
    add_nightly_arguments(parser)
    add_build_arguments(build_parser)
    args, beam_args = parser.parse_known_args(argv)
    if args.keep < 1:
        raise ConfigError(f"--keep must be at least 1, got {args.keep}")
    if is_local(args.root) and os.path.exists(plain(args.root)) and not os.path.isdir(plain(args.root)):
        raise ConfigError(f"--root {args.root} is not a directory")
    given, rest = build_parser.parse_known_args(beam_args)  # build flags pass through to every build
    own = sorted(set(vars(given)) & set(OWN_BUILD_FLAGS))
    if own:
        raise ConfigError(f"vocaloom nightly sets {OWN_BUILD_FLAGS[own[0]]} itself: leave it out")
    check_beam_flags(rest, parser.long_flags + build_parser.long_flags)
    if not is_local(args.root):  # the root's own objects (lock, listing, LATEST) go through Beam's filesystems
        from apache_beam.io.filesystems import FileSystems

        from vocaloom.pipelines.beam_options import pipeline_options
        from vocaloom.pipelines.filesystems import require_filesystems

        require_filesystems(args.root)
        FileSystems.set_options(pipeline_options(rest))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s vocaloom.nightly %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    )
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        return nightly(args.config, args.root, args.keep, beam_args)
    finally:
        log.removeHandler(handler)
