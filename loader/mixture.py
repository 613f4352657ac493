"""Mixtures: how many blocks of each stream an epoch reads, from token shares by source (docs/training.md#mixtures).

Every block is one rank's batch, `tokens_per_batch` tokens whatever its bucket, so shares of tokens are shares of
blocks. Without weights an epoch reads every stream once (its natural size). With weights, an epoch is
`epoch_tokens` (by default the natural size of the sources it reads) split among the sources by weight; a source's
share is split among its streams (its buckets, and its long documents' part) in proportion to their blocks, the long
part's weighted by `long_document_factor`. Both splits round at random (apportion), so every stream's blocks are
within one of its exact share, their mean over epochs is that share, and the epoch's add up to its size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from vocaloom.schemas.sources import base_source


class Mixture:
    """Weights by source name (None: natural shares), the long documents' factor and the epoch's size in tokens
    (None: natural), checked against the loader's sources."""

    def __init__(
        self,
        sources: Sequence[str],
        weights: Mapping[str, float] | None,
        long_document_factor: float,
        epoch_tokens: int | None,
    ):
        bases = sorted({base_source(name) for name in sources})
        if weights is not None:
            if not isinstance(weights, Mapping) or not weights:
                raise ValueError(f"source_weights must be a mapping of source names to weights, not {weights!r}")
            unknown = sorted(set(weights) - set(bases))
            if unknown:
                raise ValueError(
                    f"source_weights names unknown sources {', '.join(map(repr, unknown))}: the "
                    f"sources are {', '.join(bases)}"
                )
            for name, weight in weights.items():
                if (
                    isinstance(weight, bool)
                    or not isinstance(weight, (int, float))
                    or not math.isfinite(weight)
                    or weight < 0
                ):
                    raise ValueError(f"source weight of {name!r} must be a finite number >= 0, not {weight!r}")
            if not any(weights.values()):
                raise ValueError("source_weights are all zero: no source would be read")
            weights = {name: float(weights[name]) for name in sorted(weights)}
        if (
            isinstance(long_document_factor, bool)
            or not isinstance(long_document_factor, (int, float))
            or not math.isfinite(long_document_factor)
            or long_document_factor <= 0
        ):
            raise ValueError(f"long_document_factor must be a finite number > 0, not {long_document_factor!r}")
        if epoch_tokens is not None and (
            not isinstance(epoch_tokens, int) or isinstance(epoch_tokens, bool) or epoch_tokens < 1
        ):
            raise ValueError(f"epoch_tokens must be an integer >= 1, not {epoch_tokens!r}")
        self.sources, self.weights = list(sources), weights
        self.long_document_factor, self.epoch_tokens = float(long_document_factor), epoch_tokens

    @property
    def natural(self) -> bool:
        """Every stream read once an epoch."""
        return self.weights is None and self.long_document_factor == 1 and self.epoch_tokens is None

    def to_json(self) -> dict:
        return {
            "source_weights": self.weights,
            "long_document_factor": self.long_document_factor,
            "epoch_tokens": self.epoch_tokens,
        }

    def targets(
        self,
        sources: Sequence[int],
        blocks: Sequence[int],
        tokens_per_batch: int,
        rng: np.random.Generator,
        done: Sequence[int] | None = None,
    ) -> list[int]:
        """Blocks each stream reads in an epoch; given `done` (blocks each stream read already), those it reads in
        the rest of the epoch, the weights applied to what is left of the epoch's size. `sources`: each stream's
        source (an index into self.sources); `blocks`: each stream's blocks in one pass (0: not read); `rng` draws
        how shares round (one draw a split)."""
        if self.natural and done is None:
            return list(blocks)
        bases = [base_source(self.sources[source]) for source in sources]
        natural: dict[str, int] = {}
        for base, n in zip(bases, blocks):
            natural[base] = natural.get(base, 0) + n
        weights = self.weights or {base: float(n) for base, n in natural.items()}
        read = [base for base in sorted(natural) if weights.get(base, 0) > 0]
        for base in read:
            if not natural[base]:
                raise ValueError(
                    f"source {base!r} has no rows for a batch of {tokens_per_batch} tokens in the buckets read"
                )
        size = self.epoch_tokens // tokens_per_batch if self.epoch_tokens else sum(natural[base] for base in read)
        size = max(0, size - sum(done)) if done is not None else size
        targets = [0] * len(blocks)
        for base, share in zip(read, apportion(size, [weights[base] for base in read], rng.random())):
            streams = [i for i, b in enumerate(bases) if b == base]
            masses = [
                blocks[i] * (self.long_document_factor if self.sources[sources[i]] != base else 1.0) for i in streams
            ]
            for i, n in zip(streams, apportion(share, masses, rng.random())):
                targets[i] = n
        return targets


def apportion(total: int, masses: Sequence[float], offset: float) -> list[int]:
    """`total` split in proportion to `masses`: part i is floor(Q_i + offset) - floor(Q_i-1 + offset), Q_i the exact
    shares of parts 0..i added up. The parts add up to `total`, each is within one of its exact share, and with
    `offset` uniform in [0, 1) each part's mean is its exact share: rounding that is the same every epoch would
    shortchange a small stream every epoch."""
    whole = float(sum(masses))
    if not whole:
        return [0] * len(masses)
    cumulative = np.cumsum(np.asarray(masses, dtype=float)) * (total / whole)
    cumulative[-1] = total  # exactly, whatever the floats' rounding: the parts add up to `total`
    return np.diff(np.floor(cumulative + offset).astype(np.int64), prepend=0).tolist()
