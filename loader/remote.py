"""A dataset in a bucket (gs://, s3://), read through pyarrow's own filesystems (no Beam, no other client): its
manifest, and its shards fetched into a local cache bounded in bytes, each checked against the manifest's size before
a byte is read and against its sha256 as it arrives, with retries on transient errors.

The cache is content-addressed (`<sha256>.arrow`), so ranks and DataLoader workers of one machine may share it: a
shard is fetched under a temporary name and renamed into place once its sha256 matches. Past `cache_bytes` the
least recently used shards are removed (a reader holds its own copy of each shard it reads: only the name goes).
Endpoints are found as the stores' own clients find them: STORAGE_EMULATOR_HOST for a GCS emulator (anonymous), and
for S3 AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) and the AWS credentials and region, which pyarrow reads itself.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from vocaloom.schemas.manifest import ManifestError, ShardEntry
from vocaloom.schemas.paths import LATEST, latest_target, scheme
from vocaloom.schemas.shard import SHA256_DIFFERS

CHUNK_BYTES = 8 << 20
DEFAULT_CACHE_BYTES = 32 << 30
RETRIES, FIRST_BACKOFF_SECONDS = 5, 0.5
STORE_RETRY_SECONDS = 5


class ShardFetchError(OSError):
    """A shard that could not be fetched from its bucket, after retries: one line naming it and the last error."""


class IntegrityProblem(ValueError):
    """A shard in the bucket that is not what the manifest says (the loader raises it as ShardIntegrityError)."""


def filesystem(url: str):
    """(pyarrow filesystem, path within it) for a gs:// or s3:// URL. The stores' clients give up after about
    STORE_RETRY_SECONDS (theirs would go on for minutes): RemoteDataset retries, with backoff, then says so."""
    import pyarrow.fs as pafs

    path = url.split("://", 1)[1].rstrip("/")
    if scheme(url) == "gs":
        options: dict[str, Any] = {"retry_time_limit": timedelta(seconds=STORE_RETRY_SECONDS)}
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if emulator:
            parsed = urlparse(emulator if "://" in emulator else f"http://{emulator}")
            options.update(anonymous=True, endpoint_override=parsed.netloc, scheme=parsed.scheme)
        return pafs.GcsFileSystem(**options), path
    if scheme(url) == "s3":  # region and credentials from the AWS environment, as pyarrow reads it
        options = {}
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:  # as boto3 reads it
            parsed = urlparse(endpoint)
            options.update(endpoint_override=parsed.netloc, scheme=parsed.scheme)
        return pafs.S3FileSystem(
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=2),
            connect_timeout=STORE_RETRY_SECONDS,
            request_timeout=4 * STORE_RETRY_SECONDS,
            **options,
        ), path
    raise ValueError(f"{url}: the reader reads local paths, gs:// and s3://")


def file_sha256(path: Path) -> str | None:
    """The sha256 of a regular file, read without following a link; None for anything else."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return hashlib.file_digest(f, "sha256").hexdigest()


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vocaloom" / "shards"


