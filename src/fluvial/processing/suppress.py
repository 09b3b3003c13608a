"""Suppress: a table's updates held back in a buffer, each key's latest emitted later
(Kafka Streams' ``KTableSuppressProcessor`` over its in-memory time-ordered buffer).

Every update is buffered under a *buffer time* (the window end for ``until_window_closes``,
the record's timestamp for ``until_time_limit``); a key already buffered keeps its place
and time and takes the newer change. After each record, entries whose buffer time is at or
before observed stream time minus the limit (the grace period, or the time limit) are
emitted, oldest buffer time first, then by key bytes. Observed stream time is the largest
timestamp this processor has seen, not kept across restarts, as in Kafka Streams.

Emitted: the key, ``Change(new, old)`` of the latest buffered change, with that change's
timestamp and headers. Final results (``until_window_closes``) drop tombstones; a time
limit forwards them. A full buffer (``max_records``/``max_bytes``, sized as Kafka Streams
sizes it) either emits its oldest entries early or stops the application.

The buffer is a key-value store (changelogged) keyed by the serialized key; its values are
Kafka Streams' version-3 buffer layout (record context, prior, old and new value, buffer
time). The in-memory order is rebuilt from the store before the first record, so after a
fail-over the restored buffer emits each entry once, no entry lost.
"""

from __future__ import annotations

import heapq
import struct
from dataclasses import dataclass
from typing import Any

from fluvial.errors import ProcessingError
from fluvial.io.serdes import Serde
from fluvial.processing.getters import Getter, ValueGetterSupplier
from fluvial.processing.processor import Processor, ProcessorContext
from fluvial.record import Change, Headers, Record

_LONG = struct.Struct(">q")
_INT = struct.Struct(">i")
_CONTEXT = struct.Struct(">qqi")  # timestamp, offset, topic length
_NULL = -1
_SAME_AS_PRIOR = -2


@dataclass(frozen=True)
class SuppressSpec:
    """What a suppress does, settled by the DSL.

    ``limit_ms``: how far behind stream time an entry's buffer time must be to be emitted
    (the grace period for final results). ``max_records``/``max_bytes``: None is unbounded.
    """

    limit_ms: int
    window_end_time: bool
    drop_tombstones: bool
    max_records: int | None
    max_bytes: int | None
    shut_down_when_full: bool


@dataclass(slots=True)
class _Entry:
    time: int
    change: Change
    prior: bytes | None
    old: bytes | None
    new: bytes | None
    timestamp: int
    headers: Headers | None
    topic: str
    partition: int
    offset: int

    def size(self, key_bytes: bytes) -> int:
        """Kafka Streams' estimate: buffer time, key, values, record context."""
        size = 8 + len(key_bytes) + 8 + 8 + len(self.topic) + 4
        size += _length(self.prior) + _length(self.new)
        if self.old is not None and self.old != self.prior:
            size += len(self.old)
        for name, value in self.headers or ():
            size += len(name) + _length(value)
        return size

    def encode(self) -> bytes:
        topic = self.topic.encode()
        parts = [_CONTEXT.pack(self.timestamp, self.offset, len(topic)), topic,
                 _INT.pack(self.partition), _INT.pack(len(self.headers or ()))]
        for name, value in self.headers or ():
            parts += [_INT.pack(len(name.encode())), name.encode(), *_sized(value)]
        parts += _sized(self.prior)
        if self.old is not None and self.old == self.prior:
            parts.append(_INT.pack(_SAME_AS_PRIOR))
        else:
            parts += _sized(self.old)
        parts += [*_sized(self.new), _LONG.pack(self.time)]
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes, key_serde: Serde, value_serde: Serde,
               key_bytes: bytes) -> tuple[Any, _Entry]:
        timestamp, offset, topic, partition, headers, at = _read_context(data)
        prior, at = _read(data, at)
        if _INT.unpack_from(data, at)[0] == _SAME_AS_PRIOR:
            old, at = prior, at + 4
        else:
            old, at = _read(data, at)
        new, at = _read(data, at)
        time = _LONG.unpack_from(data, at)[0]
        change = Change(value_serde.deserialize(new), value_serde.deserialize(old))
        return key_serde.deserialize(key_bytes), cls(
            time, change, prior, old, new, timestamp, headers or None, topic, partition, offset)


def _read_context(data: bytes) -> tuple[int, int, str, int, Headers, int]:
    """Timestamp, offset, topic, partition and headers of a buffer value; where they end."""
    timestamp, offset, topic_length = _CONTEXT.unpack_from(data)
    at = _CONTEXT.size
    topic = data[at:at + topic_length].decode()
    at += topic_length
    partition, header_count = struct.unpack_from(">ii", data, at)
    at += 8
    headers: Headers = []
    for _ in range(header_count):
        name, at = _read(data, at)
        value, at = _read(data, at)
        headers.append(((name or b"").decode(), value))
    return timestamp, offset, topic, partition, headers, at


def _length(data: bytes | None) -> int:
    return 0 if data is None else len(data)


def _sized(data: bytes | None) -> list[bytes]:
    return [_INT.pack(_NULL)] if data is None else [_INT.pack(len(data)), data]


def _read(data: bytes, at: int) -> tuple[bytes | None, int]:
    length = _INT.unpack_from(data, at)[0]
    at += 4
    if length == _NULL:
        return None, at
    return data[at:at + length], at + length


