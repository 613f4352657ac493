"""Beam's own flags for a build or a nightly run: each one checked before any work (an unknown flag, a runner
without what it needs to start, a job server that does not answer), each refusal one line (ConfigError)."""

from __future__ import annotations

import contextlib
import difflib
import io
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from typing import NoReturn

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from vocaloom.schemas.config import ConfigError
from vocaloom.schemas.paths import is_local, plain


@contextlib.contextmanager
def quiet_beam_parser() -> Iterator[io.StringIO]:
    """Beam's parser as a check: its "Discarding unparseable args" warning unsaid (the check says it in one line),
    its usage text on stderr caught (the caller keeps the error line), and the root logger's handlers left as they
    were (PipelineOptions() calls logging.basicConfig, which gives the root logger a stderr handler)."""
    logger, root = logging.getLogger("apache_beam.options.pipeline_options"), logging.getLogger()
    level, handlers = logger.level, list(root.handlers)
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()) as stderr:
            yield stderr
    finally:
        logger.setLevel(level)
        root.handlers[:] = handlers


def check_beam_flags(args: list[str], ours: list[str]) -> None:
    """Raises ConfigError naming the first of `args` that is not a Beam flag, and the flag it resembles among
    `ours` and Beam's, or the first value Beam's parser refuses: Beam itself only logs "Discarding unparseable
    args" and runs on its defaults, or exits with its usage."""
    with quiet_beam_parser() as stderr:
        options = PipelineOptions(args)
        try:
            known = options.get_all_options()
            given = options.get_all_options(retain_unknown_options=True)
        except SystemExit:
            message = stderr.getvalue().strip().splitlines()[-1]
            raise ConfigError(f"Beam option: {message.split('error: ', 1)[-1]}") from None
    strays = set(given) - set(known)  # Beam's parser keeps what it does not know under the flag's name
    values = {str(v) for value in given.values() for v in (value if isinstance(value, list) else [value])}
    for arg in args:
        name = arg.split("=", 1)[0]
        if not name.startswith("-"):
            if arg not in values:  # not the value of the flag before it
                raise ConfigError(f"unexpected argument {arg!r}")
        elif name.lstrip("-") in strays:
            unknown(name, [*ours, *(f"--{flag}" for flag in known)])


def unknown(name: str, flags: list[str]) -> NoReturn:
    spelled = [flag for flag in (name.replace("_", "-"), name.replace("-", "_")) if flag in flags]
    similar = spelled or difflib.get_close_matches(name, flags, n=1, cutoff=0.75)
    hint = f" (did you mean {similar[0]}?)" if similar else ""
    raise ConfigError(f"unknown flag {name}{hint}: it is neither vocaloom's nor Beam's")


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """Beam's own flags; without --runner, the in-process FnApiRunner (Beam's default would fetch Prism)."""
    options = PipelineOptions(beam_args)
    standard = options.view_as(StandardOptions)
    if standard.runner is None:
        standard.runner = "FnApiRunner"
    check_runner(options)
    return options


# What Dataflow needs to start a job; Beam says it in a traceback once the pipeline runs.
DATAFLOW_NEEDS = ("project", "region", "temp_location")
JOB_ENDPOINT_SECONDS = 10


def check_runner(options: PipelineOptions) -> None:
    """Raises ConfigError for a runner Beam does not know, or one without what it needs to start: before any work."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions
    from apache_beam.runners.runner import create_runner

    name = options.view_as(StandardOptions).runner
    try:
        runner = create_runner(name)
    except ValueError:
        raise ConfigError(
            f"unknown --runner {name!r}: FnApiRunner, DirectRunner, PrismRunner, FlinkRunner, "
            "SparkRunner, DataflowRunner or a PipelineRunner's qualified name"
        ) from None
    except ImportError as e:
        raise ConfigError(f"--runner {name} cannot be loaded: {e}") from None
    kind = type(runner).__name__
    if kind == "DataflowRunner":
        gcp = options.view_as(GoogleCloudOptions)
        missing = [f"--{need}" for need in DATAFLOW_NEEDS if not getattr(gcp, need)]
        if missing:
            raise ConfigError(f"--runner DataflowRunner needs {', '.join(missing)}")
    if kind in ("FlinkRunner", "SparkRunner", "PortableRunner"):
        check_job_server(kind, options)


def check_job_server(kind: str, options: PipelineOptions) -> None:
    """Portable runners run through a job server: one given (--job_endpoint, which must answer), or for Flink and
    Spark one Beam starts from a jar with Java; their workers come from --environment_type, whose EXTERNAL and
    PROCESS need --environment_config."""
    from apache_beam.options.pipeline_options import PortableOptions

    portable, flags = options.view_as(PortableOptions), options.get_all_options()
    if portable.job_endpoint and portable.job_endpoint != "embed":
        host, _, port = portable.job_endpoint.rpartition(":")
        try:
            socket.create_connection((host or "localhost", int(port)), timeout=JOB_ENDPOINT_SECONDS).close()
        except (OSError, ValueError) as e:  # else Beam waits for it without end
            reason = getattr(e, "strerror", None) or str(e)
            raise ConfigError(
                f"--job_endpoint {portable.job_endpoint}: no job server answers there ({reason})"
            ) from None
    elif kind == "PortableRunner":
        raise ConfigError("--runner PortableRunner needs --job_endpoint (HOST:PORT of a running job server)")
    elif not portable.job_endpoint:
        jar_flag = "flink_job_server_jar" if kind == "FlinkRunner" else "spark_job_server_jar"
        jar = flags.get(jar_flag)
        if jar and is_local(jar) and not os.path.isfile(plain(jar)):
            raise ConfigError(f"--{jar_flag} {jar}: no such file")
        if not shutil.which("java"):
            raise ConfigError(
                f"--runner {kind} starts a job server, which needs Java on PATH (or give --job_endpoint "
                "of a running one)"
            )
    environment = (portable.environment_type or "").upper()
    if (
        environment in ("EXTERNAL", "PROCESS")
        and not portable.environment_config
        and not any(
            option.startswith(("external_service_address=", "process_command="))
            for option in portable.environment_options or ()
        )
    ):
        raise ConfigError(
            f"--environment_type {environment} needs --environment_config (EXTERNAL: the worker pool's HOST:PORT)"
        )
    if environment == "DOCKER" and not shutil.which("docker"):
        raise ConfigError("--environment_type DOCKER needs docker on PATH")
