"""Versioned key-value stores: every version of a key's value over a history retention.

As Kafka Streams' versioned stores (``RocksDBVersionedStore``): ``put(key, value, ts)`` adds
the version valid from ``ts`` until the next version's timestamp (a ``None`` value is a
tombstone: the key is absent from ``ts``); versions may arrive out of order. The store's
observed stream time is the largest timestamp put. A put older than observed time - history
retention is dropped; ``get(key, as_of)`` older than that answers ``None`` unless the latest
version satisfies it (the latest version never expires).

Each put goes to the changelog as Kafka Streams writes it: the key, the plain value (or a
tombstone) and the version's timestamp as the record timestamp, so a restore replays puts.
In the backend a key's versions are one entry (the key's bytes → its versions, oldest first),
and versions that no query can reach any more are pruned when the key is next written. There
is no write cache in front of the versions (Kafka Streams caches no versioned store either),
but the backend is still written only at flush, a batch at a time.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from fluvial.state.bytes import BytesStore
from fluvial.state.cache import ChangelogSend, WriteCache
from fluvial.state.codec import StoreCodec
from fluvial.state.segments import NO_TIME
from fluvial.state.store import ChangelogRecord

_HEAD = struct.Struct(">qbi")  # timestamp, has value, value length


class VersionedRecord(NamedTuple):
    value: Any
    timestamp: int
    valid_to: int | None  # None: still the latest version


Version = tuple[int, bytes | None]


def _decode(data: bytes | None) -> list[Version]:
    versions: list[Version] = []
    if data is None:
        return versions
    i, n = 0, len(data)
    while i < n:
        ts, has, size = _HEAD.unpack_from(data, i)
        i += _HEAD.size
        versions.append((ts, data[i:i + size] if has else None))
        i += size
    return versions


def _encode(versions: list[Version]) -> bytes | None:
    if not versions:
        return None
    parts = []
    for ts, value in versions:
        parts.append(_HEAD.pack(ts, value is not None, 0 if value is None else len(value)))
        if value is not None:
            parts.append(value)
    return b"".join(parts)


class VersionedKeyValueStore:
    def __init__(self, name: str, codec: StoreCodec, cache: WriteCache, backend: BytesStore,
                 history_retention_ms: int, changelog: ChangelogSend | None) -> None:
        self.name = name
        self.codec = codec
        self.cache = cache
        self.backend = backend
        self.history_retention_ms = history_retention_ms
        self._changelog = changelog
        self.dropped = 0
        self.observed_time = max((v[-1][0] for _, raw in backend.scan()
                                  if (v := _decode(raw))), default=NO_TIME)

    def put(self, key: Any, value: Any, timestamp: int) -> bool:
        """Add a version; False when it is older than the history retention (dropped)."""
        kb = self.codec.encode_key(key)
        vb = None if value is None else self.codec.encode_plain(value)
        if not self._put_raw(kb, vb, timestamp):
            self.dropped += 1
            return False
        if self._changelog is not None:
            self._changelog(kb, vb, timestamp)
        return True

    def delete(self, key: Any, timestamp: int) -> VersionedRecord | None:
        """A tombstone at ``timestamp``; returns the version it ends (valid at that time)."""
        if timestamp < self.observed_time - self.history_retention_ms:
            self.dropped += 1
            return None
        existing = self.get(key, timestamp)
        self.put(key, None, timestamp)
        return existing

    def get(self, key: Any, as_of: int | None = None) -> VersionedRecord | None:
        versions = _decode(self.cache.get(self.codec.encode_key(key)))
        if not versions:
            return None
        if as_of is None:
            ts, raw = versions[-1]
            return None if raw is None else VersionedRecord(self._value(raw), ts, None)
        i = bisect.bisect_right(versions, as_of, key=_timestamp) - 1
        if i < 0:
            return None
        latest = i == len(versions) - 1
        if not latest and as_of < self.observed_time - self.history_retention_ms:
            return None  # beyond the history retention: only the latest version answers
        ts, raw = versions[i]
        if raw is None:
            return None
        return VersionedRecord(self._value(raw), ts, None if latest else versions[i + 1][0])

    def _value(self, raw: bytes) -> Any:
        return self.codec.value_serde.deserialize(raw)

    def _put_raw(self, kb: bytes, vb: bytes | None, timestamp: int) -> bool:
        if timestamp < self.observed_time - self.history_retention_ms:
            return False
        if timestamp > self.observed_time:
            self.observed_time = timestamp
        versions = _decode(self.cache.get(kb))
        i = bisect.bisect_left(versions, timestamp, key=_timestamp)
        if i < len(versions) and versions[i][0] == timestamp:
            versions[i] = (timestamp, vb)
        else:
            versions.insert(i, (timestamp, vb))
        self.cache.put(kb, _encode(self._prune(versions)))
        return True

    def _prune(self, versions: list[Version]) -> list[Version]:
        """Drop versions that ended before the history retention (never the latest), and a
        lone expired tombstone."""
        horizon = self.observed_time - self.history_retention_ms
        keep = 0
        while keep < len(versions) - 1 and versions[keep + 1][0] <= horizon:
            keep += 1
        versions = versions[keep:]
        if len(versions) == 1 and versions[0][1] is None and versions[0][0] <= horizon:
            return []
        return versions

    def flush(self) -> None:
        self.cache.flush()
        self.backend.flush()

    def restore(self, records: list[ChangelogRecord]) -> None:
        for key, value, timestamp in records:
            if key is not None:
                self._put_raw(key, value, timestamp)
        self.cache.flush()

    def discard(self) -> None:
        self.cache.clear()

    def close(self) -> None:
        self.backend.close()


_timestamp: Callable[[Version], int] = lambda v: v[0]  # noqa: E731
