"""Key-value stores: the interface operators use, and the in-memory backend.

Operators see Python objects; a backend that keeps bytes (RocksDB) gets a serde-wrapping
layer in ``logged.py``. Values are stored with the timestamp of the record that wrote them,
as Kafka Streams' timestamped stores do, because aggregations need it for their output time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol


class KeyValueStore(Protocol):
    name: str

    def get(self, key: Any) -> Any: ...
    def put(self, key: Any, value: Any) -> None: ...
    def delete(self, key: Any) -> Any: ...
    def all(self) -> Iterator[tuple[Any, Any]]: ...
    def range(self, start: Any, end: Any) -> Iterator[tuple[Any, Any]]:
        """Entries with ``start <= key <= end`` in key order."""
    def approximate_num_entries(self) -> int: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class InMemoryKeyValueStore:
    """A dict. Range scans sort on demand: in-memory stores are for small state and tests."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._data: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        return self._data.get(key)

    def put(self, key: Any, value: Any) -> None:
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value

    def delete(self, key: Any) -> Any:
        return self._data.pop(key, None)

    def all(self) -> Iterator[tuple[Any, Any]]:
        return iter(list(self._data.items()))

    def range(self, start: Any, end: Any) -> Iterator[tuple[Any, Any]]:
        keys = sorted(k for k in self._data if start <= k <= end)
        return iter([(k, self._data[k]) for k in keys])

    def approximate_num_entries(self) -> int:
        return len(self._data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class ReadOnlyView:
    """What users and tests get from ``driver.store(name)``: values without their timestamps."""

    def __init__(self, store: KeyValueStore, timestamped: bool) -> None:
        self._store = store
        self._timestamped = timestamped
        self.name = store.name

    def _plain(self, stored: Any) -> Any:
        return stored[0] if self._timestamped and stored is not None else stored

    def get(self, key: Any) -> Any:
        return self._plain(self._store.get(key))

    def all(self) -> Iterator[tuple[Any, Any]]:
        return ((k, self._plain(v)) for k, v in self._store.all())

    def range(self, start: Any, end: Any) -> Iterator[tuple[Any, Any]]:
        return ((k, self._plain(v)) for k, v in self._store.range(start, end))

    def approximate_num_entries(self) -> int:
        return self._store.approximate_num_entries()

    def to_dict(self) -> dict[Any, Any]:
        return dict(self.all())
