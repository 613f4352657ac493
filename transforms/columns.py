"""Batches of records cross Beam's shuffles as columns of primitives.

Beam encodes lists of str/bytes/int natively; a NamedTuple it pickles one by one, ten times slower, which made
encoding the largest cost of a text-only build. Columns that repeat a few values (source paths, spill files) are
dictionary-encoded, so the in-memory runner's shuffle buffers hold each path once per batch, not once per record.
"""
from __future__ import annotations

from itertools import repeat

# Values of a column looked at to decide whether dictionary encoding is worth it.
_SAMPLE = 256


def _encode_column(values: list) -> tuple:
    sample = values[:_SAMPLE]
    if len(set(sample)) * 4 > len(sample) or not all(isinstance(v, str) for v in sample):
        return ("plain", values)
    distinct = dict.fromkeys(values)
    if len(distinct) * 4 <= len(values) and all(isinstance(v, str) for v in distinct):
        index = {v: i for i, v in enumerate(distinct)}
        return ("dict", list(distinct), [index[v] for v in values])
    return ("plain", values)


def _decode_column(column: tuple) -> list:
    if column[0] == "dict":
        _, distinct, indices = column
        return [distinct[i] for i in indices]
    return column[1]


def pack(records: list[tuple]) -> tuple:
    return tuple(_encode_column(list(values)) for values in zip(*records))


def unpack(record_type, columns: tuple) -> list:
    # tuple.__new__ straight from C: a NamedTuple's own __new__ is Python code, and the largest cost of a batch.
    return list(map(tuple.__new__, repeat(record_type), zip(*map(_decode_column, columns))))
