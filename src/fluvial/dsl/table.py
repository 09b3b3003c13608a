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
    from fluvial.dsl.suppressed import Suppressed


class Table:
    """A table of the topology.

    Its ``Forwarding`` follows Kafka Streams: ``named`` when materialized under a name the
    user gave (an aggregation's table always is), and ``sends_old_values`` as
    ``_enable_sending_old_values`` settles it; together they decide which tombstones its
    processors forward.
    """

    def __init__(self, builder: StreamsBuilder, node: str, key_serde: Serde | None,
                 value_serde: Serde | None, store: str | None, *,
                 parent: Table | None = None,
                 forwarding: ops.Forwarding | None = None) -> None:
        self._builder = builder
        self.node = node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.store_name = store  # queryable store holding this table, if materialized
        self._parent = parent
        self._forwarding = forwarding or ops.Forwarding(named=True)
        #: a windowed aggregation's table: how long after a window's end it closes
        self.window_close_delay_ms: int | None = None

    def _enable_sending_old_values(self, force: bool) -> bool:
        """Make this table send old values, as a downstream operator needs them (``force``),
        or where it can without more state; whether it now does (Kafka Streams'
        ``enableSendingOldValues``). Tables fluvial builds keep their old values anyway, so
        only what is forwarded changes."""
        f = self._forwarding
        if not f.sends_old_values:
            if self._parent is None or f.named:
                if not (force or f.named):
                    return False
            elif not self._parent._enable_sending_old_values(force):
                return False
            f.sends_old_values = True
        return True

    def _derive(self, prefix: str, name: str | None, materialized: Materialized | str | None,
                make: Callable[[str | None, ops.Forwarding], Any],
                value_serde: Serde | None) -> Table:
        b = self._builder
        store = None
        forwarding = ops.Forwarding()
        if materialized is not None:
            m = as_materialized(materialized)
            forwarding.named = m.name is not None
            store = b.add_store(m, b.key_serde(self.key_serde), b.value_serde(
                m.value_serde or value_serde), f"{prefix}STATE-STORE-")
        node = b.graph.add_processor(name or b.graph.new_name(prefix),
                                     lambda: make(store, forwarding),
                                     [self.node], [store] if store else [])
        return Table(b, node, self.key_serde, value_serde, store, parent=self,
                     forwarding=forwarding)

    def filter(self, predicate: Callable[[Any, Any], bool], name: str | None = None,
               materialized: Materialized | str | None = None) -> Table:
        return self._filter(predicate, False, name, materialized)

    def filter_not(self, predicate: Callable[[Any, Any], bool], name: str | None = None,
                   materialized: Materialized | str | None = None) -> Table:
        return self._filter(predicate, True, name, materialized)

    def _filter(self, predicate: Callable[[Any, Any], bool], negate: bool, name: str | None,
                materialized: Materialized | str | None) -> Table:
        table = self._derive("KTABLE-FILTER-", name, materialized,
                             lambda store, f: ops.TableFilter(predicate, negate, store, f),
                             self.value_serde)
        # as Kafka Streams: a filter below a table that can send old values without more
        # state sends them too, and so forwards no needless tombstones
        table._forwarding.sends_old_values = self._enable_sending_old_values(False)
        return table

    def map_values(self, mapper: Callable[[Any], Any], name: str | None = None,
                   materialized: Materialized | str | None = None) -> Table:
        return self._derive("KTABLE-MAPVALUES-", name, materialized,
                            lambda store, f: ops.TableMapValues(mapper, store, f), None)

    def suppress(self, suppressed: Suppressed) -> Table:
        """Hold updates back: final results of windows, or a key's latest per time limit
        (``fluvial.dsl.suppressed``)."""
        from fluvial.dsl.suppressed import suppress

        return suppress(self, suppressed)

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
        self._enable_sending_old_values(True)  # the aggregate subtracts what leaves a group
        node = b.graph.add_processor(b.graph.new_name("KTABLE-SELECT-"),
                                     lambda: ops.TableRegroup(selector), [self.node])
        return GroupedTable(self, node, g.name, b.key_serde(g.key_serde),
                            b.value_serde(g.value_serde))


class GlobalTable:
    """A table replicated on every instance; joins with it need no co-partitioning."""

    def __init__(self, store_name: str, topic: str) -> None:
        self.store_name = store_name
        self.topic = topic
