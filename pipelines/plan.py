"""What a build is to do, checked before the pipeline starts: the options validated, the inputs matched, the
tokenizer, text-to-token model and embedder loaded (BuildPlan, by `prepare`), and the manifest's base. Everything
that can be wrong with the options, inputs or models fails here, in one line, before any work."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

import vocaloom.transforms  # noqa: F401  (first: it imports Beam quietly)

# isort: split
import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from vocaloom import assets
from vocaloom.pipelines.filesystems import require_filesystems
from vocaloom.pipelines.inputs import match_inputs
from vocaloom.schemas.config import PATH_OPTIONS, BuildConfig, ConfigError
from vocaloom.schemas.manifest import FORMAT, utc_now
from vocaloom.schemas.paths import is_local
from vocaloom.schemas.shard import TEMP_DIR
from vocaloom.schemas.sources import base_source, split_source
from vocaloom.schemas.vocab import Vocabulary
from vocaloom.transforms.artifacts import Artifact, ArtifactError, localize, read_artifact
from vocaloom.transforms.inference.cache import cache_files
from vocaloom.transforms.text.tokenize import load_sentencepiece
from vocaloom.transforms.worker_setup import BuildStops

if TYPE_CHECKING:
    from vocaloom.text_to_token.causal_lm import CausalLMSpec
    from vocaloom.text_to_token.model_file import ModelSpec
    from vocaloom.transforms.related.embed import Embedder
    from vocaloom.transforms.speech.speech_handlers import TeacherSpec


@dataclass(frozen=True)
class BuildPlan:
    """A validated config with its inputs matched and its tokenizer and text-to-token model loaded."""

    config: BuildConfig
    inputs: list[dict]  # [{path, bytes, source}]; the commit adds each one's sha256
    unreadable: list[dict]  # [{path, reason}]: matched, left out (--skip-unreadable)
    tokenizer: dict  # {path, sha256, text_size}: path is the reference the user gave (or bundled:tokenizer)
    tokenizer_file: Artifact  # what each worker loads
    vocab: Vocabulary
    model: ModelSpec | CausalLMSpec | TeacherSpec | None  # None: a text-only build
    cache_files: list[str]  # inference cache entries for this model, found before the build
    embedder: Embedder | None  # the encoder of --context related
    provenance: dict | None = None  # who built it, how, when (manifest only): set by run()
    write_dir: str | None = None  # where the dataset is written, if not --output itself (pipelines/output_dir.py)
    generation: int = 0  # > 0: a replacement in a bucket, its files under generations/<n>/ (pipelines/output_dir.py)

    @property
    def temp_dir(self) -> str:
        return FileSystems.join(self.write_dir or self.config.output, TEMP_DIR)

    def sources_base(self) -> dict:
        """Each source's patterns and speech ratio; the commit adds what the build read and wrote of it."""
        config = self.config
        patterns: dict[str, list[str]] = {source: [] for source in config.sources}
        for given in config.inputs:  # the bundled sample's when none was given
            source, pattern = split_source(given)
            patterns[source].append(pattern)
        return {
            source: {
                "patterns": patterns[source],
                "speech_ratio": config.source_speech_ratio(source) if self.model else 0.0,
                **({"long_documents_of": base_source(source)} if base_source(source) != source else {}),
            }
            for source in config.sources
        }

    @property
    def source_of_input(self) -> dict[str, int]:
        """Each input file's source, as an index into config.sources."""
        return {item["path"]: self.config.sources.index(item["source"]) for item in self.inputs}

    @property
    def build_stops(self) -> BuildStops:
        return BuildStops(FileSystems.join(self.temp_dir, "build-stops"))

    def manifest_base(self) -> dict:
        speech = None
        if self.model:
            speech = {
                "source": self.config.speech_source,
                "model": self.model.path,
                "sha256": self.model.sha256,
                "frame_rate_hz": self.model.frame_rate_hz,
                "codebook_size": self.model.codebook_size,
                "speech_ratio": self.config.speech_ratio,
                "span_lambda": self.config.span_lambda,
                "speech_ratio_by_source": {
                    source: self.config.source_speech_ratio(source) for source in self.config.sources
                },
            }
            if hasattr(self.model, "dtype"):  # the precision its units were made in
                from vocaloom.transforms.speech.speech_handlers import precision_name

                speech["dtype"] = precision_name(self.model, self.config.device)
        return {
            "format": FORMAT,
            "generation": self.generation,
            "provenance": self.provenance,
            "config": self.config.to_json(),
            "sources": self.sources_base(),
            "inputs": self.inputs,
            "inputs_unreadable": self.unreadable,
            "tokenizer": self.tokenizer,
            "speech": speech,
            "vocab": self.vocab.to_json(),
            "ordering": {
                "method": "in-context-pretraining",
                "embedder": self.embedder.artifact.location,
                "embedder_sha256": self.embedder.artifact.sha256,
            }
            if self.embedder
            else None,
        }


