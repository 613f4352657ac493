"""`vocaloom build`: read text, tokenise, deduplicate, decompose into buckets, write checksummed Arrow shards.

Everything that can be wrong with the options, inputs or models is found by `prepare` before the pipeline starts.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import os
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import vocaloom.transforms  # noqa: F401  (first: it imports Beam quietly)

# isort: split
import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineState

from vocaloom import assets
from vocaloom.pipelines.filesystems import require_filesystems
from vocaloom.pipelines.guest import as_guest
from vocaloom.pipelines.inputs import match_inputs
from vocaloom.pipelines.output_dir import TEMP_DIR, claim_output
from vocaloom.pipelines.worker_logs import local_runner
from vocaloom.schemas.config import (
    PATH_OPTIONS,
    ArgumentParser,
    BuildConfig,
    ConfigError,
    add_build_arguments,
    config_from_args,
)
from vocaloom.schemas.manifest import FORMAT, MANIFEST, parse_manifest, utc_now
from vocaloom.schemas.paths import is_local, plain
from vocaloom.schemas.sources import base_source, split_source
from vocaloom.schemas.vocab import Vocabulary
from vocaloom.transforms.artifacts import Artifact, ArtifactError, localize, read_artifact
from vocaloom.transforms.counting import COUNTS, SumCounts
from vocaloom.transforms.documents import DocTokens
from vocaloom.transforms.inference_cache import cache_files, model_cache_dir
from vocaloom.transforms.io.commit import CommitDataset
from vocaloom.transforms.io.fingerprint import FingerprintInputs
from vocaloom.transforms.io.read import REJECTS, UNREADABLE, ReadCorpus, ReadOptions
from vocaloom.transforms.io.records import Reject
from vocaloom.transforms.io.rejects import WriteRecordFiles
from vocaloom.transforms.io.shard_writer import WriteShards
from vocaloom.transforms.related.embed import EMBED_TEXT_TOKENS
from vocaloom.transforms.text.dataset_decomposition import LEFTOVERS, DecomposeDocuments, DecomposeSegments
from vocaloom.transforms.text.dedup import ExactDedup, partition_count
from vocaloom.transforms.text.long_documents import LongDocuments
from vocaloom.transforms.text.packing import PackLeftovers
from vocaloom.transforms.text.tokenize import Interleaving, TokenizeFn, load_sentencepiece
from vocaloom.transforms.worker_setup import SetupFailures, WorkerSetupError

if TYPE_CHECKING:
    from vocaloom.text_to_token.causal_lm import CausalLMSpec
    from vocaloom.text_to_token.model_file import ModelSpec
    from vocaloom.transforms.related.embed import Embedder
    from vocaloom.transforms.speech.speech_handlers import TeacherSpec

# Under TEMP_DIR (pipelines/output_dir.py): the tokenizer's spill files (each document's text tokens), which the
# progress bars count.
TOKEN_SPILL = "spill/tokens"


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
    def setup_failures(self) -> SetupFailures:
        return SetupFailures(FileSystems.join(self.temp_dir, "setup-failures"))

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
    from vocaloom.transforms.speech.speech_handlers import read_teacher, resolve_device

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
    return embedder._replace(cache_files=tuple(cache_files(config.cache, embedder.sha256)))


def build_pipeline(p: beam.Pipeline, plan: BuildPlan):
    """The mission statement, top to bottom. Returns the PCollection holding the committed manifest."""
    config, temp = plan.config, plan.temp_dir
    spill, records_dir = FileSystems.join(temp, "spill"), FileSystems.join(temp, "records")
    interleaving = (
        Interleaving(tuple(map(config.source_speech_ratio, config.sources)), config.span_lambda, config.seed)
        if plan.model
        else None
    )
    read = p | "ReadCorpus" >> ReadCorpus(
        [i["path"] for i in plan.inputs],
        ReadOptions(config.text_field, config.id_field, config.max_record_bytes, config.skip_unreadable),
        plan.setup_failures,
        plan.source_of_input,
    )
    tokenized = read.documents | "Tokenize" >> beam.ParDo(
        TokenizeFn(
            plan.tokenizer_file,
            plan.vocab.eos,
            FileSystems.join(temp, TOKEN_SPILL),
            interleaving,
            plan.setup_failures,
            plan.source_of_input,
            EMBED_TEXT_TOKENS if plan.embedder else 0,
        )
    )
    unique = tokenized | "ExactDedup" >> ExactDedup(
        DocTokens, spill, partition_count(sum(i["bytes"] for i in plan.inputs))
    )
    docs, counts = unique.kept, [read[COUNTS], unique[COUNTS]]
    records = [
        read[REJECTS]
        | "RejectsToJson" >> beam.Map(Reject.to_json)
        | "WriteRejects" >> WriteRecordFiles(records_dir, "rejects")
    ]
    if plan.model:
        from vocaloom.transforms.speech.speech_conversion import DEAD_LETTER, ConvertSpans, speech_spans
        from vocaloom.transforms.speech.speech_handlers import precision_name, speech_handler, units_identity
        from vocaloom.transforms.speech.weave import Weave

        identity = units_identity(plan.model.sha256, precision_name(plan.model, config.device))
        speech = (
            docs
            | "SpeechSpans" >> beam.FlatMap(speech_spans, identity)
            | "ConvertSpans"
            >> ConvertSpans(
                speech_handler(plan.model, config.device, plan.setup_failures, config.batch_characters),
                plan.cache_files,
                cache_dir(config, plan.model.sha256),
                plan.model.codebook_size,
            )
        )
        woven = (docs, speech["units"]) | "WeaveSpeech" >> Weave(
            plan.tokenizer_file, plan.vocab, spill, plan.setup_failures
        )
        docs = woven.docs
        counts += [speech[COUNTS], woven[COUNTS]]
        records.append(speech[DEAD_LETTER] | "WriteDeadLetters" >> WriteRecordFiles(records_dir, "dead_letter"))
    long_documents = LongDocuments(config.long_documents, config.sources) if config.long_documents else None
    if plan.embedder:
        rows, ordering_counts = related_rows(unique.kept, docs, plan, long_documents)
        counts += ordering_counts
    else:
        if long_documents:
            docs = docs | "LongDocumentsApart" >> beam.Map(long_documents.batch)
        rows, decomposition_counts = document_rows(docs, config)
        counts += decomposition_counts
    shards = rows | "WriteShards" >> WriteShards(
        FileSystems.join(temp, "shards"),
        config.shard_tokens,
        config.compression,
        spill,
        plan.vocab.to_json(),
        config.sources,
    )
    totals = tuple(counts) | "SumCounts" >> SumCounts()
    record_files = tuple(records) | "RecordFiles" >> beam.Flatten()
    fingerprints = p | "FingerprintInputs" >> FingerprintInputs([i["path"] for i in plan.inputs])
    return (shards, record_files, read[UNREADABLE], fingerprints, totals) | "CommitDataset" >> CommitDataset(
        plan.write_dir or config.output, temp, plan.manifest_base()
    )


def document_rows(docs, config: BuildConfig):
    """`--context document`: each document cut into rows (Dataset Decomposition), what is left over packed."""
    decomposed = docs | "DatasetDecomposition" >> DecomposeDocuments(
        config.min_bucket, config.max_bucket, config.seed, config.remainders == "pack"
    )
    if config.remainders == "drop":
        return decomposed.rows, [decomposed[COUNTS]]
    packed = (decomposed.rows, decomposed[LEFTOVERS]) | "PackLeftovers" >> PackLeftovers(
        config.min_bucket, config.max_bucket, config.seed
    )
    return packed["rows"], [decomposed[COUNTS], packed[COUNTS]]


def related_rows(text_docs, docs, plan: BuildPlan, long_documents: LongDocuments | None):
    """`--context related`: embed the kept documents' text, order them (In-Context Pretraining), decompose path
    segments. `text_docs` still hold only text (before speech is woven in); `docs` are what rows are made of."""
    from vocaloom.transforms.inference_cache import CachedInference, OneByOne
    from vocaloom.transforms.related.embed import (
        EMBEDDING_COUNTERS,
        EmbedderHandler,
        EmbeddingTextFn,
        keyed_embedding,
        vector_codec,
    )
    from vocaloom.transforms.related.ordering import OrderDocuments, PlaceDocuments

    config, embedder = plan.config, plan.embedder
    assert embedder is not None  # --context related loads one
    embedded = (
        text_docs
        | "EmbeddingText" >> beam.ParDo(EmbeddingTextFn(embedder.sha256))
        | "Embed"
        >> CachedInference(
            EmbedderHandler(embedder.artifact, plan.setup_failures),
            list(embedder.cache_files),
            cache_dir(config, embedder.sha256),
            EMBEDDING_COUNTERS,
            OneByOne(),
            vector_codec(embedder.dim),
        )
    )
    embeddings = embedded["outputs"] | "KeyEmbeddings" >> beam.Map(keyed_embedding)
    order = embeddings | "InContextPretraining" >> OrderDocuments(
        config.knn, config.exact_search_max, config.partition_size, config.seed, config.semantic_dedup
    )
    placed = (docs, order["positions"]) | "PlaceDocuments" >> PlaceDocuments()
    segments = placed.placed
    if long_documents:
        segments = segments | "LongDocumentsApart" >> beam.Map(long_documents.placed)
    rows = segments | "RelatedDecomposition" >> DecomposeSegments(config.min_bucket, config.max_bucket, config.seed)
    return rows.rows, [embedded[COUNTS], order[COUNTS], placed[COUNTS], rows[COUNTS]]


def cache_dir(config: BuildConfig, model_sha256: str) -> str | None:
    """The --cache folder of the model whose identity is `model_sha256`, or None (no --cache)."""
    return model_cache_dir(config.cache, model_sha256) if config.cache else None


def beam_options_parser() -> argparse.ArgumentParser:
    """Beam's own parser of pipeline options (every PipelineOptions subclass's flags), built as Beam builds it when a
    pipeline reads its options, but with errors that are ConfigErrors."""
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    class Parser(_BeamArgumentParser):
        def error(self, message: str):
            raise ConfigError(f"Beam option: {message}")

    parser = Parser(allow_abbrev=False)
    for options in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        options._add_argparse_args(parser)
    return parser


def long_flags(parser: argparse.ArgumentParser) -> list[str]:
    return [flag for flag in parser._option_string_actions if flag.startswith("--")]


def check_beam_flags(args: list[str], ours: list[str]) -> None:
    """Raises ConfigError naming the first of `args` that is not a Beam flag, and the flag it resembles among
    `ours` and Beam's: Beam itself only logs "Discarding unparseable args" and runs on its defaults."""
    beam = beam_options_parser()
    _, rest = beam.parse_known_args(args)
    if not rest:
        return
    name = rest[0].split("=", 1)[0]
    if not name.startswith("-"):
        raise ConfigError(f"unexpected argument {rest[0]!r}")
    known = [*ours, *long_flags(beam)]
    spelled = [flag for flag in (name.replace("_", "-"), name.replace("-", "_")) if flag in known]
    similar = spelled or difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    hint = f" (did you mean {similar[0]}?)" if similar else ""
    raise ConfigError(f"unknown flag {name}{hint}: it is neither vocaloom's nor Beam's")


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """Beam's own flags; without --runner, the in-process FnApiRunner (Beam's default would fetch Prism)."""
    options = PipelineOptions(beam_args)
    standard = options.view_as(StandardOptions)
    if standard.runner is None:
        standard.runner = "FnApiRunner"
    check_runner(options)
    return options


