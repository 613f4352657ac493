"""`vocaloom build`: read text, deduplicate, sample speech spans, tokenise, convert the spans to speech tokens and
weave them in, order related documents, decompose into buckets, write checksummed Arrow shards.

`build_pipeline` is the graph, one labelled step per stage in that order; `run` is the launcher's sequence around
it: Beam's flags checked (pipelines/beam_options.py), the plan made (pipelines/plan.py: everything that can be wrong
with the options, inputs or models is found there, before the pipeline starts), the output claimed, the job watched
(pipelines/job.py) and published.
"""

from __future__ import annotations

import dataclasses
import sys

import vocaloom.transforms  # noqa: F401  (first: it imports Beam quietly)

# isort: split
import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from vocaloom.pipelines.beam_options import check_beam_flags, pipeline_options
from vocaloom.pipelines.guest import as_guest
from vocaloom.pipelines.job import wait_watching
from vocaloom.pipelines.output_dir import claim_output
from vocaloom.pipelines.plan import BuildPlan, prepare, provenance
from vocaloom.pipelines.worker_logs import local_runner
from vocaloom.schemas.config import (
    ArgumentParser,
    BuildConfig,
    add_build_arguments,
    config_from_args,
)
from vocaloom.schemas.manifest import MANIFEST, Manifest, parse_manifest
from vocaloom.schemas.shard import DEAD_LETTER_DIR, REJECTS_DIR
from vocaloom.transforms.counting import COUNTS, SumCounts
from vocaloom.transforms.documents import DocText, doc_texts
from vocaloom.transforms.inference.cache import model_cache_dir
from vocaloom.transforms.io.commit import CommitDataset
from vocaloom.transforms.io.fingerprint import FingerprintInputs
from vocaloom.transforms.io.read import REJECTS, UNREADABLE, ReadCorpus, ReadOptions
from vocaloom.transforms.io.records import Reject
from vocaloom.transforms.io.rejects import WriteRecordFiles
from vocaloom.transforms.io.shard_writer import WriteShards
from vocaloom.transforms.speech.synthetic_interleaving import Interleaving, sample_spans
from vocaloom.transforms.text.dataset_decomposition import LEFTOVERS, DecomposeDocuments, DecomposeSegments
from vocaloom.transforms.text.dedup import ExactDedup, partition_count
from vocaloom.transforms.text.long_documents import LongDocuments
from vocaloom.transforms.text.packing import PackLeftovers
from vocaloom.transforms.text.tokenize import TokenizeFn

# Under TEMP_DIR (pipelines/output_dir.py): the tokenizer's spill files (each document's text tokens), which the
# progress bars count.
TOKEN_SPILL = "spill/tokens"


