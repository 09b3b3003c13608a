"""Windowed grouped streams: ``grouped.windowed_by(windows)`` then count / reduce / aggregate.

The result is a table keyed by ``Windowed(key, start, end)``, written by default with Kafka
Streams' windowed serdes (``TimeWindowedSerde``, ``SessionWindowedSerde``), so a Java consumer
reads its output topic as it would a Kafka Streams application's. Names of nodes and stores
are drawn as Kafka Streams draws them, so ``describe()`` prints the same text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

from fluvial.dsl.options import Materialized, as_materialized
from fluvial.errors import TopologyError
from fluvial.io.serdes import Int64Serde, Serde
from fluvial.io.windowed_serdes import SessionWindowedSerde, TimeWindowedSerde
from fluvial.processing.processor import Processor
from fluvial.processing.windowed import (
    SessionWindowAggregate,
    SlidingWindowAggregate,
    TimeWindowAggregate,
)
from fluvial.windows import (
    Duration,
    EmitStrategy,
    SessionWindows,
    SlidingWindows,
    TimeWindows,
    to_ms,
)

if TYPE_CHECKING:
    from fluvial.dsl.grouped import GroupedStream
    from fluvial.dsl.table import Table

AGGREGATE = "KSTREAM-AGGREGATE-"
REDUCE = "KSTREAM-REDUCE-"


class _WindowedStream:
    def __init__(self, grouped: GroupedStream) -> None:
        self._grouped = grouped
        self._emit = EmitStrategy.ON_WINDOW_UPDATE
        self._idle_close_ms: int | None = None

    def emit_strategy(self, strategy: EmitStrategy) -> Self:
        """``EmitStrategy.on_window_close()``: one result per window, once it has closed."""
        self._emit = strategy
        return self

    def close_when_idle(self, after: Duration) -> Self:
        """Opt-in (not in Kafka Streams), with ``on_window_close``: once a partition has had
        no record for ``after`` of wall-clock time, its stream time moves on with the wall
        clock, so its windows close and are emitted without waiting for the next record.
        Records arriving later than that are late, and results depend on processing times:
        see docs/windows-and-joins.md."""
        self._idle_close_ms = to_ms(after, "idle time")
        if self._idle_close_ms <= 0:
            raise ValueError("close_when_idle needs a positive idle time")
        return self

    def _options(self) -> tuple[EmitStrategy, int | None]:
        if self._idle_close_ms is not None and self._emit is not EmitStrategy.ON_WINDOW_CLOSE:
            raise TopologyError("close_when_idle() closes windows to emit them: it needs "
                                "emit_strategy(EmitStrategy.on_window_close())")
        return self._emit, self._idle_close_ms


class TimeWindowedStream(_WindowedStream):
    """A grouped stream cut into time windows (tumbling, hopping) or sliding windows."""

    def __init__(self, grouped: GroupedStream, windows: TimeWindows | SlidingWindows) -> None:
        super().__init__(grouped)
        self._windows = windows

    def count(self, materialized: Materialized | str | None = None,
              name: str | None = None) -> Table:
        if materialized is not None and isinstance(self._windows, TimeWindows):
            _burn_store_name(self._grouped, as_materialized(materialized))
        return self._build(as_materialized(materialized), name, AGGREGATE, Int64Serde(),
                           int, _count_one, "count")

    def reduce(self, reducer: Callable[[Any, Any], Any],
               materialized: Materialized | str | None = None,
               name: str | None = None) -> Table:
        """``reducer(aggregate, value)``; a window's first value is its first aggregate."""
        return self._build(as_materialized(materialized), name, REDUCE,
                           self._grouped._value_serde, _none, _reducing(reducer), "reduce")

    def aggregate(self, initializer: Callable[[], Any],
                  aggregator: Callable[[Any, Any, Any], Any],
                  materialized: Materialized | str | None = None,
                  name: str | None = None) -> Table:
        """``aggregator(key, value, aggregate)``; ``initializer()`` starts each window."""
        return self._build(as_materialized(materialized), name, AGGREGATE, None, initializer,
                           aggregator, "aggregate")

    def _build(self, m: Materialized, name: str | None, prefix: str, result_serde: Serde | None,
               initializer: Callable[[], Any], aggregator: Callable[[Any, Any, Any], Any],
               stage: str) -> Table:
        w = self._windows
        emit, idle = self._options()
        make: Callable[[str], Processor]
        if isinstance(w, TimeWindows):
            size = w.size_ms

            def make(store: str) -> Processor:
                return TimeWindowAggregate(store, w, initializer, aggregator, emit, stage, idle)
        else:
            size = w.time_difference_ms

            def make(store: str) -> Processor:
                return SlidingWindowAggregate(store, w, initializer, aggregator, emit, stage,
                                              idle)
        retention = _retention(m, w.retention_ms, "window store",
                               f"its window size plus the grace period. Got size=[{size}], "
                               f"grace=[{w.grace_ms}]")
        table = self._grouped._aggregate(
            m, name, prefix, result_serde, make,
            store_fields={"kind": "window", "window_size_ms": size,
                          "retention_ms": _kept_until_emitted(retention, emit, 1)},
            windowed_key=lambda serde: TimeWindowedSerde(serde, size))
        table.window_close_delay_ms = w.grace_ms
        return table


