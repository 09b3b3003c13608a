"""Bytes for store keys and values: what the backend keeps and the changelog carries.

A timestamped value is the 8-byte big-endian timestamp followed by the value's bytes, the
layout Kafka Streams' timestamped stores use in their changelogs. Encoding happens on
``put``, in the operator, so a value its serde cannot write fails there, where the error
policy can name the record, rather than at the next commit.
"""

from __future__ import annotations

import struct
from typing import Any

from fluvial.io.serdes import Serde, SerdeError, fast_serializer

TIMESTAMP = struct.Struct(">q")


class StoreCodec:
    def __init__(self, key_serde: Serde, value_serde: Serde, timestamped: bool) -> None:
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.timestamped = timestamped
        self._fast_key = fast_serializer(key_serde)
        self._fast_value = fast_serializer(value_serde)

    def encode_key(self, key: Any) -> bytes:
        try:
            data = self._fast_key(key)
        except Exception:  # the fast writer of another type: let the serde explain
            data = self.key_serde.serialize(key)
        if data is None:
            raise SerdeError(f"a store key cannot be None (key {key!r})")
        return data

    def decode_key(self, data: bytes) -> Any:
        return self.key_serde.deserialize(data)

    def encode_value(self, value: Any) -> bytes | None:
        """A value's bytes (``None`` for ``None``): ``(value, timestamp)`` when timestamped."""
        if value is None:
            return None
        if self.timestamped:
            try:
                inner, ts = value
                head = TIMESTAMP.pack(ts)
            except (TypeError, ValueError, struct.error):
                raise SerdeError(f"a timestamped store needs (value, int timestamp), got "
                                 f"{value!r}") from None
            return head + self.encode_plain(inner)
        return self.encode_plain(value)

    def encode_plain(self, value: Any) -> bytes:
        """A value's own bytes, without a timestamp."""
        if value is None:
            return b""
        try:
            data = self._fast_value(value)
        except Exception:  # the fast writer of another type: let the serde explain
            data = self.value_serde.serialize(value)
        return data if data is not None else b""

    def decode_value(self, data: bytes | None) -> Any:
        if data is None:
            return None
        if self.timestamped:
            return (self.value_serde.deserialize(data[8:]), TIMESTAMP.unpack_from(data)[0])
        return self.value_serde.deserialize(data)

    def timestamp_of(self, data: bytes | None, default: int = 0) -> int:
        """The timestamp a changelog record of this value carries."""
        if data is None or not self.timestamped:
            return default
        return TIMESTAMP.unpack_from(data)[0]
