"""Aggregations of grouped streams and grouped tables into a table.

Each emits ``Change(new, old)`` with the largest timestamp of the inputs that made the result;
a grouped stream's ``count``/``aggregate`` gives a new key the initializer's value as old
value, as Kafka Streams does (a filter below then sees the key leave, not appear absent).
With the record cache on (``context.caching``), a key updated several times in one batch is emitted
once, with the value before the batch as ``old``: the same final table, fewer records, and no
added latency since a batch is whatever one poll returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fluvial.processing.processor import Processor
from fluvial.record import Change, Record


class _Aggregate(Processor):
    fans_out = False

    def __init__(self, store_name: str, stage: str) -> None:
        self.store_name = store_name
        self.collapse = False
        self.stage = stage

    def init(self, context: Any) -> None:
        super().init(context)
        self.store = context.get_store(self.store_name)
        self.collapse = context.caching

    def update(self, key: Any, value: Any, current: Any) -> Any:
        raise NotImplementedError

    def start(self) -> Any:
        """The aggregate of a key seen for the first time: what ``update`` gets, and what the
        change carries as old value when each update is forwarded (as Kafka Streams does)."""
        return None

    def process(self, batch: list[Record]) -> None:
        if not (self.collapse and self._process_collapsed(batch)):
            self._process_each(batch)

    def _process_each(self, batch: list[Record]) -> None:
        """One store read, update, write and output per record."""
        get, put, update = self.store.get, self.store.put, self.update
        out: list[Record] = []
        for r in batch:
            key = r.key
            if key is None or r.value is None:  # cannot be grouped: skipped, as Kafka Streams does
                continue
            stored = get(key)
            if stored is None:
                old, ts = self.start(), r.timestamp
            else:
                old, ts = stored
                if r.timestamp > ts:
                    ts = r.timestamp
            try:
                new = update(key, r.value, old)
                put(key, None if new is None else (new, ts))  # the serdes write it here
            except Exception as exc:
                self.context.on_error(r, exc, self.stage)
                continue
            out.append(Record(key, Change(new, old), ts, r.headers, r.topic, r.partition,
                              r.offset))
        if out:
            self.context.forward(out)

    def _process_collapsed(self, batch: list[Record]) -> bool:
        """With the record cache: one store read and write per key per batch, and one update
        out per key (the last record's, with the value from before the batch as ``old``).

        Every new value is encoded as it is made, as a record-by-record put would, but only
        the last of each key is written, once the whole batch went well. If an update fails
        or a value cannot be encoded, nothing was written, and False sends the batch record
        by record, so the error policy meets the very record that failed (once).
        """
        get, update, encode = self.store.get, self.update, self.store.encode
        # key -> (last record, value before the batch, new value, timestamp, new value's bytes)
        latest: dict[Any, tuple[Record, Any, Any, int, bytes | None]] = {}
        for r in batch:
            key = r.key
            if key is None or r.value is None:  # cannot be grouped: skipped, as Kafka Streams does
                continue
            seen = latest.pop(key, None)  # re-inserted: emitted in order of last update
            if seen is None:
                # the old value the store held before the batch: none for a new key
                stored = get(key)
                first = None if stored is None else stored[0]
            else:
                first = seen[1]
                stored = None if seen[2] is None else (seen[2], seen[3])
            if stored is None:  # a new key, or one this batch deleted: starts afresh
                old, ts = self.start(), r.timestamp
            else:
                old, ts = stored
                if r.timestamp > ts:
                    ts = r.timestamp
            try:
                new = update(key, r.value, old)
                data = None if new is None else encode((new, ts))
            except Exception:
                return False
            latest[key] = (r, first, new, ts, data)
        if latest:
            self.store.put_encoded([(key, e[4]) for key, e in latest.items()])
            self.context.forward([Record(key, Change(new, old), ts, r.headers, r.topic,
                                         r.partition, r.offset)
                                  for key, (r, old, new, ts, _) in latest.items()])
        return True


class StreamAggregate(_Aggregate):
    """count / aggregate of a grouped stream: ``adder(key, value, aggregate)``."""

    def __init__(self, store_name: str, initializer: Callable[[], Any],
                 adder: Callable[[Any, Any, Any], Any], stage: str = "aggregate") -> None:
        super().__init__(store_name, stage)
        self.initializer = initializer
        self.adder = adder

    def start(self) -> Any:
        return self.initializer()

    def update(self, key: Any, value: Any, current: Any) -> Any:
        return self.adder(key, value, current)


class StreamReduce(_Aggregate):
    """reduce of a grouped stream: the first value is the aggregate, then ``reducer(agg, v)``."""

    def __init__(self, store_name: str, reducer: Callable[[Any, Any], Any]) -> None:
        super().__init__(store_name, "reduce")
        self.reducer = reducer

    def update(self, key: Any, value: Any, current: Any) -> Any:
        return value if current is None else self.reducer(current, value)


class TableAggregate(_Aggregate):
    """Aggregate of a grouped table: records carry ``Change`` with the value to add or subtract."""

    def __init__(self, store_name: str, initializer: Callable[[], Any] | None,
                 adder: Callable[[Any, Any, Any], Any],
                 subtractor: Callable[[Any, Any, Any], Any],
                 stage: str = "table aggregate") -> None:
        super().__init__(store_name, stage)
        self.initializer = initializer
        self.adder = adder
        self.subtractor = subtractor

    def update(self, key: Any, value: Any, current: Any) -> Any:
        """As Kafka Streams: the old value is subtracted only from an existing aggregate, and
        the initializer starts one only when a new value is added."""
        change: Change = value
        agg = current
        if change.old is not None and agg is not None:
            agg = self.subtractor(key, change.old, agg)
        if change.new is not None:
            if agg is None and self.initializer is not None:
                agg = self.initializer()
            agg = self.adder(key, change.new, agg)
        return agg


def reduce_adder(adder: Callable[[Any, Any], Any]) -> Callable[[Any, Any, Any], Any]:
    """A table ``reduce`` adder: the first value starts the aggregate."""
    return lambda _key, value, agg: value if agg is None else adder(agg, value)


def reduce_subtractor(subtractor: Callable[[Any, Any], Any]) -> Callable[[Any, Any, Any], Any]:
    return lambda _key, value, agg: subtractor(agg, value)
