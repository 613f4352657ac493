"""The text-to-token model slot: a Beam RunInference ModelHandler for any model in the text_to_token file format.

RunInference loads the model once per worker process and shares it between threads; batches are formed by a
budget of input characters (BatchElements' element_size_fn). Spans arrive grouped by length (see
speech_conversion.LengthGroups), so a batch holds spans of similar length and pads little.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from vocaloom.text_to_token.model_file import ModelSpec
from vocaloom.transforms.artifacts import Artifact, localize
from vocaloom.transforms.worker_setup import SetupFailures

# Input characters per batch.
BATCH_CHARACTERS = 16384


class Span(NamedTuple):
    """A speech span of a kept document: its `index`-th span, `text` its words. `key` is its inference cache key."""
    doc_id: str
    fingerprint: bytes
    index: int
    text: str
    key: str


def resolve_device(device: str) -> str:
    """'cuda' only when asked for and present; asking for an absent GPU is an error, not a silent CPU run."""
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device")
    return device


class TextToTokenHandler(ModelHandler[Span, PredictionResult, torch.nn.Module]):
    def __init__(self, spec: ModelSpec, device: str = "cpu", batch_characters: int = BATCH_CHARACTERS,
                 failures: SetupFailures = SetupFailures()):
        super().__init__()
        self._spec, self._device, self._budget, self._failures = spec, device, batch_characters, failures

    def load_model(self) -> torch.nn.Module:
        with self._failures.guard("ConvertSpans"):
            device = resolve_device(self._device)
            if device == "cpu":
                # One thread a worker process: Beam runs a process a core, and torch's own threads on a shared
                # machine were measured 100x slower on small batches (spin-waiting against other processes).
                torch.set_num_threads(1)
            return self._spec.load(device, localize(Artifact(self._spec.path, self._spec.sha256)))

    def run_inference(self, batch, model, inference_args=None):
        inputs = [self._spec.encode_text(span.text) for span in batch]
        lengths = torch.tensor([len(ids) for ids in inputs], dtype=torch.long)
        padded = torch.zeros(len(inputs), int(lengths.max()), dtype=torch.long)
        for row, ids in enumerate(inputs):
            padded[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        with torch.inference_mode():
            units = model.generate(padded.to(self._device), lengths.to(self._device))
        results = []
        for span, unit_ids in zip(batch, units, strict=True):
            unit_ids = unit_ids.cpu()
            if unit_ids.numel() and (int(unit_ids.min()) < 0 or int(unit_ids.max()) >= self._spec.codebook_size):
                raise ValueError(f"model produced unit ids outside [0, {self._spec.codebook_size})")
            results.append(PredictionResult(span, unit_ids.tolist()))
        return results  # a list, not a generator: a failure must raise here, where RunInference catches it

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": self._budget, "element_size_fn": span_size}

    def share_model_across_processes(self) -> bool:
        return False

    def get_metrics_namespace(self) -> str:
        return "vocaloom_text_to_token"


def span_size(span: Span) -> int:
    return max(1, len(span.text))


@dataclass(frozen=True)
class TeacherSpec:
    """`--speech-source tts`: espeak-ng speaking each span and the speech tokenizer in `path` turning the audio into
    units (InSerter's route: the slow reference for the text-to-token model)."""
    path: str  # the speech tokenizer's reference (bundled:speech-tokenizer)
    sha256: str  # of the tokenizer's files (schemas/digest.py): the inference cache key
    frame_rate_hz: float
    codebook_size: int


def read_teacher(tokenizer: Artifact) -> TeacherSpec:
    """Checks espeak-ng and loads the speech tokenizer; raises with one line naming what is missing."""
    from vocaloom.text_to_token.speech_tokenizer import FRAME_RATE_HZ, SpeechTokenizer
    from vocaloom.text_to_token.teacher import check_espeak
    check_espeak()
    codebook_size = SpeechTokenizer.load(localize(tokenizer)).codebook_size
    return TeacherSpec(tokenizer.location, tokenizer.sha256, FRAME_RATE_HZ, codebook_size)


class TeacherHandler(ModelHandler[Span, PredictionResult, object]):
    def __init__(self, spec: TeacherSpec, failures: SetupFailures = SetupFailures()):
        super().__init__()
        self._spec, self._failures = spec, failures

    def load_model(self):
        with self._failures.guard("ConvertSpans"):
            from vocaloom.text_to_token.teacher import Teacher
            return Teacher(localize(Artifact(self._spec.path, self._spec.sha256)))

    def run_inference(self, batch, model, inference_args=None):
        return [PredictionResult(span, units) for span, units in zip(batch, model.units([s.text for s in batch]),
                                                                       strict=True)]

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": BATCH_CHARACTERS, "element_size_fn": span_size}

    def share_model_across_processes(self) -> bool:
        return False


def speech_handler(spec: ModelSpec | TeacherSpec, device: str, failures: SetupFailures) -> ModelHandler:
    if isinstance(spec, TeacherSpec):
        return TeacherHandler(spec, failures)
    return TextToTokenHandler(spec, device, failures=failures)
