"""Window stores: a value per (key, window start), kept for a retention period.

The changelog key is Kafka Streams' window key layout (``WindowKeySchema``): the key's bytes,
the window start (8 bytes, big-endian), a sequence number (4 bytes: 0, or, in a store that
keeps duplicates (a stream-stream join's), one number per put, so every record of a key and
time is kept, in the order put). Segments, retention and observed stream time (the largest
window start put) work as ``segments.py`` says.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from fluvial.state.bytes import BytesStore
from fluvial.state.cache import WriteCache
from fluvial.state.codec import StoreCodec
from fluvial.state.segments import SegmentedStore

_START_SEQ = struct.Struct(">qi")
_SUFFIX = _START_SEQ.size  # 12


def window_key(key: bytes, start: int, seq: int = 0) -> bytes:
    """The changelog key of ``key``'s window starting at ``start``."""
    return key + _START_SEQ.pack(start, seq)


def split_window_key(changelog_key: bytes) -> tuple[bytes, int]:
    """(key bytes, window start) of a changelog key."""
    return (changelog_key[:-_SUFFIX],
            _START_SEQ.unpack_from(changelog_key, len(changelog_key) - _SUFFIX)[0])


class WindowStore(SegmentedStore):
    def __init__(self, name: str, codec: StoreCodec, cache: WriteCache, backend: BytesStore,
                 retention_ms: int, window_size_ms: int | None = None,
                 retain_duplicates: bool = False) -> None:
        super().__init__(name, codec, cache, backend, retention_ms)
        self.window_size_ms = window_size_ms
        self.retain_duplicates = retain_duplicates
        self._seq = 0

    @staticmethod
    def time_of(changelog_key: bytes) -> int:
        start: int = _START_SEQ.unpack_from(changelog_key, len(changelog_key) - _SUFFIX)[0]
        return start

    def _key(self, key: Any, start: int) -> bytes:
        return self.segment_key(start, window_key(self.codec.encode_key(key), start))

    def put(self, key: Any, value: Any, window_start: int) -> None:
        """Write ``key``'s window (``None`` deletes it); dropped if out of retention.
        Keeping duplicates, each put adds an entry, and ``None`` does nothing."""
        if not self.observe(window_start):
            return
        if not self.retain_duplicates:
            self.cache.put(self._key(key, window_start), self.codec.encode_value(value))
        elif value is not None:
            self._seq = (self._seq + 1) & 0x7FFFFFFF  # as Kafka Streams' seqnum
            self.cache.put(self.segment_key(window_start, window_key(
                self.codec.encode_key(key), window_start, self._seq)),
                self.codec.encode_value(value))

    def fetch(self, key: Any, window_start: int) -> Any:
        if window_start < self.expired_before():
            return None
        return self.codec.decode_value(self.cache.get(self._key(key, window_start)))

    def fetch_range(self, key: Any, time_from: int, time_to: int,
                    committed: bool = False) -> Iterator[tuple[int, Any]]:
        """``(window start, value)`` of ``key``'s windows starting in [from, to], ascending;
        ``committed``: as of the last flush (the backend, not the cache), for other threads."""
        source = self.backend if committed else self.cache
        time_from = max(time_from, self.expired_before())
        time_to = min(time_to, self.observed_time)  # nothing starts later
        if time_to < time_from:
            return
        kb = self.codec.encode_key(key)
        n = 8 + len(kb) + _SUFFIX
        decode = self.codec.decode_value
        for segment in self.live_segments(time_from):
            prefix = self.prefix(segment) + kb
            lo = prefix + _START_SEQ.pack(time_from, 0)
            hi = prefix + _START_SEQ.pack(time_to + 1, 0)
            for bk, value in source.scan(lo, hi):
                if len(bk) == n:  # not a longer key that starts with the same bytes
                    yield _START_SEQ.unpack_from(bk, n - _SUFFIX)[0], decode(value)

    def fetch_all(self, time_from: int, time_to: int,
                  committed: bool = False) -> Iterator[tuple[tuple[Any, int], Any]]:
        """``((key, window start), value)`` of every window starting in [from, to], by
        segment, then store-key bytes (key, then start), as Kafka Streams orders them;
        ``committed``: as of the last flush, for other threads."""
        source = self.backend if committed else self.cache
        time_from = max(time_from, self.expired_before())
        time_to = min(time_to, self.observed_time)
        if time_to < time_from:
            return
        decode_key, decode = self.codec.decode_key, self.codec.decode_value
        for segment in self.live_segments(time_from):
            for bk, value in source.scan(self.prefix(segment), self.prefix(segment + 1)):
                kb, start = split_window_key(bk[8:])
                if time_from <= start <= time_to:
                    yield (decode_key(kb), start), decode(value)

    def all(self) -> Iterator[tuple[tuple[Any, int], Any]]:
        return self.fetch_all(self.expired_before(), self.observed_time)
