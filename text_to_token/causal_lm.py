"""A lab's own autoregressive text-to-token model: a Hugging Face causal LM (text prompt in, speech-unit ids out until
an end token), as GLM-4-Voice's and CosyVoice's LMs are.

A model directory in Hugging Face's format (config.json, safetensors weights, tokenizer files) plus
`vocaloom-causal-lm.json`:
  format                    "vocaloom-causal-lm/1"
  prompt                    the model's input, with "{text}" where the span's words go
  unit_offset, unit_count   generated ids unit_offset .. unit_offset + unit_count - 1 are speech units 0 .. count - 1
  end_token                 the id that ends a span's units
  frame_rate_hz             speech units per second of speech
  max_units_per_character   a span of n characters may have at most ceil(n * this) units: past it, a dead letter
  dtype                     optional: "float32" (default) or "bfloat16" (on CUDA only; recorded in the manifest)
Loaded by transformers from local files only, weights from safetensors only (never pickle). Generation is greedy
with a KV cache (transformers' generate), in batches with left padding.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from vocaloom.schemas.digest import local_sha256
from vocaloom.text_to_token.failed import Failed
from vocaloom.text_to_token.model_file import DTYPES, device_dtype, is_int, is_number

SETTINGS, FORMAT = "vocaloom-causal-lm.json", "vocaloom-causal-lm/1"
HF_CONFIG = "config.json"
MAX_FRAME_RATE_HZ, MAX_UNITS_PER_CHARACTER = 1000.0, 1000.0


class CausalLMError(ValueError):
    """A causal LM directory that cannot be used: one line that names the problem."""


@dataclass(frozen=True)
class CausalLMSpec:
    path: str  # where it was read; a build puts its reference there
    settings: dict  # vocaloom-causal-lm.json
    sha256: str  # of the directory (schemas/digest.py): the manifest's model identity and the inference cache key
    kind = "causal-lm"

    @property
    def frame_rate_hz(self) -> float:
        return float(self.settings["frame_rate_hz"])

    @property
    def codebook_size(self) -> int:
        return int(self.settings["unit_count"])

    def dtype(self, device: str) -> torch.dtype:
        return device_dtype(self.settings.get("dtype", "float32"), device)

    def unit_cap(self, text: str) -> int:
        return max(1, math.ceil(len(text) * self.settings["max_units_per_character"]))

    def load(self, device: str = "cpu", directory: str | None = None):
        """(model, tokenizer) from `directory` (a worker's local copy), or from where it was read."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = directory or self.path
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token_id = self.settings["end_token"]
        model = AutoModelForCausalLM.from_pretrained(
            folder, local_files_only=True, use_safetensors=True, dtype=self.dtype(device)
        )
        return model.to(device).eval(), tokenizer  # type: ignore[arg-type]  # transformers types `to` as a decorator's

    def generate(self, model, tokenizer, texts: list[str]) -> list[list[int] | Failed]:
        """Each text's speech units, greedy, the batch left-padded; a Failed reason for a text without them."""
        from transformers import GenerationConfig

        s = self.settings
        caps = [self.unit_cap(text) for text in texts]
        inputs = tokenizer(
            [s["prompt"].replace("{text}", text) for text in texts],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        ).to(model.device)
        # Greedy whatever the directory's own generation_config.json says; one token past the longest cap lets a
        # row that ends right at its cap show its end token.
        config = GenerationConfig(
            do_sample=False,
            num_beams=1,
            max_new_tokens=max(caps) + 1,
            use_cache=True,
            eos_token_id=s["end_token"],
            pad_token_id=tokenizer.pad_token_id,
        )
        with torch.inference_mode():
            generated = model.generate(**inputs, generation_config=config)[:, inputs["input_ids"].shape[1] :]
        return [self._units(row.tolist(), cap) for row, cap in zip(generated.cpu(), caps, strict=True)]

    def _units(self, ids: list[int], cap: int) -> list[int] | Failed:
        end, offset, count = self.settings["end_token"], self.settings["unit_offset"], self.settings["unit_count"]
        if end not in ids[: cap + 1]:
            return Failed(f"no end token within the length cap of {cap} units")
        units = ids[: ids.index(end)]
        strays = [i for i in units if not offset <= i < offset + count]
        if strays:
            return Failed(f"generated id {strays[0]}, which is not a speech unit [{offset}, {offset + count})")
        return [i - offset for i in units]


def is_causal_lm(path: str) -> bool:
    return (Path(path) / SETTINGS).is_file()


def read_causal_lm(path: str, sha256: str | None = None) -> CausalLMSpec:
    """Reads and checks the directory's settings against its Hugging Face config and weights header, loading no
    weights; raises CausalLMError with one line."""
    folder = Path(path)
    settings = _read_json(folder / SETTINGS, path)
    hf_config = _read_json(folder / HF_CONFIG, path) if (folder / HF_CONFIG).is_file() else None
    if hf_config is None:
        raise CausalLMError(f"{path}: no {HF_CONFIG} (a causal LM directory is in Hugging Face's format)")
    if not any(folder.glob("*.safetensors")):
        raise CausalLMError(f"{path}: no .safetensors weights (vocaloom loads no pickled weights)")
    _check_settings(path, settings, hf_config)
    return CausalLMSpec(str(folder), settings, sha256 or local_sha256(str(folder)))


def _read_json(file: Path, path: str) -> dict:
    try:
        value = json.loads(file.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CausalLMError(f"{path}: {file.name} is not valid JSON ({e})") from None
    except OSError as e:
        raise CausalLMError(f"{path}: {file.name} cannot be read ({e.strerror or e})") from None
    if not isinstance(value, dict):
        raise CausalLMError(f"{path}: {file.name} is not a JSON object")
    return value


def _check_settings(path: str, s: dict, hf_config: dict) -> None:
    where = f"{path}: {SETTINGS}"
    if s.get("format") != FORMAT:
        raise CausalLMError(f"{where}: format is {s.get('format')!r}, expected {FORMAT!r}")
    missing = [
        k
        for k in ("prompt", "unit_offset", "unit_count", "end_token", "frame_rate_hz", "max_units_per_character")
        if k not in s
    ]
    if missing:
        raise CausalLMError(f"{where}: lacks {', '.join(missing)}")
    if not isinstance(s["prompt"], str) or "{text}" not in s["prompt"]:
        raise CausalLMError(f"{where}: prompt must be a string holding {{text}}")
    vocab = hf_config.get("vocab_size")
    if not is_int(vocab) or vocab <= 0:
        raise CausalLMError(f"{path}: {HF_CONFIG} has no positive integer vocab_size")
    offset, count, end = s["unit_offset"], s["unit_count"], s["end_token"]
    if not all(map(is_int, (offset, count, end))) or offset < 0 or count < 1 or offset + count > vocab:
        raise CausalLMError(
            f"{where}: unit_offset and unit_count must be integers with the units inside the vocabulary of {vocab}"
        )
    if not 0 <= end < vocab or offset <= end < offset + count:
        raise CausalLMError(f"{where}: end_token must be an id of the vocabulary of {vocab} outside the units")
    for name, ceiling in (("frame_rate_hz", MAX_FRAME_RATE_HZ), ("max_units_per_character", MAX_UNITS_PER_CHARACTER)):
        value = s[name]
        if not is_number(value) or not 0 < value <= ceiling:
            raise CausalLMError(f"{where}: {name} must be a number in (0, {ceiling:g}]")
    if s.get("dtype", "float32") not in DTYPES:
        raise CausalLMError(f"{where}: dtype must be one of {', '.join(DTYPES)}")
