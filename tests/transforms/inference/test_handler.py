"""The base of every model slot (transforms/inference/handler.py): the device a worker process uses, the model loaded
inside its step's guard on one torch thread, and a model with its tokenizer loaded once, on first use."""

import os
import threading

import pytest
import torch

from vocaloom.transforms.inference.handler import PretrainedModel, WorkerModelHandler, resolve_device
from vocaloom.transforms.worker_setup import BuildStops, WorkerSetupError


def test_worker_processes_spread_over_the_machines_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    for pid, gpu in ((4242, 2), (4243, 3), (4244, 0)):
        monkeypatch.setattr(os, "getpid", lambda pid=pid: pid)
        assert resolve_device("cuda") == f"cuda:{gpu}"
    assert resolve_device("cpu") == "cpu"


def test_an_absent_gpu_is_an_error_not_a_cpu_run(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="--device cuda was asked for, but torch sees no CUDA device"):
        resolve_device("cuda")


class Loads(WorkerModelHandler[int, str]):
    step = "Loads"

    def load(self, device: str) -> str:
        if device != "cpu":
            raise OSError("no such model")
        return f"model on {device}, {torch.get_num_threads()} thread"


def test_a_model_is_loaded_on_one_torch_thread_and_a_worker_that_cannot_stops_the_build(monkeypatch):
    threads = torch.get_num_threads()
    try:
        assert Loads().load_model() == "model on cpu, 1 thread"
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(WorkerSetupError, match=r"^Loads could not start on worker .*--device cuda was asked for"):
        Loads("cuda", BuildStops()).load_model()


def test_a_pretrained_model_is_loaded_once_on_first_use_and_its_failure_stops_the_build():
    loads = []

    def load():
        loads.append(threading.get_ident())
        return "model", "tokenizer"

    held = PretrainedModel(load, BuildStops(), "Embed")
    assert loads == []  # nothing loaded until a text needs the model
    threads = [threading.Thread(target=held.loaded) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert held.loaded() == ("model", "tokenizer") and len(loads) == 1

    def broken():
        raise OSError("model.safetensors is truncated")

    with pytest.raises(WorkerSetupError, match=r"^Embed could not start on worker .*model\.safetensors is truncated"):
        PretrainedModel(broken, BuildStops(), "Embed").loaded()
