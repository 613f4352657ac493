"""The base of every model slot's Beam RunInference ModelHandler, and the holder of a model with its tokenizer.

A worker process loads a step's model once, inside the step's guard, so a worker that cannot load it stops the build
in one line (transforms/worker_setup.py). On a CPU the model runs on one torch thread; on a GPU, with the settings
that keep its outputs those of the CPU. Models are never shared across processes: Beam runs one process a core.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from vocaloom.transforms.worker_setup import BuildStops

ExampleT = TypeVar("ExampleT")
ModelT = TypeVar("ModelT")


def one_torch_thread() -> None:
    """A model step's one torch thread a worker process: Beam runs a process a core, and torch's own threads on a
    shared machine spin-wait against the other processes, far slower on small batches. A build run inside the
    caller's process gives the caller its thread count back when it ends (pipelines/guest.py)."""
    import torch

    torch.set_num_threads(1)


def resolve_device(device: str) -> str:
    """`--device cuda`: this worker process's GPU, the processes spread over the GPUs by process id."""
    import torch

    if device != "cuda":
        return device
    if not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device")
    return f"cuda:{os.getpid() % torch.cuda.device_count()}"


class WorkerModelHandler(ModelHandler[ExampleT, PredictionResult, ModelT]):
    """A model slot's handler: subclasses name their `step` and say how to `load` the model on a device."""

    step = ""  # the build step that runs the model, named in the line that stops the build

    def __init__(self, device: str = "cpu", failures: BuildStops = BuildStops()):
        super().__init__()
        self._device, self._failures = device, failures

    def load_model(self) -> ModelT:
        with self._failures.guard(self.step):
            device = resolve_device(self._device)
            if device == "cpu":
                one_torch_thread()
            else:
                import torch

                # float32 means float32 on a GPU too: cuDNN's default TF32 convolutions would round the student's
                # inputs to 10-bit mantissas and move its units away from the CPU's.
                torch.backends.cudnn.allow_tf32 = False
                # cuDNN's attention (torch's first choice for bf16 on Hopper) plans every new shape on the host,
                # and every batch and decoding step brings new ones, so the GPU would mostly wait for the host.
                torch.backends.cuda.enable_cudnn_sdp(False)
            return self.load(device)

    def load(self, device: str) -> ModelT:
        raise NotImplementedError

    def share_model_across_processes(self) -> bool:
        return False


class PretrainedModel:
    """A model and its tokenizer (a Hugging Face causal LM, an encoder), loaded by `load` the first time they are
    used, inside the step's guard: a step whose outputs all come from the inference cache never loads them.
    RunInference shares models by weak reference, so an object, not a tuple."""

    def __init__(self, load: Callable[[], tuple[Any, Any]], failures: BuildStops, step: str):
        self._load, self._failures, self._step = load, failures, step
        self._loaded: tuple[Any, Any] | None = None
        self._lock = threading.Lock()  # RunInference may call from several threads of one process

    def loaded(self) -> tuple[Any, Any]:
        """(model, tokenizer)."""
        with self._lock:
            if self._loaded is None:
                with self._failures.guard(self._step):
                    self._loaded = self._load()
        return self._loaded
