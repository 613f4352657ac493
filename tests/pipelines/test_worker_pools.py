"""Workers on other machines: Flink and Spark run the build's Python steps in Beam's worker pool
(`--environment_type=EXTERNAL`), started from a virtual environment where vocaloom was installed from its wheel, in
a private mount namespace (`unshare -m`) where this checkout is hidden under an empty tmpfs. So the workers have
only their own installation: bundled references resolve there, and the shards must be FnApiRunner's, byte for byte.

Also a Spark standalone cluster (a master and two workers, each its own JVM, from the job server's Spark jars, each
worker running its executors in JVMs of their own), and a worker whose setup cannot start a step: the build ends
with that error in one line and status 1, never a hang.

The job servers come from `scripts/ci/fetch_job_servers.py` (which .ci/run calls first); the venv from the wheelhouse.
Run only these: `pytest -m runners tests/pipelines/test_worker_pools.py`.
"""

import contextlib
import hashlib
import json
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from scripts.ci.fetch_job_servers import DEFAULT_DEST, launcher_path
from tests.conftest import RUNNER, TEXT_ONLY
from tests.object_stores import server_env
from tests.pipelines.test_build_speech import write_corpus
from tests.pipelines.test_runners import dataset_files
from tests.prerequisites import missing, needs_wheelhouse
from tests.venvs import ENV, ROOT
from vocaloom.pipelines.build import run
from vocaloom.pipelines.verify import verify

pytestmark = [pytest.mark.engines, needs_wheelhouse]

SMALL = ["--min-bucket", "5", "--max-bucket", "7", "--shard-tokens", "3000"]
# The bundled sample as text (many documents, every bucket), and a small corpus through every optional step: speech
# from the bundled model and In-Context Pretraining's ordering with the bundled embedder, both loaded by the workers.
BUILDS = {
    "sample-text": [*TEXT_ONLY],
    "speech-related": [
        "--input",
        "{corpus}",
        "--speech-ratio",
        "0.3",
        "--span-lambda",
        "3",
        "--context",
        "related",
        *SMALL,
    ],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("localhost", port), timeout=1):
            return
        time.sleep(0.3)
    raise TimeoutError(f"nothing listens on port {port} after {seconds} s")


def hidden_checkout(command: list[str]) -> list[str]:
    """`command` in a private mount namespace in which this checkout is an empty tmpfs."""
    return [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        f"mount -t tmpfs none {shlex.quote(str(ROOT))} && exec {shlex.join(command)}",
    ]


@contextlib.contextmanager
def worker_pool(bin_dir: Path, cache: Path, gcs_server: str):
    """vocaloom's SDK worker pool from the venv, unable to see this checkout, reaching the GCS server as its
    workers would reach GCS; yields its address."""
    port = free_port()
    # The pool starts each worker as `python` from PATH: the venv's, as in an activated environment or a container.
    env = dict(ENV, VOCALOOM_ARTIFACT_CACHE=str(cache), PATH=f"{bin_dir}:{ENV['PATH']}", **server_env("gs", gcs_server))
    process = subprocess.Popen(
        hidden_checkout([str(bin_dir / "python"), "-m", "vocaloom.pipelines.worker_pool", f"--service_port={port}"]),
        env=env,
        cwd="/",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"localhost:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def workers(tmp_path_factory, pipeline_env, gcs_server):
    """The address of a worker pool running vocaloom from its wheel, the checkout hidden."""
    folder = tmp_path_factory.mktemp("workers")
    bin_dir = pipeline_env
    seen = subprocess.run(
        hidden_checkout([str(bin_dir / "python"), "-c", f"import os; print(os.listdir('{ROOT}'))"]),
        capture_output=True,
        text=True,
        check=True,
    )
    assert seen.stdout.strip() == "[]"
    with worker_pool(bin_dir, folder / "cache", gcs_server) as address:
        yield address


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> str:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, corpus):
    """Each build on FnApiRunner in this process: the bytes the clusters must write."""
    folder = tmp_path_factory.mktemp("fnapi")
    return {name: dataset_files(run_build(folder / name, name, corpus, RUNNER)) for name in BUILDS}


def run_build(output: Path, name: str, corpus: str, runner: list[str]) -> Path:
    run(["--output", str(output), *(arg.format(corpus=corpus) for arg in BUILDS[name]), *runner])
    return output


def portable(engine: str, master: str, workers: str) -> list[str]:
    jar = launcher_path(DEFAULT_DEST, engine)
    if not jar.exists():
        missing(f"no {jar}: run python3 -m scripts.ci.fetch_job_servers")
    flags = {
        "flink": ["--runner=FlinkRunner", f"--flink_master={master}", f"--flink_job_server_jar={jar}"],
        "spark": ["--runner=SparkRunner", f"--spark_master_url={master}", f"--spark_job_server_jar={jar}"],
    }
    return [*flags[engine], "--environment_type=EXTERNAL", f"--environment_config={workers}"]


