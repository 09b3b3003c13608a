"""Serdes of windowed keys, byte-compatible with Kafka Streams' ``WindowedSerdes``.

Time-windowed: the key's bytes, then the window start as an 8-byte big-endian long (the end is
not written: the reader adds the window size). Session-windowed: the key's bytes, then the
end, then the start. A Java consumer with ``TimeWindowedDeserializer``/
``SessionWindowedDeserializer`` reads what these write, and the other way round.
"""

from __future__ import annotations

import struct
from typing import Any

from fluvial.io.serdes import Serde, SerdeError
from fluvial.windows import Windowed

_LONG = struct.Struct(">q")
_TWO_LONGS = struct.Struct(">qq")
_MAX_LONG = (1 << 63) - 1


class TimeWindowedSerde:
    """``Windowed`` keys of time (tumbling, hopping, sliding) windows of ``window_size_ms``."""

    def __init__(self, inner: Serde, window_size_ms: int) -> None:
        self.inner = inner
        self.window_size_ms = window_size_ms

    def serialize(self, value: Any) -> bytes | None:
        if value is None:
            return None
        if not isinstance(value, Windowed):
            raise SerdeError(f"time-windowed serde needs a Windowed key, got "
                             f"{type(value).__name__}")
        key = self.inner.serialize(value.key)
        return (key or b"") + _LONG.pack(value.start)

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        if len(data) < 8:
            raise SerdeError(f"a time-windowed key needs at least 8 bytes, got {len(data)}")
        start = _LONG.unpack_from(data, len(data) - 8)[0]
        end = start + self.window_size_ms
        # as Kafka Streams: a window that would end past the largest long ends there
        return Windowed(self.inner.deserialize(data[:-8]), start,
                        end if end <= _MAX_LONG else _MAX_LONG)


class SessionWindowedSerde:
    """``Windowed`` keys of sessions: key bytes + 8-byte end + 8-byte start."""

    def __init__(self, inner: Serde) -> None:
        self.inner = inner

    def serialize(self, value: Any) -> bytes | None:
        if value is None:
            return None
        if not isinstance(value, Windowed):
            raise SerdeError(f"session-windowed serde needs a Windowed key, got "
                             f"{type(value).__name__}")
        key = self.inner.serialize(value.key)
        return (key or b"") + _TWO_LONGS.pack(value.end, value.start)

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        if len(data) < 16:
            raise SerdeError(f"a session-windowed key needs at least 16 bytes, got {len(data)}")
        end, start = _TWO_LONGS.unpack_from(data, len(data) - 16)
        return Windowed(self.inner.deserialize(data[:-16]), start, end)