class RemoteDataset:
    """The dataset at `url`; `local(entry)` is the path of a checked local copy of one of its shards."""

    def __init__(
        self,
        url: str,
        cache_dir: str | os.PathLike | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        retries: int = RETRIES,
        backoff: float = FIRST_BACKOFF_SECONDS,
    ):
        self.url = url.rstrip("/")
        self._fs, self._root = filesystem(self.url)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._cache_bytes, self._retries, self._backoff = cache_bytes, retries, backoff
        if self.url.rsplit("/", 1)[-1] == LATEST:  # a nightly root's pointer: resolved once, here
            try:
                target = latest_target(self.read(self.url, 4096))
            except FileNotFoundError:
                raise ManifestError(f"{self.url}: no such object (no nightly build published yet?)") from None
            except ValueError as e:
                raise ManifestError(f"{self.url}: {e}") from None
            self.url = f"{self.url.rsplit('/', 1)[0]}/{target}"
            self._root = f"{self._root.rsplit('/', 1)[0]}/{target}"
        self._prefetching: dict[str, Future] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._checked: set[str] = set()  # sha256s of cached copies this process fetched or hashed

    def read(self, path: str, limit: int) -> bytes:
        """At most `limit` bytes of the file at `path` (an absolute URL under the dataset, as the manifest reader
        asks for it, or the dataset's URL itself)."""
        relative = path[len(self.url) :].lstrip("/")
        return self._retrying(relative, lambda: self._read_small(relative, limit))

    def _read_small(self, relative: str, limit: int) -> bytes:
        import pyarrow as pa

        try:
            with self._fs.open_input_stream(f"{self._root}/{relative}".rstrip("/")) as f:
                return f.read(limit)
        except pa.ArrowInvalid as e:  # pyarrow's answer for a missing object on some stores
            raise FileNotFoundError(str(e)) from None

    def local(self, entry: ShardEntry) -> Path:
        """The local copy of the shard `entry` (a manifest shard entry), fetched and checked if not cached."""
        pending = self._prefetching.pop(entry["path"], None)
        if pending is not None:
            pending.result()  # a failed prefetch raises its error here
        return self._cached(entry)

    def _cached(self, entry: ShardEntry) -> Path:
        """local() without the prefetch bookkeeping (which belongs to the caller's thread)."""
        target = self.cache_dir / f"{entry['sha256']}.arrow"
        with self._lock:  # a prefetch thread may be evicting
            try:
                hit = target.stat().st_size == entry["bytes"]
                os.utime(target)  # recently used: evicted last
            except FileNotFoundError:
                hit = False
        # A copy this process did not fetch is hashed before it is trusted (once): the cache folder is not ours alone.
        if hit and (entry["sha256"] in self._checked or file_sha256(target) == entry["sha256"]):
            self._checked.add(entry["sha256"])
            return target
        target.unlink(missing_ok=True)
        self._retrying(entry["path"], lambda: self._fetch(entry, target))
        self._checked.add(entry["sha256"])
        with self._lock:
            self._evict(keep=target)
        return target

    def prefetch(self, entries: list[ShardEntry]) -> None:
        """Starts fetching these shards in the background (two at a time)."""
        for entry in entries:
            if entry["path"] in self._prefetching or (self.cache_dir / f"{entry['sha256']}.arrow").exists():
                continue
            if self._pool is None:
                self._pool = ThreadPoolExecutor(2, thread_name_prefix="vocaloom-prefetch")
            self._prefetching[entry["path"]] = self._pool.submit(self._cached, entry.copy())

    def _fetch(self, entry: ShardEntry, target: Path) -> None:
        source = f"{self._root}/{entry['path']}"
        info = self._fs.get_file_info(source)
        if info.size is None:
            raise FileNotFoundError(f"{self.url}/{entry['path']}: missing")
        if info.size != entry["bytes"]:
            raise IntegrityProblem(f"{info.size} bytes, manifest says {entry['bytes']}")
        temp = self.cache_dir / f".{entry['sha256']}.{uuid.uuid4().hex}.tmp"
        digest, size = hashlib.sha256(), 0
        try:
            with self._fs.open_input_stream(source) as f, open(temp, "xb") as out:  # a new file, never a link
                while size <= entry["bytes"]:
                    chunk = f.read(min(CHUNK_BYTES, entry["bytes"] + 1 - size))
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            if size < entry["bytes"]:  # the transfer ended early (a dropped connection): worth another attempt
                raise ConnectionError(f"the transfer ended after {size} of {entry['bytes']} bytes")
            if size > entry["bytes"]:
                raise IntegrityProblem(f"more than the manifest's {entry['bytes']} bytes")
            if digest.hexdigest() != entry["sha256"]:
                raise IntegrityProblem(SHA256_DIFFERS)
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)

    def _retrying(self, name: str, attempt):
        """attempt(), again after a growing pause on a transient error (an I/O error that is not a missing file)."""
        for tries in range(self._retries + 1):
            try:
                return attempt()
            except (FileNotFoundError, IntegrityProblem):
                raise
            except OSError as e:
                if tries == self._retries:
                    first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    raise ShardFetchError(f"{self.url}/{name}: {first_line} (after {tries + 1} attempts)") from None
                time.sleep(self._backoff * 2**tries)

    def _evict(self, keep: Path) -> None:
        """Removes the least recently used shards until the cache holds at most cache_bytes (`keep` stays)."""
        files = []
        for file in self.cache_dir.glob("*.arrow"):
            try:
                info = file.stat()
            except FileNotFoundError:  # another process's eviction
                continue
            files.append((info.st_mtime, info.st_size, file))
        total = sum(size for _, size, _ in files)
        for _, size, file in sorted(files, key=lambda item: item[0]):
            if total <= self._cache_bytes:
                break
            if file != keep:
                file.unlink(missing_ok=True)
                total -= size

    def __getstate__(self):  # threads do not cross processes: each DataLoader worker fetches its own
        return {key: value for key, value in self.__dict__.items() if key not in ("_pool", "_prefetching", "_lock")}

    def __setstate__(self, state):
        self.__dict__.update(state, _pool=None, _prefetching={}, _lock=threading.Lock())


def scratch_dataset(url: str) -> tuple[RemoteDataset, tempfile.TemporaryDirectory]:
    """A RemoteDataset caching into a new temporary folder that holds one shard at a time (for verify)."""
    folder = tempfile.TemporaryDirectory(prefix="vocaloom-verify-")
    return RemoteDataset(url, folder.name, cache_bytes=0), folder
