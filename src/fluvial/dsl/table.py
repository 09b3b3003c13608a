"""Table: a changelog stream read as the latest value per key (Kafka Streams' KTable)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fluvial.dsl.options import Grouped, Materialized, as_grouped, as_materialized
from fluvial.io.serdes import Serde
from fluvial.processing import table as ops

if TYPE_CHECKING:
    from fluvial.dsl.builder import StreamsBuilder
    from fluvial.dsl.grouped import GroupedTable
    from fluvial.dsl.stream import Stream


class Table:
    def __init__(self, builder: StreamsBuilder, node: str, key_serde: Serde | None,
                 value_serde: Serde | None, store: str | None) -> None:
        self._builder = builder
        self.node = node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.store_name = store  # queryable store holding this table, if materialized

    def _derive(self, prefix: str, name: str | None, materialized: Materialized | str | None,
                make: Callable[[str | None], Any], value_serde: Serde | None) -> Table:
        b = self._builder
        store = None
        if materialized is not None:
            m = as_materialized(materialized)
            store = b.add_store(m, b.key_serde(self.key_serde), b.value_serde(
                m.value_serde or value_serde), f"{prefix}STATE-STORE-")
        node = b.graph.add_processor(name or b.graph.new_name(prefix), lambda: make(store),
                                     [self.node], [store] if store else [])
        return Table(b, node, self.key_serde, value_serde, store)

    def filter(self, predicate: Callable[[Any, Any], bool], name: str | None = None,
               materialized: Materialized | str | None = None) -> Table:
        return self._derive("KTABLE-FILTER-", name, materialized,
                            lambda store: ops.TableFilter(predicate, False, store),
                            self.value_serde)

    def filter_not(self, predicate: Callable[[Any, Any], bool], name: str | None = None,
                   materialized: Materialized | str | None = None) -> Table:
        return self._derive("KTABLE-FILTER-", name, materialized,
                            lambda store: ops.TableFilter(predicate, True, store),
                            self.value_serde)

    def map_values(self, mapper: Callable[[Any], Any], name: str | None = None,
                   materialized: Materialized | str | None = None) -> Table:
        return self._derive("KTABLE-MAPVALUES-", name, materialized,
                            lambda store: ops.TableMapValues(mapper, store), None)

    def to_stream(self, name: str | None = None) -> Stream:
        from fluvial.dsl.stream import Stream

        b = self._builder
        node = b.graph.add_processor(name or b.graph.new_name("KTABLE-TOSTREAM-"),
                                     ops.TableToStream, [self.node])
        return Stream(b, node, self.key_serde, self.value_serde)

    def group_by(self, selector: Callable[[Any, Any], tuple[Any, Any]],
                 grouped: Grouped | str | None = None) -> GroupedTable:
        """Regroup by ``selector(key, value) -> (new_key, new_value)``."""
        from fluvial.dsl.grouped import GroupedTable

        g = as_grouped(grouped)
        b = self._builder
        node = b.graph.add_processor(b.graph.new_name("KTABLE-SELECT-"),
                                     lambda: ops.TableRegroup(selector), [self.node])
        return GroupedTable(self, node, g.name, b.key_serde(g.key_serde),
                            b.value_serde(g.value_serde))


class GlobalTable:
    """A table replicated on every instance; joins with it need no co-partitioning."""

    def __init__(self, store_name: str, topic: str) -> None:
        self.store_name = store_name
        self.topic = topic