# The largest SentencePiece model read: real ones are a few MB; protobuf cannot parse one of 2 GiB (SentencePiece
# dies of it), and the file is read whole.
MAX_TOKENIZER_BYTES = 256 << 20


def load_tokenizer(location: str, speech_size: int) -> tuple[Artifact, dict, Vocabulary]:
    try:
        artifact = read_artifact(location, MAX_TOKENIZER_BYTES)
        sp = load_sentencepiece(localize(artifact))
    except ArtifactError as e:
        raise ConfigError(f"tokenizer {e}") from None
    except Exception as e:
        raise ConfigError(f"tokenizer {location!r} cannot be loaded as a SentencePiece model: {e}") from None
    eos = sp.eos_id()
    vocab = Vocabulary.build(sp.get_piece_size(), eos if eos >= 0 else None, speech_size)
    return artifact, {"path": location, "sha256": artifact.sha256, "text_size": vocab.text_size}, vocab


def load_speech_model(config: BuildConfig) -> ModelSpec | CausalLMSpec | TeacherSpec | None:
    if not config.speaks:
        return None
    # Speech and ordering import torch, transformers and faiss: only the builds that use them pay for the import.
    from vocaloom.text_to_token.causal_lm import CausalLMError, is_causal_lm, read_causal_lm
    from vocaloom.text_to_token.model_file import ModelFileError, read_model
    from vocaloom.transforms.inference.handler import resolve_device
    from vocaloom.transforms.speech.speech_handlers import read_teacher

    try:
        if config.speech_source == "tts":
            return read_teacher(read_artifact(assets.bundled("speech-tokenizer")))
        artifact = read_artifact(config.text_to_token_model)
        local = localize(artifact)
        read = read_causal_lm if is_causal_lm(local) else read_model
        spec = dataclasses.replace(read(local, artifact.sha256), path=artifact.location)
        resolve_device(config.device)
    except (ModelFileError, CausalLMError, RuntimeError, OSError) as e:  # ArtifactError is a RuntimeError
        raise ConfigError(str(e)) from None
    return spec


def provenance(argv: list[str], options: PipelineOptions) -> dict:
    """What a build was made by and from, beside its config: kept in the manifest, never in a shard's bytes (the
    shards of the same inputs and options are the same bytes whenever and wherever they are built). `finished` is
    added when the manifest is written."""
    from vocaloom import __version__

    return {
        "vocaloom": __version__,
        "apache_beam": beam.__version__,
        "runner": options.view_as(StandardOptions).runner,
        "argv": list(argv),
        "started": utc_now(),
    }


def prepare(config: BuildConfig) -> BuildPlan:
    """Fills the bundled defaults in, matches inputs and loads the tokenizer."""
    config = dataclasses.replace(config, inputs=config.inputs or (assets.bundled("sample"),))
    require_filesystems(*config.inputs, *(getattr(config, name) for name in PATH_OPTIONS))
    check_cache(config.cache)
    inputs, unreadable = match_inputs(config.inputs, config.output, config.skip_unreadable)
    model = load_speech_model(config)
    tokenizer_file, tokenizer, vocab = load_tokenizer(config.tokenizer, model.codebook_size if model else 0)
    cached = cache_files(config.cache, model.sha256) if model else []
    return BuildPlan(config, inputs, unreadable, tokenizer, tokenizer_file, vocab, model, cached, load_embedder(config))


def check_cache(cache: str | None) -> None:
    """A local --cache that cannot hold entries is found now, not when the first are written after the model work."""
    if not cache or not is_local(cache):
        return
    try:
        os.makedirs(cache, exist_ok=True)
        with tempfile.TemporaryFile(dir=cache):
            pass
    except OSError as e:  # a file, no permission, a read-only or pseudo filesystem (/proc)
        raise ConfigError(f"--cache {cache} cannot hold the inference cache: {e.strerror or e}") from None


def load_embedder(config: BuildConfig) -> Embedder | None:
    if config.context != "related":
        return None
    from vocaloom.transforms.related.embed import read_embedder

    try:
        embedder = read_embedder(config.embedder)
    except (ValueError, OSError, ArtifactError) as e:  # OSError: a file that is not a regular one (FileRefused)
        raise ConfigError(str(e)) from None
    return embedder._replace(cache_files=tuple(cache_files(config.cache, embedder.cache_identity)))
