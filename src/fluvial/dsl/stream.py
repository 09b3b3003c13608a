"""Stream: an unbounded sequence of independent key/value records (Kafka Streams' KStream)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from fluvial.dsl.options import (
    Grouped,
    Joined,
    Materialized,
    Repartitioned,
    StreamJoined,
    as_grouped,
    as_materialized,
)
from fluvial.errors import TopologyError
from fluvial.io.serdes import Serde
from fluvial.processing import stateless
from fluvial.processing.join import StreamTableJoin
from fluvial.processing.processor import Processor
from fluvial.processing.table import Forwarding, Materialize
from fluvial.windows import JoinWindows

if TYPE_CHECKING:
    from fluvial.dsl.builder import StreamsBuilder
    from fluvial.dsl.grouped import GroupedStream
    from fluvial.dsl.table import GlobalTable, Table


class Stream:
    def __init__(self, builder: StreamsBuilder, node: str, key_serde: Serde | None,
                 value_serde: Serde | None, repartition_required: bool = False) -> None:
        self._builder = builder
        self.node = node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self._repartition_required = repartition_required

    def _then(self, prefix: str, name: str | None, supplier: Callable[[], Processor], *,
              key_serde: Serde | None, value_serde: Serde | None, key_changed: bool = False,
              stores: list[str] | None = None) -> Stream:
        graph = self._builder.graph
        node = graph.add_processor(name or graph.new_name(prefix), supplier, [self.node], stores)
        return Stream(self._builder, node, key_serde, value_serde,
                      self._repartition_required or key_changed)

    # -- stateless ---------------------------------------------------------------------

    def filter(self, predicate: Callable[[Any, Any], bool], name: str | None = None) -> Stream:
        return self._then("KSTREAM-FILTER-", name, lambda: stateless.Filter(predicate),
                          key_serde=self.key_serde, value_serde=self.value_serde)

    def filter_not(self, predicate: Callable[[Any, Any], bool],
                   name: str | None = None) -> Stream:
        return self._then("KSTREAM-FILTER-", name,
                          lambda: stateless.Filter(predicate, negate=True),
                          key_serde=self.key_serde, value_serde=self.value_serde)

    def map(self, mapper: Callable[[Any, Any], tuple[Any, Any]],
            name: str | None = None) -> Stream:
        """``mapper(key, value) -> (new_key, new_value)``; marks the stream for repartitioning."""
        return self._then("KSTREAM-MAP-", name, lambda: stateless.Map(mapper),
                          key_serde=None, value_serde=None, key_changed=True)

    def map_values(self, mapper: Callable[[Any], Any], name: str | None = None) -> Stream:
        return self._then("KSTREAM-MAPVALUES-", name, lambda: stateless.MapValues(mapper),
                          key_serde=self.key_serde, value_serde=None)

    def flat_map(self, mapper: Callable[[Any, Any], Iterable[tuple[Any, Any]]],
                 name: str | None = None) -> Stream:
        return self._then("KSTREAM-FLATMAP-", name, lambda: stateless.FlatMap(mapper),
                          key_serde=None, value_serde=None, key_changed=True)

    def flat_map_values(self, mapper: Callable[[Any], Iterable[Any]],
                        name: str | None = None) -> Stream:
        return self._then("KSTREAM-FLATMAPVALUES-", name,
                          lambda: stateless.FlatMapValues(mapper),
                          key_serde=self.key_serde, value_serde=None)

    def select_key(self, selector: Callable[[Any, Any], Any], name: str | None = None) -> Stream:
        return self._then("KSTREAM-KEY-SELECT-", name, lambda: stateless.SelectKey(selector),
                          key_serde=None, value_serde=self.value_serde, key_changed=True)

    def peek(self, action: Callable[[Any, Any], Any], name: str | None = None) -> Stream:
        return self._then("KSTREAM-PEEK-", name, lambda: stateless.Peek(action),
                          key_serde=self.key_serde, value_serde=self.value_serde)

    def foreach(self, action: Callable[[Any, Any], Any], name: str | None = None) -> None:
        self._then("KSTREAM-FOREACH-", name, lambda: stateless.Peek(action, forward=False),
                   key_serde=None, value_serde=None)

    def merge(self, other: Stream, name: str | None = None) -> Stream:
        graph = self._builder.graph
        node = graph.add_processor(name or graph.new_name("KSTREAM-MERGE-"),
                                   stateless.Passthrough, [self.node, other.node])
        same = self.key_serde is other.key_serde and self.value_serde is other.value_serde
        return Stream(self._builder, node, self.key_serde if same else None,
                      self.value_serde if same else None,
                      self._repartition_required or other._repartition_required)

    def split(self, name: str | None = None) -> BranchedStream:
        """Route each record to the first branch whose predicate holds: ``split(name="p-")
        .branch(pred, name="a").default_branch(name="rest")`` → ``{"p-a": ..., "p-rest": ...}``.
        """
        return BranchedStream(self, name or self._builder.graph.new_name("KSTREAM-BRANCH-"))

    def process(self, supplier: Callable[[], Processor], stores: list[str] | None = None,
                name: str | None = None) -> Stream:
        """A custom processor (subclass ``RecordProcessor``) with access to named stores."""
        for store in stores or []:
            if store not in self._builder.graph.stores:
                raise TopologyError(f"store {store!r} is unknown: add it with "
                                    f"builder.add_state_store({store!r}, ...) first")
        return self._then("KSTREAM-PROCESSOR-", name, supplier, key_serde=None,
                          value_serde=None, key_changed=True, stores=stores)

    def process_values(self, supplier: Callable[[], Processor], stores: list[str] | None = None,
                       name: str | None = None) -> Stream:
        """A custom processor that keeps every record's key (Kafka Streams' processValues):
        unlike ``process``, a later grouping needs no repartition."""
        for store in stores or []:
            if store not in self._builder.graph.stores:
                raise TopologyError(f"store {store!r} is unknown: add it with "
                                    f"builder.add_state_store({store!r}, ...) first")
        return self._then("KSTREAM-PROCESSVALUES-", name, supplier, key_serde=self.key_serde,
                          value_serde=None, stores=stores)

    # -- to Kafka ----------------------------------------------------------------------

    def to(self, topic: str | Callable[[Any, Any, Any], str],
           key_serde: Serde | str | None = None, value_serde: Serde | str | None = None,
           name: str | None = None) -> None:
        """Write to ``topic``, or to the topic ``topic(key, value, record)`` names."""
        b = self._builder
        graph = b.graph
        graph.add_sink(name or graph.new_name("KSTREAM-SINK-"), topic,  # type: ignore[arg-type]
                       [self.node], b.key_serde(key_serde or self.key_serde),
                       b.value_serde(value_serde or self.value_serde))

    def repartition(self, repartitioned: Repartitioned | None = None) -> Stream:
        r = repartitioned or Repartitioned()
        b = self._builder
        ks = b.key_serde(r.key_serde or self.key_serde)
        vs = b.value_serde(r.value_serde or self.value_serde)
        node = self._through_repartition(r.name or b.graph.new_name("KSTREAM-REPARTITION-"),
                                         ks, vs, r.partitions, drop_null_keys=True)
        return Stream(b, node, ks, vs)

    def _through_repartition(self, base: str, key_serde: Serde, value_serde: Serde,
                             partitions: int | None = None, drop_null_keys: bool = False,
                             keep_null_keys: bool = False) -> str:
        """sink → internal topic ``<application.id>-<base>-repartition`` → source.

        ``drop_null_keys`` puts a filter before the sink, since null keys cannot be grouped
        or inner-joined; ``keep_null_keys`` puts one that keeps them (a left join's, which
        joins a null key with nothing). Names are drawn sink, filter, source, as Kafka
        Streams does.
        """
        graph = self._builder.graph
        topic = f"{base}-repartition"
        sink = graph.new_name("KSTREAM-SINK-")
        parent = self.node
        if drop_null_keys or keep_null_keys:
            predicate = _has_key if drop_null_keys else _any_key
            parent = graph.add_processor(graph.new_name("KSTREAM-FILTER-"),
                                         lambda: stateless.Filter(predicate), [parent])
        graph.add_sink(sink, topic, [parent], key_serde, value_serde, internal=True,
                       partitions=partitions)
        return graph.add_source(graph.new_name("KSTREAM-SOURCE-"), [topic], key_serde,
                                value_serde, internal=True)

    # -- joins -------------------------------------------------------------------------

    def join(self, other: Stream | Table | GlobalTable, joiner: Callable[[Any, Any], Any],
             joined: Joined | JoinWindows | None = None,
             stream_joined: StreamJoined | None = None, *,
             key_mapper: Callable[[Any, Any], Any] | None = None) -> Stream:
        """With a table: each record with the table's current value for its key,
        ``joiner(value, table_value)``; a key the table lacks gives nothing. A global table
        is looked up by ``key_mapper(key, value)``. With a stream: each pair of records of
        one key within the ``JoinWindows`` (the third argument). See
        docs/windows-and-joins.md."""
        if isinstance(other, Stream):
            return self._stream_join(other, joiner, joined, stream_joined, "inner")
        return self._table_join(other, joiner, _table_joined(joined), key_mapper, left=False)

    def left_join(self, other: Stream | Table | GlobalTable, joiner: Callable[[Any, Any], Any],
                  joined: Joined | JoinWindows | None = None,
                  stream_joined: StreamJoined | None = None, *,
                  key_mapper: Callable[[Any, Any], Any] | None = None) -> Stream:
        """As ``join``, but a record with no match gives ``joiner(value, None)`` (with a
        stream: once its window has closed)."""
        if isinstance(other, Stream):
            return self._stream_join(other, joiner, joined, stream_joined, "left")
        return self._table_join(other, joiner, _table_joined(joined), key_mapper, left=True)

    def outer_join(self, other: Stream, joiner: Callable[[Any, Any], Any],
                   windows: JoinWindows, stream_joined: StreamJoined | None = None) -> Stream:
        """As ``left_join`` with a stream, both ways: an unmatched record of ``other``
        gives ``joiner(None, other_value)``."""
        return self._stream_join(other, joiner, windows, stream_joined, "outer")

    def _stream_join(self, other: Stream, joiner: Callable[[Any, Any], Any],
                     windows: Any, stream_joined: StreamJoined | None, kind: str) -> Stream:
        from fluvial.dsl.stream_join import stream_stream_join

        if not isinstance(windows, JoinWindows):
            raise TopologyError("a stream-stream join needs JoinWindows, e.g. "
                                "JoinWindows.of_time_difference_and_grace(...), as its third "
                                "argument")
        return stream_stream_join(self, other, joiner, windows, stream_joined or StreamJoined(),
                                  kind)

    def _table_join(self, table: Table | GlobalTable, joiner: Callable[[Any, Any], Any],
                    joined: Joined | None, key_mapper: Callable[[Any, Any], Any] | None,
                    left: bool) -> Stream:
        from fluvial.dsl.table import GlobalTable

        j = joined or Joined()
        b = self._builder
        graph = b.graph
        prefix = "KSTREAM-LEFTJOIN-" if left else "KSTREAM-JOIN-"
        if isinstance(table, GlobalTable):
            if key_mapper is None:
                raise TopologyError("a join with a global table needs key_mapper=(key, value) "
                                    "-> the table's key")
            # as Kafka Streams: a global table's join is named LEFTJOIN, inner or left
            name = j.name or graph.new_name("KSTREAM-LEFTJOIN-")
            getter = table.value_getter()
            supplier = lambda: StreamTableJoin(getter, joiner, left, key_mapper)  # noqa: E731
            node = graph.add_processor(name, supplier, [self.node])
            return Stream(b, node, self.key_serde, None, self._repartition_required)
        if key_mapper is not None:
            raise TopologyError("key_mapper is for a global table's join; a table joins on "
                                "the stream's key (select_key first to join on another)")
        parent = self
        if self._repartition_required:
            # as Kafka Streams: co-partition the stream with the table by its new key
            ks = b.key_serde(j.key_serde or self.key_serde)
            vs = b.value_serde(j.value_serde or self.value_serde)
            source = self._through_repartition(j.name or self.node, ks, vs,
                                               drop_null_keys=not left, keep_null_keys=left)
            parent = Stream(b, source, ks, vs)
        name = j.name or graph.new_name(prefix)
        getter = table.value_getter()
        node = graph.add_processor(name, lambda: StreamTableJoin(getter, joiner, left),
                                   [parent.node], list(getter.store_names))
        return Stream(b, node, b.key_serde(j.key_serde) if j.key_serde else parent.key_serde,
                      None)

    # -- to tables ---------------------------------------------------------------------

    def to_table(self, materialized: Materialized | str | None = None,
                 name: str | None = None) -> Table:
        from fluvial.dsl.table import Table

        b = self._builder
        ks, vs = b.key_serde(self.key_serde), b.value_serde(self.value_serde)
        # names drawn in Kafka Streams' order: processor, store, repartition nodes
        name = name or b.graph.new_name("KSTREAM-TOTABLE-")
        m = as_materialized(materialized)
        store = b.add_store(m, ks, vs, "KSTREAM-TOTABLE-STATE-STORE-")
        parent = self.node
        if self._repartition_required:
            parent = self._through_repartition(name, ks, vs, drop_null_keys=True)
        forwarding = Forwarding(named=m.name is not None)
        node = b.graph.add_processor(name, lambda: Materialize(store, forwarding), [parent],
                                     [store])
        return Table(b, node, ks, vs, store, forwarding=forwarding)

    def group_by(self, selector: Callable[[Any, Any], Any],
                 grouped: Grouped | str | None = None) -> GroupedStream:
        """Group by a new key ``selector(key, value)``; aggregating repartitions by it."""
        g = as_grouped(grouped)
        keyed = self.select_key(selector)
        return keyed.group_by_key(g)

    def group_by_key(self, grouped: Grouped | str | None = None) -> GroupedStream:
        from fluvial.dsl.grouped import GroupedStream

        g = as_grouped(grouped)
        b = self._builder
        return GroupedStream(self, g.name, b.key_serde(g.key_serde or self.key_serde),
                             b.value_serde(g.value_serde or self.value_serde),
                             self._repartition_required)


def _table_joined(joined: Joined | JoinWindows | None) -> Joined | None:
    if isinstance(joined, JoinWindows):
        raise TopologyError("JoinWindows are for a join of two streams; a stream-table join "
                            "takes Joined")
    return joined


def _has_key(key: Any, _value: Any) -> bool:
    return key is not None


def _any_key(_key: Any, _value: Any) -> bool:
    return True


class BranchedStream:
    """Branches of ``split()``: the splitter node is named ``name`` (or ``KSTREAM-BRANCH-n``)
    and each branch is that name followed by the branch's name, or by its number from 1
    (the default branch: 0), as in Kafka Streams."""

    def __init__(self, stream: Stream, name: str) -> None:
        self._stream = stream
        self._prefix = name
        self._branches: list[tuple[str, Callable[[Any, Any], bool]]] = []
        self._done = False

    def branch(self, predicate: Callable[[Any, Any], bool],
               name: str | None = None) -> BranchedStream:
        if self._done:
            raise TopologyError("split() already ended with default_branch()/no_default_branch()")
        self._branches.append((self._prefix + (name or str(len(self._branches) + 1)), predicate))
        return self

    def default_branch(self, name: str | None = None) -> dict[str, Stream]:
        return self._finish(self._prefix + (name or "0"))

    def no_default_branch(self) -> dict[str, Stream]:
        return self._finish(None)

    def _finish(self, default: str | None) -> dict[str, Stream]:
        self._done = True
        s = self._stream
        graph = s._builder.graph
        names = [n for n, _ in self._branches] + ([default] if default else [])
        if len(set(names)) != len(names):
            raise TopologyError(f"split() branch names must be unique: {names}")
        branches = list(self._branches)
        splitter = graph.add_processor(self._prefix,
                                       lambda: stateless.Split(branches, default), [s.node])
        return {n: Stream(s._builder, graph.add_processor(n, stateless.Passthrough, [splitter]),
                          s.key_serde, s.value_serde, s._repartition_required) for n in names}
