"""Build options: defaults, the TOML config file, the command line, and validation.

Precedence is command line > `--config` file > defaults; the effective options are written to the manifest.
"""
from __future__ import annotations

import argparse
import dataclasses
import tomllib
from dataclasses import dataclass, field

CONTEXTS = ("document", "related")
SPEECH_SOURCES = ("text-to-token", "tts")
COMPRESSIONS = ("none", "zstd")
DEVICES = ("cpu", "cuda")
# Bucket exponents outside this range make rows too short to hold a sentence or too long for any model.
MIN_EXPONENT, MAX_EXPONENT = 4, 20


class ConfigError(ValueError):
    """A bad option or input, reported to the user as one line before any work starts."""


@dataclass(frozen=True)
class BuildConfig:
    output: str
    inputs: tuple[str, ...] = ()  # empty: the bundled sample corpus
    tokenizer: str | None = None  # None: the bundled SentencePiece model
    speech_ratio: float = 0.3
    span_lambda: float = 10.0
    speech_source: str = "text-to-token"
    text_to_token_model: str | None = None  # None: the bundled student (assets/text_to_token)
    device: str = "cpu"
    cache: str | None = None
    context: str = "document"
    knn: int = 40
    exact_search_max: int = 50_000
    partition_size: int = 100_000
    semantic_dedup: float | None = None
    embedder: str | None = None  # None: the bundled all-MiniLM-L6-v2
    min_bucket: int = 8
    max_bucket: int = 13
    shard_tokens: int = 1 << 20
    seed: int = 0
    compression: str = "none"
    text_field: str = "text"
    id_field: str = "id"
    overwrite: bool = False
    config: str | None = field(default=None, compare=False)

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {"inputs": list(self.inputs)}


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """Our flags; their defaults are SUPPRESS so that a config file can fill what the command line leaves out."""
    s = argparse.SUPPRESS
    parser.add_argument("--input", dest="inputs", action="append", default=s, help="file pattern (repeatable)")
    parser.add_argument("--output", default=s, help="output directory (local, gs://, s3://)")
    parser.add_argument("--tokenizer", default=s, help="SentencePiece model [bundled]")
    parser.add_argument("--speech-ratio", type=float, default=s,
                        help="share of words turned into speech (0: a text-only build) [0.3]")
    parser.add_argument("--span-lambda", type=float, default=s, help="mean speech span length in words [10]")
    parser.add_argument("--speech-source", default=s, help="text-to-token|tts [text-to-token]")
    parser.add_argument("--text-to-token-model", default=s, help="text-to-token model file [bundled]")
    parser.add_argument("--device", default=s, help="where the text-to-token model runs: cpu|cuda [cpu]")
    parser.add_argument("--cache", default=s,
                        help="inference cache location (speech units, embeddings), kept between builds [none]")
    parser.add_argument("--context", default=s, help="document|related [document]")
    parser.add_argument("--knn", type=int, default=s, help="neighbours per document in the kNN graph [40]")
    parser.add_argument("--exact-search-max", type=int, default=s,
                        help="partitions up to this size use exact search, larger ones HNSW [50000]")
    parser.add_argument("--partition-size", type=int, default=s, help="documents per ordering partition [100000]")
    parser.add_argument("--semantic-dedup", type=float, default=s,
                        help="drop a document more similar than this to a kept neighbour [off]")
    parser.add_argument("--embedder", default=s, help="Hugging Face encoder directory [all-MiniLM-L6-v2]")
    parser.add_argument("--min-bucket", type=int, default=s, help="log2 of the shortest bucket [8]")
    parser.add_argument("--max-bucket", type=int, default=s, help="log2 of the longest bucket [13]")
    parser.add_argument("--shard-tokens", type=int, default=s, help="tokens per shard, about [1048576]")
    parser.add_argument("--seed", type=int, default=s, help="seed for every random choice [0]")
    parser.add_argument("--compression", default=s, help="shard buffer compression: none|zstd [none]")
    parser.add_argument("--text-field", default=s, help="JSONL/Parquet field holding the text [text]")
    parser.add_argument("--id-field", default=s, help="JSONL/Parquet field holding the id [id]")
    parser.add_argument("--overwrite", action="store_true", default=s, help="replace a complete dataset in --output")
    parser.add_argument("--config", default=s, help="TOML file with the same options")


