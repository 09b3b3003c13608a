"""Windowed aggregations of grouped streams: time (tumbling, hopping), sliding, session.

Each follows Kafka Streams' operator record for record (``KStreamWindowAggregate``,
``KStreamSlidingWindowAggregate``, ``KStreamSessionWindowAggregate``): the same windows
created and updated in the same order, the same output timestamps (the largest timestamp of
a window's records; a session's end), the same late records dropped. They run a batch at a
time, one forwarded batch per input batch.

Time is each operator's *observed stream time*, the largest timestamp it has seen, as in
Kafka Streams (where it is not kept across restarts either). A window closes once observed
time passes its end plus grace; records for closed windows are dropped and counted
(``record_dropped``, the dropped-records metric).

Emitting: on every update (``Change(new, old)`` keyed by ``Windowed``), or with
``EmitStrategy.ON_WINDOW_CLOSE`` once per window, when it closes. As Kafka Streams, the
search for closed windows runs after a record, at most once per the task's
``emit_interval_ms`` of wall-clock time (1 s; 0 in the TestDriver, as TopologyTestDriver).

Opt-in, and not in Kafka Streams: ``idle_close_ms`` lets wall-clock time stand in for the
records that do not come. After that long without a record, observed stream time moves on
with the wall clock from the last record's, so windows close (and, on window close, are
emitted) on a partition that went quiet. The price: records that come later than the time
moved on are late (dropped), and results depend on when records were processed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fluvial.processing.processor import Processor, PunctuationType
from fluvial.record import Change, Record
from fluvial.windows import (
    EmitStrategy,
    SessionWindows,
    SlidingWindows,
    TimeWindows,
    Windowed,
)

Initializer = Callable[[], Any]
Aggregator = Callable[[Any, Any, Any], Any]  # (key, value, aggregate) -> aggregate
Merger = Callable[[Any, Any, Any], Any]      # (key, aggregate, aggregate) -> aggregate

#: how often (wall clock, at most) ``close_when_idle`` checks for an idle partition
IDLE_CHECK_MS = 1000
NO_TIMESTAMP = -1
_OLD = object()  # _Updates.update: the store held the old value


class _Updates:
    """The records one batch forwards. With the record cache on, one per windowed key: its
    last update, with the value the store held before the batch as ``old`` (None for a
    window it did not hold, where an update without the cache carries the initializer's
    value; a window created and removed in the same batch, a merged-away session, emits
    nothing), as the cached stores do."""

    def __init__(self, collapse: bool) -> None:
        self.out: list[Record] = []
        self.latest: dict[Windowed, tuple[Record, Any, Any, int]] | None = (
            {} if collapse else None)

    def update(self, r: Record, key: Windowed, new: Any, old: Any, timestamp: int,
               held: Any = _OLD) -> None:
        """``held``: what the store held for ``key`` before this update, if not ``old``
        (the cache's old value)."""
        latest = self.latest
        if latest is None:
            self.out.append(Record(key, Change(new, old), timestamp, r.headers, r.topic,
                                   r.partition, r.offset))
            return
        seen = latest.pop(key, None)  # re-inserted: emitted in order of last update
        before = (old if held is _OLD else held) if seen is None else seen[1]
        latest[key] = (r, before, new, timestamp)

    def final(self, r: Record, key: Windowed, value: Any, timestamp: int) -> None:
        self.out.append(Record(key, Change(value, None), timestamp, r.headers, r.topic,
                               r.partition, r.offset))

    def records(self) -> list[Record]:
        if self.latest is None:
            return self.out
        return [Record(key, Change(new, old), ts, r.headers, r.topic, r.partition, r.offset)
                for key, (r, old, new, ts) in self.latest.items()
                if new is not None or old is not None]


class _WindowedAggregate(Processor):
    fans_out = True  # a record updates several windows, or ends sessions it merges

    def __init__(self, store_name: str, initializer: Initializer, aggregator: Aggregator,
                 emit: EmitStrategy, stage: str, idle_close_ms: int | None) -> None:
        self.store_name = store_name
        self.initializer = initializer
        self.aggregator = aggregator
        self.on_close = emit is EmitStrategy.ON_WINDOW_CLOSE
        self.stage = stage
        self.idle_close_ms = idle_close_ms

    def init(self, context: Any) -> None:
        super().init(context)
        self.store: Any = context.get_store(self.store_name)
        self.observed = NO_TIMESTAMP
        self.last_emit_close = NO_TIMESTAMP
        self.next_emit_check = 0  # wall clock
        self.last_record: Record | None = None
        self.last_record_wall = 0      # wall clock when the last batch came
        self.last_record_observed = NO_TIMESTAMP  # stream time the records themselves gave
        if self.idle_close_ms is not None:
            context.schedule(min(self.idle_close_ms, IDLE_CHECK_MS),
                             PunctuationType.WALL_CLOCK_TIME, self._close_idle)

    def process(self, batch: list[Record]) -> None:
        updates = _Updates(self.context.caching and not self.on_close)
        for r in batch:
            self.process_one(r, updates)
        if self.idle_close_ms is not None and batch:
            self.last_record = batch[-1]
            self.last_record_wall = self.context.wall_clock_time
            self.last_record_observed = max(self.last_record_observed,
                                            max(r.timestamp for r in batch))
        out = updates.records()
        if out:
            self.context.forward(out)

    def process_one(self, r: Record, updates: _Updates) -> None:
        raise NotImplementedError

    def close_time(self) -> int:
        """Windows ending before this (at observed stream time) are closed."""
        raise NotImplementedError

    def emit_closed(self, r: Record, close: int, updates: _Updates) -> None:
        raise NotImplementedError

    def _close_idle(self, now: int) -> None:
        """Opt-in: once no record has come for ``idle_close_ms`` of wall-clock time, stream
        time moves on with the wall clock from the last record's, so the windows it passes
        close and are emitted without waiting for the next record."""
        last = self.last_record
        idle = now - self.last_record_wall
        if last is None or idle < (self.idle_close_ms or 0):
            return
        advanced = self.last_record_observed + idle
        if advanced <= self.observed:
            return
        self.observed = advanced
        self.next_emit_check = 0  # a punctuation is no record: no throttle
        updates = _Updates(False)
        self.emit_closed(Record(None, None, advanced, last.headers, last.topic,
                                last.partition, last.offset), self.close_time(), updates)
        if updates.out:
            self.context.forward(updates.out)

    def _admit(self, r: Record, null_values: bool = True) -> bool:
        """Drop (and count) a record that cannot be grouped, as Kafka Streams does: a null
        key, or for sliding windows a null value too; else move observed stream time."""
        if r.key is None or (r.value is None and not null_values):
            self.context.record_dropped(r, "a null key cannot be grouped" if r.key is None
                                        else "a null value in a sliding window")
            return False
        if r.timestamp > self.observed:
            self.observed = r.timestamp
        return True

    def _late(self, r: Record, bounds: str, close: int) -> None:
        self.context.record_dropped(r, f"window {bounds} closed: the record's timestamp is "
                                       f"{r.timestamp}, windows ending before {close} are "
                                       f"closed at stream time {self.observed}")

    def _may_emit_final(self, close: int) -> bool:
        """On-window-close only, at most once per emit interval, and only if the close time
        moved since the last emission."""
        if not self.on_close:
            return False
        now = self.context.wall_clock_time
        if now < self.next_emit_check:
            return False
        self.next_emit_check = now + self.context.emit_interval_ms
        return self.last_emit_close == NO_TIMESTAMP or self.last_emit_close < close


class TimeWindowAggregate(_WindowedAggregate):
    """count / reduce / aggregate over tumbling or hopping windows."""

    def __init__(self, store_name: str, windows: TimeWindows, initializer: Initializer,
                 aggregator: Aggregator, emit: EmitStrategy, stage: str = "aggregate",
                 idle_close_ms: int | None = None) -> None:
        super().__init__(store_name, initializer, aggregator, emit, stage, idle_close_ms)
        self.windows = windows

    def close_time(self) -> int:
        return self.observed - self.windows.grace_ms

    def process_one(self, r: Record, updates: _Updates) -> None:
        if not self._admit(r):
            return
        key, ts = r.key, r.timestamp
        size = self.windows.size_ms
        close = self.close_time()
        fetch, put = self.store.fetch, self.store.put
        for start in self.windows.starts_for(ts):
            end = start + size
            if end <= close:
                self._late(r, f"[{start},{end})", close)
                continue
            stored = fetch(key, start)
            try:
                if stored is None:
                    old, new_ts = self.initializer(), ts
                else:
                    old, stored_ts = stored
                    new_ts = ts if ts > stored_ts else stored_ts
                new = self.aggregator(key, r.value, old)
            except Exception as exc:
                self.context.on_error(r, exc, self.stage)
                return
            put(key, (new, new_ts), start)
            if not self.on_close:
                updates.update(r, Windowed(key, start, end), new, old, new_ts,
                               None if stored is None else old)
        if self.on_close:
            self.emit_closed(r, close, updates)

    def emit_closed(self, r: Record, close: int, updates: _Updates) -> None:
        if not self._may_emit_final(close):
            return
        size = self.windows.size_ms
        upper = close - size  # window starts whose (exclusive) end is at or before close
        if upper < 0:
            return
        last = self.last_emit_close
        lower = 0 if last == NO_TIMESTAMP else max(0, last - size) + 1
        if last != NO_TIMESTAMP and (list(self.windows.starts_for(upper))
                                     == list(self.windows.starts_for(lower - 1))):
            return  # no window closed since the last emission
        for (key, start), (value, ts) in _by_start(self.store.fetch_all(lower, upper)):
            updates.final(r, Windowed(key, start, start + size), value, ts)
        self.last_emit_close = close


class SlidingWindowAggregate(_WindowedAggregate):
    """count / reduce / aggregate over sliding windows of ``time_difference``.

    Windows exist only where records are: each record has a left window ``[ts - d, ts]`` and,
    once a later record falls within ``d`` of it, a right window ``[ts + 1, ts + 1 + d]``.
    A record updates every window of its key that contains it and creates its own.
    """

    def __init__(self, store_name: str, windows: SlidingWindows, initializer: Initializer,
                 aggregator: Aggregator, emit: EmitStrategy, stage: str = "aggregate",
                 idle_close_ms: int | None = None) -> None:
        super().__init__(store_name, initializer, aggregator, emit, stage, idle_close_ms)
        self.windows = windows

    def close_time(self) -> int:
        return self.observed - self.windows.grace_ms

    def process_one(self, r: Record, updates: _Updates) -> None:
        if not self._admit(r, null_values=False):
            return
        ts = r.timestamp
        diff = self.windows.time_difference_ms
        close = self.close_time()
        if ts + diff < close:
            self._late(r, f"[{ts},{ts + diff}]", close)
            return
        try:
            if ts < diff:
                self._early(r, close, updates)
                return  # as Kafka Streams: early records do not look for closed windows
            self._slide(r, close, updates)
        except _Failed:
            return
        if self.on_close:
            self.emit_closed(r, close, updates)

    def _slide(self, r: Record, close: int, updates: _Updates) -> None:
        """The record's windows, newest first (Kafka Streams' reverse-iterator path)."""
        key, ts, diff = r.key, r.timestamp, self.windows.time_difference_ms
        starts: set[int] = set()
        left_agg = right_agg = None
        left_created = right_created = False
        previous: int | None = None  # timestamp of the key's record before this one
        found = list(self.store.fetch_range(key, max(0, ts - 2 * diff), ts + 1))
        for start, stored in reversed(found):
            starts.add(start)
            end = start + diff
            if start == ts + 1:
                right_created = True
            elif end > ts:
                if right_agg is None:
                    right_agg = stored
                self._update(r, start, stored, close, updates)
            elif end == ts:
                left_created = True
                self._update(r, start, stored, close, updates)
                if stored[1] >= ts:
                    return
                previous = stored[1]
            else:
                left_agg, previous = stored, stored[1]
                break
        if previous is not None:  # the previous record's right window, if this is in it
            previous_right = previous + 1
            if previous_right not in starts and previous_right + diff >= ts:
                self._update(r, previous_right, (self.initializer(), ts), close, updates,
                             existed=False)
        if not left_created:
            if previous is not None and left_agg is not None and ts - diff <= previous:
                self._update(r, ts - diff, (left_agg[0], ts), close, updates, existed=False)
            else:
                self._update(r, ts - diff, (self.initializer(), ts), close, updates,
                             existed=False)
        if not right_created and right_agg is not None and right_agg[1] > ts:
            self._right_window(r, right_agg, updates)

    def _early(self, r: Record, close: int, updates: _Updates) -> None:
        """A record before ``time_difference``: its left window is ``[0, d]``, shared."""
        key, ts = r.key, r.timestamp
        combined = None
        right_agg = None
        right_created = False
        starts: set[int] = set()
        previous: int | None = None
        for start, stored in list(self.store.fetch_range(key, 0, ts + 1)):
            starts.add(start)
            if start == 0:
                combined = stored
                if stored[1] < ts:
                    previous = stored[1]
            elif start <= ts:
                right_agg = stored
                self._update(r, start, stored, close, updates)
            else:  # start == ts + 1
                right_created = True
        if right_agg is None and combined is not None and combined[1] > ts:
            right_agg = combined
        if not right_created and right_agg is not None and right_agg[1] > ts:
            self._right_window(r, right_agg, updates)
        if previous is not None and previous + 1 not in starts:
            self._update(r, previous + 1, (self.initializer(), ts), close, updates,
                         existed=False)
        self._update(r, 0, combined if combined is not None else (self.initializer(), ts),
                     close, updates, existed=combined is not None)

    def _right_window(self, r: Record, agg: tuple[Any, int], updates: _Updates) -> None:
        """The record's right window, holding what the later records added: never late."""
        start = r.timestamp + 1
        self.store.put(r.key, agg, start)
        if not self.on_close:
            updates.update(r, Windowed(r.key, start, start + self.windows.time_difference_ms),
                           agg[0], None, agg[1])

    def _update(self, r: Record, start: int, stored: tuple[Any, int], close: int,
                updates: _Updates, existed: bool = True) -> None:
        """Add the record to the window at ``start`` holding ``stored`` (``existed``: in
        the store, rather than made up for a window being created)."""
        end = start + self.windows.time_difference_ms
        if end < close:
            self._late(r, f"[{start},{end}]", close)
            return
        old, stored_ts = stored
        try:
            new = self.aggregator(r.key, r.value, old)
        except Exception as exc:
            self.context.on_error(r, exc, self.stage)
            raise _Failed from exc
        new_ts = r.timestamp if old is None else max(r.timestamp, stored_ts)
        self.store.put(r.key, (new, new_ts), start)
        if not self.on_close:
            updates.update(r, Windowed(r.key, start, end), new, old, new_ts,
                           old if existed else None)

    def emit_closed(self, r: Record, close: int, updates: _Updates) -> None:
        if not self._may_emit_final(close):
            return
        diff = self.windows.time_difference_ms
        upper = close - diff - 1  # window ends are inclusive
        if upper < 0:
            return
        last = self.last_emit_close
        lower = 0 if last == NO_TIMESTAMP else max(0, last - diff)
        for (key, start), (value, ts) in _by_start(self.store.fetch_all(lower, upper)):
            updates.final(r, Windowed(key, start, start + diff), value, ts)
        self.last_emit_close = close


def _by_start(windows: Iterable[tuple[tuple[Any, int], Any]],
              ) -> list[tuple[tuple[Any, int], Any]]:
    """Closed windows in the order Kafka Streams' time-ordered store gives them: by start,
    then key bytes (a stable sort of the store's key-bytes order within a start)."""
    return sorted(windows, key=lambda entry: entry[0][1])


class _Failed(Exception):
    """A user function failed on the current record; the error policy has been applied."""


class SessionWindowAggregate(_WindowedAggregate):
    """count / reduce / aggregate over sessions; ``merger`` joins two sessions' aggregates
    when a record bridges them. Outputs are stamped with the session's end."""

    def __init__(self, store_name: str, windows: SessionWindows, initializer: Initializer,
                 aggregator: Aggregator, merger: Merger, emit: EmitStrategy,
                 stage: str = "aggregate", idle_close_ms: int | None = None,
                 retention_ms: int | None = None) -> None:
        """``retention_ms``: with on-window-close the store keeps sessions longer than
        this (for the emitter); merging still sees only those within it."""
        super().__init__(store_name, initializer, aggregator, emit, stage, idle_close_ms)
        self.windows = windows
        self.merger = merger
        self.retention_ms = retention_ms if retention_ms is not None else windows.retention_ms
        self.latest_end = NO_TIMESTAMP  # the largest session end put: the store's time

    def close_time(self) -> int:
        return self.observed - self.windows.grace_ms - self.windows.inactivity_gap_ms

    def process_one(self, r: Record, updates: _Updates) -> None:
        if not self._admit(r):
            return
        key, ts = r.key, r.timestamp
        gap = self.windows.inactivity_gap_ms
        close = self.close_time()
        # as Kafka Streams' session store: sessions ended at or before its time - retention
        # are gone (the on-close store only keeps them longer for the emitter)
        kept_from = self.latest_end - self.retention_ms + 1
        merged = [(window, value) for window, value
                  in self.store.find_sessions(key, ts - gap, ts + gap) if window[1] >= kept_from]
        start = end = ts
        try:
            agg = self.initializer()
            for (s, e), value in merged:
                agg = self.merger(key, agg, value)
                start, end = min(start, s), max(end, e)
            if end < close:
                self.context.record_dropped(r, f"session [{start},{end}] closed: it ends "
                                               f"before {close} at stream time "
                                               f"{self.observed}")
            else:
                agg = self.aggregator(key, r.value, agg)
        except Exception as exc:
            self.context.on_error(r, exc, self.stage)
            return
        if end >= close:
            if (start, end) != (ts, ts):
                for (s, e), value in merged:
                    self.store.remove(key, s, e)
                    if not self.on_close:
                        updates.update(r, Windowed(key, s, e), None, value, e)
            self.store.put(key, start, end, agg)
            if end > self.latest_end:
                self.latest_end = end
            if not self.on_close:  # the cache's old value: a session it replaces in place
                held = next((v for w, v in merged if w == (start, end)), None)
                updates.update(r, Windowed(key, start, end), agg, None, end, held)
        if self.on_close:
            self.emit_closed(r, close, updates)

    def emit_closed(self, r: Record, close: int, updates: _Updates) -> None:
        if not self._may_emit_final(close):
            return
        upper = close - 1  # session ends are inclusive
        lower = max(0, self.last_emit_close)
        if upper < lower:
            return
        # sessions ending in [lower, upper], by end as Kafka Streams' time-ordered store
        # gives them (the scan reads the whole store, at most once per emit interval)
        ended = sorted(((e, s, key, value) for (key, s, e), value in self.store.all()
                        if lower <= e <= upper), key=lambda t: (t[0], t[1]))
        for e, s, key, value in ended:
            updates.final(r, Windowed(key, s, e), value, e)
        self.last_emit_close = close
