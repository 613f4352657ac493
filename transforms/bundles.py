"""What a DoFn gathers over a bundle before it emits (so that a batch is worth a spill file or a shuffle entry), and
how finish_bundle emits what is left: each value explicitly in the global window, tagged outputs too."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue


class Filling:
    """Items gathered until they weigh `limit` (characters, tokens, rows: the caller says what an item weighs)."""

    def __init__(self, limit: int):
        self._limit = limit
        self.items: list = []
        self.weight = 0

    def add(self, item, weight: int = 1) -> None:
        self.items.append(item)
        self.weight += weight

    @property
    def full(self) -> bool:
        return self.weight >= self._limit

    def take(self) -> list:
        items, self.items, self.weight = self.items, [], 0
        return items


def global_window_value(value) -> WindowedValue:
    return WindowedValue(value, GlobalWindow().max_timestamp(), (GlobalWindow(),))


def in_global_window(outputs):
    """What finish_bundle yields for `outputs` (values or TaggedOutputs), which have no element's window to take."""
    for output in outputs:
        if isinstance(output, beam.pvalue.TaggedOutput):
            yield beam.pvalue.TaggedOutput(output.tag, global_window_value(output.value))
        else:
            yield global_window_value(output)
