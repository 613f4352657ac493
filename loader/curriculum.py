"""Dataset Decomposition curricula (docs/training.md): odds per bucket and the bucket drawn at each step."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CURRICULA = ("uniform", "grow_p2", "grow_linear")


def curriculum_odds(curriculum: str | Sequence[float], buckets: int) -> np.ndarray:
    """Odds per bucket, shortest first: a named curriculum or explicit odds (0 leaves a bucket out)."""
    if isinstance(curriculum, str):
        if curriculum == "uniform":
            return np.ones(buckets)
        if curriculum == "grow_p2":  # 32:16:8:4:2:1 for six buckets
            return 2.0 ** np.arange(buckets - 1, -1, -1)
        if curriculum == "grow_linear":  # 6:5:4:3:2:1
            return np.arange(buckets, 0, -1, dtype=float)
        raise ValueError(f"curriculum {curriculum!r} is none of {', '.join(CURRICULA)} nor a list of odds")
    odds = [float(o) for o in curriculum]
    if len(odds) != buckets:
        raise ValueError(f"curriculum has {len(odds)} odds, the dataset has {buckets} buckets")
    if not all(math.isfinite(o) and o >= 0 for o in odds) or not any(odds):
        raise ValueError(f"curriculum odds {odds} must be finite, non-negative and not all zero")
    return np.array(odds)


def draw_schedule(
    blocks: Sequence[int],
    consumed: Sequence[int],
    world_size: int,
    odds: np.ndarray,
    cycles: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """The bucket index of every remaining step of an epoch.

    A step of bucket k takes its next `world_size` blocks (one per rank) of the bucket's `blocks[k]`, `consumed[k]`
    of which are taken already. A step belongs to the cycle its first block falls in (cycle c holds blocks
    [c * n / cycles, (c + 1) * n / cycles) of each bucket). Within a cycle the buckets are drawn as the paper does:
    bucket k with probability proportional to (its steps left in the cycle) * odds[k], exhausted buckets dropped.
    That sequential draw is sampled at once by sorting every step on Exponential(1) / odds (Efraimidis-Spirakis).
    """
    labels: list[np.ndarray] = []
    step_cycles: list[np.ndarray] = []
    for k, (n, done) in enumerate(zip(blocks, consumed)):
        if odds[k] > 0 and n > done:
            first_blocks = done + world_size * np.arange((n - done) // world_size)
            labels.append(np.full(len(first_blocks), k, dtype=np.int32))
            step_cycles.append(first_blocks * cycles // n)
    if not labels:
        return np.empty(0, dtype=np.int32)
    every_label, every_cycle = np.concatenate(labels), np.concatenate(step_cycles)
    keys = rng.exponential(size=len(every_label)) / odds[every_label]
    return every_label[np.lexsort((keys, every_cycle))]
