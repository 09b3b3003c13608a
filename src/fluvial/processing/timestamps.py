"""Timestamp extractors: which time a source record carries into the topology.

Event time drives windows, grace and stream time, so a source can take it from somewhere
other than the Kafka record's timestamp (the default): a field of the value, or the wall
clock. An extractor sees the decoded record and its partition's time (the largest timestamp
extracted so far on that partition, -1 before the first) and returns milliseconds. A negative
result, or an extractor that raises, goes to the error policy (stop, skip or dead-letter), as
Kafka Streams' default ``FailOnInvalidTimestamp`` fails the task.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from fluvial.record import Record


class TimestampExtractor(Protocol):
    def extract(self, record: Record, partition_time: int) -> int: ...


class RecordTimestamp:
    """The Kafka record's own timestamp (create or log-append time): the default."""

    def extract(self, record: Record, partition_time: int) -> int:
        return record.timestamp


class WallClockTimestamp:
    """The moment of processing: processing-time semantics (results depend on when it ran)."""

    def extract(self, record: Record, partition_time: int) -> int:
        return time.time_ns() // 1_000_000


class ValueFieldTimestamp:
    """A field of a mapping value: epoch milliseconds (int or float), an aware ``datetime``,
    or an ISO-8601 string with a UTC offset (``"2026-12-03T12:00:00Z"``)."""

    def __init__(self, field: str) -> None:
        self.field = field

    def extract(self, record: Record, partition_time: int) -> int:
        value = record.value
        try:
            raw = value[self.field]
        except (KeyError, TypeError, IndexError):
            raise ValueError(f"the value has no field {self.field!r}: {value!r:.200}") from None
        return _epoch_ms(raw, self.field)


def _epoch_ms(raw: Any, field: str) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"field {field!r} is a bool, not a time: {raw!r}")
    if isinstance(raw, int | float):
        return int(raw)
    if isinstance(raw, str):
        try:
            raw = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"field {field!r} is not an ISO-8601 time: {raw!r}") from None
    if isinstance(raw, datetime):
        if raw.tzinfo is None:
            raise ValueError(f"field {field!r} has no time zone: {raw.isoformat()}; "
                             f"give a UTC offset (e.g. 'Z')")
        return (raw - _EPOCH) // timedelta(milliseconds=1)
    raise ValueError(f"field {field!r} is a {type(raw).__name__}, not a time: {raw!r:.100}")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _CallableExtractor:
    def __init__(self, fn: Callable[[Record, int], int]) -> None:
        self.extract = fn


Extractor = TimestampExtractor | Callable[[Record, int], int]


def as_extractor(value: Extractor | None) -> TimestampExtractor | None:
    """An extractor object, or a plain ``fn(record, partition_time) -> int``; ``None`` and
    ``RecordTimestamp`` mean the record's own timestamp (no work per record)."""
    if value is None or isinstance(value, RecordTimestamp):
        return None
    if hasattr(value, "extract"):
        return value
    if callable(value):
        return _CallableExtractor(value)
    raise TypeError(f"{value!r} is not a timestamp extractor: give an object with "
                    f"extract(record, partition_time) or a function of the same arguments")