class SessionWindowedStream(_WindowedStream):
    """A grouped stream cut into sessions of activity."""

    def __init__(self, grouped: GroupedStream, windows: SessionWindows) -> None:
        super().__init__(grouped)
        self._windows = windows

    def count(self, materialized: Materialized | str | None = None,
              name: str | None = None) -> Table:
        if materialized is not None:
            _burn_store_name(self._grouped, as_materialized(materialized))
        return self._build(as_materialized(materialized), name, AGGREGATE, Int64Serde(), int,
                           _count_one, _sum_merger, "count")

    def reduce(self, reducer: Callable[[Any, Any], Any],
               materialized: Materialized | str | None = None,
               name: str | None = None) -> Table:
        """``reducer(aggregate, value)``; merging sessions reduces one's aggregate into the
        other's."""
        adder = _reducing(reducer)
        return self._build(as_materialized(materialized), name, REDUCE,
                           self._grouped._value_serde, _none, adder,
                           lambda key, one, two: adder(key, two, one), "reduce")

    def aggregate(self, initializer: Callable[[], Any],
                  aggregator: Callable[[Any, Any, Any], Any],
                  merger: Callable[[Any, Any, Any], Any],
                  materialized: Materialized | str | None = None,
                  name: str | None = None) -> Table:
        """``aggregator(key, value, aggregate)``; ``merger(key, aggregate1, aggregate2)``
        combines two sessions that a record brings together."""
        return self._build(as_materialized(materialized), name, AGGREGATE, None, initializer,
                           aggregator, merger, "aggregate")

    def _build(self, m: Materialized, name: str | None, prefix: str, result_serde: Serde | None,
               initializer: Callable[[], Any], aggregator: Callable[[Any, Any, Any], Any],
               merger: Callable[[Any, Any, Any], Any], stage: str) -> Table:
        w = self._windows
        emit, idle = self._options()
        retention = _retention(m, w.retention_ms, "session store",
                               f"the session inactivity gap plus the grace period. Got "
                               f"gap=[{w.inactivity_gap_ms}], grace=[{w.grace_ms}]")
        table = self._grouped._aggregate(
            m, name, prefix, result_serde,
            lambda store: SessionWindowAggregate(store, w, initializer, aggregator, merger,
                                                 emit, stage, idle, retention),
            # Kafka Streams' session stores keep no timestamp with the value
            store_fields={"kind": "session", "timestamped": False,
                          "retention_ms": _kept_until_emitted(
                              retention, emit, max(retention // 2, 60_000))},
            windowed_key=SessionWindowedSerde)
        table.window_close_delay_ms = w.inactivity_gap_ms + w.grace_ms
        return table


def _retention(m: Materialized, needed: int, what: str, why: str) -> int:
    """The store's retention: the materialized one if given (no shorter than ``needed``),
    else ``needed``, as Kafka Streams' store materializers choose it."""
    if m.retention is None:
        return needed
    retention = to_ms(m.retention, "retention")
    if retention < needed:
        store = m.name or "of this aggregation"
        raise ValueError(f"The retention period of the {what} {store} must be no smaller "
                         f"than {why}, retention=[{retention}]")
    return retention


def _kept_until_emitted(retention: int, emit: EmitStrategy, extra: int) -> int:
    """The retention a store gets. With on-window-close, Kafka Streams' time-ordered stores
    keep closed windows a little longer for the emitter: a time window 1 ms (its store reads
    back to observed time - retention, not + 1); a session while its segment (half the
    retention, at least a minute) lives."""
    return retention + extra if emit is EmitStrategy.ON_WINDOW_CLOSE else retention


def _burn_store_name(grouped: GroupedStream, m: Materialized) -> None:
    """Kafka Streams' count(Materialized) of time and session windows draws a store name it
    never uses when the Materialized has none; drawn here too, so later names match."""
    if m.name is None:
        grouped._stream._builder.graph.new_name(f"{AGGREGATE}STATE-STORE-")


def _count_one(_key: Any, _value: Any, count: int) -> int:
    return count + 1


def _sum_merger(_key: Any, one: int, two: int) -> int:
    return one + two


def _none() -> None:
    return None


def _reducing(reducer: Callable[[Any, Any], Any]) -> Callable[[Any, Any, Any], Any]:
    return lambda _key, value, agg: value if agg is None else reducer(agg, value)
