"""Beam PTransforms and DoFns, one concern a module, in the order the build applies them.

Apache Beam is imported here, first and quietly: where its [gcp] extra is absent, Beam logs "apitools not found,
and bigquery client libraries are not available" at import through the root logger, which also gives the root
logger a stderr handler. vocaloom reads no BigQuery, and importing a library should print nothing and change no
logging configuration, so the line is filtered and the handler removed again. Modules outside this package that
use Beam import this package before Beam.
"""
import logging


def _import_beam_quietly() -> None:
    root = logging.getLogger()
    handlers = list(root.handlers)

    def not_bigquery_notice(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("apitools not found")
    root.addFilter(not_bigquery_notice)
    try:
        import apache_beam  # noqa: F401
    finally:
        root.removeFilter(not_bigquery_notice)
        root.handlers[:] = handlers


_import_beam_quietly()
