"""Table: a changelog stream read as the latest value per key (Kafka Streams' KTable)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fluvial.dsl.options import Grouped, Materialized, as_grouped, as_materialized
from fluvial.io.serdes import Serde
from fluvial.processing import table as ops
from fluvial.processing import table_join as tj
from fluvial.processing.getters import (
    FilterGetter,
    MapValuesGetter,
    StoreGetter,
    ValueGetterSupplier,
)

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
    processors forward. A join reads it through ``value_getter()``: its own store where it
    is materialized under a name (or is a source or an aggregation), else its parent's
    getter with its operator applied.
    """

    def __init__(self, builder: StreamsBuilder, node: str, key_serde: Serde | None,
                 value_serde: Serde | None, store: str | None, *,
                 parent: Table | None = None,
                 forwarding: ops.Forwarding | None = None,
                 getter: ValueGetterSupplier | None = None,
                 sides: tuple[Table, Table] | tuple[()] = ()) -> None:
        self._builder = builder
        self.node = node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.store_name = store  # queryable store holding this table, if materialized
        self._parent = parent
        self._sides = sides
        self._forwarding = forwarding or ops.Forwarding(named=True)
        #: a windowed aggregation's table: how long after a window's end it closes
        self.window_close_delay_ms: int | None = None
        if getter is None:
            if store is None:
                raise ValueError(f"table {node}: neither a store nor a value getter")
            getter = StoreGetter(store)
            reads: list[Table] = [self]
        else:
            reads = [t for p in (parent, *sides) if p is not None for t in p._getter_reads]
        self._getter = getter
        #: the tables whose stores the getter reads
        self._getter_reads = reads

    def value_getter(self) -> ValueGetterSupplier:
        """What a join reads. As in Kafka Streams, a table read this way is materialized:
        with the record cache on, it then forwards no delete of a key it never held."""
        for table in self._getter_reads:
            table._forwarding.named = True
        return self._getter

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
                value_serde: Serde | None, getter: ValueGetterSupplier) -> Table:
        """``getter``: how to read the new table where it gets no store."""
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
        # as Kafka Streams: a table read by a join reads its own store only if named
        return Table(b, node, self.key_serde, value_serde, store, parent=self,
                     forwarding=forwarding, getter=None if forwarding.named else getter)

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
                             self.value_serde,
                             FilterGetter(self._getter, predicate, negate))
        # as Kafka Streams: a filter below a table that can send old values without more
        # state sends them too, and so forwards no needless tombstones
        table._forwarding.sends_old_values = self._enable_sending_old_values(False)
        return table

    def map_values(self, mapper: Callable[[Any], Any], name: str | None = None,
                   materialized: Materialized | str | None = None) -> Table:
        return self._derive("KTABLE-MAPVALUES-", name, materialized,
                            lambda store, f: ops.TableMapValues(mapper, store, f), None,
                            MapValuesGetter(self._getter, mapper))

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


    # -- joins -------------------------------------------------------------------------

    def join(self, other: Table, joiner: Callable[[Any, Any], Any],
             materialized: Materialized | str | None = None, name: str | None = None, *,
             foreign_key: Callable[[Any], Any] | None = None) -> Table:
        """A row for each key both tables hold: ``joiner(value, other_value)``; updated as
        either side changes. With ``foreign_key(value)``: a row for each row of this table
        whose foreign key ``other`` holds (a foreign-key join). See docs/windows-and-joins.md."""
        if foreign_key is not None:
            from fluvial.dsl.foreign_key_join import foreign_key_join

            return foreign_key_join(self, other, foreign_key, joiner, False, materialized,
                                    name)
        return self._join(other, joiner, tj.INNER, materialized, name)

    def left_join(self, other: Table, joiner: Callable[[Any, Any], Any],
                  materialized: Materialized | str | None = None,
                  name: str | None = None, *,
                  foreign_key: Callable[[Any], Any] | None = None) -> Table:
        """A row for each key this table holds; ``other_value`` None where ``other`` lacks it
        (with ``foreign_key``: lacks the row it names)."""
        if foreign_key is not None:
            from fluvial.dsl.foreign_key_join import foreign_key_join

            return foreign_key_join(self, other, foreign_key, joiner, True, materialized,
                                    name)
        return self._join(other, joiner, tj.LEFT, materialized, name)

    def outer_join(self, other: Table, joiner: Callable[[Any, Any], Any],
                   materialized: Materialized | str | None = None,
                   name: str | None = None) -> Table:
        """A row for each key either table holds; the missing side's value is None."""
        return self._join(other, joiner, tj.OUTER, materialized, name)

    def _join(self, other: Table, joiner: Callable[[Any, Any], Any], kind: str,
              materialized: Materialized | str | None, name: str | None) -> Table:
        if not isinstance(other, Table):
            raise TypeError(f"a table joins a Table, not {type(other).__name__}")
        b = self._builder
        graph = b.graph
        # names drawn in Kafka Streams' order: store, merge, this side, other side
        store = None
        m = as_materialized(materialized)
        if materialized is not None:
            store = b.add_store(m, b.key_serde(m.key_serde or self.key_serde),
                                b.value_serde(m.value_serde), "KTABLE-MERGE-STATE-STORE-")
        merge_name = name or graph.new_name("KTABLE-MERGE-")
        if kind in (tj.LEFT, tj.OUTER):  # the side kept without a match must send deletes
            self._enable_sending_old_values(True)
        if kind == tj.OUTER:
            other._enable_sending_old_values(True)
        result = ops.Forwarding(named=m.name is not None)
        this_name = f"{name}-join-this" if name else graph.new_name("KTABLE-JOINTHIS-")
        other_name = f"{name}-join-other" if name else graph.new_name("KTABLE-JOINOTHER-")
        reverse_kind = tj.RIGHT if kind == tj.LEFT else kind
        this_getter, other_getter = self.value_getter(), other.value_getter()
        this_side = graph.add_processor(
            this_name, lambda: tj.TableJoinSide(other_getter, joiner, kind, result),
            [self.node], list(other_getter.store_names))
        other_side = graph.add_processor(
            other_name, lambda: tj.TableJoinSide(this_getter, tj.reverse(joiner),
                                                 reverse_kind, result),
            [other.node], list(this_getter.store_names))
        node = graph.add_processor(merge_name, lambda: tj.TableJoinMerge(store, result),
                                   [this_side, other_side], [store] if store else [])
        getter = None if store else tj.JoinGetter(this_getter, other_getter, joiner, kind)
        return JoinedTable(b, node, self.key_serde, graph.stores[store].value_serde
                           if store else None, store, forwarding=result, getter=getter,
                           sides=(self, other))


class JoinedTable(Table):
    """A table-table join's result: it can always send old values, once both sides do."""

    def _enable_sending_old_values(self, force: bool) -> bool:
        for side in self._sides:
            side._enable_sending_old_values(True)
        self._forwarding.sends_old_values = True
        return True


class GlobalTable:
    """A table replicated on every instance; joins with it need no co-partitioning."""

    def __init__(self, store_name: str, topic: str) -> None:
        self.store_name = store_name
        self.topic = topic
        self._getter = StoreGetter(store_name, is_global=True)

    def value_getter(self) -> ValueGetterSupplier:
        """What a join reads: the global store, which any processor may read."""
        return self._getter
