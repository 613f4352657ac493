"""What a test needs beyond the Python packages: fetched engines (job servers, Prism, fake-gcs-server), the
wheelhouse of the install tests, root. Missing, the test is skipped with the command that fetches it; with
`--require-prerequisites` (CI's setting, in the README's test command) it fails instead, so that a CI machine
missing a fetch cannot pass by running less."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from tests.venvs import WHEELHOUSE

MISSING = "prerequisite missing: "


def missing(what: str) -> NoReturn:
    """Skips the test for want of `what` ("no Prism at PATH: run ..."); conftest fails it under CI's flag."""
    pytest.skip(MISSING + what)


needs_wheelhouse = pytest.mark.skipif(
    not WHEELHOUSE.is_dir(), reason=f"{MISSING}no {WHEELHOUSE}: run python3 -m scripts.ci.fetch_wheelhouse"
)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason=f"{MISSING}not root: mounts need root (as in CI)")
