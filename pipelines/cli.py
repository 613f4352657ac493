"""The `vocaloom` command: build, inspect, verify (SPEC "Command line"), and nightly (pipelines/nightly.py)."""
from __future__ import annotations

import logging
import sys
import warnings

from schemas.config import ConfigError
from schemas.manifest import ManifestError

USAGE = """usage: vocaloom build [--input PATTERN ...] --output DIR [options] [Beam pipeline options]
       vocaloom inspect DIR
       vocaloom verify DIR
       vocaloom nightly --config FILE --root DIR [--keep N] [Beam pipeline options]"""


def _not_beam_bigquery_notice(record: logging.LogRecord) -> bool:
    """Beam says at import, wherever its [gcp] extra is not installed, that BigQuery's client libraries are
    missing; vocaloom reads no BigQuery, so the line would only alarm whoever runs it."""
    return not record.getMessage().startswith("apitools not found")


logging.getLogger().addFilter(_not_beam_bigquery_notice)


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
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "build":
            from pipelines.build import run
            from pipelines.progress import build_progress
            from transforms.report import render_report
            _ignore_batch_size_fit_warnings()
            with build_progress(rest):
                manifest = run(rest)
            print(render_report(manifest))
            return 0
        if command == "nightly":
            from pipelines.nightly import main as nightly
            _ignore_batch_size_fit_warnings()
            return nightly(rest)
        if command in ("inspect", "verify") and len(rest) == 1:
            from pipelines.verify import read_manifest, verify
            if command == "inspect":
                from transforms.report import render_report
                print(render_report(read_manifest(rest[0])))
                return 0
            problems = verify(rest[0])
            for problem in problems:
                print(problem)
            print(f"{rest[0]}: {'FAILED, ' + str(len(problems)) + ' problems' if problems else 'OK'}")
            return 1 if problems else 0
    except (ConfigError, ManifestError) as e:
        return _fail(str(e), 1 if command == "verify" else 2)
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
