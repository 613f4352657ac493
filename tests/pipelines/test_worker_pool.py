"""vocaloom's worker pool: two JVMs sharing it ask for workers under the same ids, and each stops only its own."""

import time

import grpc
import pytest
from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc, endpoints_pb2

from vocaloom.pipelines.worker_pool import WorkerPool

pytestmark = pytest.mark.integration

# An SDK worker that does nothing until stopped; while it runs, a file named after its control endpoint says so.
IDLE_WORKER = """#!/bin/sh
for arg; do case $arg in --control_endpoint=*) name=${arg#*=};; esac; done
touch "{folder}/$name"
trap 'rm -f "{folder}/$name"; exit 0' TERM
while :; do sleep 0.1; done
"""


def eventually(condition, seconds=20):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def pool(tmp_path):
    worker = tmp_path / "worker.sh"
    worker.write_text(IDLE_WORKER.replace("{folder}", str(tmp_path)))
    worker.chmod(0o755)
    address, server = WorkerPool.start(use_process=True, port=0, container_executable=str(worker))
    yield address, tmp_path
    server.stop(0)


def jvm(address):
    """A stub on a connection of its own, as each executor JVM has (gRPC would otherwise share one)."""
    channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
    return channel, beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolStub(channel)


def start(stub, worker_id, control):
    response = stub.StartWorker(
        beam_fn_api_pb2.StartWorkerRequest(
            worker_id=worker_id, control_endpoint=endpoints_pb2.ApiServiceDescriptor(url=control)
        )
    )
    assert response.error == ""


def test_two_jvms_asking_for_the_same_worker_id_each_stop_only_their_own(pool):
    address, folder = pool
    (a_channel, a), (b_channel, b) = jvm(address), jvm(address)
    start(a, "1-1", "a")
    start(b, "1-1", "b")
    assert eventually(lambda: (folder / "a").exists() and (folder / "b").exists())
    a.StopWorker(beam_fn_api_pb2.StopWorkerRequest(worker_id="1-1"))
    assert eventually(lambda: not (folder / "a").exists())
    time.sleep(0.5)
    assert (folder / "b").exists()  # Beam's own pool stops this one instead, and its JVM waits for it forever
    b.StopWorker(beam_fn_api_pb2.StopWorkerRequest(worker_id="1-1"))
    assert eventually(lambda: not (folder / "b").exists())
    a_channel.close()
    b_channel.close()
