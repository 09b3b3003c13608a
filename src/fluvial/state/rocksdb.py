"""The RocksDB backend (through rocksdict), holding the bytes the changelog holds."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast

from rocksdict import Options, Rdict, WriteBatch

from fluvial.state.bytes import Entry


class RocksDBBytesStore:
    """One RocksDB per store. A write batch is atomic, and a RocksDB iterator reads the
    database as of its creation, so other threads' scans need no lock against writes; the
    lock only keeps ``close``/``wipe`` from pulling the database from under a reader."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(path), Options(raw_mode=True))
        self._lock = threading.Lock()
        self._open = True

    def get(self, key: bytes) -> bytes | None:
        return cast(bytes | None, self._db.get(key))

    def write(self, entries: Iterable[Entry]) -> None:
        batch = WriteBatch(raw_mode=True)
        for key, value in entries:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        if batch.len():
            self._db.write(batch)

    def scan(self, lo: bytes | None = None, hi: bytes | None = None,
             reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        if reverse:
            return self._scan_back(lo, hi)
        return self._scan(lo, hi)

    def _scan(self, lo: bytes | None, hi: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        for k, v in self._items(from_key=lo):
            if hi is not None and k >= hi:
                return
            yield k, v

    def _scan_back(self, lo: bytes | None, hi: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        for k, v in self._items(backwards=True, from_key=hi):
            if hi is not None and k >= hi:  # seeks to the last key <= hi: hi itself is out
                continue
            if lo is not None and k < lo:
                return
            yield k, v

    def _items(self, **options: Any) -> Iterator[tuple[bytes, bytes]]:
        """Raw mode: keys and values are bytes (rocksdict's stubs do not say so)."""
        return cast(Iterator[tuple[bytes, bytes]], iter(self._db.items(**options)))

    def delete_range(self, lo: bytes, hi: bytes) -> None:
        self._db.delete_range(lo, hi)

    def count(self) -> int:
        return sum(1 for _ in self._db.keys())  # noqa: SIM118 (Rdict is not iterable)

    def size(self) -> tuple[int, int | None]:
        """RocksDB's own estimates: keys, and bytes in its files and memtables."""
        with self._lock:
            if not self._open:
                return 0, 0
            keys = self._db.property_int_value("rocksdb.estimate-num-keys") or 0
            files = self._db.property_int_value("rocksdb.total-sst-files-size") or 0
            memory = self._db.property_int_value("rocksdb.cur-size-all-mem-tables") or 0
        return keys, files + memory

    def read(self, key: bytes) -> bytes | None:
        with self._lock:
            return cast(bytes | None, self._db.get(key)) if self._open else None

    def snapshot(self) -> list[tuple[bytes, bytes]]:
        with self._lock:
            if not self._open:
                return []
            return list(self._items())

    def flush(self) -> None:
        self._db.flush()

    def close(self) -> None:
        with self._lock:
            if self._open:
                self._open = False
                self._db.close()

    def wipe(self) -> None:
        with self._lock:
            self._db.close()
            Rdict.destroy(str(self.path))
            self._db = Rdict(str(self.path), Options(raw_mode=True))
