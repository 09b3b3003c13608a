"""Session stores: a value per (key, session start, session end), kept for a retention period.

The changelog key is Kafka Streams' session key layout (``SessionKeySchema``): the key's
bytes, the session end (8 bytes, big-endian), then the start (8 bytes); within a segment a
key's sessions sit in (end, start) order. Segments, retention and observed stream time (the
largest session end put) work as ``segments.py`` says.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from fluvial.state.segments import SegmentedStore

_END_START = struct.Struct(">qq")
_SUFFIX = _END_START.size  # 16
_MAX = 2**63 - 1


class SessionStore(SegmentedStore):
    @staticmethod
    def time_of(changelog_key: bytes) -> int:
        end: int = _END_START.unpack_from(changelog_key, len(changelog_key) - _SUFFIX)[0]
        return end

    @staticmethod
    def changelog_timestamp(backend_key: bytes, _value: bytes | None) -> int:
        """A session's changelog record carries its end as its timestamp."""
        return SessionStore.time_of(backend_key)

    def _key(self, key: Any, start: int, end: int) -> bytes:
        return self.segment_key(end, self.codec.encode_key(key) + _END_START.pack(end, start))

    def put(self, key: Any, start: int, end: int, value: Any) -> None:
        """Write a session (``None`` removes it); dropped if it ended out of retention."""
        if self.observe(end):
            self.cache.put(self._key(key, start, end), self.codec.encode_value(value))

    def remove(self, key: Any, start: int, end: int) -> None:
        self.put(key, start, end, None)

    def fetch_session(self, key: Any, start: int, end: int) -> Any:
        if end < self.expired_before():
            return None
        return self.codec.decode_value(self.cache.get(self._key(key, start, end)))

    def find_sessions(self, key: Any, earliest_session_end: int, latest_session_start: int,
                      committed: bool = False) -> Iterator[tuple[tuple[int, int], Any]]:
        """``((start, end), value)`` of ``key``'s sessions with end >= earliest_session_end
        and start <= latest_session_start, ascending by end, then start; ``committed``: as of
        the last flush (the backend, not the cache), for other threads."""
        source = self.backend if committed else self.cache
        earliest = max(earliest_session_end, self.expired_before(), 0)
        kb = self.codec.encode_key(key)
        n = 8 + len(kb) + _SUFFIX
        decode = self.codec.decode_value
        for segment in self.live_segments(earliest):
            prefix = self.prefix(segment) + kb
            lo = prefix + _END_START.pack(earliest, 0)
            hi = prefix + _END_START.pack(_MAX, _MAX) + b"\x00"
            for bk, value in source.scan(lo, hi):
                if len(bk) != n:  # a longer key that starts with the same bytes
                    continue
                end, start = _END_START.unpack_from(bk, n - _SUFFIX)
                if start <= latest_session_start:
                    yield (start, end), decode(value)

    def fetch(self, key: Any, committed: bool = False) -> Iterator[tuple[tuple[int, int], Any]]:
        """Every live session of ``key``."""
        return self.find_sessions(key, 0, _MAX, committed)

    def all(self) -> Iterator[tuple[tuple[Any, int, int], Any]]:
        """``((key, start, end), value)`` of every live session, by segment, key, end, start."""
        earliest = max(self.expired_before(), 0)
        decode_key, decode = self.codec.decode_key, self.codec.decode_value
        for segment in self.live_segments(earliest):
            for bk, value in self.cache.scan(self.prefix(segment), self.prefix(segment + 1)):
                end, start = _END_START.unpack_from(bk, len(bk) - _SUFFIX)
                if end >= earliest:
                    yield (decode_key(bk[8:-_SUFFIX]), start, end), decode(value)
