"""The SDK worker pool for Flink and Spark with workers of their own (`--environment_type=EXTERNAL`):
`python -m vocaloom.pipelines.worker_pool --service_port=50000` on each worker machine.

It is Beam's pool (`apache_beam.runners.worker.worker_pool_main`) with one fix: a worker is known by the connection
that asked for it as well as by its id. Every executor or task manager JVM numbers its workers from 1, so JVMs sharing
one pool ask for the same ids; Beam's pool, keyed by id alone, then stops one JVM's worker when another is done with
its own, and a JVM whose worker went before it connected waits for it forever (a Spark standalone worker running two
executors hangs its build that way).
"""

from __future__ import annotations

import argparse
import logging
import threading
import time

from apache_beam.portability.api import beam_fn_api_pb2
from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer

_LOGGER = logging.getLogger(__name__)


def _key(context, worker_id: str) -> str:
    # A JVM asks for a worker and stops it over one channel, so one connection (one peer address) for both.
    return f"{context.peer()} {worker_id}"


class WorkerPool(BeamFnExternalWorkerPoolServicer):
    _starting = threading.Lock()  # Beam's StartWorker files the process under its bare id until it is moved

    def StartWorker(self, start_worker_request, context):
        with self._starting:
            response = super().StartWorker(start_worker_request, context)
            process = self._worker_processes.pop(start_worker_request.worker_id, None)
            if process is not None:
                self._worker_processes[_key(context, start_worker_request.worker_id)] = process
        return response

    def StopWorker(self, stop_worker_request, context):
        return super().StopWorker(
            beam_fn_api_pb2.StopWorkerRequest(worker_id=_key(context, stop_worker_request.worker_id)), context
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m vocaloom.pipelines.worker_pool", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--service_port", type=int, required=True, dest="port", help="the port the runners' environment_config names"
    )
    parser.add_argument(
        "--container_executable",
        default=None,
        help="start each worker with this executable (Beam's SDK container contract) instead of python",
    )
    args = parser.parse_args(argv)
    address, server = WorkerPool.start(use_process=True, port=args.port, container_executable=args.container_executable)
    logging.getLogger().setLevel(logging.INFO)
    _LOGGER.info("vocaloom worker pool listening at %s", address)
    try:
        while True:
            time.sleep(24 * 60 * 60)
    except KeyboardInterrupt:
        server.stop(0)


if __name__ == "__main__":
    main()
