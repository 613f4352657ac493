"""The lock object of an --output in a bucket (pipelines/bucket_lock.py), against the GCS and S3 servers: created
only where none is, renewed while held, stale once its holder stops renewing, taken over by one build only."""

import time

import pytest

from vocaloom.pipelines.bucket_lock import STORES, BucketLock, Taken, is_stale, lock_text
from vocaloom.pipelines.lock import LockHeld
from vocaloom.schemas.paths import scheme

pytestmark = pytest.mark.engines


def test_a_lock_is_stale_once_its_holder_stops_renewing_it():
    now = 1_800_000_000.0
    assert not is_stale(lock_text(now - 10), now, lease=120)
    assert is_stale(lock_text(now - 121), now, lease=120)
    assert is_stale(b"", now, lease=120) and is_stale(b"pid=12 since=yesterday", now, lease=120)  # old markers


def test_a_held_lock_refuses_a_second_holder_until_it_is_closed(bucket):
    path = f"{bucket.url}/ds/.vocaloom-lock"
    first = BucketLock(path).acquire()
    with pytest.raises(LockHeld, match="pid="):
        BucketLock(path).acquire()
    first.close()
    BucketLock(path).acquire().close()


def test_a_holder_renews_its_lock_so_it_never_looks_stale(bucket):
    path = f"{bucket.url}/ds/.vocaloom-lock"
    held = BucketLock(path, lease=1.0).acquire()
    time.sleep(2.5)  # more than twice the lease: only renewals (every quarter lease) keep it fresh
    with pytest.raises(LockHeld):
        BucketLock(path, lease=1.0).acquire()
    held.close()


def test_of_two_builds_finding_a_stale_lock_only_one_takes_it(bucket):
    path = f"{bucket.url}/ds/.vocaloom-lock"
    kind = scheme(path)
    assert kind is not None  # the bucket's URL has a scheme
    store = STORES[kind](path)
    store.write(b"pid=1 renewed=0\n", 0)
    found = store.read()
    assert found is not None  # just written
    _, version = found
    store.write(lock_text(time.time()), version)  # the first build's takeover
    with pytest.raises(Taken):
        store.write(lock_text(time.time()), version)  # the second, from the version it read before
    with pytest.raises(Taken):
        store.write(b"x", 0)  # and nobody creates what exists
