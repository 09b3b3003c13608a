"""Stream-stream joins (inner, left, outer) in join windows, as Kafka Streams' 3.1+
``KStreamKStreamJoin`` with its outer-join store.

Each side keeps its records in a window store (duplicates kept); a record looks up the
other side's records within ``[ts - before, ts + after]`` and emits one joined record per
match, at the later of the two timestamps. In a left or outer join, a record that found no
match waits in a shared store, ordered by time, until stream time passes its window plus
grace; then it is emitted joined with None, at its own timestamp, unless a record of the
other side joined it meanwhile. Both sides share one
stream time per task (``JoinTime``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fluvial.io.serdes import Serde
from fluvial.processing.processor import Processor, ProcessorContext
from fluvial.record import Record
from fluvial.windows import JoinWindows

Joiner = Callable[[Any, Any], Any]

_TIME_SIDE = struct.Struct(">q?")
_LENGTH = struct.Struct(">i")
_NO_MIN = 2**63 - 1


@dataclass
class _Clock:
    stream_time: int = -1
    #: the earliest time in the outer-join store (an upper bound: it only goes down on puts)
    min_time: int = _NO_MIN
    next_emit: int = 0


@dataclass
class JoinTime:
    """The stream time both sides of one join share, per task (Kafka Streams'
    ``TimeTrackerSupplier``). A task is known by its id and its collector, so two instances
    of one app in one process (tests) never share a clock."""

    clocks: dict[tuple[str, int], _Clock] = field(default_factory=dict)

    def of(self, context: ProcessorContext) -> _Clock:
        return self.clocks.setdefault(_task_of(context), _Clock())

    def release(self, context: ProcessorContext) -> None:
        self.clocks.pop(_task_of(context), None)


def _task_of(context: ProcessorContext) -> tuple[str, int]:
    return context.task_id, id(context.collector)


class JoinWindowPut(Processor):
    """Below each side: forward the record, then keep it in this side's window store. A
    null key cannot join; a null value is not kept, but moves the store's time on (so
    expires older records), as in Kafka Streams."""

    fans_out = False

    def __init__(self, store_name: str) -> None:
        self.store_name = store_name

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.store = context.get_store(self.store_name)

    def process(self, batch: list[Record]) -> None:
        self.context.forward(batch)
        put = self.store.put
        for r in batch:
            if r.key is not None:
                put(r.key, r.value, r.timestamp)


class StreamJoinSide(Processor):
    """One side's records joined with the other side's window store.

    ``joiner(this_value, other_value)`` (the right side gets the user's joiner reversed);
    ``before``/``after`` as seen from this side; ``outer``: this side's records without a
    match are emitted (once their window closes, through ``outer_store``).
    """

    fans_out = False

    def __init__(self, other_store: str, joiner: Joiner, windows: JoinWindows, left: bool,
                 outer: bool, outer_store: str | None, time: JoinTime) -> None:
        self.other_store_name = other_store
        self.joiner = joiner
        self.windows = windows
        self.left = left
        self.before = windows.before_ms if left else windows.after_ms
        self.after = windows.after_ms if left else windows.before_ms
        self.outer = outer
        self.outer_store_name = outer_store
        self.time = time

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.other = context.get_store(self.other_store_name)
        self.outer_store = (context.get_store(self.outer_store_name)
                            if self.outer_store_name else None)
        self.clock = self.time.of(context)

    def close(self) -> None:
        self.time.release(self.context)

    def process(self, batch: list[Record]) -> None:
        out: list[Record] = []
        for r in batch:
            try:
                self._join(r, out)
            except Exception as exc:
                self.context.on_error(r, exc, "stream-stream join")
        if out:
            self.context.forward(out)

    def _join(self, r: Record, out: list[Record]) -> None:
        clock, joiner = self.clock, self.joiner
        ts = r.timestamp
        if ts > clock.stream_time:
            clock.stream_time = ts
        if r.value is not None and r.key is None and self.outer:
            out.append(r.with_value(joiner(r.value, None)))
            return
        if r.key is None or r.value is None:
            self.context.record_dropped(r, "null key or value in a stream-stream join")
            return
        outer_store = self.outer_store
        if outer_store is not None and ts == clock.stream_time:
            self._emit_closed(r, out)
        time_to = max(0, ts + self.after)
        matched = False
        for other_ts, other_value in self.other.fetch_range(r.key, max(0, ts - self.before),
                                                            time_to):
            matched = True
            if outer_store is not None:  # the other record is joined now: it waits no more
                waiting = (other_ts, not self.left, r.key)
                if outer_store.get(waiting) is not None:
                    outer_store.put(waiting, None)
            out.append(Record(r.key, joiner(r.value, other_value), max(ts, other_ts),
                              r.headers, r.topic, r.partition, r.offset))
        if self.outer and not matched:
            if outer_store is None or time_to < clock.stream_time:
                out.append(r.with_value(joiner(r.value, None)))
            else:
                clock.min_time = min(clock.min_time, ts)
                key = (ts, self.left, r.key)
                outer_store.put(key, [*(outer_store.get(key) or ()), (self.left, r.value)])

    def _emit_closed(self, r: Record, out: list[Record]) -> None:
        """Emit the waiting records whose windows have closed, oldest first."""
        clock, windows = self.clock, self.windows
        grace = windows.grace_ms
        if clock.min_time + self.after + grace >= clock.stream_time:
            return
        now = self.context.wall_clock_time
        if now < clock.next_emit:
            return
        clock.next_emit = now + self.context.emit_interval_ms
        clock.min_time = _NO_MIN
        store = self.outer_store
        assert store is not None
        emitted: list[Any] = []
        open_sides: set[bool] = set()
        for key, waiting in store.all():
            ts, key_is_left, k = key
            look_back = windows.after_ms if key_is_left else windows.before_ms
            closed = ts + look_back + grace < clock.stream_time
            # record by record, as Kafka Streams' list store iterates them: once both
            # sides have an open window, the scan ends at the next record, even one of the
            # same key (which leaves min_time at that record's time)
            done = False
            for is_left, value in waiting:
                clock.min_time = ts
                done = len(open_sides) == 2
                if done:
                    break
                if not closed:
                    open_sides.add(key_is_left)
                    continue
                joined = (self.joiner(value, None) if is_left == self.left
                          else self.joiner(None, value))
                out.append(Record(k, joined, ts, r.headers, r.topic, r.partition, r.offset))
            if done:
                break
            if closed:
                emitted.append(key)
        for key in emitted:
            store.put(key, None)


class TimeSideKeySerde:
    """The outer-join store's key, ``(timestamp, is_left, key)``, as Kafka Streams writes
    it: 8-byte timestamp, a side byte, the key's bytes; so the store iterates oldest first."""

    def __init__(self, key_serde: Serde) -> None:
        self.key_serde = key_serde

    def serialize(self, value: Any) -> bytes | None:
        ts, is_left, key = value
        return _TIME_SIDE.pack(ts, is_left) + (self.key_serde.serialize(key) or b"")

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        ts, is_left = _TIME_SIDE.unpack_from(data)
        return ts, is_left, self.key_serde.deserialize(data[_TIME_SIDE.size:])


class SideValueSerde:
    """The outer-join store's value: the records waiting under one key, ``[(is_left,
    value), ...]`` (Kafka Streams' list value store: a put appends); each written as a
    4-byte length, then a side byte and the value's bytes with that side's serde."""

    def __init__(self, left_serde: Serde, right_serde: Serde) -> None:
        self.left_serde = left_serde
        self.right_serde = right_serde

    def serialize(self, value: Any) -> bytes | None:
        if value is None:
            return None
        parts = []
        for is_left, v in value:
            serde = self.left_serde if is_left else self.right_serde
            data = (b"\x01" if is_left else b"\x00") + (serde.serialize(v) or b"")
            parts.append(_LENGTH.pack(len(data)) + data)
        return b"".join(parts)

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        out, i = [], 0
        while i < len(data):
            (n,) = _LENGTH.unpack_from(data, i)
            is_left = data[i + 4] == 1
            serde = self.left_serde if is_left else self.right_serde
            out.append((is_left, serde.deserialize(data[i + 5:i + 4 + n])))
            i += 4 + n
        return out
