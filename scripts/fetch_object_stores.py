"""Builds the GCS server the object-store tests run on loopback, fake-gcs-server, from the Go module proxy into
`.object-stores/` (git-ignored): about 30 s on 2 cores. The S3 server, moto's, is a Python package of the test
extra.

    python3 scripts/fetch_object_stores.py [--dest .object-stores]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

FAKE_GCS_SERVER = "github.com/fsouza/fake-gcs-server"
FAKE_GCS_SERVER_VERSION = "v1.56.1"
DEFAULT_DEST = Path(__file__).resolve().parent.parent / ".object-stores"


def fetch_fake_gcs_server(dest: Path) -> Path:
    binary = dest / "fake-gcs-server"
    stamp = dest / "fake-gcs-server.version"
    if binary.exists() and stamp.exists() and stamp.read_text() == FAKE_GCS_SERVER_VERSION:
        print(f"fake-gcs-server: {binary} already there")
        return binary
    dest.mkdir(parents=True, exist_ok=True)
    print(f"fake-gcs-server: go install {FAKE_GCS_SERVER}@{FAKE_GCS_SERVER_VERSION}", flush=True)
    go = subprocess.run(["go", "install", f"{FAKE_GCS_SERVER}@{FAKE_GCS_SERVER_VERSION}"], capture_output=True,
                        text=True, env=dict(os.environ, GOBIN=str(dest), GOFLAGS="-mod=mod"))
    if go.returncode:
        print(go.stdout[-4000:] + go.stderr[-4000:], file=sys.stderr)
        raise RuntimeError(f"fake-gcs-server: go install failed (status {go.returncode})")
    stamp.write_text(FAKE_GCS_SERVER_VERSION)
    print(f"fake-gcs-server: {binary}")
    return binary


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
