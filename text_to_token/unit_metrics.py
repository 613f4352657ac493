"""Unit error rates: Levenshtein distance between unit sequences over the reference length, corpus-level."""

import itertools

import numpy as np


def edit_distance(reference, hypothesis) -> int:
    """Levenshtein distance, one numpy row of the dynamic programme at a time."""
    hyp = np.asarray(hypothesis)
    row = np.arange(len(hyp) + 1)
    for i, unit in enumerate(reference, 1):
        substitute = row[:-1] + (hyp != unit)
        best = np.minimum(substitute, row[1:] + 1)  # substitution or deleting `unit`
        new = np.empty_like(row)
        new[0] = i
        # insertions chain left to right: new[j] = min(best[j-1], new[j-1] + 1) = min over k<=j of best[k] + j - k
        new[1:] = np.minimum.accumulate(np.concatenate(([i], best)) - np.arange(len(hyp) + 1))[1:] + np.arange(
            1, len(hyp) + 1
        )
        row = new
    return int(row[-1])


def collapse_repeats(units) -> list:
    return [unit for unit, _ in itertools.groupby(units)]


def unit_error_rate(references, hypotheses) -> float:
    """Total edit distance over total reference length (corpus-level, so long sentences weigh more)."""
    errors = sum(edit_distance(r, h) for r, h in zip(references, hypotheses))
    return errors / max(1, sum(len(r) for r in references))
