"""Ordering one million 384-d embeddings (In-Context Pretraining) on this machine, stage by stage, in one run.

Embeddings: clustered synthetic ones (computing a million real MiniLM embeddings would take about 14 hours on
this 2-core machine): --clusters Gaussian clusters on the unit sphere with spreads drawn per cluster. The stages
are those each Beam worker runs in a `--context related` build: k-means partitioning on a 20,000-document sample,
assignment, per-partition kNN graph (HNSW above --exact-max, as the pipeline does) and the paper's greedy walk.
Then the same ordering with exact search on a --subset of the documents, beside HNSW on that subset.
Usage: python -m scripts.bench.bench_order [--documents 1000000] [--k 40] [--partition-size 100000]
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np
import psutil

from vocaloom.transforms.related.in_context_pretraining import greedy_path, knn_graph, recall_at_k, undirected
from vocaloom.transforms.related.ordering import SAMPLE_SIZE, train_partitioning


class Stage:
    """Wall time and the peak resident memory of this process during a stage."""

    def __init__(self, name: str, results: dict):
        self.name, self.results = name, results

    def __enter__(self):
        self.peak, self.done = psutil.Process().memory_info().rss, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        self.start = time.perf_counter()
        return self

    def _sample(self):
        while not self.done.is_set():
            self.peak = max(self.peak, psutil.Process().memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc):
        seconds = time.perf_counter() - self.start
        self.done.set()
        self.thread.join()
        self.results[self.name] = {"seconds": round(seconds, 2), "peak_rss_mb": round(self.peak / 2**20)}
        print(f"{self.name:<28} {seconds:9.2f} s  peak {self.peak / 2**20:8.0f} MB", flush=True)


def clustered_embeddings(n: int, dim: int, clusters: int, seed: int, chunk: int = 100_000) -> np.ndarray:
    """Unit vectors around `clusters` random centres, each cluster with its own spread; made in float32 chunks."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    spread = rng.uniform(0.15, 0.6, size=clusters).astype(np.float32)
    members = rng.integers(0, clusters, size=n)
    vectors = np.empty((n, dim), dtype=np.float32)
    for lo in range(0, n, chunk):
        part = members[lo : lo + chunk]
        v = centres[part] + rng.standard_normal((len(part), dim), dtype=np.float32) * spread[part, None]
        vectors[lo : lo + chunk] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return vectors


def walk(vectors: np.ndarray, k: int, exact_max: int):
    graph = knn_graph(vectors, k, exact_max)
    segments = greedy_path(undirected(graph), list(range(len(vectors))))
    path = np.array([i for s in segments for i in s])
    adjacent = float((vectors[path[:-1]] * vectors[path[1:]]).sum(axis=1).mean())
    return graph, segments, adjacent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--k", type=int, default=40)
    parser.add_argument("--partition-size", type=int, default=100_000)
    parser.add_argument("--exact-max", type=int, default=50_000)
    parser.add_argument("--subset", type=int, default=50_000)
    args = parser.parse_args(argv)
    results: dict = {"documents": args.documents, "k": args.k, "embeddings": "clustered synthetic"}
    with Stage("make embeddings", results):
        vectors = clustered_embeddings(args.documents, args.dim, args.clusters, 0)
    with Stage("train partitioning", results):
        sample_ids = np.random.default_rng(1).choice(len(vectors), min(SAMPLE_SIZE, len(vectors)), replace=False)
        sample = [(int(i), (str(i), vectors[i].tobytes())) for i in sample_ids]
        partitioning = train_partitioning(sample, len(vectors), args.partition_size, seed=0)
    with Stage("assign partitions", results):
        scores = vectors @ partitioning.centroids.T
        ranks = np.array([partitioning.rank[int(c)] for c in scores.argmax(axis=1)])
    recalls, segments_total, adjacent_sum, pairs = [], 0, 0.0, 0
    with Stage("kNN graphs + walks", results):
        for rank in range(len(partitioning.rank)):
            members = np.flatnonzero(ranks == rank)
            part = vectors[members]
            graph, segments, adjacent = walk(part, args.k, args.exact_max)
            segments_total += len(segments)
            adjacent_sum += adjacent * (len(part) - 1)
            pairs += len(part) - 1
            if graph.approximate:
                queries = np.linspace(0, len(part) - 1, 200).astype(int)
                sims = part[queries] @ part.T
                sims[np.arange(len(queries)), queries] = -np.inf
                exact = np.argsort(-sims, axis=1)[:, : args.k]
                recalls.append(recall_at_k(graph.neighbours[queries], exact))
            print(
                f"  partition {rank}: {len(part):,} documents, {len(segments):,} segments, "
                f"adjacent similarity {adjacent:.3f}",
                flush=True,
            )
    results.update(
        partitions=len(partitioning.rank),
        segments=segments_total,
        mean_adjacent_similarity=round(adjacent_sum / max(1, pairs), 4),
        hnsw_recall_at_k=round(float(np.mean(recalls)), 4) if recalls else None,
    )
    subset = vectors[np.random.default_rng(2).choice(len(vectors), args.subset, replace=False)]
    for name, exact_max in (("subset exact search", args.subset), ("subset HNSW", 0)):
        with Stage(name, results):
            graph, segments, adjacent = walk(subset, args.k, exact_max)
        results[name].update(segments=len(segments), mean_adjacent_similarity=round(adjacent, 4))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