def build_pipeline(p: beam.Pipeline, plan: BuildPlan):
    """The mission statement, top to bottom. Returns the PCollection holding the committed manifest."""
    config, temp = plan.config, plan.temp_dir
    spill, records_dir = FileSystems.join(temp, "spill"), FileSystems.join(temp, "records")
    read = p | "ReadCorpus" >> ReadCorpus(
        [i["path"] for i in plan.inputs],
        ReadOptions(config.text_field, config.id_field, config.max_record_bytes, config.skip_unreadable),
        plan.build_stops,
        plan.source_of_input,
    )
    unique = (
        read.documents
        | "Fingerprint" >> beam.Map(doc_texts, plan.source_of_input)
        | "ExactDedup" >> ExactDedup(DocText, spill, partition_count(sum(i["bytes"] for i in plan.inputs)))
    )
    texts = unique.kept
    if plan.model:
        ratios = tuple(map(config.source_speech_ratio, config.sources))
        texts = texts | "SampleSpans" >> beam.Map(sample_spans, Interleaving(ratios, config.span_lambda, config.seed))
    embedding_tokens = 0
    if plan.embedder:  # imported only here: the embedder's module imports torch, which a text build never needs
        from vocaloom.transforms.related.embed import EMBED_TEXT_TOKENS as embedding_tokens
    tokenized = texts | "Tokenize" >> beam.ParDo(
        TokenizeFn(
            plan.tokenizer_file,
            plan.vocab.eos,
            FileSystems.join(temp, TOKEN_SPILL),
            bool(plan.model),
            plan.build_stops,
            embedding_tokens,
        )
    )
    docs, counts = tokenized, [read[COUNTS], unique[COUNTS]]
    records = [
        read[REJECTS]
        | "RejectsToJson" >> beam.Map(Reject.to_json)
        | "WriteRejects" >> WriteRecordFiles(records_dir, REJECTS_DIR)
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
                speech_handler(plan.model, config.device, plan.build_stops, config.batch_characters),
                plan.cache_files,
                cache_dir(config, plan.model.sha256),
                plan.model.codebook_size,
            )
        )
        woven = (docs, speech["units"]) | "WeaveSpeech" >> Weave(
            plan.tokenizer_file, plan.vocab, spill, plan.build_stops
        )
        docs = woven.docs
        counts += [speech[COUNTS], woven[COUNTS]]
        records.append(speech[DEAD_LETTER] | "WriteDeadLetters" >> WriteRecordFiles(records_dir, DEAD_LETTER_DIR))
    long_documents = LongDocuments(config.long_documents, config.sources) if config.long_documents else None
    if plan.embedder:
        rows, ordering_counts = related_rows(tokenized, docs, plan, long_documents)
        counts += ordering_counts
    else:
        if long_documents:
            docs = docs | "LongDocumentsApart" >> beam.Map(long_documents.batch)
        rows, decomposition_counts = document_rows(docs, config, spill)
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


def document_rows(docs, config: BuildConfig, spill: str):
    """`--context document`: each document cut into rows (Dataset Decomposition), what is left over packed."""
    decomposed = docs | "DatasetDecomposition" >> DecomposeDocuments(
        config.min_bucket, config.max_bucket, config.seed, config.remainders == "pack"
    )
    if config.remainders == "drop":
        return decomposed.rows, [decomposed[COUNTS]]
    packed = (decomposed.rows, decomposed[LEFTOVERS]) | "PackLeftovers" >> PackLeftovers(
        config.min_bucket, config.max_bucket, config.seed, spill
    )
    return packed["rows"], [decomposed[COUNTS], packed[COUNTS]]


def related_rows(text_docs, docs, plan: BuildPlan, long_documents: LongDocuments | None):
    """`--context related`: embed the kept documents' text, order them (In-Context Pretraining), decompose path
    segments. `text_docs` still hold only text (before speech is woven in); `docs` are what rows are made of."""
    from vocaloom.transforms.inference.cache import CachedInference, OneByOne
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
        | "EmbeddingText" >> beam.ParDo(EmbeddingTextFn(embedder.cache_identity))
        | "Embed"
        >> CachedInference(
            EmbedderHandler(embedder.artifact, plan.build_stops),
            list(embedder.cache_files),
            cache_dir(config, embedder.cache_identity),
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


def cache_dir(config: BuildConfig, model_identity: str) -> str | None:
    """The --cache folder of the model whose cache identity (a sha256) is `model_identity`, or None (no --cache)."""
    return model_cache_dir(config.cache, model_identity) if config.cache else None


def run(argv: list[str] | None = None) -> Manifest:
    """Parses flags, builds the dataset and returns its manifest; raises ConfigError before any work on bad input.
    The calling process is left as it was found (pipelines/guest.py)."""
    parser = ArgumentParser(prog="vocaloom build")
    add_build_arguments(parser)
    args, beam_args = parser.parse_known_args(argv)
    check_beam_flags(beam_args, parser.long_flags)
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
            wait_watching(pipeline.run(), plan.build_stops)
            claim.publish()
        finally:
            claim.abandon()
    with FileSystems.open(FileSystems.join(plan.config.output, MANIFEST)) as f:
        return parse_manifest(f.read())
