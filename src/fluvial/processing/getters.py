"""Value getters: read a table's current value for a key, materialized or not.

Kafka Streams' ``KTableValueGetterSupplier`` idea: a join (or any lookup) reads a table
through a getter, so a filtered or mapped table needs no store of its own; the getter reads
the nearest materialized ancestor and applies the operators in between. A supplier names the
stores it reads (the reading processor must be connected to them) and makes the getter once
the processor's context is known. A getter returns ``(value, timestamp)`` or None, as a
table's store holds them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fluvial.processing.processor import ProcessorContext

Getter = Callable[[Any], "tuple[Any, int] | None"]


class ValueGetterSupplier:
    """Makes the getter of one table for one processor."""

    #: stores the getter reads: local stores a joining processor must be connected to
    store_names: list[str] = []

    def make(self, context: ProcessorContext) -> Getter:
        raise NotImplementedError


class StoreGetter(ValueGetterSupplier):
    """A materialized table: its store's own ``get`` (no extra Python frame per lookup)."""

    def __init__(self, store_name: str, *, is_global: bool = False) -> None:
        self.store_name = store_name
        # a global store is readable by every processor and needs no connection
        self.store_names = [] if is_global else [store_name]

    def make(self, context: ProcessorContext) -> Getter:
        return context.get_store(self.store_name).get  # type: ignore[no-any-return,unused-ignore]


class FilterGetter(ValueGetterSupplier):
    """An unmaterialized ``filter``: a value that fails the predicate reads as absent; the
    timestamp is the parent's."""

    def __init__(self, parent: ValueGetterSupplier, predicate: Callable[[Any, Any], bool],
                 negate: bool) -> None:
        self.parent = parent
        self.predicate = predicate
        self.negate = negate
        self.store_names = parent.store_names

    def make(self, context: ProcessorContext) -> Getter:
        get, predicate, negate = self.parent.make(context), self.predicate, self.negate

        def filtered(key: Any) -> tuple[Any, int] | None:
            found = get(key)
            if found is None or bool(predicate(key, found[0])) == negate:
                return None
            return found

        return filtered


class MapValuesGetter(ValueGetterSupplier):
    """An unmaterialized ``map_values``: the mapped value (None reads as absent), with the
    parent's timestamp."""

    def __init__(self, parent: ValueGetterSupplier, mapper: Callable[[Any], Any]) -> None:
        self.parent = parent
        self.mapper = mapper
        self.store_names = parent.store_names

    def make(self, context: ProcessorContext) -> Getter:
        get, mapper = self.parent.make(context), self.mapper

        def mapped(key: Any) -> tuple[Any, int] | None:
            found = get(key)
            if found is None:
                return None
            value = mapper(found[0])
            return None if value is None else (value, found[1])

        return mapped
