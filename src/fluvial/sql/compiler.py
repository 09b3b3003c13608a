"""Query plans to a fluvial topology, through the public DSL.

All persistent queries of an engine compile into one ``StreamsBuilder``: each topic is read
by one source node (raw bytes), and each query decodes it with its own source's formats, so
a topic declared as both a stream and a table, or read by several queries, needs no second
source. Stores and repartition topics are named per query, ksqlDB-style
(``<query id>-Aggregate-GroupBy``, ``<query id>-Aggregate-Aggregate-Materialize``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from fluvial.dsl import Grouped, Joined, Materialized, Stream, StreamJoined, StreamsBuilder, Table
from fluvial.dsl.grouped import GroupedStream
from fluvial.io.serdes import BytesSerde, Serde
from fluvial.io.windowed_serdes import SessionWindowedSerde, TimeWindowedSerde
from fluvial.processing.processor import RecordProcessor
from fluvial.record import Record
from fluvial.sql import planner
from fluvial.sql.catalog import PSEUDO_COLUMNS, ROWTIME, DataSource, WindowInfo
from fluvial.sql.errors import SqlAnalysisError, at
from fluvial.sql.formats import InternalSerde, InternalStateSerde, KeySerde, ValueSerde
from fluvial.sql.joins import JoinPlan, JoinStep
from fluvial.sql.planner import QueryPlan
from fluvial.topology.topology import Topology
from fluvial.windows import EmitStrategy, JoinWindows, SessionWindows, TimeWindows, Windowed


def key_serde(source: DataSource) -> Serde:
    """The serde of a source's Kafka keys (windowed keys for a windowed table)."""
    inner = KeySerde(source.formats.key, source.schema.key)
    return _windowed(inner, source.window)


def _windowed(inner: Serde, window: WindowInfo | None) -> Serde:
    if window is None:
        return inner
    if window.size_ms is None:
        return SessionWindowedSerde(inner)
    return TimeWindowedSerde(inner, window.size_ms)


def value_serde(source: DataSource) -> ValueSerde:
    return ValueSerde(source.formats.value, source.schema.value,
                      source.formats.wrap_single_value, source.formats.value_delimiter,
                      source.formats.schema_registry, source.topic)


class NullValueRow(dict[str, Any]):
    """The row of a stream record whose value is NULL."""


class RowReader(RecordProcessor):
    """Decodes a source's records into rows: its key columns, value columns and ROWTIME
    (from the record's timestamp, or the source's TIMESTAMP column). A table's NULL value
    passes on as None (a delete) and a table drops records without a key; a stream's NULL
    value becomes a ``NullValueRow`` (key columns and ROWTIME only), which a projection
    writes as a NULL value and WHERE and GROUP BY drop, as ksqlDB does."""

    def __init__(self, source: DataSource) -> None:
        self.source = source
        self.keys = KeySerde(source.formats.key, source.schema.key)
        self.values = value_serde(source)
        self.key_names = [c.name for c in source.schema.key]
        self.is_table = source.kind == "TABLE"
        self.timestamp_column = source.timestamp_column

    def process_record(self, record: Record) -> None:
        try:
            key, row, timestamp = self.decode(record.key, record.value, record.timestamp)
        except DroppedRecord as exc:
            self.context.record_dropped(record, str(exc))
            return
        if row is None:
            self.forward_record(record, key, None)
            return
        self.forward_record(Record(key, row, timestamp, record.headers, record.topic,
                                   record.partition, record.offset))

    def decode(self, key_bytes: bytes | None, value_bytes: bytes | None,
               timestamp: int) -> tuple[tuple[Any, ...], dict[str, Any] | None, int]:
        """The record's key, row (None: a table's delete) and timestamp; raises
        ``DroppedRecord`` for one the source cannot take."""
        key = self.keys.deserialize(key_bytes)
        value = self.values.deserialize(value_bytes)
        if self.is_table and (not key or any(k is None for k in key)):
            raise DroppedRecord("a table's record needs a key")
        if value is None and self.is_table:
            return key, None, timestamp
        row = NullValueRow() if value is None else dict(value)
        row.update(zip(self.key_names, key, strict=True))
        if self.timestamp_column is not None:
            stamp = row.get(self.timestamp_column)
            if stamp is None or stamp < 0:
                raise DroppedRecord(f"no valid timestamp in column {self.timestamp_column}")
            timestamp = stamp
        row[ROWTIME] = timestamp
        return key, row, timestamp