# What Dataflow needs to start a job; Beam says it in a traceback once the pipeline runs.
DATAFLOW_NEEDS = ("project", "region", "temp_location")
JOB_ENDPOINT_SECONDS = 10


def check_runner(options: PipelineOptions) -> None:
    """Raises ConfigError for a runner Beam does not know, or one without what it needs to start: before any work."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions
    from apache_beam.runners.runner import create_runner

    name = options.view_as(StandardOptions).runner
    try:
        runner = create_runner(name)
    except ValueError:
        raise ConfigError(
            f"unknown --runner {name!r}: FnApiRunner, DirectRunner, PrismRunner, FlinkRunner, "
            "SparkRunner, DataflowRunner or a PipelineRunner's qualified name"
        ) from None
    except ImportError as e:
        raise ConfigError(f"--runner {name} cannot be loaded: {e}") from None
    kind = type(runner).__name__
    if kind == "DataflowRunner":
        gcp = options.view_as(GoogleCloudOptions)
        missing = [f"--{need}" for need in DATAFLOW_NEEDS if not getattr(gcp, need)]
        if missing:
            raise ConfigError(f"--runner DataflowRunner needs {', '.join(missing)}")
    if kind in ("FlinkRunner", "SparkRunner", "PortableRunner"):
        check_job_server(kind, options)


def check_job_server(kind: str, options: PipelineOptions) -> None:
    """Portable runners run through a job server: one given (--job_endpoint, which must answer), or for Flink and
    Spark one Beam starts from a jar with Java; their workers come from --environment_type, whose EXTERNAL and
    PROCESS need --environment_config."""
    from apache_beam.options.pipeline_options import PortableOptions

    portable, flags = options.view_as(PortableOptions), options.get_all_options()
    if portable.job_endpoint and portable.job_endpoint != "embed":
        host, _, port = portable.job_endpoint.rpartition(":")
        try:
            socket.create_connection((host or "localhost", int(port)), timeout=JOB_ENDPOINT_SECONDS).close()
        except (OSError, ValueError) as e:  # else Beam waits for it without end
            reason = getattr(e, "strerror", None) or str(e)
            raise ConfigError(
                f"--job_endpoint {portable.job_endpoint}: no job server answers there ({reason})"
            ) from None
    elif kind == "PortableRunner":
        raise ConfigError("--runner PortableRunner needs --job_endpoint (HOST:PORT of a running job server)")
    elif not portable.job_endpoint:
        jar_flag = "flink_job_server_jar" if kind == "FlinkRunner" else "spark_job_server_jar"
        jar = flags.get(jar_flag)
        if jar and is_local(jar) and not os.path.isfile(plain(jar)):
            raise ConfigError(f"--{jar_flag} {jar}: no such file")
        if not shutil.which("java"):
            raise ConfigError(
                f"--runner {kind} starts a job server, which needs Java on PATH (or give --job_endpoint "
                "of a running one)"
            )
    environment = (portable.environment_type or "").upper()
    if (
        environment in ("EXTERNAL", "PROCESS")
        and not portable.environment_config
        and not any(
            option.startswith(("external_service_address=", "process_command="))
            for option in portable.environment_options or ()
        )
    ):
        raise ConfigError(
            f"--environment_type {environment} needs --environment_config (EXTERNAL: the worker pool's HOST:PORT)"
        )
    if environment == "DOCKER" and not shutil.which("docker"):
        raise ConfigError("--environment_type DOCKER needs docker on PATH")


# How often the launcher looks for a line left by a worker that could not start a step.
WATCH_SECONDS = 2


def wait_watching(result, failures: SetupFailures) -> None:
    """Waits for the job; if a worker leaves a setup failure meanwhile, cancels the job and raises it, so that no
    runner keeps the build waiting for workers that cannot start (the portable job servers wait minutes). The job's
    state is polled: a portable runner's wait_until_finish(duration) cannot be called twice."""
    from apache_beam.runners.direct.direct_runner import DirectPipelineResult

    if not isinstance(result, DirectPipelineResult):  # it runs in this process, and reports only when waited for
        while not PipelineState.is_terminal(result.state):
            failure = failures.first()
            if failure:
                with contextlib.suppress(Exception):
                    result.cancel()
                raise WorkerSetupError(failure)
            time.sleep(WATCH_SECONDS)
    result.wait_until_finish()  # raises the runner's own error for a failed job


def run(argv: list[str] | None = None) -> dict:
    """Parses flags, builds the dataset and returns its manifest; raises ConfigError before any work on bad input.
    The calling process is left as it was found (pipelines/guest.py)."""
    parser = ArgumentParser(prog="vocaloom build")
    add_build_arguments(parser)
    args, beam_args = parser.parse_known_args(argv)
    check_beam_flags(beam_args, long_flags(parser))
    with as_guest():
        options = pipeline_options(beam_args)
        made_by = provenance(sys.argv[1:] if argv is None else argv, options)
        FileSystems.set_options(options)  # the launcher's own reads and writes, as the workers' (S3 needs them)
        plan = prepare(config_from_args(args))
        claim = claim_output(plan.config.output, plan.config.overwrite)
        try:
            plan = dataclasses.replace(plan, write_dir=claim.write_dir, generation=claim.generation, provenance=made_by)
            pipeline = beam.Pipeline(runner=local_runner(options), options=options)
            build_pipeline(pipeline, plan)
            wait_watching(pipeline.run(), plan.setup_failures)
            claim.publish()
        finally:
            claim.abandon()
    with FileSystems.open(FileSystems.join(plan.config.output, MANIFEST)) as f:
        return parse_manifest(f.read())