def _read_toml(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    known = {f.name for f in dataclasses.fields(BuildConfig)} - {"config"}
    options = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        name = "inputs" if name == "input" else name
        if name not in known:
            raise ConfigError(f"config file {path}: unknown option {key!r}")
        options[name] = value
    if isinstance(options.get("inputs"), str):
        options["inputs"] = [options["inputs"]]
    return options


def config_from_args(args: argparse.Namespace) -> BuildConfig:
    """Merge command line over config file over defaults, then validate."""
    given = vars(args).copy()
    options = _read_toml(given["config"]) if "config" in given else {}
    options.update(given)
    if "output" not in options:
        raise ConfigError("--output is required")
    field_types = {f.name: f.type for f in dataclasses.fields(BuildConfig)}
    for name, value in options.items():
        _check_type(name, value, field_types[name])
    options["inputs"] = tuple(options.get("inputs", ()))
    config = BuildConfig(**options)
    validate(config)
    return config


def _check_type(name: str, value, annotation: str) -> None:
    flag = "--" + name.replace("_", "-")
    expected = {"int": int, "float": (int, float), "bool": bool, "str": str, "str | None": str,
                "float | None": (int, float)}.get(annotation)
    if name == "inputs":
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, expected) and not (expected != bool and isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{flag}: expected {annotation}, got {value!r}")


def validate(config: BuildConfig) -> None:
    """Checks that need no file access; inputs and models are checked when the pipeline is built."""
    if config.context not in CONTEXTS:
        raise ConfigError(f"--context must be one of {', '.join(CONTEXTS)}, got {config.context!r}")
    if config.speech_source not in SPEECH_SOURCES:
        raise ConfigError(f"--speech-source must be one of {', '.join(SPEECH_SOURCES)}, got {config.speech_source!r}")
    if config.device not in DEVICES:
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, got {config.device!r}")
    if config.compression not in COMPRESSIONS:
        raise ConfigError(f"--compression must be one of {', '.join(COMPRESSIONS)}, got {config.compression!r}")
    if not 0.0 <= config.speech_ratio < 1.0:
        raise ConfigError(f"--speech-ratio must be in [0, 1), got {config.speech_ratio}")
    if not config.span_lambda > 0:
        raise ConfigError(f"--span-lambda must be positive, got {config.span_lambda}")
    for name in ("min_bucket", "max_bucket"):
        value = getattr(config, name)
        if not MIN_EXPONENT <= value <= MAX_EXPONENT:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} must be between {MIN_EXPONENT} and {MAX_EXPONENT}, got {value}")
    if config.min_bucket > config.max_bucket:
        raise ConfigError(f"--min-bucket ({config.min_bucket}) is larger than --max-bucket ({config.max_bucket})")
    if config.shard_tokens <= 0:
        raise ConfigError(f"--shard-tokens must be positive, got {config.shard_tokens}")
    if config.seed < 0:
        raise ConfigError(f"--seed must be non-negative, got {config.seed}")
    if not config.text_field or not config.id_field:
        raise ConfigError("--text-field and --id-field must not be empty")
    for name in ("knn", "exact_search_max", "partition_size"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(config, name)}")
    if config.semantic_dedup is not None and not -1.0 <= config.semantic_dedup <= 1.0:
        raise ConfigError(f"--semantic-dedup is a cosine similarity in [-1, 1], got {config.semantic_dedup}")
    if config.semantic_dedup is not None and config.context != "related":
        raise ConfigError("--semantic-dedup works on the kNN graph of --context related")
