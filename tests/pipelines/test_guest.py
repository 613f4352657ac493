"""`run()` inside a user's own program: importing prints nothing, and the process is given back as it was found."""

import os
import subprocess
import sys

import pytest

from tests.pipelines.test_build_speech import write_corpus

GUEST = """
import gc, logging, os, sys, warnings
sys.modules["apitools"] = None  # as where Beam's [gcp] extra is absent: Beam then logs a notice at import
import torch
torch.set_num_threads(2)
gc.set_threshold(500, 7, 7)

def state():
    root = logging.getLogger()
    return (gc.get_threshold(), gc.get_freeze_count(), root.handlers[:], root.filters[:], root.level,
            dict(os.environ), warnings.filters[:], torch.get_num_threads())

import vocaloom.pipelines.build
before = state()
vocaloom.pipelines.build.run(sys.argv[1:])
after = state()
names = ("gc thresholds", "frozen objects", "root handlers", "root filters", "root level", "environment",
         "warning filters", "torch threads")
assert after == before, [(name, b, a) for name, b, a in zip(names, before, after) if a != b]
print("as found")
"""


@pytest.mark.integration  # it builds the sample
def test_run_gives_the_process_back_as_it_found_it(tmp_path):
    # A speech build with --context related: the DoFns that tune a process (GC, torch threads, HF_HUB_OFFLINE) run.
    corpus = write_corpus(tmp_path / "corpus")
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            GUEST,
            "--input",
            corpus,
            "--output",
            str(tmp_path / "ds"),
            "--speech-ratio",
            "0.3",
            "--context",
            "related",
            "--min-bucket",
            "5",
            "--max-bucket",
            "7",
            "--runner=FnApiRunner",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "as found"


def test_importing_vocaloom_prints_nothing():
    code = (
        "import sys; sys.modules['apitools'] = None\n"
        "import vocaloom, vocaloom.loader, vocaloom.pipelines.build, vocaloom.pipelines.verify\n"
        "import logging; assert logging.getLogger().handlers == []\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
