"""The text-to-token model file format: a directory holding `config.json` and `model.safetensors`.

config.json:
  format          "vocaloom-text-to-token/1"
  architecture    a name registered in text_to_token.architectures
  frame_rate_hz   speech units per second of speech (GLM-4-Voice: 12.5)
  codebook_size   unit ids are 0 .. codebook_size - 1
  input           how text becomes input ids: {"kind": "bytes"} (UTF-8 bytes, ids 0-255) or
                  {"kind": "characters", "alphabet": "...", "unknown_id": n} (id = position in alphabet); either
                  may name a normaliser applied first ("normalize": "numbers-en/1", text_to_token/normalize.py)
  hyperparameters keyword arguments of the architecture's constructor
  dtype           optional: "float32" (default) or "bfloat16": matrix products in bf16 (autocast) on CUDA only
                  (recorded in the manifest; the CPU always runs float32)
Weights load with safetensors (never pickle) and must match the architecture exactly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from vocaloom.schemas.digest import local_sha256
from vocaloom.text_to_token import student  # noqa: F401  (registers the bundled model's architecture)
from vocaloom.text_to_token.architectures import ARCHITECTURES
from vocaloom.text_to_token.normalize import NORMALIZERS

FORMAT = "vocaloom-text-to-token/1"
CONFIG, WEIGHTS = "config.json", "model.safetensors"
# Bounds no real speech tokenizer comes near (GLM-4-Voice: 12.5 Hz, 16,384 units); past them a config is a mistake.
MAX_FRAME_RATE_HZ, MAX_CODEBOOK_SIZE = 1000.0, 1 << 20
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def device_dtype(asked: str, device: str) -> torch.dtype:
    """The precision a model runs in on `device` ("cuda", "cuda:1", "cpu"): bf16 where asked for and on CUDA;
    float32 on the CPU, where bf16 matrix products are slow and less exact."""
    return DTYPES[asked] if torch.device(device).type == "cuda" else torch.float32


class ModelFileError(ValueError):
    """A model directory that cannot be used: one line that names the problem."""


@dataclass(frozen=True)
class ModelSpec:
    path: str  # where it was read; a build puts its reference there (bundled:text-to-token, gs://...)
    config: dict
    sha256: str  # of the directory (schemas/digest.py): the manifest's model identity and the inference cache key
    architecture: type  # resolved when read, so worker processes unpickle the class itself, not a registry name

    @property
    def frame_rate_hz(self) -> float:
        return float(self.config["frame_rate_hz"])

    @property
    def codebook_size(self) -> int:
        return int(self.config["codebook_size"])

    def dtype(self, device: str) -> torch.dtype:
        return device_dtype(self.config.get("dtype", "float32"), device)

    def normalize(self, text: str) -> str:
        """The text as the model reads it: its normaliser's output, or the text itself."""
        name = self.config["input"].get("normalize")
        return NORMALIZERS[name](text) if name else text

    def encode_text(self, text: str) -> list[int]:
        spec = self.config["input"]
        text = self.normalize(text)
        if spec["kind"] == "bytes":
            return list(text.encode("utf-8"))
        index = {c: i for i, c in enumerate(spec["alphabet"])}
        unknown = spec["unknown_id"]
        return [index.get(c, unknown) for c in text]

    def load(self, device: str = "cpu", directory: str | None = None) -> torch.nn.Module:
        """The model from `directory` (a worker's local copy), or from where it was read."""
        model = self.architecture(**self.config.get("hyperparameters", {}))
        try:
            model.load_state_dict(load_file(str(Path(directory or self.path) / WEIGHTS)), strict=True)
        except (RuntimeError, OSError) as e:
            first_line = str(e).strip().splitlines()[0]
            raise ModelFileError(
                f"{self.path}: weights do not match architecture {self.config['architecture']!r}: {first_line}"
            ) from None
        return model.to(device).eval()


