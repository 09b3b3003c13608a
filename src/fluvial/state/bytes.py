"""The bottom of every store stack: bytes keys to bytes values, in byte order.

Every store kind (key-value, window, session, versioned) keeps its entries here as the bytes
its serdes wrote, so ``range`` and every scan see one key order — the byte order RocksDB
has — whether the backend is RocksDB or memory. Above it sit the changelogging layer and
the write cache (``cache.py``); only their flush writes here, a batch at a time.

Reads from other threads (interactive queries) go through ``reader()``: they see the backend
as of a whole write batch, never part of one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from sortedcontainers import SortedDict

Entry = tuple[bytes, bytes | None]
"""A key and its new value; ``None`` deletes the key."""


class BytesStore(Protocol):
    """A sorted map of bytes. Scans run over ``[lo, hi)`` (``None``: unbounded)."""

    def get(self, key: bytes) -> bytes | None: ...
    def write(self, entries: Iterable[Entry]) -> None:
        """Apply a batch atomically for readers on other threads."""
    def scan(self, lo: bytes | None = None, hi: bytes | None = None,
             reverse: bool = False) -> Iterator[tuple[bytes, bytes]]: ...
    def delete_range(self, lo: bytes, hi: bytes) -> None: ...
    def count(self) -> int: ...
    def size(self) -> tuple[int, int | None]:
        """(entries, bytes) as the backend estimates them cheaply, from any thread; bytes
        None where it keeps no such figure (in memory)."""
    def read(self, key: bytes) -> bytes | None:
        """``get`` for other threads: ``None`` once the store is closed."""
    def snapshot(self) -> list[tuple[bytes, bytes]]:
        """Every entry, as of one point between write batches (for other threads)."""
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def wipe(self) -> None:
        """Drop every entry (a local copy that cannot be trusted, before a restore)."""


class MemoryBytesStore:
    """A sorted dict. A lock serializes write batches with other threads' reads; the
    processing thread's own reads need none (only it writes)."""

    def __init__(self) -> None:
        self._data: SortedDict = SortedDict()
        self._lock = threading.Lock()
        self.get: Callable[[bytes], bytes | None] = self._data.get  # no frame of its own

    def write(self, entries: Iterable[Entry]) -> None:
        data = self._data
        with self._lock:
            for key, value in entries:
                if value is None:
                    data.pop(key, None)
                else:
                    data[key] = value

    def scan(self, lo: bytes | None = None, hi: bytes | None = None,
             reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        data = self._data
        keys = list(data.irange(lo, hi, inclusive=(True, False), reverse=reverse))
        return ((k, data[k]) for k in keys if k in data)

    def delete_range(self, lo: bytes, hi: bytes) -> None:
        with self._lock:
            for key in list(self._data.irange(lo, hi, inclusive=(True, False))):
                del self._data[key]

    def count(self) -> int:
        return len(self._data)

    def size(self) -> tuple[int, int | None]:
        return len(self._data), None

    def read(self, key: bytes) -> bytes | None:
        return self._data.get(key)  # one dict lookup: atomic under the GIL

    def snapshot(self) -> list[tuple[bytes, bytes]]:
        with self._lock:
            return list(self._data.items())

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def wipe(self) -> None:
        with self._lock:
            self._data.clear()  # the same dict: ``get`` stays bound to it
