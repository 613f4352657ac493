"""Batches of records cross Beam's shuffles as columns of primitives.

Beam encodes lists of str/bytes/int natively; a NamedTuple it pickles one by one, ten times slower, which made
encoding the largest cost of a text-only build. Columns that repeat a few values (source paths, spill files) are
dictionary-encoded, so the in-memory runner's shuffle buffers hold each path once per batch, not once per record;
a column of one value (a batch's spill file, a text-only build's empty speech fields) is held once.

A column holds one field's values, all of one type (the encodings compare values with ==, and 0 == False).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, repeat
from operator import itemgetter

# Values of a column looked at to decide whether dictionary encoding is worth it.
_SAMPLE = 256


def _encode_column(values: list) -> tuple:
    sample = values[:_SAMPLE]
    in_sample = len(set(sample))
    if in_sample == 1 and values.count(sample[0]) == len(values):
        return ("const", sample[0], len(values))
    if in_sample * 4 > len(sample) or not all(isinstance(v, str) for v in sample):
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
    if column[0] == "const":
        return [column[1]] * column[2]
    return column[1]


def _take_encoded(column: tuple, rows: list[int]) -> tuple:
    if column[0] == "dict":
        return ("dict", column[1], _take(column[2], rows))
    if column[0] == "const":
        return ("const", column[1], len(rows))
    return ("plain", _take(column[1], rows))


def pack(records: Sequence[tuple]) -> tuple:
    return from_columns([list(values) for values in zip(*records)])


def unpack(record_type, packed: tuple) -> list:
    return records(record_type, to_columns(packed))


def records(record_type, columns: list[list]) -> list:
    # tuple.__new__ straight from C: a NamedTuple's own __new__ is Python code, and the largest cost of a batch.
    return list(map(tuple.__new__, repeat(record_type), zip(*columns)))


# Whole-column operations, for steps that select or regroup records without looking at most of their fields.


def to_columns(packed: tuple) -> list[list]:
    return [_decode_column(column) for column in packed]


def from_columns(columns: list[list]) -> tuple:
    return tuple(_encode_column(values) for values in columns)


def row_count(packed: tuple) -> int:
    first = packed[0]
    return first[2] if first[0] == "const" else len(first[-1])


def column(packed: tuple, index: int) -> list:
    """One column of a packed batch."""
    return _decode_column(packed[index])


def take(columns: list[list], rows: list[int]) -> list[list]:
    """The given rows of every column, in the given order."""
    return [_take(values, rows) for values in columns]


def take_packed(packed: tuple, rows: list[int]) -> tuple:
    """The given rows of a packed batch, packed, without decoding its columns."""
    return tuple(_take_encoded(encoded, rows) for encoded in packed)


def _take(values: list, rows: list[int]) -> list:
    if len(rows) > 1:
        return list(itemgetter(*rows)(values))
    return [values[row] for row in rows]  # itemgetter of one index gives no tuple


def concat(batches: list[list[list]]) -> list[list]:
    """Columns (lists or tuples) of several batches of the same record type, one after another, as lists."""
    return [list(chain.from_iterable(parts)) for parts in zip(*batches)]
