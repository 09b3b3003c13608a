"""The write cache and changelog in front of a store.

Writes collect in a dict until the task commits; then each changed key goes once to the
backend and once to the changelog topic. Consecutive updates of a hot key cost one backend
write and one changelog record per commit, not one per record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fluvial.state.codec import StoreCodec
from fluvial.state.store import KeyValueStore

ChangelogSend = Callable[[bytes, bytes | None, int], None]
"""(key bytes, value bytes or None for a delete, timestamp) → the changelog partition."""

_DELETED = object()


class CachedLoggedStore:
    def __init__(self, inner: KeyValueStore, codec: StoreCodec,
                 changelog: ChangelogSend | None, max_cached: int = 100_000) -> None:
        self.name = inner.name
        self.inner = inner
        self._codec = codec
        self._changelog = changelog
        self._pending: dict[Any, Any] = {}
        self._unlogged: dict[Any, Any] = {}
        self._max_cached = max_cached

    def get(self, key: Any) -> Any:
        value = self._pending.get(key, _DELETED)
        if value is _DELETED:
            return None if key in self._pending else self.inner.get(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        self._pending[key] = _DELETED if value is None else value
        if len(self._pending) >= self._max_cached:
            self._spill()

    def delete(self, key: Any) -> Any:
        old = self.get(key)
        self._pending[key] = _DELETED
        return old

    def _spill(self) -> None:
        """Move pending writes to the backend; they still reach the changelog at flush."""
        inner = self.inner
        for key, value in self._pending.items():
            if value is _DELETED:
                inner.delete(key)
            else:
                inner.put(key, value)
        self._unlogged.update(self._pending)
        self._pending = {}

    def all(self) -> Iterator[tuple[Any, Any]]:
        self._spill()
        return self.inner.all()

    def range(self, start: Any, end: Any) -> Iterator[tuple[Any, Any]]:
        self._spill()
        return self.inner.range(start, end)

    def approximate_num_entries(self) -> int:
        self._spill()
        return self.inner.approximate_num_entries()

    def flush(self) -> None:
        self._spill()
        if self._changelog is not None and self._unlogged:
            send, codec = self._changelog, self._codec
            for key, value in self._unlogged.items():
                if value is _DELETED:
                    send(codec.encode_key(key), None, 0)
                else:
                    ts = value[1] if codec.timestamped else 0
                    send(codec.encode_key(key), codec.encode_value(value), ts)
        self._unlogged = {}
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()
