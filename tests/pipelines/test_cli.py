import os
import subprocess
import sys

import pytest

from vocaloom import __version__

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "vocaloom"]
ENV = dict(os.environ, HF_HUB_OFFLINE="1")


def vocaloom(*args, timeout: int = 300):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=ENV, timeout=timeout)


def one_error_line(result) -> str:
    """The single line a failed command prints, with nothing else on stderr."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vocaloom: error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["build", "--output", "o", "--speech-ratio", "1.5"], "--speech-ratio must be in [0, 1)"),
        (["build", "--output", "o", "--input", "/missing/x.jsonl"], "matches no file"),
        (["build", "--output", "o", "--min-bucket", "x"], "argument --min-bucket: invalid int value: 'x'"),
        (["build", "--output", "o", "--context", "near"], "invalid choice: 'near' (choose from 'document', 'related')"),
        # Beam's underscore habit on our flags: Beam alone would log "Unparseable argument" and build with 0.3.
        (
            ["build", "--output", "o", "--speech_ratio", "0"],
            "unknown flag --speech_ratio (did you mean --speech-ratio?)",
        ),
        (["build", "--output", "o", "--runer=DirectRunner"], "unknown flag --runer (did you mean --runner?)"),
        (["build", "--output", "o", "--over"], "unknown flag --over: it is neither vocaloom's nor Beam's"),
        (["build", "--output", "o", "stray"], "unexpected argument 'stray'"),
        (["build", "--output", "o", "--direct_num_workers=x"], "Beam option: argument --direct_num_workers"),
        (
            ["build", "--output", "o", "--runner=Nope"],
            "unknown --runner 'Nope': FnApiRunner, DirectRunner, PrismRunner",
        ),
        (
            ["build", "--output", "o", "--runner=DataflowRunner", "--region=europe-west4"],
            "--runner DataflowRunner needs --project, --temp_location",
        ),
        (
            ["build", "--output", "o", "--runner=FlinkRunner", "--flink_job_server_jar=/nowhere/flink.jar"],
            "--flink_job_server_jar /nowhere/flink.jar: no such file",
        ),
        (
            ["build", "--output", "o", "--runner=SparkRunner", "--environment_type=EXTERNAL"],
            "--environment_type EXTERNAL needs --environment_config",
        ),
        (
            ["build", "--output", "o", "--runner=FlinkRunner", "--job_endpoint=localhost:1"],
            "--job_endpoint localhost:1: no job server answers there",
        ),
        (["build", "--output", "o", "--runner=PortableRunner"], "--runner PortableRunner needs --job_endpoint"),
        (["nightly", "--config", "c.toml", "--root", "r", "--kep", "2"], "unknown flag --kep (did you mean --keep?)"),
        (["nightly", "--config", "c.toml"], "the following arguments are required: --root"),
        (["nightly", "--config", "c.toml", "--root", __file__], f"--root {__file__} is not a directory"),
        (["build", "--config", "/"], "config file / is a directory, not a regular file"),
        (["verify"], "the following arguments are required: DIR"),
        (["verify", "a", "b"], "unrecognized arguments: b"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_mistakes_exit_2_with_one_line_before_any_work(args, message, tmp_path):
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path)
    assert result.returncode == 2
    assert message in one_error_line(result)
    assert list(tmp_path.iterdir()) == []  # nothing was made


def test_version_and_help():
    assert vocaloom("--version").stdout == f"vocaloom {__version__}\n"
    top = vocaloom("--help")
    assert top.returncode == 0
    for command in ("build", "inspect", "verify", "nightly"):
        assert any(line.split()[:1] == [command] and len(line.split()) > 3 for line in top.stdout.splitlines())
    build = vocaloom("build", "--help").stdout
    assert "{document,related}" in build and "{text-to-token,tts}" in build and "{none,zstd}" in build
    assert "[0.3]" in build and "[1048576]" in build  # defaults
    assert "Every other flag is Apache Beam's" in build
    verify = vocaloom("verify", "--help")
    assert verify.returncode == 0 and "sha256" in verify.stdout and "DIR" in verify.stdout
    assert "--keep N" in vocaloom("nightly", "--help").stdout
    assert vocaloom().returncode == 2


def test_the_commands_parser_needs_neither_beam_nor_torch():
    """What `--help` and `--version` run, as a reader-only install has it (tests/test_install.py runs it there)."""
    code = (
        "import sys; from vocaloom.pipelines.cli import command_parser; command_parser(); "
        "print(sorted({'apache_beam', 'torch'} & set(sys.modules)))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_a_text_build_imports_no_model_library(tmp_path):
    """torch and Beam's RunInference (which imports torch) cost a text build 0.6 GB and 2 s in every process."""
    code = (
        "import sys; from vocaloom.pipelines.build import run; "
        f"run(['--output', {str(tmp_path / 'ds')!r}, '--speech-ratio', '0', '--runner=FnApiRunner']); "
        "print(sorted({'apache_beam.ml.inference.base', 'torch', 'transformers', 'faiss'} & set(sys.modules)))"
    )
    built = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    assert built.stdout.splitlines()[-1] == "[]"


def test_build_inspect_verify(tmp_path):
    out = str(tmp_path / "ds")
    # The README's first command: the whole sample with speech in two worker processes, minutes on a 2-core machine.
    built = vocaloom(
        "build",
        "--output",
        out,
        "--runner=FnApiRunner",
        "--direct_num_workers=2",
        "--direct_running_mode=multi_processing",
        timeout=1500,
    )
    assert built.returncode == 0, built.stderr
    assert "| records read |" in built.stdout
    inspected = vocaloom("inspect", out)
    assert inspected.returncode == 0 and "## Buckets" in inspected.stdout
    assert vocaloom("verify", out).returncode == 0
    os.remove(os.path.join(out, "manifest.json"))
    missing = vocaloom("verify", out)
    assert missing.returncode == 1 and "no manifest.json" in one_error_line(missing)


def test_beams_batch_size_fit_warnings_are_ignored():
    import warnings

    from apache_beam.transforms.util import _BatchSizeEstimator

    from vocaloom.pipelines.cli import _ignore_batch_size_fit_warnings

    def degenerate_fit():  # one batch of another size among ten alike, as a build's first batches are
        _BatchSizeEstimator.linear_regression_numpy([1] * 10 + [2], [1, 1.1, 0.9, 1, 1.2, 0.8, 1, 1.05, 0.95, 1, 2])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        degenerate_fit()
        assert caught, "numpy no longer warns here: the filter has nothing to do"
        caught.clear()
        _ignore_batch_size_fit_warnings()
        degenerate_fit()
    assert caught == []


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    """`vocaloom inspect DIR | head`: when the reader has gone, no traceback, and the status of a program that
    SIGPIPE ended."""
    out = str(tmp_path / "ds")
    assert vocaloom("build", "--output", out, "--speech-ratio", "0", "--runner=FnApiRunner").returncode == 0
    inspect = subprocess.Popen([*CLI, "inspect", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    assert inspect.stdout is not None and inspect.stderr is not None  # both piped
    inspect.stdout.close()  # gone before the first line
    assert inspect.stderr.read() == b"" and inspect.wait(timeout=300) == 141
