"""The text-to-token model slot: Beam RunInference ModelHandlers for the bundled kind of model (the text_to_token
file format), for a lab's Hugging Face causal LM (text_to_token/causal_lm.py), and for the espeak-ng teacher.

RunInference loads the model once per worker process (transforms/inference/handler.py). Each element a handler
gets is one batch of spans that the pipeline formed (speech_conversion.SpanBatches: similar lengths, within
`batch_characters` padded characters), and it answers with each span's unit ids, or a Failed reason for a span it
could not convert.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from apache_beam.ml.inference.base import PredictionResult

from vocaloom.schemas.config import BuildConfig
from vocaloom.text_to_token.causal_lm import CausalLMSpec
from vocaloom.text_to_token.failed import Failed
from vocaloom.text_to_token.model_file import ModelSpec
from vocaloom.transforms.artifacts import Artifact, localize
from vocaloom.transforms.inference.handler import ModelT, PretrainedModel, WorkerModelHandler
from vocaloom.transforms.worker_setup import BuildStops

# A batch's spans times its longest span, in characters, unless --batch-characters says otherwise.
BATCH_CHARACTERS = BuildConfig.batch_characters
# Rows x longest input^2 in one call of the student: its byte-reading tensors (4 heads, float32) stay near 4 GiB.
# At the CPU's default budget no batch comes near it; on a GPU a 1 M-character batch that holds one long digit run
# (940 bytes read as words) asked for 70 GiB at once.
MODEL_CALL_CELLS = 1 << 28


# The most of one span a model reads (its normalised bytes, or its tokenizer's tokens): planned spans are at most
# synthetic_interleaving.MAX_SPAN_BYTES, and reading digits and symbols as words can make one several times longer.
MAX_SPAN_SIZE = 2048


class Span(NamedTuple):
    """A speech span of a kept document: its `ordinal`-th span, `text` its words. `key` is its inference cache key."""

    doc_id: str
    fingerprint: bytes
    ordinal: int
    text: str
    key: str


def text_size(text: str) -> int:
    """A span's size in characters (a handler's span_size may count what its model reads instead)."""
    return max(1, len(text))


class SpanBatchHandler(WorkerModelHandler[tuple, ModelT]):
    """What every speech handler shares: one pipeline-formed batch of spans per call, its failures caught by
    RunInference (the whole batch becomes dead letters)."""

    step = "ConvertSpans"

    def __init__(
        self, device: str = "cpu", batch_characters: int = BATCH_CHARACTERS, failures: BuildStops = BuildStops()
    ):
        super().__init__(device, failures)
        self.batch_characters = batch_characters

    def run_inference(self, batch, model, inference_args=None):
        # A list, not a generator: a failure must raise here, where RunInference catches it.
        return [PredictionResult(spans, self._convert_bounded(model, spans)) for spans in batch]

    def _convert_bounded(self, model, spans: tuple[Span, ...]) -> list:
        """Each span's units; one the model would read more than MAX_SPAN_SIZE of (a short text whose digits read
        as words grow several times) is Failed with the reason, never handed to the model."""
        sizes = [self.span_size(span.text) for span in spans]
        fits = [span.text for span, size in zip(spans, sizes) if size <= MAX_SPAN_SIZE]
        converted = iter(self.convert(model, fits) if fits else [])
        return [
            next(converted)
            if size <= MAX_SPAN_SIZE
            else Failed(f"span_too_long: the model reads {size} units of it, more than {MAX_SPAN_SIZE}")
            for size in sizes
        ]

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 1}  # one SpanBatch per call: the pipeline made it

    def span_size(self, text: str) -> int:
        """A span's size for batching: what the model's tensors grow with (SpanBatches cuts batches by it)."""
        return text_size(text)

    def get_metrics_namespace(self) -> str:
        return "vocaloom_text_to_token"

    def convert(self, model, texts: list[str]) -> list:
        raise NotImplementedError


class TextToTokenHandler(SpanBatchHandler[torch.nn.Module]):
    """A model in the text_to_token file format (the bundled student): a batch in one pass."""

    def __init__(
        self,
        spec: ModelSpec,
        device: str = "cpu",
        batch_characters: int = BATCH_CHARACTERS,
        failures: BuildStops = BuildStops(),
    ):
        super().__init__(device, batch_characters, failures)
        self._spec = spec

    def load(self, device: str) -> torch.nn.Module:
        return self._spec.load(device, localize(Artifact(self._spec.path, self._spec.sha256)))

    def span_size(self, text: str) -> int:
        # The model reads the normalised text: a run of digits read as words is several times its characters.
        return max(1, len(self._spec.encode_text(text)))

    def convert(self, model, texts: list[str]) -> list[list[int]]:
        inputs = [self._spec.encode_text(text) for text in texts]
        units = []
        for chunk in model_calls([len(ids) for ids in inputs]):
            units += self._generate(model, inputs[chunk.start : chunk.stop])
        return units

    def _generate(self, model, inputs: list[list[int]]) -> list[list[int]]:
        device = next(model.parameters()).device
        padded, sizes = padded_batch(inputs, device)
        with torch.inference_mode(), precision(device, self._spec.dtype(str(device))):
            units = model.generate(padded, sizes)
        # One copy to the host for the whole batch: a copy per span would wait on the GPU once per span.
        counts = [len(unit_ids) for unit_ids in units]
        flat = torch.cat(units).cpu().numpy() if units else np.zeros(0, dtype=np.int64)
        if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= self._spec.codebook_size):
            raise ValueError(f"model produced unit ids outside [0, {self._spec.codebook_size})")
        ends = np.cumsum(counts).tolist()
        flat_ids = flat.tolist()
        return [flat_ids[end - count : end] for count, end in zip(counts, ends, strict=True)]


def padded_batch(inputs: list[list[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids right-padded with 0 into one [B, T] tensor, and their lengths [B], on `device`."""
    sizes = np.fromiter(map(len, inputs), dtype=np.int64, count=len(inputs))
    padded = np.zeros((len(inputs), max(1, int(sizes.max(initial=0)))), dtype=np.int64)
    padded[np.arange(padded.shape[1]) < sizes[:, None]] = np.fromiter(
        itertools.chain.from_iterable(inputs), dtype=np.int64, count=int(sizes.sum())
    )
    return torch.from_numpy(padded).to(device), torch.from_numpy(sizes).to(device)


