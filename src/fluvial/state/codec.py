"""Bytes for store keys and values, shared by RocksDB and the changelog.

A timestamped value is the 8-byte big-endian timestamp followed by the value's bytes, the
layout Kafka Streams' timestamped stores use in their changelogs.
"""

from __future__ import annotations

import struct
from typing import Any

from fluvial.io.serdes import Serde

_TS = struct.Struct(">q")


class StoreCodec:
    def __init__(self, key_serde: Serde, value_serde: Serde, timestamped: bool) -> None:
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.timestamped = timestamped

    def encode_key(self, key: Any) -> bytes:
        data = self.key_serde.serialize(key)
        if data is None:
            raise ValueError("a store key cannot be None")
        return data

    def decode_key(self, data: bytes) -> Any:
        return self.key_serde.deserialize(data)

    def encode_value(self, value: Any) -> bytes | None:
        if value is None:
            return None
        if self.timestamped:
            inner, ts = value
            return _TS.pack(ts) + (self.value_serde.serialize(inner) or b"")
        return self.value_serde.serialize(value)

    def decode_value(self, data: bytes | None) -> Any:
        if data is None:
            return None
        if self.timestamped:
            return (self.value_serde.deserialize(data[8:]), _TS.unpack_from(data)[0])
        return self.value_serde.deserialize(data)
