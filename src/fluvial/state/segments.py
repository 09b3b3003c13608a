"""What window and session stores share: time segments, retention, observed stream time.

Both prefix each backend key with its segment (8 bytes, big-endian): its time (a window's
start, a session's end) divided by the segment interval (retention / 2, at least 60 s, as
Kafka Streams). Entries of a segment sit together, and a segment that falls out of the
retention period goes with one range delete at the next flush. The changelog key is the
backend key without its segment.

Time is the store's observed stream time: the largest time it was given. As Kafka Streams,
an entry whose time is at or before observed time - retention is dropped on put (and
counted) and never returned by reads.
"""

from __future__ import annotations

import struct

from fluvial.state.bytes import BytesStore
from fluvial.state.cache import WriteCache
from fluvial.state.codec import StoreCodec
from fluvial.state.store import ChangelogRecord

SEGMENT = struct.Struct(">q")
NO_TIME = -1


def segment_interval(retention_ms: int) -> int:
    return max(retention_ms // 2, 60_000)


class SegmentedStore:
    def __init__(self, name: str, codec: StoreCodec, cache: WriteCache, backend: BytesStore,
                 retention_ms: int) -> None:
        self.name = name
        self.codec = codec
        self.cache = cache
        self.backend = backend
        self.retention_ms = retention_ms
        self.interval = segment_interval(retention_ms)
        self.dropped = 0  # puts too old for the retention period
        self.observed_time = self._latest_time()

    @staticmethod
    def time_of(changelog_key: bytes) -> int:
        """The time (window start, session end) a changelog key holds."""
        raise NotImplementedError

    @staticmethod
    def changelog_key(backend_key: bytes) -> bytes:
        return backend_key[8:]

    def segment_key(self, time: int, changelog_key: bytes) -> bytes:
        return SEGMENT.pack(time // self.interval) + changelog_key

    def prefix(self, segment: int) -> bytes:
        return SEGMENT.pack(segment)

    def live_segments(self, earliest: int) -> range:
        """Segments holding times from ``earliest`` to the observed time."""
        return range(max(earliest, 0) // self.interval, self.observed_time // self.interval + 1)

    def expired_before(self) -> int:
        """Times below this are gone."""
        return self.observed_time - self.retention_ms + 1

    def observe(self, time: int) -> bool:
        """Advance the observed time; False when ``time`` is already out of retention."""
        if time > self.observed_time:
            self.observed_time = time
        if time < self.expired_before():
            self.dropped += 1
            return False
        return True

    def _latest_time(self) -> int:
        """Observed time of a store reopened on its files: the latest time in its last
        segment."""
        last = next(self.backend.scan(reverse=True), None)
        if last is None:
            return NO_TIME
        segment = SEGMENT.unpack_from(last[0])[0]
        return max(self.time_of(k[8:]) for k, _ in
                   self.backend.scan(self.prefix(segment), self.prefix(segment + 1)))

    def flush(self) -> None:
        self.cache.flush()
        self._drop_expired_segments()
        self.backend.flush()

    def _drop_expired_segments(self) -> None:
        live = max(self.expired_before(), 0) // self.interval
        if live > 0:
            self.backend.delete_range(self.prefix(0), self.prefix(live))

    def restore(self, records: list[ChangelogRecord]) -> None:
        entries = []
        for key, value, _ in records:
            if key is None:
                continue
            time = self.time_of(key)
            if time > self.observed_time:
                self.observed_time = time
            entries.append((self.segment_key(time, key), value))
        self.backend.write(entries)
        self._drop_expired_segments()

    def discard(self) -> None:
        self.cache.clear()

    def close(self) -> None:
        self.backend.close()