def model_calls(sizes: list[int], cells: int = MODEL_CALL_CELLS) -> list[range]:
    """A batch's rows (in their order) as consecutive runs of at most `cells` rows x longest row^2: the student
    reads bytes per unit frame, so its tensors grow with rows x frames x bytes. Only GPU-sized batches are split, and
    the same way on every runner (the split is a function of the batch)."""
    runs, start, longest = [], 0, 0
    for row, size in enumerate(sizes):
        longest = max(longest, size)
        if row > start and (row - start + 1) * longest**2 > cells:
            runs.append(range(start, row))
            start, longest = row, size
    return [*runs, range(start, len(sizes))] if sizes else runs


def precision(device: torch.device, dtype: torch.dtype):
    """bf16 autocast (matrix products in bf16, reductions and softmax in float32), or float32 as written."""
    return contextlib.nullcontext() if dtype == torch.float32 else torch.autocast(device.type, dtype)


class CausalLMHandler(SpanBatchHandler[PretrainedModel]):
    """A lab's Hugging Face causal LM (text_to_token/causal_lm.py): greedy, the batch left-padded; a span that hits
    its length cap, or gets an id that is not a unit, is Failed (a dead letter with that reason)."""

    def __init__(
        self,
        spec: CausalLMSpec,
        device: str = "cpu",
        batch_characters: int = BATCH_CHARACTERS,
        failures: BuildStops = BuildStops(),
    ):
        super().__init__(device, batch_characters, failures)
        self._spec = spec

    def load(self, device: str) -> PretrainedModel:
        location = Artifact(self._spec.path, self._spec.sha256)
        return PretrainedModel(lambda: self._spec.load(device, localize(location)), self._failures, self.step)

    def convert(self, model: PretrainedModel, texts: list[str]) -> list:
        return self._spec.generate(*model.loaded(), texts)