@pytest.mark.parametrize("name", list(BUILDS))
@pytest.mark.parametrize("engine, master", [("flink", "[local]"), ("spark", "local[2]")])
def test_worker_pool_shards_equal_fnapirunners(tmp_path, workers, reference, corpus, engine, master, name):
    output = run_build(tmp_path / "ds", name, corpus, portable(engine, master, workers))
    assert dataset_files(output) == reference[name]


@pytest.mark.parametrize("bucket", ["gs"], indirect=True)
def test_a_worker_pool_writes_the_build_into_a_gcs_bucket(bucket, workers, reference):
    """Workers with only their own installation write every shard, spill and record file into the bucket; the
    launcher commits there. The shards are FnApiRunner's local ones, byte for byte."""
    dataset = f"{bucket.url}/ds"
    manifest = run(["--output", dataset, *BUILDS["sample-text"], *portable("flink", "[local]", workers)])
    assert verify(dataset) == []
    local = {
        path: hashlib.sha256(data).hexdigest()
        for path, data in reference["sample-text"].items()
        if path.startswith("data/")
    }
    assert {shard["path"]: shard["sha256"] for length in manifest["buckets"] for shard in length["shards"]} == local


@pytest.mark.parametrize("engine, master", [("flink", "[local]"), ("spark", "local[2]")])
def test_a_worker_that_cannot_start_a_step_fails_the_build_in_one_line(tmp_path, workers, engine, master):
    # The launcher reads this tokenizer (its sha256 goes to the workers); the workers cannot see the checkout. The job
    # servers alone would wait 3 minutes for another SDK environment, then report only their timeout.
    hidden = ROOT / "assets" / "tokenizer" / "sample_sp.model"
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vocaloom",
            "build",
            "--output",
            str(tmp_path / "ds"),
            "--tokenizer",
            str(hidden),
            *TEXT_ONLY,
            *portable(engine, master, workers),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("vocaloom: error:")]
    assert errors == [
        f"vocaloom: error: the build failed: Tokenize could not start on worker {socket.gethostname()}: "
        f"ArtifactError: {hidden}: not found on this worker ({hidden})"
    ], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 120


# Java 17 keeps these packages closed unless opened; Spark needs them (Beam's Spark job server passes the same).
JAVA_OPENS = [
    f"--add-opens=java.base/{package}=ALL-UNNAMED"
    for package in ("sun.nio.ch", "java.nio", "java.util", "java.lang.invoke", "java.lang")
]


def alive_workers(web_port: int) -> int:
    with (
        contextlib.suppress(OSError, ValueError),
        urllib.request.urlopen(f"http://127.0.0.1:{web_port}/json/", timeout=2) as page,
    ):
        return sum(worker["state"] == "ALIVE" for worker in json.load(page)["workers"])
    return 0


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory):
    """A Spark standalone cluster on this machine: a master and two workers of one core each, their own JVMs, run
    from the Spark jars the job server fetched. A worker starts executors from SPARK_HOME, which Spark recognises
    by its RELEASE file and its jars/ folder; yields the master's URL."""
    lib = launcher_path(DEFAULT_DEST, "spark").parent / "lib"
    if not lib.is_dir():
        missing(f"no {lib}: run python3 -m scripts.ci.fetch_job_servers")
    home = tmp_path_factory.mktemp("spark-home")
    (home / "jars").symlink_to(lib)
    (home / "RELEASE").write_text("Spark 3.5.0, the jars of Beam's Spark job server\n")
    env = dict(ENV, SPARK_HOME=str(home), SPARK_SCALA_VERSION="2.12", SPARK_LOCAL_DIRS=str(home / "scratch"))
    java = ["java", *JAVA_OPENS, "-cp", f"{lib}/*"]
    port, web = free_port(), free_port()
    processes = [
        subprocess.Popen(
            [
                *java,
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(web),
            ],
            env=env,
            cwd=home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        wait_for_port(port, processes[0])
        master = f"spark://127.0.0.1:{port}"
        for i in range(2):
            processes.append(
                subprocess.Popen(
                    [
                        *java,
                        "org.apache.spark.deploy.worker.Worker",
                        master,
                        "--cores",
                        "1",
                        "--memory",
                        "3g",
                        "--webui-port",
                        "0",
                        "--work-dir",
                        str(home / f"w{i}"),
                    ],
                    env=env,
                    cwd=home,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + 60
        while alive_workers(web) < 2:  # registered with the master, as its status page says
            if time.monotonic() > deadline:
                raise TimeoutError("the Spark workers did not register with the master within 60 s")
            time.sleep(0.5)
        yield master, home
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)


def test_spark_standalone_cluster_shards_equal_fnapirunners(tmp_path, workers, reference, corpus, spark_cluster):
    master, home = spark_cluster
    output = run_build(tmp_path / "ds", "speech-related", corpus, portable("spark", master, workers))
    assert dataset_files(output) == reference["speech-related"]
    executors = [path for path in home.glob("w*/app-*/*") if path.is_dir()]
    assert {path.parts[-3] for path in executors} == {"w0", "w1"}  # executors ran in both worker JVMs
