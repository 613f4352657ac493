"""Builds the GCS server the object-store tests run on loopback, fake-gcs-server, from the Go module proxy into
`.object-stores/` (git-ignored): about 30 s on 2 cores. The S3 server, moto's, is a Python package of the test
extra. `serving` runs either on loopback, for the tests (tests/object_stores.py) and the benchmarks.

    python3 -m scripts.ci.fetch_object_stores [--dest .object-stores]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from scripts.ci.fetch_job_servers import go_install

FAKE_GCS_SERVER = "github.com/fsouza/fake-gcs-server"
FAKE_GCS_SERVER_VERSION = "v1.56.1"
DEFAULT_DEST = Path(__file__).resolve().parents[2] / ".object-stores"
FAKE_GCS = DEFAULT_DEST / "fake-gcs-server"


def fetch_fake_gcs_server(dest: Path) -> Path:
    return go_install("fake-gcs-server", FAKE_GCS_SERVER, FAKE_GCS_SERVER_VERSION, dest / "fake-gcs-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_gcs(port: int) -> list[str]:
    """The command of a fake-gcs-server on loopback `port`, holding its objects in memory."""
    host = f"127.0.0.1:{port}"
    flags = {
        "-scheme": "http",
        "-host": "127.0.0.1",
        "-port": str(port),
        "-backend": "memory",
        "-public-host": host,
        "-external-url": f"http://{host}",
        "-log-level": "error",
    }
    return [str(FAKE_GCS), *(part for flag in flags.items() for part in flag)]


def moto_s3(port: int) -> list[str]:
    """The command of moto's S3 server on loopback `port`, in memory."""
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


@contextlib.contextmanager
def serving(command: list[str], url: str, probe: str) -> Iterator[str]:
    """Runs a server until the block ends, once `url + probe` answers; gives its URL."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with status {process.returncode}")
            try:
                urllib.request.urlopen(url + probe, timeout=1).close()
                break
            except urllib.error.HTTPError:  # an answer, if not a 200
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not answer in 60 s") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = parser.parse_args(argv)
    try:
        fetch_fake_gcs_server(args.dest)
    except (RuntimeError, FileNotFoundError) as e:  # FileNotFoundError: no go on PATH
        print(f"fetch_object_stores: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
