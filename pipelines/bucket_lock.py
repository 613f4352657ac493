"""One build at a time for an --output in a bucket: a lock object that is created only where none exists (GCS
`ifGenerationMatch=0`, S3 `If-None-Match: *`), renewed by its build while it runs and deleted when it ends.

An object store has no process to die with, so a killed build's lock stays: a lock not renewed for LEASE_SECONDS is
stale, and the next build takes it over, on condition that it is still the version that build read, so that of two
builds finding it stale only one wins. The times are the holders' clocks; the lease is minutes, skew seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol

from vocaloom.pipelines.lock import LockHeld
from vocaloom.schemas.paths import scheme

LEASE_SECONDS = 120.0  # not renewed for this long: a killed build's lock
log = logging.getLogger(__name__)


class Taken(RuntimeError):
    """The object exists, or is no longer the version the caller read."""


class LockObject(Protocol):
    """One object in a store, written only on a condition: absent (version 0) or still at `version`."""

    def write(self, data: bytes, version) -> int | str: ...
    def read(self) -> tuple[bytes, int | str] | None: ...
    def delete(self, version) -> None: ...


class GcsObject:
    def __init__(self, path: str):
        from google.cloud import storage  # type: ignore[attr-defined]  # a namespace package mypy does not see

        bucket, _, name = path[len("gs://") :].partition("/")
        anonymous = bool(os.environ.get("STORAGE_EMULATOR_HOST"))  # an emulator: no credentials to find
        client = storage.Client.create_anonymous_client() if anonymous else storage.Client()
        self._blob = client.bucket(bucket).blob(name)

    def write(self, data: bytes, version) -> int:
        """Writes if the object is at `version` (0: absent); returns the new version."""
        from google.api_core.exceptions import PreconditionFailed

        try:
            self._blob.upload_from_string(data, if_generation_match=version)
        except PreconditionFailed:
            raise Taken from None
        return self._blob.generation

    def read(self) -> tuple[bytes, int] | None:
        from google.api_core.exceptions import NotFound

        try:
            data = self._blob.download_as_bytes()
        except NotFound:
            return None
        return data, self._blob.generation

    def delete(self, version) -> None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        with contextlib.suppress(NotFound, PreconditionFailed):
            self._blob.delete(if_generation_match=version)


class S3Object:
    def __init__(self, path: str):
        import boto3

        self._bucket, _, self._key = path[len("s3://") :].partition("/")
        self._client = boto3.client("s3")  # endpoint and credentials from boto3's environment

    def write(self, data: bytes, version) -> str:
        from botocore.exceptions import ClientError

        condition = {"IfNoneMatch": "*"} if version == 0 else {"IfMatch": version}
        try:
            return self._client.put_object(Bucket=self._bucket, Key=self._key, Body=data, **condition)["ETag"]
        except ClientError as e:
            if e.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise Taken from None
            raise

    def read(self) -> tuple[bytes, str] | None:
        try:
            found = self._client.get_object(Bucket=self._bucket, Key=self._key)
        except self._client.exceptions.NoSuchKey:
            return None
        return found["Body"].read(), found["ETag"]

    def delete(self, version) -> None:
        from botocore.exceptions import ClientError

        with contextlib.suppress(ClientError):  # gone, or no longer ours
            self._client.delete_object(Bucket=self._bucket, Key=self._key, IfMatch=version)


STORES: dict[str | None, Callable[[str], LockObject]] = {"gs": GcsObject, "s3": S3Object}


def has_locks(path: str) -> bool:
    return scheme(path) in STORES


def lock_text(renewed: float) -> bytes:
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"pid={os.getpid()} host={socket.gethostname()} since={since} renewed={renewed:.3f}\n".encode()


def is_stale(text: bytes, now: float, lease: float) -> bool:
    """A lock whose holder has not renewed it within `lease` seconds (or that names no renewal: an old marker)."""
    fields = dict(part.split("=", 1) for part in text.decode("utf-8", "replace").split() if "=" in part)
    try:
        return now - float(fields["renewed"]) > lease
    except (KeyError, ValueError):
        return True


class BucketLock:
    """The lock object at `path`, held from acquire() until close(), renewed meanwhile on a daemon thread."""

    def __init__(self, path: str, lease: float | None = None):
        self._object, self._lease = STORES[scheme(path)](path), lease or LEASE_SECONDS
        self._version: int | str | None = None
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name="vocaloom-lock", daemon=True)

    def acquire(self) -> BucketLock:
        """Raises LockHeld (what the holder wrote) when a live build holds the lock."""
        try:
            self._version = self._object.write(lock_text(time.time()), 0)
        except Taken:
            found = self._object.read()
            if found is not None and not is_stale(found[0], time.time(), self._lease):
                raise LockHeld(found[0].decode("utf-8", "replace").strip()) from None
            try:  # stale (or deleted meanwhile): take it over, unless another build did first
                self._version = self._object.write(lock_text(time.time()), found[1] if found else 0)
            except Taken:
                raise LockHeld("another build, which took over a stale lock just now") from None
        self._renewer.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self._lease / 4):
            try:
                self._version = self._object.write(lock_text(time.time()), self._version)
            except Taken:
                log.error("the lock on this build's --output was taken over by another build")
                return
            except Exception as e:
                log.warning("renewing the lock on --output failed: %s", e)

    def close(self) -> None:
        self._stop.set()
        if self._renewer.is_alive():
            self._renewer.join()
        if self._version is not None:
            self._object.delete(self._version)
            self._version = None