class EventTime(RecordProcessor):
    """Stamps each row with the time a GROUP BY ``CEIL(ts TO unit)`` windows it by; a row
    without one is dropped, as a source's row without a valid TIMESTAMP column is."""

    def __init__(self, time_of: Callable[[dict[str, Any]], Any]) -> None:
        self.time_of = time_of

    def process_record(self, record: Record) -> None:
        stamp = self.time_of(record.value)
        if stamp is None or stamp < 0:
            self.context.record_dropped(record, "no valid time to window by")
            return
        self.forward_record(Record(record.key, record.value, stamp, record.headers,
                                   record.topic, record.partition, record.offset))


class DroppedRecord(Exception):
    """A record a source cannot take (no key for a table, no valid timestamp)."""


class TopologyCompiler:
    """Adds queries to one builder; ``build()`` gives the topology running them all.

    ``plans``: every query to be added, so a topic only one of them reads can be decoded by
    its source node (which lets the engine fuse a simple stateless query, see ``_direct``).
    """

    def __init__(self, plans: Iterable[QueryPlan] = ()) -> None:
        self.builder = StreamsBuilder(default_key_serde=InternalSerde(),
                                      default_value_serde=InternalSerde())
        self._raw: dict[str, Stream] = {}
        self._readers = Counter(s.topic for p in plans for s in (
            (p.source,) if p.join is None else p.join.sources))

    def build(self) -> Topology:
        return self.builder.build()

    def add(self, query_id: str, plan: QueryPlan, sink: DataSource) -> None:
        if plan.source.kind == "TABLE":
            self._add_table_query(query_id, plan, sink)
        else:
            self._add_stream_query(query_id, plan, sink)

    # -- sources --------------------------------------------------------------------------

    def _rows(self, source: DataSource) -> Stream:
        raw = self._raw.get(source.topic)
        if raw is None:
            raw = self._raw[source.topic] = self.builder.stream(
                source.topic, key_serde=BytesSerde(), value_serde=BytesSerde())
        decoded = raw.process_values(lambda: RowReader(source))
        # keys are tuples and values rows from here on: the internal serdes carry them
        return Stream(self.builder, decoded.node, InternalSerde(), InternalSerde())

    def _table(self, query_id: str, source: DataSource) -> Table:
        return self._rows(source).to_table(Materialized(name=f"{query_id}-KsqlTopic-Reduce"))

    # -- queries --------------------------------------------------------------------------

    def _direct(self, plan: QueryPlan) -> bool:
        """Whether the query is a filter and projection of value columns only, over a stream
        topic no other query reads: its source node then decodes the key and value, WHERE
        and SELECT run on the value dict as they are (no row with key columns and ROWTIME),
        and the chain source → filter → map_values → sink runs on the fused fast path
        (fluvial/processing/fused.py) as the DSL's does."""
        source = plan.source
        return (plan.join is None and source.kind == "STREAM" and plan.aggregation is None
                and not plan.partition_by and not plan.table_functions
                and source.timestamp_column is None and plan.columns is not None
                and not plan.columns & (PSEUDO_COLUMNS | {c.name for c in source.schema.key})
                and self._readers[source.topic] == 1)

    def _add_direct_query(self, plan: QueryPlan, sink: DataSource) -> None:
        source = plan.source
        stream = self.builder.stream(source.topic, key_serde=KeySerde(
            source.formats.key, source.schema.key), value_serde=value_serde(source))
        where, value_of = plan.where, plan.projection.value_of
        if where is not None:
            # a NULL value (None) is dropped by WHERE, as a NullValueRow is
            stream = stream.filter(lambda _k, value: value is not None and where(value) is True)
        self._sink(stream.map_values(lambda value: None if value is None else value_of(value)),
                   sink)

    def _add_stream_query(self, query_id: str, plan: QueryPlan, sink: DataSource) -> None:
        if self._direct(plan):
            self._add_direct_query(plan, sink)
            return
        if plan.join is None:
            stream = self._rows(plan.source)
        else:
            joined = self._joined(query_id, plan.join)
            assert isinstance(joined, Stream)
            stream = joined
        where = plan.where
        if where is not None:
            stream = stream.filter(lambda _k, row: _has_value(row) and where(row) is True)
        if plan.table_functions:
            rows_of = planner.explode(plan.table_functions)
            stream = stream.flat_map_values(
                lambda row: rows_of(row) if _has_value(row) else [])
        if plan.aggregation is not None:
            self._aggregate_stream(query_id, plan, stream.filter(
                lambda _k, row: _has_value(row)), sink)
            return
        key_of, value_of = plan.projection.key_of, plan.projection.value_of
        if plan.partition_by:
            stream = stream.map(lambda _k, row: (key_of(row), value_of(row)
                                                 if _has_value(row) else None))
        else:
            stream = stream.map_values(lambda row: value_of(row) if _has_value(row) else None)
        self._sink(stream, sink)

    def _add_table_query(self, query_id: str, plan: QueryPlan, sink: DataSource) -> None:
        if plan.join is None:
            table = self._table(query_id, plan.source)
        else:
            joined = self._joined(query_id, plan.join)
            assert isinstance(joined, Table)
            table = joined
        where = plan.where
        if where is not None:
            table = table.filter(lambda _k, row: where(row) is True)
        if plan.aggregation is not None:
            self._aggregate_table(query_id, plan, table, sink)
            return
        self._sink(table.map_values(plan.projection.value_of).to_stream(), sink)

    def _sink(self, stream: Stream, sink: DataSource) -> None:
        stream.to(sink.topic, key_serde=key_serde(sink), value_serde=value_serde(sink))

    # -- joins --------------------------------------------------------------------------

    def _joined(self, query_id: str, join: JoinPlan) -> Stream | Table:
        """The joins of a query, left-deep through the DSL's; each stream input rekeyed by
        its ON expression where that is not its key (the join then repartitions it)."""
        first = join.first.source
        current: Stream | Table = self._table(f"{query_id}-Left", first) \
            if first.kind == "TABLE" else self._rows(first).filter(
                lambda _k, row: _has_value(row))
        for n, step in enumerate(join.steps):
            name = f"{query_id}-Join" if n == 0 else f"{query_id}-Join-{n}"
            right_name = f"{query_id}-Right" if n == 0 else f"{query_id}-Right-{n}"
            current = self._join_step(current, step, name, right_name)
        return current

    def _join_step(self, left: Stream | Table, step: JoinStep, name: str,
                   right_name: str) -> Stream | Table:
        joiner = step.joiner
        if isinstance(left, Table):
            right_table = self._table(right_name, step.right.source)
            store = Materialized(name=name)
            if step.kind == "LEFT":
                return left.left_join(right_table, joiner, store)
            if step.kind == "RIGHT":
                return right_table.left_join(left, _swapped(joiner), store)
            if step.kind == "FULL":
                return left.outer_join(right_table, joiner, store)
            return left.join(right_table, joiner, store)
        if step.right.source.kind == "TABLE":
            keyed = _keyed(left, step.left_rekey, keep_null_keys=step.kind == "LEFT")
            table = self._table(right_name, step.right.source)
            if step.kind == "LEFT":
                return keyed.left_join(table, joiner, Joined(name=name))
            return keyed.join(table, joiner, Joined(name=name))
        keyed = _keyed(left, step.left_rekey)
        right = _keyed(self._rows(step.right.source).filter(lambda _k, row: _has_value(row)),
                       step.right.rekey)
        within = step.within
        assert within is not None
        # as ksqlDB: without GRACE PERIOD, Kafka Streams' legacy JoinWindows.of
        windows = JoinWindows.of(0) if within.grace_ms is None else \
            JoinWindows.of_time_difference_and_grace(0, within.grace_ms)
        windows = windows.before(within.before_ms).after(within.after_ms)
        stream_joined = StreamJoined(name=name, store_name=name)
        if step.kind == "LEFT":
            return keyed.left_join(right, joiner, windows, stream_joined)
        if step.kind == "RIGHT":
            return right.left_join(keyed, _swapped(joiner), windows, stream_joined)
        if step.kind == "FULL":
            return keyed.outer_join(right, joiner, windows, stream_joined)
        return keyed.join(right, joiner, windows, stream_joined)

    # -- aggregations ---------------------------------------------------------------------

    def _aggregate_stream(self, query_id: str, plan: QueryPlan, stream: Stream,
                          sink: DataSource) -> None:
        agg = plan.aggregation
        assert agg is not None
        event_time = agg.event_time
        if event_time is not None:
            stream = stream.process_values(lambda: EventTime(event_time))
            stream = Stream(self.builder, stream.node, InternalSerde(), InternalSerde())
        grouped = self._group(query_id, agg, stream)
        calls = agg.calls
        initial = _initializer(calls)
        add = planner.adder(calls)
        store = Materialized(name=f"{query_id}-Aggregate-Aggregate-Materialize",
                             key_serde=InternalSerde(), value_serde=InternalStateSerde(),
                             retention=_retention(agg.window))
        table: Table
        if agg.window is None:
            table = grouped.aggregate(initial, add, store)
        elif agg.window.kind == "SESSION":
            session = grouped.windowed_by(SessionWindows.of_inactivity_gap_and_grace(
                agg.window.size_ms, _grace(agg.window)))
            if agg.emit_final:
                session.emit_strategy(EmitStrategy.on_window_close())
            merge = _merger(calls)
            table = _checked(lambda: session.aggregate(initial, add, merge, store), agg.window)
        else:
            spec = agg.window
            windows = TimeWindows.of_size_and_grace(spec.size_ms, _grace(spec))
            if spec.advance_ms is not None:
                advance = spec.advance_ms
                windows = _checked(lambda: windows.advance_by(advance), spec)
            timed = grouped.windowed_by(windows)
            if agg.emit_final:
                timed.emit_strategy(EmitStrategy.on_window_close())
            table = _checked(lambda: timed.aggregate(initial, add, store), agg.window)
        self._finish_aggregate(plan, table, sink)

    def _group(self, query_id: str, agg: planner.Aggregation, stream: Stream) -> GroupedStream:
        grouped = Grouped(name=f"{query_id}-Aggregate-GroupBy", key_serde=InternalSerde(),
                          value_serde=InternalSerde())
        if agg.by_source_key:
            keyed = stream.filter(lambda key, _row: None not in key)
            return keyed.group_by_key(grouped)
        group_by = agg.group_by
        # the repartition carries only what the aggregates read, as ksqlDB's does
        read = agg.columns
        stream = stream.map_values(lambda row: {n: v for n, v in row.items() if n in read})

        def group_key(_key: Any, row: dict[str, Any]) -> tuple[Any, ...] | None:
            values = tuple(f(row) for f in group_by)
            return None if None in values else values
        return stream.group_by(group_key, grouped)

    def _aggregate_table(self, query_id: str, plan: QueryPlan, table: Table,
                         sink: DataSource) -> None:
        agg = plan.aggregation
        assert agg is not None
        group_by = agg.group_by

        def regroup(_key: Any, row: dict[str, Any]) -> tuple[Any, Any]:
            values = tuple(f(row) for f in group_by)
            return (None if None in values else values), row
        grouped = table.group_by(regroup, Grouped(name=f"{query_id}-Aggregate-GroupBy",
                                                  key_serde=InternalSerde(),
                                                  value_serde=InternalSerde()))
        store = Materialized(name=f"{query_id}-Aggregate-Aggregate-Materialize",
                             key_serde=InternalSerde(), value_serde=InternalStateSerde())
        result = grouped.aggregate(_initializer(agg.calls), planner.adder(agg.calls),
                                   planner.adder(agg.calls, sign=-1), store)
        self._finish_aggregate(plan, result, sink)

    def _finish_aggregate(self, plan: QueryPlan, table: Table, sink: DataSource) -> None:
        agg = plan.aggregation
        assert agg is not None
        calls, having, projection = agg.calls, agg.having, plan.projection

        def row_of(key: Any, state: list[Any]) -> dict[str, Any]:
            if isinstance(key, Windowed):
                return planner.aggregate_row(key.key, state, calls, (key.start, key.end))
            return planner.aggregate_row(key, state, calls, None)
        if having is not None:
            table = table.filter(lambda key, state: having(row_of(key, state)) is True)

        def output(key: Any, state: Any) -> tuple[Any, Any]:
            if state is None:
                return key, None
            return key, projection.value_of(row_of(key, state))
        self._sink(table.to_stream().map(output), sink)