def _check_config(path: str, config) -> None:
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        raise ModelFileError(f"{path}: {CONFIG} format is {found!r}, expected {FORMAT!r}")
    missing = [k for k in ("architecture", "frame_rate_hz", "codebook_size", "input") if k not in config]
    if missing:
        raise ModelFileError(f"{path}: {CONFIG} lacks {', '.join(missing)}")
    if config["architecture"] not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES)) or "none"
        raise ModelFileError(f"{path}: unknown architecture {config['architecture']!r} (known: {known})")
    if not is_int(config["codebook_size"]) or not 0 < config["codebook_size"] <= MAX_CODEBOOK_SIZE:
        raise ModelFileError(f"{path}: codebook_size must be an integer in [1, {MAX_CODEBOOK_SIZE}]")
    rate = config["frame_rate_hz"]
    if not is_number(rate) or not 0 < rate <= MAX_FRAME_RATE_HZ:
        raise ModelFileError(f"{path}: frame_rate_hz must be a number in (0, {MAX_FRAME_RATE_HZ:g}]")
    hyperparameters = config.get("hyperparameters", {})
    if not isinstance(hyperparameters, dict) or not all(
        is_number(v) or isinstance(v, (bool, str)) for v in hyperparameters.values()
    ):
        raise ModelFileError(f"{path}: hyperparameters must map names to finite numbers, booleans or strings")
    if hyperparameters.get("codebook_size", config["codebook_size"]) != config["codebook_size"]:
        # The architecture's output layer is built from the hyperparameter, the units are checked against the other.
        raise ModelFileError(
            f"{path}: hyperparameters say codebook_size {hyperparameters['codebook_size']!r}, "
            f"{CONFIG} says {config['codebook_size']!r}"
        )
    kind = config["input"].get("kind") if isinstance(config["input"], dict) else None
    if kind not in ("bytes", "characters") or (
        kind == "characters" and not {"alphabet", "unknown_id"} <= set(config["input"])
    ):
        raise ModelFileError(
            f"{path}: input must be {{'kind': 'bytes'}} or {{'kind': 'characters', 'alphabet': ..., 'unknown_id': ...}}"
        )
    if config["input"].get("normalize", "") not in ("", *NORMALIZERS):
        raise ModelFileError(
            f"{path}: unknown input normalize {config['input']['normalize']!r} "
            f"(known: {', '.join(sorted(NORMALIZERS))})"
        )
    if config.get("dtype", "float32") not in DTYPES:
        raise ModelFileError(f"{path}: {CONFIG} dtype must be one of {', '.join(DTYPES)}")


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def safetensors_shapes(path: str) -> dict[str, tuple]:
    """The tensors' names and shapes from a safetensors file's header, without reading the tensors."""
    with safe_open(path, framework="pt") as weights:
        return {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}  # noqa: SIM118 (not iterable)


def size_problem(sizes: dict, shapes: dict[str, tuple]) -> str | None:
    """A config's integer size that nothing in the weights could back: larger than both every dimension and the
    number of tensors (a layer count, a width, a vocabulary all show in one or the other). None when all can be."""
    ceiling = max([len(shapes), *(dim for shape in shapes.values() for dim in shape)], default=0)
    for name, value in sizes.items():
        if is_int(value) and value > ceiling:
            return (
                f"{name}={value} is larger than anything in the weights (largest dimension or tensor count {ceiling})"
            )
    return None


def _check_weights(path: str, config: dict, architecture: type) -> None:
    """The architecture built from the hyperparameters must have exactly the weights' names and shapes; checked on
    torch's meta device (no memory), after ruling out sizes nothing in the weights could back."""
    try:
        shapes = safetensors_shapes(str(Path(path) / WEIGHTS))
    except Exception as e:  # a header that is not safetensors'
        raise ModelFileError(f"{path}: {WEIGHTS} is not a safetensors file ({str(e).splitlines()[0]})") from None
    hyperparameters = config.get("hyperparameters", {})
    problem = size_problem(hyperparameters, shapes)
    if problem:
        raise ModelFileError(f"{path}: hyperparameter {problem}")
    try:
        with torch.device("meta"):
            expected = {name: tuple(t.shape) for name, t in architecture(**hyperparameters).state_dict().items()}
    except Exception as e:  # a constructor refusing the hyperparameters
        raise ModelFileError(
            f"{path}: architecture {config['architecture']!r} refuses the hyperparameters: "
            f"{type(e).__name__}: {str(e).splitlines()[0]}"
        ) from None
    if expected != shapes:
        name = min(set(expected) ^ set(shapes) or {n for n in expected if expected[n] != shapes[n]})
        raise ModelFileError(
            f"{path}: weights do not match architecture {config['architecture']!r} with these "
            f"hyperparameters: {name} is {shapes.get(name)} in {WEIGHTS}, {expected.get(name)} "
            "in the model"
        )


def read_model(path: str, sha256: str | None = None) -> ModelSpec:
    """Reads and checks a model directory (config and weights both) without keeping the weights. `sha256`: the
    directory's, when the caller has it already (schemas/digest.py defines it)."""
    folder = Path(path)
    for name in (CONFIG, WEIGHTS):
        if not (folder / name).is_file():
            raise ModelFileError(
                f"{path}: no {name} (a text-to-token model is a directory with {CONFIG} and {WEIGHTS})"
            )
    raw_config = (folder / CONFIG).read_bytes()
    try:
        config = json.loads(raw_config)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path}: {CONFIG} is not valid JSON ({e})") from None
    _check_config(path, config)
    _check_weights(path, config, ARCHITECTURES[config["architecture"]])
    spec = ModelSpec(str(folder), config, sha256 or local_sha256(str(folder)), ARCHITECTURES[config["architecture"]])
    try:
        spec.load("cpu")
    except ModelFileError:
        raise
    except Exception as e:  # a corrupt safetensors file, a constructor refusing the hyperparameters
        raise ModelFileError(f"{path}: cannot load: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    return spec


def write_model(path: str, config: dict, model: torch.nn.Module) -> None:
    """Saves a model in this format (used by training scripts and tests)."""
    _check_config(path, config)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS))
