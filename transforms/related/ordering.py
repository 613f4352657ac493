"""`--context related`: In-Context Pretraining's order, computed at scale with Beam.

Embeddings are partitioned by k-means centroids learned with FAISS on a deterministic sample (a side input);
each partition's kNN graph is built and walked on one worker; partitions are chained so that neighbouring
centroids are adjacent. The result is, for each document, its segment and position in it. Ordering quality
figures are COUNTS of the ordering block (schemas/counts.py), which the commit summarises into the manifest.
"""

from __future__ import annotations

import math

import apache_beam as beam
import faiss
import numpy as np

from vocaloom.schemas.counts import (
    ADJACENT_PAIRS,
    ADJACENT_SIMILARITY_SUM,
    APPROXIMATE_PARTITIONS,
    BEST_NEIGHBOUR_DOCUMENTS,
    BEST_NEIGHBOUR_SIMILARITY_SUM,
    FILTERED,
    ORDERED_DOCUMENTS,
    PARTITIONS,
    RANDOM_PAIR_SIMILARITY,
    RECALL_SUM,
    SAMPLE_EDGES,
    SAMPLE_EDGES_LOST,
    SEGMENTS,
)
from vocaloom.transforms import seeds
from vocaloom.transforms.counting import COUNTS, count, counted
from vocaloom.transforms.documents import unpack_docs
from vocaloom.transforms.related.embed import doc_key, key_source
from vocaloom.transforms.related.in_context_pretraining import (
    greedy_path,
    knn_graph,
    one_faiss_thread,
    order_cells,
    recall_at_k,
    undirected,
)

# Documents k-means is trained on (deterministically chosen), and exact queries used to measure recall.
SAMPLE_SIZE, RECALL_QUERIES = 20_000, 200


def as_vector(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.float32)


class Partitioning:
    """Centroids and the chain order of partitions (rank r: the r-th partition along the chain)."""

    def __init__(self, centroids: np.ndarray, chain: list[int]):
        self.centroids, self.rank = centroids, {partition: r for r, partition in enumerate(chain)}

    def assign(self, vector: np.ndarray) -> int:
        return self.rank[int(np.argmax(self.centroids @ vector))]