def _keyed(rows: Stream, rekey: Callable[[dict[str, Any]], Any] | None,
           keep_null_keys: bool = False) -> Stream:
    """A join's stream input keyed by its join value; rows without one are dropped (but
    for a stream-table LEFT join's, which join nothing)."""
    if rekey is None:
        if keep_null_keys:
            return rows
        return rows.filter(lambda key, _row: None not in key)

    def join_key(_key: Any, row: dict[str, Any]) -> tuple[Any] | None:
        value = rekey(row)
        return None if value is None else (value,)
    return rows.select_key(join_key)


def _swapped(joiner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """A RIGHT join is the other side's LEFT join, joining the same (left, right) rows."""
    return lambda right, left: joiner(left, right)


def _has_value(row: dict[str, Any]) -> bool:
    return not isinstance(row, NullValueRow)


def _initializer(calls: tuple[planner.AggregateCall, ...]) -> Callable[[], list[Any]]:
    initials = [c.function.initial for c in calls]
    return lambda: [init() for init in initials]


def _merger(calls: tuple[planner.AggregateCall, ...]) -> Callable[[Any, Any, Any], Any]:
    merges = [c.function.merge for c in calls]
    return lambda _key, a, b: [m(x, y) for m, x, y in zip(merges, a, b, strict=True)]


def _grace(window: Any) -> timedelta:
    grace = window.grace_ms
    return timedelta(milliseconds=planner.DEFAULT_GRACE_MS if grace is None else grace)


def _retention(window: Any) -> int | None:
    return None if window is None else window.retention_ms


def _checked(build: Callable[[], Any], window: Any) -> Any:
    try:
        return build()
    except ValueError as exc:
        raise SqlAnalysisError(at(window.pos, str(exc))) from None

