"""The middle of a store stack: the write cache, then changelogging, over a bytes backend.

``WriteCache`` keeps the entries written since the last commit as bytes, in a dict; reads
look there first, then in the layer below. ``flush`` (at every commit) hands the changed
entries down in one batch, so a hot key costs one backend write and one changelog record
per commit, not one per update. A cache that outgrows ``max_bytes`` flushes early.

``ChangeLogging`` sends each entry of a batch to the store's changelog partition before
writing it to the backend: the changelog key is the backend key (less a store-kind prefix,
see ``window.py``), so a restore writes changelog records back as they are.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator

from fluvial.state.bytes import BytesStore, Entry

ChangelogSend = Callable[[bytes, bytes | None, int], None]
"""(key bytes, value bytes or None for a delete, timestamp) → the changelog partition."""

_ABSENT = object()
_ENTRY_OVERHEAD = 64  # bytes a cached entry costs beyond its key and value (dict slot, objects)


class ChangeLogging:
    """Logs every entry of a batch, then writes the batch to the backend."""

    def __init__(self, backend: BytesStore, send: ChangelogSend,
                 timestamp_of: Callable[[bytes, bytes | None], int],
                 changelog_key: Callable[[bytes], bytes] | None = None) -> None:
        self.backend = backend
        self._send = send
        self._timestamp_of = timestamp_of
        self._changelog_key = changelog_key

    def get(self, key: bytes) -> bytes | None:
        return self.backend.get(key)

    def scan(self, lo: bytes | None = None, hi: bytes | None = None,
             reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        return self.backend.scan(lo, hi, reverse)

    def write(self, entries: Iterable[Entry]) -> None:
        entries = list(entries)
        send, stamp, to_log = self._send, self._timestamp_of, self._changelog_key
        for key, value in entries:
            send(key if to_log is None else to_log(key), value, stamp(key, value))
        self.backend.write(entries)


class WriteCache:
    """Dirty entries (``None``: deleted) over the layer below, bounded by bytes."""

    def __init__(self, lower: BytesStore | ChangeLogging, max_bytes: int) -> None:
        self.lower = lower
        self.max_bytes = max_bytes
        self.dirty: dict[bytes, bytes | None] = {}
        self._size = 0
        self._sorted: list[bytes] | None = None  # dirty keys in order, kept once a scan asked

    def get(self, key: bytes) -> bytes | None:
        value = self.dirty.get(key, _ABSENT)
        if value is _ABSENT:
            return self.lower.get(key)
        return value  # type: ignore[return-value]

    def put(self, key: bytes, value: bytes | None) -> None:
        dirty = self.dirty
        old = dirty.get(key, _ABSENT)
        if old is _ABSENT:
            self._size += len(key) + _ENTRY_OVERHEAD
            if self._sorted is not None:
                bisect.insort(self._sorted, key)
        elif old is not None:
            self._size -= len(old)  # type: ignore[arg-type]
        dirty[key] = value
        if value is not None:
            self._size += len(value)
        if self._size > self.max_bytes:
            self.flush()

    def put_many(self, entries: Iterable[Entry]) -> None:
        for key, value in entries:
            self.put(key, value)

    def scan(self, lo: bytes | None = None, hi: bytes | None = None,
             reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """The layer below's entries in ``[lo, hi)`` with the cached ones laid over them."""
        below = self.lower.scan(lo, hi, reverse)
        if not self.dirty:
            return below
        if self._sorted is None:
            self._sorted = sorted(self.dirty)
        keys = self._sorted
        start = 0 if lo is None else bisect.bisect_left(keys, lo)
        stop = len(keys) if hi is None else bisect.bisect_left(keys, hi)
        cached = keys[start:stop]
        if reverse:
            cached.reverse()
        return _overlay(below, cached, self.dirty, reverse)

    def flush(self) -> None:
        if self.dirty:
            dirty = self.dirty
            self.dirty, self._size, self._sorted = {}, 0, None
            self.lower.write(dirty.items())

    def clear(self) -> None:
        """Forget unflushed writes (the task's work since its last commit is dropped)."""
        self.dirty, self._size, self._sorted = {}, 0, None


def _overlay(below: Iterator[tuple[bytes, bytes]], cached: list[bytes],
             dirty: dict[bytes, bytes | None], reverse: bool) -> Iterator[tuple[bytes, bytes]]:
    """Merge two sorted streams; a cached key wins, and a cached ``None`` hides the key."""
    i, n = 0, len(cached)
    for key, value in below:
        while i < n and (cached[i] > key if reverse else cached[i] < key):
            ck = cached[i]
            i += 1
            cv = dirty.get(ck)
            if cv is not None:
                yield ck, cv
        if i < n and cached[i] == key:
            i += 1
            cv = dirty.get(key)
            if cv is not None:
                yield key, cv
            continue
        yield key, value
    for ck in cached[i:]:
        cv = dirty.get(ck)
        if cv is not None:
            yield ck, cv
