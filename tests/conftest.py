"""Shared fixtures. Tests never reach the network: Beam runs in-process (FnApiRunner) and hubs are offline."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402

from vocaloom import assets  # noqa: E402

RUNNER = ["--runner=FnApiRunner"]
# Builds that test the text path say so: the default (SPEC) turns 30% of words into speech.
TEXT_ONLY = ["--speech-ratio", "0"]


@pytest.fixture(scope="session")
def tokenizer_path() -> str:
    return str(assets.TOKENIZER_MODEL)


def pytest_configure(config):
    config.addinivalue_line("markers", "runners: Spark/Flink portable runner tests")
