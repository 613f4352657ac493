"""Ctrl-C (pipelines/interrupt.py): one line and exit 130, even when what the main thread was doing never unwinds.
A whole build interrupted is tests/test_hostile_files.py's."""

import signal
import subprocess
import sys

from tests.venvs import ENV

# A command whose main thread swallows every KeyboardInterrupt, as a runner caught between its threads may.
NEVER_UNWINDS = """
import time
from vocaloom.pipelines import interrupt
interrupt.GRACE_SECONDS = 1
with interrupt.remembering_sigint():
    ready = False
    while True:
        try:  # "ready" inside it: a Ctrl-C sent on reading it is swallowed too
            if not ready:
                ready = True
                print("ready", flush=True)
            time.sleep(60)
        except KeyboardInterrupt:
            pass
"""


def test_a_process_that_does_not_unwind_after_ctrl_c_ends_with_the_one_line_and_130():
    process = subprocess.Popen(
        [sys.executable, "-c", NEVER_UNWINDS], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and stderr.splitlines() == ["vocaloom: error: interrupted"]


def test_the_line_is_said_once_whoever_asks():
    code = (
        "from vocaloom.pipelines.interrupt import Interrupted, remembering_sigint\n"
        "with remembering_sigint():\n"
        "    assert Interrupted.report() == Interrupted.report() == 130\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode == 0 and done.stderr.splitlines() == ["vocaloom: error: interrupted"]
