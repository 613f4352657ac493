"""In-Context Pretraining (Shi et al. 2023): related documents next to each other, each document exactly once.

Embeddings (L2-normalised, so inner product = cosine) give a kNN graph; the paper's greedy walk starts at an
unvisited document of minimum degree, moves to the most similar unvisited neighbour, and jumps to the next
minimum-degree unvisited document when every neighbour is visited. A jump ends a segment: a run of related
documents that `--context related` packs into rows. At scale the walk runs per partition (k-means cells).
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import faiss
import numpy as np

from vocaloom.transforms import seeds

# HNSW graph degree and search breadth of the approximate index used above the exact-search size.
HNSW_M, HNSW_EF_SEARCH, HNSW_EF_CONSTRUCTION = 32, 128, 80


class KnnGraph(NamedTuple):
    """Row i: the ids and cosine similarities of document i's nearest neighbours, best first (-1: none)."""

    neighbours: np.ndarray  # int64 [n, k]
    similarities: np.ndarray  # float32 [n, k]
    approximate: bool


def knn_graph(vectors: np.ndarray, k: int, exact_max: int) -> KnnGraph:
    """Exact inner-product search up to `exact_max` documents, HNSW above (built on one thread: deterministic)."""
    n, dim = vectors.shape
    k = min(k, n - 1)
    if k <= 0:
        return KnnGraph(np.full((n, 0), -1, np.int64), np.zeros((n, 0), np.float32), False)
    approximate = n > exact_max
    index: faiss.Index
    if approximate:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * k)
    else:
        index = faiss.IndexFlatIP(dim)
    with one_faiss_thread():
        index.add(vectors)
        sims, ids = index.search(vectors, k + 1)
    return KnnGraph(*_drop_self(ids, sims, k), approximate)


@contextlib.contextmanager
def one_faiss_thread():
    """faiss on one OpenMP thread: the same graph and centroids on every machine, whatever its cores."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def _drop_self(ids: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k best results other than the document itself (which is usually, not always, first)."""
    n = len(ids)
    keep = ids != np.arange(n)[:, None]
    out_ids, out_sims = np.full((n, k), -1, np.int64), np.zeros((n, k), np.float32)
    for i in range(n):
        row_ids, row_sims = ids[i][keep[i]][:k], sims[i][keep[i]][:k]
        out_ids[i, : len(row_ids)], out_sims[i, : len(row_sims)] = row_ids, row_sims
    return out_ids, out_sims


def recall_at_k(approximate: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact neighbours that the approximate search found."""
    hits = sum(len(set(a[a >= 0]) & set(e[e >= 0])) for a, e in zip(approximate, exact))
    return hits / max(1, int((exact >= 0).sum()))


class Adjacency(NamedTuple):
    """The undirected kNN graph in CSR form: node i's neighbours are indices[indptr[i]:indptr[i + 1]], most similar
    first (ties by id), with their similarities in `similarities`."""

    indptr: np.ndarray
    indices: np.ndarray
    similarities: np.ndarray


def undirected(graph: KnnGraph) -> Adjacency:
    """Every kNN edge in both directions, once, with the higher similarity when both ends listed it."""
    n, k = graph.neighbours.shape
    src = np.repeat(np.arange(n), k)
    dst, sim = graph.neighbours.ravel(), graph.similarities.ravel()
    valid = dst >= 0
    src, dst, sim = (
        np.concatenate([src[valid], dst[valid]]),
        np.concatenate([dst[valid], src[valid]]),
        np.concatenate([sim[valid], sim[valid]]),
    )
    order = np.lexsort((dst, -sim, src))  # by source, then best first, then id
    src, dst, sim = src[order], dst[order], sim[order]
    pair = src * n + dst
    by_pair = np.argsort(pair, kind="stable")  # a pair's first occurrence in this order is its best edge
    repeat = np.zeros(len(pair), dtype=bool)
    repeat[by_pair[1:]] = pair[by_pair[1:]] == pair[by_pair[:-1]]
    src, dst, sim = src[~repeat], dst[~repeat], sim[~repeat]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, src + 1, 1)
    return Adjacency(np.cumsum(indptr), dst, sim)


def greedy_path(adjacency: Adjacency, tie_break: list[int]) -> list[list[int]]:
    """The paper's Algorithm 1 over the given documents; returns segments (a jump starts a new one).

    Starts are taken in order of (degree, tie_break); every document appears in exactly one segment, once."""
    n = len(adjacency.indptr) - 1
    visited = np.zeros(n, dtype=bool)
    degrees = np.diff(adjacency.indptr)
    starts = sorted(range(n), key=lambda i: (degrees[i], tie_break[i]))
    indptr, indices = adjacency.indptr.tolist(), adjacency.indices.tolist()
    segments = []
    for start in starts:
        if visited[start]:
            continue
        segment, current = [start], start
        visited[start] = True
        while True:
            nxt = next((j for j in indices[indptr[current] : indptr[current + 1]] if not visited[j]), None)
            if nxt is None:
                break
            visited[nxt] = True
            segment.append(nxt)
            current = nxt
        segments.append(segment)
    return segments


def semantic_duplicates(graph: KnnGraph, threshold: float, order: list[int]) -> set[int]:
    """Documents to drop: visited in `order`, one is dropped when a neighbour already kept is more similar than
    `threshold` (the paper's optional semantic dedup)."""
    adjacency = undirected(graph)
    kept = np.zeros(len(adjacency.indptr) - 1, dtype=bool)
    dropped = set()
    for i in order:
        lo, hi = adjacency.indptr[i], adjacency.indptr[i + 1]
        if (kept[adjacency.indices[lo:hi]] & (adjacency.similarities[lo:hi] > threshold)).any():
            dropped.add(i)
        else:
            kept[i] = True
    return dropped


def order_cells(
    vectors: np.ndarray, keys: list[str], k: int, exact_max: int, seed: int, dedup_threshold: float | None = None
):
    """One partition: (segments of indices, dropped indices, graph). Ties break on a hash of (seed, key)."""
    tie_break = [seeds.derive(seed, "path", key) for key in keys]
    graph = knn_graph(vectors, k, exact_max)
    dropped: set[int] = set()
    if dedup_threshold is not None:
        dropped = semantic_duplicates(graph, dedup_threshold, sorted(range(len(keys)), key=lambda i: keys[i]))
    if dropped:
        kept = np.array(sorted(set(range(len(keys))) - dropped))
        sub = order_cells(vectors[kept], [keys[i] for i in kept], k, exact_max, seed)
        return [[int(kept[i]) for i in segment] for segment in sub[0]], dropped, sub[2]
    return greedy_path(undirected(graph), tie_break), dropped, graph