def precision_name(spec: ModelSpec | CausalLMSpec | TeacherSpec, device: str) -> str:
    """The precision a model's units are made in on `device`, as the manifest records it ("float32", "bfloat16")."""
    return str(spec.dtype(device)).removeprefix("torch.") if hasattr(spec, "dtype") else "float32"


def units_identity(model_sha256: str, precision: str) -> str:
    """What a span's units depend on besides its text, for the inference cache key: the model, and its precision
    where that is not float32 (bf16 units are kept apart from float32 ones)."""
    return model_sha256 if precision == "float32" else f"{model_sha256}+{precision}"


@dataclass(frozen=True)
class TeacherSpec:
    """`--speech-source tts`: espeak-ng speaking each span and the speech tokenizer in `path` turning the audio into
    units (InSerter's route: the slow reference for the text-to-token model)."""

    path: str  # the speech tokenizer's reference (bundled:speech-tokenizer)
    tokenizer_sha256: str  # of the tokenizer's files (schemas/digest.py)
    espeak_version: str  # of the espeak-ng the build was planned with; every worker must have the same
    frame_rate_hz: float
    codebook_size: int

    @property
    def sha256(self) -> str:
        """The teacher's identity, as every model's (the inference cache key, the manifest): the sha256 of what its
        units depend on, the speech tokenizer's files and espeak-ng's version."""
        teacher = f"{self.tokenizer_sha256}\0espeak-ng {self.espeak_version}"
        return hashlib.sha256(teacher.encode()).hexdigest()


def read_teacher(tokenizer: Artifact) -> TeacherSpec:
    """Checks espeak-ng and loads the speech tokenizer; raises with one line naming what is missing."""
    from vocaloom.text_to_token.speech_tokenizer import FRAME_RATE_HZ, SpeechTokenizer
    from vocaloom.text_to_token.teacher import espeak_version

    version = espeak_version()
    codebook_size = SpeechTokenizer.load(localize(tokenizer)).codebook_size
    return TeacherSpec(tokenizer.location, tokenizer.sha256, version, FRAME_RATE_HZ, codebook_size)


class TeacherHandler(SpanBatchHandler[Any]):
    def __init__(self, spec: TeacherSpec, failures: BuildStops = BuildStops()):
        super().__init__("cpu", BATCH_CHARACTERS, failures)
        self._spec = spec

    def load(self, device: str):
        from vocaloom.text_to_token.teacher import Teacher, espeak_version

        found = espeak_version()
        if found != self._spec.espeak_version:
            raise RuntimeError(
                f"espeak-ng {found} here, the build was planned with {self._spec.espeak_version}: its speech would "
                "differ; install the same version on every worker"
            )
        return Teacher(localize(Artifact(self._spec.path, self._spec.tokenizer_sha256)))

    def convert(self, model, texts: list[str]) -> list[list[int]]:
        return list(model.units(texts))


def speech_handler(
    spec: ModelSpec | CausalLMSpec | TeacherSpec,
    device: str,
    failures: BuildStops,
    batch_characters: int = BATCH_CHARACTERS,
) -> SpanBatchHandler[Any]:
    if isinstance(spec, TeacherSpec):
        return TeacherHandler(spec, failures)
    if isinstance(spec, CausalLMSpec):
        return CausalLMHandler(spec, device, batch_characters, failures)
    return TextToTokenHandler(spec, device, batch_characters, failures)
