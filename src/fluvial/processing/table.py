"""Table operators: records carry ``Change(new, old)`` so downstream aggregates can subtract.

Which of them forward a ``Change(None, None)`` (a tombstone downstream, even for a key that
was never there) follows Kafka Streams (``Forwarding``): a table source and ``map_values``
do; a filter does unless its table sends old values; and none does from a named store with
the record cache on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fluvial.processing.processor import Processor
from fluvial.record import Change, Record
from fluvial.state.store import KeyValueStore


@dataclass
class Forwarding:
    """What a table's processor forwards, settled while the DSL builds the topology.

    ``sends_old_values`` is Kafka Streams' ``sendOldValues``: set when the table's parent
    already can (it is materialized under a name, or an aggregation), or when a downstream
    operator needs old values (``group_by``). ``named`` says the user named its store: Kafka
    Streams then materializes it, and with the record cache on, a cached store forwards no
    change that is absent before and after. Processors read both once they run.
    """

    sends_old_values: bool = False
    named: bool = False


class Materialize(Processor):
    """A table source or ``to_table``: upsert into the store and emit the change.

    A ``None`` value deletes the key, and is forwarded even for a key that was never there,
    as Kafka Streams does; except with the record cache on where Kafka Streams would
    materialize the table (named, or sending old values): its cache forwards no such delete.
    """

    fans_out = False

    def __init__(self, store_name: str, forwarding: Forwarding) -> None:
        self.store_name = store_name
        self.forwarding = forwarding

    def init(self, context: Any) -> None:
        super().init(context)
        self.store: KeyValueStore = context.get_store(self.store_name)
        f = self.forwarding
        self.drops_absent_deletes = context.caching and (f.named or f.sends_old_values)

    def process(self, batch: list[Record]) -> None:
        get, put = self.store.get, self.store.put
        out: list[Record] = []
        for r in batch:
            if r.key is None:
                continue
            stored = get(r.key)
            old = None if stored is None else stored[0]
            if r.value is None:
                if stored is None and self.drops_absent_deletes:
                    continue
                put(r.key, None)
            else:
                try:
                    put(r.key, (r.value, r.timestamp))  # the serdes write it here
                except Exception as exc:
                    self.context.on_error(r, exc, "materializing a table")
                    continue
            out.append(Record(r.key, Change(r.value, old), r.timestamp, r.headers, r.topic,
                              r.partition, r.offset))
        if out:
            self.context.forward(out)


class _TableUpdate(Processor):
    """A table operator that derives a new change from each change: new and old values both
    go through ``derive`` so a downstream aggregate can still subtract what it added."""

    fans_out = False
    stage = "table operator"
    #: a filter drops a change absent before and after when its table sends old values
    drops_empty_changes_with_old_values = False

    def __init__(self, store_name: str | None, forwarding: Forwarding) -> None:
        self.store_name = store_name
        self.forwarding = forwarding

    def init(self, context: Any) -> None:
        super().init(context)
        self.store = context.get_store(self.store_name) if self.store_name else None
        f = self.forwarding
        # a change absent before and after is forwarded (a tombstone downstream) unless
        # this rule or a cached store (Kafka Streams' cache forwards no such change) drops it
        self.drops_empty_changes = (
            (self.drops_empty_changes_with_old_values and f.sends_old_values)
            or (context.caching and f.named and self.store is not None))

    def derive(self, key: Any, value: Any) -> Any:
        raise NotImplementedError

    def process(self, batch: list[Record]) -> None:
        derive, store = self.derive, self.store
        drop_empty = self.drops_empty_changes
        out: list[Record] = []
        for r in batch:
            change = r.value
            try:
                new = None if change.new is None else derive(r.key, change.new)
                old = None if change.old is None else derive(r.key, change.old)
                if drop_empty and new is None and old is None:
                    continue
                if store is not None:  # the serdes write it here: a failure meets the policy
                    store.put(r.key, None if new is None else (new, r.timestamp))
            except Exception as exc:
                self.context.on_error(r, exc, self.stage)
                continue
            out.append(r.with_value(Change(new, old)))
        if out:
            self.context.forward(out)


class TableFilter(_TableUpdate):
    """A value that fails the predicate reads as absent: an update that leaves the filter
    becomes a delete downstream.

    A change that is absent before and after is forwarded (a tombstone) unless the table
    sends old values: then whatever is downstream can tell nothing changed, as in Kafka
    Streams, whose ksqlDB relies on those tombstones for ``HAVING``.
    """

    stage = "table filter"
    drops_empty_changes_with_old_values = True

    def __init__(self, predicate: Callable[[Any, Any], bool], negate: bool,
                 store_name: str | None, forwarding: Forwarding) -> None:
        super().__init__(store_name, forwarding)
        self.predicate = predicate
        self.negate = negate

    def derive(self, key: Any, value: Any) -> Any:
        return value if bool(self.predicate(key, value)) != self.negate else None


class TableMapValues(_TableUpdate):
    stage = "table map_values"

    def __init__(self, mapper: Callable[[Any], Any], store_name: str | None,
                 forwarding: Forwarding) -> None:
        super().__init__(store_name, forwarding)
        self.mapper = mapper

    def derive(self, key: Any, value: Any) -> Any:
        return self.mapper(value)


class TableToStream(Processor):
    fans_out = False

    def process(self, batch: list[Record]) -> None:
        self.context.forward([Record(r.key, r.value.new, r.timestamp, r.headers, r.topic,
                                     r.partition, r.offset) for r in batch])


class TableRegroup(Processor):
    """``Table.group_by``: the old value leaves its group (subtract) before the new one joins.

    When old and new fall in the same group, one record carries both, so the aggregate
    subtracts and adds in one step with no intermediate result (Kafka Streams' KIP-904).
    A selected pair with a null key or a null value joins no group: nothing is forwarded for
    it, as in Kafka Streams.
    """

    def __init__(self, selector: Callable[[Any, Any], Any]) -> None:
        self.selector = selector

    def process(self, batch: list[Record]) -> None:
        fn = self.selector
        out: list[Record] = []
        for r in batch:
            change = r.value
            try:
                old = None if change.old is None else _pair(fn(r.key, change.old))
                new = None if change.new is None else _pair(fn(r.key, change.new))
            except Exception as exc:
                self.context.on_error(r, exc, "table group_by")
                continue
            if old is not None and new is not None and old[0] == new[0]:
                out.append(Record(new[0], Change(new[1], old[1]), r.timestamp, r.headers,
                                  r.topic, r.partition, r.offset))
                continue
            if old is not None:
                out.append(Record(old[0], Change(None, old[1]), r.timestamp, r.headers, r.topic,
                                  r.partition, r.offset))
            if new is not None:
                out.append(Record(new[0], Change(new[1], None), r.timestamp, r.headers, r.topic,
                                  r.partition, r.offset))
        if out:
            self.context.forward(out)


def _pair(kv: Any) -> tuple[Any, Any] | None:
    """The selected ``(key, value)``, or None where either is null (it joins no group)."""
    key, value = kv
    return None if key is None or value is None else (key, value)
