"""Stateless operators: one list comprehension per batch.

A failing user function makes the operator redo the batch one record at a time, so the error
policy can name (and skip or dead-letter) exactly the record that failed. User functions of
these operators should therefore be free of side effects; ``peek``/``foreach`` are the place
for those and always run one record at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fluvial.processing.processor import Processor
from fluvial.record import Record

KeyValueMapper = Callable[[Any, Any], Any]


class StatelessOperator(Processor):
    stage = "operator"

    def kernel(self, batch: list[Record]) -> list[Record]:
        raise NotImplementedError

    def process(self, batch: list[Record]) -> None:
        try:
            out = self.kernel(batch)
        except Exception:
            out = self._one_by_one(batch)
        if out:
            self.context.forward(out)

    def _one_by_one(self, batch: list[Record]) -> list[Record]:
        out: list[Record] = []
        for record in batch:
            try:
                out.extend(self.kernel([record]))
            except Exception as exc:
                self.context.on_error(record, exc, self.stage)
        return out


class Filter(StatelessOperator):
    fans_out = False

    def __init__(self, predicate: KeyValueMapper, negate: bool = False, name: str = "") -> None:
        self.predicate = predicate
        self.negate = negate
        self.stage = name or ("filter_not" if negate else "filter")

    def kernel(self, batch: list[Record]) -> list[Record]:
        p = self.predicate
        if self.negate:
            return [r for r in batch if not p(r.key, r.value)]
        return [r for r in batch if p(r.key, r.value)]


class Map(StatelessOperator):
    fans_out = False

    def __init__(self, mapper: KeyValueMapper, name: str = "") -> None:
        self.mapper = mapper
        self.stage = name or "map"

    def kernel(self, batch: list[Record]) -> list[Record]:
        fn = self.mapper
        return [Record(*_pair(fn(r.key, r.value)), r.timestamp, r.headers, r.topic,
                       r.partition, r.offset) for r in batch]


class MapValues(StatelessOperator):
    fans_out = False

    def __init__(self, mapper: Callable[[Any], Any], name: str = "") -> None:
        self.mapper = mapper
        self.stage = name or "map_values"

    def kernel(self, batch: list[Record]) -> list[Record]:
        fn = self.mapper
        return [Record(r.key, fn(r.value), r.timestamp, r.headers, r.topic, r.partition,
                       r.offset) for r in batch]


class SelectKey(StatelessOperator):
    fans_out = False

    def __init__(self, selector: KeyValueMapper, name: str = "") -> None:
        self.selector = selector
        self.stage = name or "select_key"

    def kernel(self, batch: list[Record]) -> list[Record]:
        fn = self.selector
        return [Record(fn(r.key, r.value), r.value, r.timestamp, r.headers, r.topic,
                       r.partition, r.offset) for r in batch]


class FlatMap(StatelessOperator):
    def __init__(self, mapper: Callable[[Any, Any], Iterable[Any]], name: str = "") -> None:
        self.mapper = mapper
        self.stage = name or "flat_map"

    def kernel(self, batch: list[Record]) -> list[Record]:
        fn = self.mapper
        return [Record(*_pair(kv), r.timestamp, r.headers, r.topic, r.partition, r.offset)
                for r in batch for kv in fn(r.key, r.value)]


class FlatMapValues(StatelessOperator):
    def __init__(self, mapper: Callable[[Any], Iterable[Any]], name: str = "") -> None:
        self.mapper = mapper
        self.stage = name or "flat_map_values"

    def kernel(self, batch: list[Record]) -> list[Record]:
        fn = self.mapper
        return [Record(r.key, v, r.timestamp, r.headers, r.topic, r.partition, r.offset)
                for r in batch for v in fn(r.value)]


class Peek(Processor):
    """Calls ``action`` per record and passes the batch on (``forward=False``: ``foreach``)."""

    fans_out = False

    def __init__(self, action: Callable[[Any, Any], Any], forward: bool = True,
                 name: str = "") -> None:
        self.action = action
        self.forward = forward
        self.stage = name or ("peek" if forward else "foreach")

    def process(self, batch: list[Record]) -> None:
        action = self.action
        passed: list[Record] | None = None  # built only once a record fails
        for i, r in enumerate(batch):
            try:
                action(r.key, r.value)
            except Exception as exc:
                self.context.on_error(r, exc, self.stage)
                if passed is None:
                    passed = batch[:i]
                continue
            if passed is not None:
                passed.append(r)
        if self.forward:
            self.context.forward(batch if passed is None else passed)


class Passthrough(Processor):
    """``merge`` and the like: children see the union of the parents' batches."""

    fans_out = False

    def process(self, batch: list[Record]) -> None:
        self.context.forward(batch)


class Split(Processor):
    """Sends each record to the first branch whose predicate holds, else to the default."""

    fans_out = False

    def __init__(self, branches: list[tuple[str, KeyValueMapper]], default: str | None) -> None:
        self.branches = branches
        self.default = default

    def process(self, batch: list[Record]) -> None:
        buckets: dict[str, list[Record]] = {name: [] for name, _ in self.branches}
        default: list[Record] = []
        for r in batch:
            try:
                for name, predicate in self.branches:
                    if predicate(r.key, r.value):
                        buckets[name].append(r)
                        break
                else:
                    default.append(r)
            except Exception as exc:
                self.context.on_error(r, exc, "split")
        for name, records in buckets.items():
            if records:
                self.context.forward(records, name)
        if default and self.default is not None:
            self.context.forward(default, self.default)


def _pair(kv: Any) -> tuple[Any, Any]:
    key, value = kv
    return key, value
