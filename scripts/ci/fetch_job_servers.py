"""Fetches Beam's Spark 3 and Flink job servers from Maven Central, and builds Beam's Prism runner from the Go module
proxy, into `.job-servers/` (git-ignored).

Beam publishes each job server as one shaded jar (`beam-runners-spark-3-job-server`,
`beam-runners-flink-<v>-job-server`), but the registry reachable here holds neither, and no Beam Java artifact of
the pinned Python version (2.77.0): see JAVA_BEAM_VERSION. So this script assembles the same job server from the
runner artifact and its engine's jars with `mvn dependency:copy-dependencies`, and writes a small launcher jar whose
manifest names the driver class and every jar on its Class-Path. Beam's own `--spark_job_server_jar` /
`--flink_job_server_jar` run it with `java -jar`, as they would the shaded jar, and nothing is downloaded at run time.

Prism, Beam's own local runner, is a Go binary: Beam downloads it from GitHub at run time, which is unreachable
here, so it is built once with `go install github.com/apache/beam/sdks/v2/go/cmd/prism@v<Beam's version>` (about 3
minutes on 2 cores) and passed to a build with `--prism_location=.job-servers/prism/prism`.

    python3 -m scripts.ci.fetch_job_servers [--engine spark|flink|prism] [--dest .job-servers]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

# The newest Beam Java release whose runner, job-service and fn-execution artifacts the registry holds together.
# Python SDK 2.77.0 talks to it over Beam's versioned portability protos (job API and Fn API).
JAVA_BEAM_VERSION = "2.62.0"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DEST = ROOT / ".job-servers"

# engine: (driver class, [(groupId, artifactId, version)]) -- the runner plus what Beam's job-server build adds.
ENGINES = {
    "spark": (
        "org.apache.beam.runners.spark.SparkJobServerDriver",
        [
            ("org.apache.beam", "beam-runners-spark-3", JAVA_BEAM_VERSION),
            # The runner declares Spark "provided"; Beam's job server bundles Spark 3.5 (which runs on Java 17).
            ("org.apache.spark", "spark-core_2.12", "3.5.0"),
            ("org.apache.spark", "spark-streaming_2.12", "3.5.0"),
            ("org.apache.spark", "spark-sql_2.12", "3.5.0"),
        ],
    ),
    "flink": (
        "org.apache.beam.runners.flink.FlinkJobServerDriver",
        [
            ("org.apache.beam", "beam-runners-flink-1.19", JAVA_BEAM_VERSION),  # brings Flink 1.19 itself
        ],
    ),
}

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>vocaloom</groupId><artifactId>{engine}-job-server</artifactId><version>1</version>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""
DEPENDENCY = "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version></dependency>"


PRISM_MODULE = "github.com/apache/beam/sdks/v2/go/cmd/prism"


def prism_path(dest: Path) -> Path:
    return dest / "prism" / "prism"


def fetch_prism(dest: Path) -> Path:
    """Beam's Prism runner at the installed Beam's version, built with Go from the module proxy."""
    from apache_beam.version import __version__ as beam_version

    return go_install("prism", PRISM_MODULE, f"v{beam_version}", prism_path(dest))


def go_install(name: str, package: str, version: str, binary: Path) -> Path:
    """`go install package@version` into binary's folder, unless a build of that version is already there."""
    stamp = binary.with_name(f"{binary.name}.version")
    if binary.exists() and stamp.exists() and stamp.read_text() == version:
        print(f"{name}: {binary} already there")
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    print(f"{name}: go install {package}@{version}", flush=True)
    go = subprocess.run(
        ["go", "install", f"{package}@{version}"],
        capture_output=True,
        text=True,
        env=dict(os.environ, GOBIN=str(binary.parent), GOFLAGS="-mod=mod"),
    )
    if go.returncode:
        print(go.stdout[-4000:] + go.stderr[-4000:], file=sys.stderr)
        raise RuntimeError(f"{name}: go install failed (status {go.returncode})")
    stamp.write_text(version)
    print(f"{name}: {binary}")
    return binary


def launcher_path(dest: Path, engine: str) -> Path:
    return dest / engine / f"beam-{engine}-job-server-{JAVA_BEAM_VERSION}.jar"


def write_launcher(path: Path, main_class: str, jars: list[Path]) -> None:
    """A jar holding only a manifest: `java -jar` runs `main_class` with `jars` (relative paths) on the classpath."""
    class_path = " ".join(f"lib/{jar.name}" for jar in jars)
    manifest = f"Manifest-Version: 1.0\nMain-Class: {main_class}\nClass-Path: {class_path}\n"
    # Manifest lines are at most 72 bytes; longer ones continue on the next line after one space.
    lines = []
    for line in manifest.splitlines():
        lines.append(line[:72])
        lines += [" " + line[i : i + 71] for i in range(72, len(line), 71)]
    temp = path.with_suffix(".tmp")
    with zipfile.ZipFile(temp, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", "\r\n".join(lines) + "\r\n")
    os.replace(temp, path)


def fetch(engine: str, dest: Path) -> Path:
    launcher = launcher_path(dest, engine)
    if launcher.exists():
        print(f"{engine}: {launcher} already there")
        return launcher
    main_class, artifacts = ENGINES[engine]
    folder = dest / engine
    folder.mkdir(parents=True, exist_ok=True)
    dependencies = "\n".join(DEPENDENCY.format(*artifact) for artifact in artifacts)
    (folder / "pom.xml").write_text(POM.format(engine=engine, dependencies=dependencies))
    shutil.rmtree(folder / "lib", ignore_errors=True)  # jars of another version must not join the classpath
    print(f"{engine}: resolving {', '.join(':'.join(a[1:]) for a in artifacts)} with mvn", flush=True)
    maven = subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-Dstyle.color=never",
            "-f",
            str(folder / "pom.xml"),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={folder / 'lib'}",
        ],
        capture_output=True,
        text=True,
    )
    if maven.returncode:
        print(maven.stdout[-4000:] + maven.stderr[-4000:], file=sys.stderr)  # Maven's own account of what failed
        raise RuntimeError(f"{engine}: mvn could not resolve the job server's jars (status {maven.returncode})")
    jars = sorted((folder / "lib").glob("*.jar"))
    write_launcher(launcher, main_class, jars)
    print(f"{engine}: {launcher} ({len(jars)} jars)")
    return launcher


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=sorted([*ENGINES, "prism"]), action="append", help="default: all")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = parser.parse_args(argv)
    try:
        for engine in args.engine or [*sorted(ENGINES), "prism"]:
            fetch_prism(args.dest) if engine == "prism" else fetch(engine, args.dest)
    except (RuntimeError, FileNotFoundError) as e:  # FileNotFoundError: no mvn or go on PATH
        print(f"fetch_job_servers: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
