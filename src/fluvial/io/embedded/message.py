"""The embedded broker's message: confluent-kafka's ``Message`` shape, built once per record.

The broker stores these objects in its logs and hands the very same objects to every consumer,
so a poll is a list slice, not a copy per record. They are immutable by convention (no setters),
which is what makes that sharing safe.
"""

from __future__ import annotations

from fluvial.io.client import Headers

TIMESTAMP_CREATE_TIME = 1  # confluent_kafka.TIMESTAMP_CREATE_TIME


class EmbeddedMessage:
    """One record in a partition log, read through confluent-style methods."""

    __slots__ = ("_headers", "_key", "_offset", "_partition", "_timestamp", "_topic", "_value")

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None,
                 value: bytes | None, timestamp: int, headers: Headers | None) -> None:
        self._topic = topic
        self._partition = partition
        self._offset = offset
        self._key = key
        self._value = value
        self._timestamp = timestamp
        self._headers = headers

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (TIMESTAMP_CREATE_TIME, self._timestamp)

    def headers(self) -> Headers | None:
        return self._headers

    def error(self) -> None:
        return None

    def __len__(self) -> int:
        """Value length, as ``len()`` of a confluent message gives."""
        return 0 if self._value is None else len(self._value)

    def __repr__(self) -> str:
        return (f"EmbeddedMessage(topic={self._topic!r}, partition={self._partition}, "
                f"offset={self._offset}, key={self._key!r}, value={self._value!r}, "
                f"timestamp={self._timestamp})")
