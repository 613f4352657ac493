"""Beam PTransforms and DoFns, one concern a module, in the order the build applies them.

Apache Beam is imported here, first and quietly: where its [gcp] extra is absent, Beam logs "apitools not found,
and bigquery client libraries are not available" at import through the root logger, which also gives the root
logger a stderr handler. vocaloom reads no BigQuery, and importing a library should print nothing and change no
logging configuration, so the line is filtered and the handler removed again. Modules outside this package that
use Beam import this package before Beam.

Against a GCS emulator (`STORAGE_EMULATOR_HOST` set, as Google's own client reads it) no credentials are needed, and
Beam would spend 30 s looking for some in every process (four retries with backoff) before it connects anonymously:
there it connects anonymously at once.

Beam's S3 filesystem makes a new boto3 session for every call (open, exists, rename, ...), and so reads botocore's
service models again each time: about 0.2 s a call, more than the request itself. Its sessions are made once per
thread here (boto3's sessions are not thread-safe; its clients are).
"""

import logging
import os
import threading
from types import SimpleNamespace


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


def anonymous_against_a_gcs_emulator() -> None:
    """Called on import; again by a process that sets STORAGE_EMULATOR_HOST later (the tests)."""
    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        return
    try:
        from apache_beam.internal.gcp import auth
    except ImportError:  # no [gcp] extra: no GCS either
        return
    with auth._Credentials._credentials_lock:  # Beam's process-wide answer to "which credentials": none
        auth._Credentials._credentials, auth._Credentials._credentials_init = None, True


def one_s3_session_a_thread() -> None:
    try:
        import boto3
        from apache_beam.io.aws.clients.s3 import boto3_client
    except ImportError:  # no [aws] extra: no S3 either
        return
    local = threading.local()

    def session() -> boto3.session.Session:
        if not hasattr(local, "session"):
            local.session = boto3.session.Session()
        return local.session

    # Beam's client module reaches boto3 only through `boto3.session.Session()`.
    boto3_client.boto3 = SimpleNamespace(session=SimpleNamespace(Session=session))


_import_beam_quietly()
anonymous_against_a_gcs_emulator()
one_s3_session_a_thread()
