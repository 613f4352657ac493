"""Every path a build, verify or inspect will touch must have its filesystem installed: checked before any work, so
that a missing extra is one line naming it, not a traceback from a worker."""

from __future__ import annotations

import vocaloom.transforms  # noqa: F401  (first: it imports Beam quietly)

# isort: split
from apache_beam.io.filesystems import FileSystems

from vocaloom.schemas.config import ConfigError
from vocaloom.schemas.paths import is_local, missing_filesystem


def use_default_options() -> None:
    """Beam's filesystems with default pipeline options, for commands that run no pipeline (verify, inspect):
    S3's needs options to make its client (endpoint and credentials come from the environment, as for boto3)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    FileSystems.set_options(PipelineOptions([]))


def require_filesystems(*paths: str | None) -> None:
    """Raises ConfigError for the first path whose scheme no installed filesystem serves."""
    for path in paths:
        if path is None or is_local(path):
            continue
        try:
            FileSystems.get_filesystem(path)
        except Exception:
            raise ConfigError(missing_filesystem(path)) from None
