"""Builds the GCS server the object-store tests run on loopback, fake-gcs-server, from the Go module proxy into
`.object-stores/` (git-ignored): about 30 s on 2 cores. The S3 server, moto's, is a Python package of the test
extra.

    python3 scripts/fetch_object_stores.py [--dest .object-stores]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_job_servers import go_install

FAKE_GCS_SERVER = "github.com/fsouza/fake-gcs-server"
FAKE_GCS_SERVER_VERSION = "v1.56.1"
DEFAULT_DEST = Path(__file__).resolve().parent.parent / ".object-stores"


def fetch_fake_gcs_server(dest: Path) -> Path:
    return go_install("fake-gcs-server", FAKE_GCS_SERVER, FAKE_GCS_SERVER_VERSION, dest / "fake-gcs-server")


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
