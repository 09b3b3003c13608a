"""The record that flows through a topology, and the table change that rides in it."""

from __future__ import annotations

from typing import Any, NamedTuple

Headers = list[tuple[str, bytes | None]]


class Record:
    """One key/value with its timestamp, headers and origin.

    Created once per consumed message, then rebuilt only where an operator changes key or
    value; ``topic``/``partition``/``offset`` always name the source record it derives from,
    which is what ordering and error messages use.
    """

    __slots__ = ("headers", "key", "offset", "partition", "timestamp", "topic", "value")

    def __init__(
        self,
        key: Any,
        value: Any,
        timestamp: int = 0,
        headers: Headers | None = None,
        topic: str = "",
        partition: int = 0,
        offset: int = -1,
    ) -> None:
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.headers = headers
        self.topic = topic
        self.partition = partition
        self.offset = offset

    def with_key_value(self, key: Any, value: Any) -> Record:
        return Record(key, value, self.timestamp, self.headers, self.topic, self.partition,
                      self.offset)

    def with_value(self, value: Any) -> Record:
        return Record(self.key, value, self.timestamp, self.headers, self.topic, self.partition,
                      self.offset)

    def where(self) -> str:
        return f"topic {self.topic!r} partition {self.partition} offset {self.offset}"

    def __repr__(self) -> str:
        return (f"Record(key={self.key!r}, value={self.value!r}, timestamp={self.timestamp}, "
                f"topic={self.topic!r}, partition={self.partition}, offset={self.offset})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (self.key, self.value, self.timestamp, self.headers) == (
            other.key, other.value, other.timestamp, other.headers)

    __hash__ = None  # type: ignore[assignment]


class Change(NamedTuple):
    """A table update: the new value and the one it replaces (None = absent/deleted)."""

    new: Any
    old: Any