def train_partitioning(
    sample: list[tuple[int, tuple[str, bytes]]], documents: int, partition_size: int, seed: int
) -> Partitioning:
    if not sample:
        return Partitioning(np.zeros((1, 1), np.float32), [0])  # an empty corpus: nothing will be assigned
    vectors = np.stack([as_vector(v) for _, (_, v) in sorted(sample)])
    partitions = max(1, min(math.ceil(documents / partition_size), len(vectors) // 39))  # faiss: >= 39 per centroid
    if partitions == 1:
        return Partitioning(vectors.mean(axis=0, keepdims=True), [0])
    kmeans = faiss.Kmeans(vectors.shape[1], partitions, niter=20, seed=seed % (1 << 31), spherical=True)
    with one_faiss_thread():
        kmeans.train(vectors)
    assert kmeans.centroids is not None  # trained
    centroids = kmeans.centroids.copy()
    graph = knn_graph(centroids, min(8, partitions - 1), exact_max=partitions)
    chain = [c for segment in greedy_path(undirected(graph), list(range(partitions))) for c in segment]
    return Partitioning(centroids, chain)


class WalkPartitionFn(beam.DoFn):
    """A partition's documents ((source, partition) in: a source's documents are ordered among themselves) to
    (key, (segment, position)), with quality figures on COUNTS."""

    def __init__(self, k: int, exact_max: int, seed: int, dedup_threshold: float | None):
        self._k, self._exact_max, self._seed, self._dedup = k, exact_max, seed, dedup_threshold

    def process(self, element):
        (source, rank), members = element
        members = sorted(members)
        keys = [key for key, _ in members]
        vectors = np.stack([as_vector(v) for _, v in members])
        segments, dropped, graph = order_cells(vectors, keys, self._k, self._exact_max, self._seed, self._dedup)
        path = [i for segment in segments for i in segment]
        for s, segment in enumerate(segments):
            for position, i in enumerate(segment):
                yield keys[i], (f"{source:04d}:{rank:08d}:{s:09d}" if source else f"{rank:08d}:{s:09d}", position)
        adjacent = (vectors[path[:-1]] * vectors[path[1:]]).sum(axis=1)
        yield count(ORDERED_DOCUMENTS, len(path))
        yield count(SEGMENTS, len(segments))
        yield count(ADJACENT_SIMILARITY_SUM, float(adjacent.sum()))
        yield count(ADJACENT_PAIRS, len(adjacent))
        yield count(BEST_NEIGHBOUR_SIMILARITY_SUM, float(graph.similarities[:, :1].sum()))
        yield count(BEST_NEIGHBOUR_DOCUMENTS, int((graph.neighbours[:, :1] >= 0).sum()))
        if graph.approximate:
            yield count(APPROXIMATE_PARTITIONS)
            yield count(RECALL_SUM, self._recall(vectors[sorted(set(range(len(keys))) - dropped)], graph))

    def _recall(self, vectors: np.ndarray, graph) -> float:
        """Recall of the partition's approximate search against exact search, on evenly spaced queries."""
        queries = np.linspace(0, len(vectors) - 1, min(RECALL_QUERIES, len(vectors))).astype(int)
        k = graph.neighbours.shape[1]
        sims = vectors[queries] @ vectors.T
        sims[np.arange(len(queries)), queries] = -np.inf
        exact = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return recall_at_k(graph.neighbours[queries], exact)


def sample_key(seed: int):
    return lambda item: (seeds.derive(seed, "sample", item[0]), item)


def cross_partition_edges(sample, partitioning: Partitioning, k: int):
    """On the sample: exact kNN edges whose two ends fall in different partitions (lost to partitioning)."""
    keys_vectors = [item for _, item in sorted(sample)]
    if len(keys_vectors) < 2:
        return
    vectors = np.stack([as_vector(v) for _, v in keys_vectors])
    graph = knn_graph(vectors, k, exact_max=len(vectors))
    parts = np.array([partitioning.assign(v) for v in vectors])
    valid = graph.neighbours >= 0
    lost = valid & (parts[graph.neighbours.clip(min=0)] != parts[:, None])
    yield counted(SAMPLE_EDGES, int(valid.sum()))
    yield counted(SAMPLE_EDGES_LOST, int(lost.sum()))


def random_pair_similarity(totals):
    """Mean cosine similarity of two distinct random documents: what a random order puts side by side."""
    vector_sum, n = totals
    if n < 2:
        return []
    return [counted(RANDOM_PAIR_SIMILARITY, float((vector_sum @ vector_sum - n) / (n * (n - 1))))]


class SumVectors(beam.CombineFn):
    def create_accumulator(self):
        return None, 0

    def add_input(self, acc, item):
        total, n = acc
        v = as_vector(item[1]).astype(np.float64)
        return (v if total is None else total + v), n + 1

    def merge_accumulators(self, accs):
        totals = [t for t, _ in accs if t is not None]
        return (sum(totals) if totals else None), sum(n for _, n in accs)

    def extract_output(self, acc):
        return acc


class OrderDocuments(beam.PTransform):
    """(key, embedding bytes) in; (key, (segment key, position)) out, with COUNTS."""

    def __init__(self, k: int, exact_max: int, partition_size: int, seed: int, dedup_threshold: float | None):
        super().__init__()
        self._k, self._exact_max, self._partition_size = k, exact_max, partition_size
        self._seed, self._dedup = seed, dedup_threshold

    def expand(self, embeddings):
        sample = (
            embeddings
            | "SampleKey" >> beam.Map(sample_key(self._seed))
            | "Sample" >> beam.combiners.Top.Smallest(SAMPLE_SIZE)
        )
        documents = embeddings | "CountDocuments" >> beam.combiners.Count.Globally()
        partitioning = sample | "TrainCentroids" >> beam.Map(
            train_partitioning, beam.pvalue.AsSingleton(documents), self._partition_size, self._seed
        )
        positions = (
            embeddings
            | "AssignPartition"
            >> beam.Map(
                lambda item, parts: ((key_source(item[0]), parts.assign(as_vector(item[1]))), item),
                beam.pvalue.AsSingleton(partitioning),
            )
            | "GroupByPartition" >> beam.GroupByKey()
            | "WalkPartition"
            >> beam.ParDo(WalkPartitionFn(self._k, self._exact_max, self._seed, self._dedup)).with_outputs(
                COUNTS, main="positions"
            )
        )
        lost = sample | "EdgesLost" >> beam.FlatMap(
            cross_partition_edges, beam.pvalue.AsSingleton(partitioning), self._k
        )
        partitions = partitioning | "PartitionCount" >> beam.Map(lambda parts: counted(PARTITIONS, len(parts.rank)))
        random_pairs = (
            embeddings
            | "SumVectors" >> beam.CombineGlobally(SumVectors())
            | "RandomPairs" >> beam.FlatMap(random_pair_similarity)
        )
        counts = (positions[COUNTS], lost, partitions, random_pairs) | "OrderingCounts" >> beam.Flatten()
        return {"positions": positions.positions, COUNTS: counts}


class PlaceDocumentFn(beam.DoFn):
    """A kept document and its place in the path to (segment, (position, document)); a document without a place
    was dropped as a semantic duplicate."""

    def process(self, element):
        _, grouped = element
        places, docs = list(grouped["place"]), list(grouped["doc"])
        for doc in docs:
            if places:
                segment, position = places[0]
                yield segment, (position, doc)
            else:
                yield count(FILTERED, 1, "semantic_duplicate")


class PlaceDocuments(beam.PTransform):
    """DocBatches and (key, place) pairs in; (segment, (position, DocTokens)) out, with COUNTS."""

    def expand(self, inputs):
        docs, positions = inputs
        keyed = docs | "KeyDocs" >> beam.FlatMap(lambda batch: [(doc_key(d), d) for d in unpack_docs(batch)])
        return (
            {"place": positions, "doc": keyed}
            | "JoinPlaces" >> beam.CoGroupByKey()
            | "Place"
            >> beam.ParDo(PlaceDocumentFn())
            .with_output_types(beam.typehints.Tuple[str, beam.typehints.Any])
            .with_outputs(COUNTS, main="placed")
        )
