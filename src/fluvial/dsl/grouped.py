"""Grouped streams and tables: what aggregations start from."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from fluvial.dsl.options import Materialized, as_materialized
from fluvial.io.serdes import Int64Serde, Serde
from fluvial.processing import aggregate
from fluvial.processing.codec import ChangeSerde
from fluvial.processing.processor import Processor
from fluvial.windows import SessionWindows, SlidingWindows, TimeWindows

if TYPE_CHECKING:
    from fluvial.dsl.stream import Stream
    from fluvial.dsl.table import Table
    from fluvial.dsl.windowed import SessionWindowedStream, TimeWindowedStream


class GroupedStream:
    def __init__(self, stream: Stream, name: str | None, key_serde: Serde, value_serde: Serde,
                 repartition_required: bool) -> None:
        self._stream = stream
        self._name = name
        self._key_serde = key_serde
        self._value_serde = value_serde
        self._repartition_required = repartition_required

    def count(self, materialized: Materialized | str | None = None,
              name: str | None = None) -> Table:
        m = as_materialized(materialized)
        return self._aggregate(m, name, "KSTREAM-AGGREGATE-", Int64Serde(),
                               lambda store: aggregate.StreamAggregate(
                                   store, int, _count_one, stage="count"))

    def reduce(self, reducer: Callable[[Any, Any], Any],
               materialized: Materialized | str | None = None,
               name: str | None = None) -> Table:
        """``reducer(aggregate, value)``; the first value of a key is its first aggregate."""
        m = as_materialized(materialized)
        return self._aggregate(m, name, "KSTREAM-REDUCE-", self._value_serde,
                               lambda store: aggregate.StreamReduce(store, reducer))

    def aggregate(self, initializer: Callable[[], Any],
                  aggregator: Callable[[Any, Any, Any], Any],
                  materialized: Materialized | str | None = None,
                  name: str | None = None) -> Table:
        """``aggregator(key, value, aggregate)``; ``initializer()`` starts each key."""
        m = as_materialized(materialized)
        return self._aggregate(m, name, "KSTREAM-AGGREGATE-", None,
                               lambda store: aggregate.StreamAggregate(
                                   store, initializer, aggregator))

    @overload
    def windowed_by(self, windows: TimeWindows | SlidingWindows) -> TimeWindowedStream: ...
    @overload
    def windowed_by(self, windows: SessionWindows) -> SessionWindowedStream: ...

    def windowed_by(self, windows: TimeWindows | SlidingWindows | SessionWindows,
                    ) -> TimeWindowedStream | SessionWindowedStream:
        """Aggregate per window: ``TimeWindows`` (tumbling, hopping), ``SlidingWindows``
        or ``SessionWindows``; the result is a table keyed by ``Windowed``."""
        from fluvial.dsl.windowed import SessionWindowedStream, TimeWindowedStream

        if isinstance(windows, SessionWindows):
            return SessionWindowedStream(self, windows)
        if isinstance(windows, TimeWindows | SlidingWindows):
            return TimeWindowedStream(self, windows)
        raise TypeError(f"windowed_by takes TimeWindows, SlidingWindows or SessionWindows, "
                        f"not {type(windows).__name__}")

    def _aggregate(self, m: Materialized, name: str | None, prefix: str,
                   result_serde: Serde | None,
                   make: Callable[[str], Processor],
                   store_fields: dict[str, Any] | None = None,
                   windowed_key: Callable[[Serde], Serde] | None = None) -> Table:
        """``store_fields``: extra ``StoreSpec`` fields (a window or session store);
        ``windowed_key`` wraps the key serde for the resulting table's windowed keys."""
        from fluvial.dsl.table import Table

        b = self._stream._builder
        graph = b.graph
        # names drawn in Kafka Streams' order: store, aggregate, then the repartition nodes
        store = b.add_store(m, self._key_serde, b.value_serde(m.value_serde or result_serde),
                            f"{prefix}STATE-STORE-", **(store_fields or {}))
        name = name or graph.new_name(prefix)
        parent = self._stream.node
        if self._repartition_required:
            # null keys cannot be grouped: drop them before they cost a round trip
            parent = self._stream._through_repartition(
                self._name or store, self._key_serde, self._value_serde, drop_null_keys=True)
        node = graph.add_processor(name, lambda: make(store), [parent], [store])
        spec = graph.stores[store]
        key_serde = spec.key_serde if windowed_key is None else windowed_key(spec.key_serde)
        return Table(b, node, key_serde, spec.value_serde, store)


class GroupedTable:
    """A table regrouped by a new key: aggregates add new values and subtract replaced ones."""

    def __init__(self, table: Table, node: str, name: str | None, key_serde: Serde,
                 value_serde: Serde) -> None:
        self._table = table
        self._node = node
        self._name = name
        self._key_serde = key_serde
        self._value_serde = value_serde

    def count(self, materialized: Materialized | str | None = None,
              name: str | None = None) -> Table:
        return self._aggregate(as_materialized(materialized), name, "KTABLE-AGGREGATE-",
                               Int64Serde(), lambda store: aggregate.TableAggregate(
                                   store, int, _count_one, _count_minus_one, stage="count"))

    def reduce(self, adder: Callable[[Any, Any], Any], subtractor: Callable[[Any, Any], Any],
               materialized: Materialized | str | None = None,
               name: str | None = None) -> Table:
        """``adder(aggregate, new_value)``, ``subtractor(aggregate, old_value)``."""
        return self._aggregate(as_materialized(materialized), name, "KTABLE-REDUCE-",
                               self._value_serde, lambda store: aggregate.TableAggregate(
                                   store, None, aggregate.reduce_adder(adder),
                                   aggregate.reduce_subtractor(subtractor), stage="reduce"))

    def aggregate(self, initializer: Callable[[], Any], adder: Callable[[Any, Any, Any], Any],
                  subtractor: Callable[[Any, Any, Any], Any],
                  materialized: Materialized | str | None = None,
                  name: str | None = None) -> Table:
        """``adder(key, value, aggregate)``, ``subtractor(key, old_value, aggregate)``."""
        return self._aggregate(as_materialized(materialized), name, "KTABLE-AGGREGATE-", None,
                               lambda store: aggregate.TableAggregate(
                                   store, initializer, adder, subtractor))

    def _aggregate(self, m: Materialized, name: str | None, prefix: str,
                   result_serde: Serde | None, make: Callable[[str], Processor]) -> Table:
        from fluvial.dsl.stream import Stream
        from fluvial.dsl.table import Table

        b = self._table._builder
        graph = b.graph
        store = b.add_store(m, self._key_serde, b.value_serde(m.value_serde or result_serde),
                            f"{prefix}STATE-STORE-")
        source = Stream(b, self._node, self._key_serde, None)._through_repartition(
            self._name or store, self._key_serde, ChangeSerde(self._value_serde))
        node = graph.add_processor(name or graph.new_name(prefix), lambda: make(store),
                                   [source], [store])
        spec = graph.stores[store]
        return Table(b, node, spec.key_serde, spec.value_serde, store)


def _count_one(_key: Any, _value: Any, count: int) -> int:
    return count + 1


def _count_minus_one(_key: Any, _value: Any, count: int) -> int:
    return count - 1