class TableSuppress(Processor):
    """``Table.suppress``: see the module docstring."""

    def __init__(self, spec: SuppressSpec, store_name: str, key_serde: Serde,
                 value_serde: Serde) -> None:
        self.spec = spec
        self.store_name = store_name
        self.key_serde = key_serde
        self.value_serde = value_serde

    def init(self, context: Any) -> None:
        super().init(context)
        self.store: Any = context.get_store(self.store_name)
        self.observed = -1
        self.entries: dict[bytes, tuple[Any, _Entry]] | None = None  # loaded on first use
        self.order: list[tuple[int, bytes]] = []  # heap of (buffer time, key bytes)
        self.size = 0

    def _load(self) -> dict[bytes, tuple[Any, _Entry]]:
        """The buffer as the store holds it (restored from its changelog after a
        fail-over): read once, before the first record."""
        entries: dict[bytes, tuple[Any, _Entry]] = {}
        for key_bytes, data in self.store.all():
            key, entry = _Entry.decode(data, self.key_serde, self.value_serde, key_bytes)
            entries[key_bytes] = (key, entry)
            self.order.append((entry.time, key_bytes))
            self.size += entry.size(key_bytes)
        heapq.heapify(self.order)
        self.entries = entries
        return entries

    def process(self, batch: list[Record]) -> None:
        entries = self.entries if self.entries is not None else self._load()
        out: list[Record] = []
        for r in batch:
            if r.timestamp > self.observed:
                self.observed = r.timestamp
            try:
                self._put(entries, r)
            except Exception as exc:  # a serde failed on this record
                self.context.on_error(r, exc, "suppress")
                continue
            self._enforce(entries, r, out)
        if out:
            self.context.forward(out)

    def _put(self, entries: dict[bytes, tuple[Any, _Entry]], r: Record) -> None:
        key_bytes = self.key_serde.serialize(r.key) or b""
        change: Change = r.value
        new = self.value_serde.serialize(change.new)
        old = self.value_serde.serialize(change.old)
        buffered = entries.get(key_bytes)
        if buffered is None:
            time = r.key.end if self.spec.window_end_time else r.timestamp
            prior = old
            heapq.heappush(self.order, (time, key_bytes))
        else:
            # as Kafka Streams: a key buffered again keeps its place (and buffer time)
            time, prior = buffered[1].time, buffered[1].prior
            self.size -= buffered[1].size(key_bytes)
        entry = _Entry(time, change, prior, old, new, r.timestamp, r.headers, r.topic,
                       r.partition, r.offset)
        entries[key_bytes] = (r.key, entry)
        self.size += entry.size(key_bytes)
        self.store.put(key_bytes, entry.encode())

    def _enforce(self, entries: dict[bytes, tuple[Any, _Entry]], r: Record,
                 out: list[Record]) -> None:
        expiry = self.observed - self.spec.limit_ms
        while self.order and self.order[0][0] <= expiry:
            self._evict(entries, out)
        if not self._over_capacity(entries):
            return
        if self.spec.shut_down_when_full:
            raise ProcessingError(
                f"suppress buffer {self.store_name!r} exceeded its capacity at {r.where()}: "
                f"{len(entries)}/{_limit(self.spec.max_records)} records and "
                f"{self.size}/{_limit(self.spec.max_bytes)} bytes (configured to shut down "
                f"when full)", stage="suppress", topic=r.topic, partition=r.partition,
                offset=r.offset)
        while self._over_capacity(entries):
            self._evict(entries, out)

    def _over_capacity(self, entries: dict[bytes, Any]) -> bool:
        spec = self.spec
        return ((spec.max_records is not None and len(entries) > spec.max_records)
                or (spec.max_bytes is not None and self.size > spec.max_bytes))

    def _evict(self, entries: dict[bytes, tuple[Any, _Entry]], out: list[Record]) -> None:
        _, key_bytes = heapq.heappop(self.order)
        key, entry = entries.pop(key_bytes)
        self.size -= entry.size(key_bytes)
        self.store.put(key_bytes, None)
        if entry.change.new is not None or not self.spec.drop_tombstones:
            out.append(Record(key, entry.change, entry.timestamp, entry.headers, entry.topic,
                              entry.partition, entry.offset))


def _limit(value: int | None) -> str:
    return "unbounded" if value is None else str(value)


class SuppressGetter(ValueGetterSupplier):
    """A suppressed table read by a join (Kafka Streams' suppress view): a key in the buffer
    reads as its value before the first buffered update (what was last emitted), with an
    unknown timestamp (-1); any other key as the table above reads it."""

    def __init__(self, parent: ValueGetterSupplier, store_name: str, key_serde: Serde,
                 value_serde: Serde) -> None:
        self.parent = parent
        self.store_name = store_name
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.store_names = [store_name, *parent.store_names]

    def make(self, context: ProcessorContext) -> Getter:
        get, buffer = self.parent.make(context), context.get_store(self.store_name)
        key_serde, value_serde = self.key_serde, self.value_serde

        def suppressed(key: Any) -> tuple[Any, int] | None:
            data = buffer.get(key_serde.serialize(key) or b"")
            if data is None:
                return get(key)
            prior = _read(data, _read_context(data)[-1])[0]
            return None if prior is None else (value_serde.deserialize(prior), -1)

        return suppressed
