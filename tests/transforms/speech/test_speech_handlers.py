"""The text-to-token model slot's device choice (transforms/speech/speech_handlers.py)."""
import os

import pytest
import torch

from vocaloom.transforms.speech.speech_handlers import resolve_device


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
