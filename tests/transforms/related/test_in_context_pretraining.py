import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vocaloom.transforms.related.in_context_pretraining import (
    KnnGraph,
    greedy_path,
    knn_graph,
    order_cells,
    recall_at_k,
    semantic_duplicates,
    undirected,
)


def graph_of(edges: dict[int, list[tuple[int, float]]], n: int) -> KnnGraph:
    k = max(len(v) for v in edges.values())
    ids, sims = np.full((n, k), -1, np.int64), np.zeros((n, k), np.float32)
    for i, row in edges.items():
        for c, (j, s) in enumerate(row):
            ids[i, c], sims[i, c] = j, s
    return KnnGraph(ids, sims, False)


def test_walk_on_a_hand_made_graph():
    # A chain 0-1-2-3 with a strong shortcut 1-3 and a lone pair 4-5.
    g = graph_of(
        {
            0: [(1, 0.9)],
            1: [(0, 0.9), (3, 0.8), (2, 0.5)],
            2: [(1, 0.5), (3, 0.4)],
            3: [(1, 0.8), (2, 0.4)],
            4: [(5, 0.7)],
            5: [(4, 0.7)],
        },
        6,
    )
    # Degrees: 0:1, 4:1, 5:1, 2:2, 3:2, 1:3. Start at the minimum degree (ties by tie_break: 0 before 4).
    segments = greedy_path(undirected(g), tie_break=[0, 5, 4, 3, 1, 2])
    assert segments == [[0, 1, 3, 2], [4, 5]]  # most similar unvisited neighbour each step; jump when stuck


def test_jump_goes_to_the_next_minimum_degree_document():
    g = graph_of({0: [(1, 0.9)], 1: [(0, 0.9), (2, 0.1)], 2: [(1, 0.1)], 3: [(2, 0.3)]}, 4)
    segments = greedy_path(undirected(g), tie_break=[3, 2, 1, 0])
    # Degrees: 0:1, 3:1, 1:2, 2:2. 3 wins the tie; 3 -> 2 -> 1 -> 0, every node once.
    assert segments == [[3, 2, 1, 0]]


def clustered(n_clusters=6, per=60, dim=24, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    v = np.concatenate([c + 0.15 * rng.normal(size=(per, dim)) for c in centres]).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 120), st.integers(1, 12), st.integers(0, 5))
def test_every_document_exactly_once(n, k, seed):
    v = clustered(per=n // 6 + 1, seed=seed)[:n]
    segments, dropped, _ = order_cells(v, [f"d{i}" for i in range(len(v))], k, exact_max=60, seed=seed)
    visited = [i for s in segments for i in s]
    assert sorted(visited) == list(range(len(v))) and not dropped
    assert segments == order_cells(v, [f"d{i}" for i in range(len(v))], k, exact_max=60, seed=seed)[0]


def test_approximate_index_recall():
    v = clustered(per=400)
    exact, approx = knn_graph(v, 10, exact_max=10**9), knn_graph(v, 10, exact_max=100)
    assert approx.approximate and not exact.approximate
    assert recall_at_k(approx.neighbours, exact.neighbours) > 0.95


def test_semantic_duplicates_keep_the_first_of_near_copies():
    v = clustered(per=10)
    near = v[:5] + 0.001
    v2 = np.concatenate([v, near / np.linalg.norm(near, axis=1, keepdims=True)])
    g = knn_graph(v2, 5, exact_max=1000)
    dropped = semantic_duplicates(g, 0.999, order=list(range(len(v2))))
    assert dropped == set(range(len(v), len(v2)))
