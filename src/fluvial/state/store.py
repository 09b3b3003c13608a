"""Key-value stores: the typed top of the stack, and the read-only view other threads get.

Operators see Python objects; ``put`` encodes them at once (a value the serde cannot write
fails in the operator, where the error policy names the record) into the write cache of
bytes; everything below keeps bytes, in their byte order. DSL stores keep
``(value, timestamp)``, as Kafka Streams' timestamped stores do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from fluvial.state.bytes import BytesStore
from fluvial.state.cache import WriteCache
from fluvial.state.codec import StoreCodec

ChangelogRecord = tuple[bytes | None, bytes | None, int]
"""A record read back from a changelog topic: key, value, timestamp."""


class StateStore(Protocol):
    """What the runtime and the TestDriver manage, whatever the kind."""

    name: str
    backend: BytesStore

    def flush(self) -> None: ...
    def restore(self, records: list[ChangelogRecord]) -> None:
        """Apply changelog records as they are (after a wipe, or on top of a checkpoint)."""
    def discard(self) -> None:
        """Drop what was written since the last flush."""
    def close(self) -> None: ...


class KeyValueStore:
    """get/put/delete/range/all over a write cache; ``range`` and ``all`` in key byte order."""

    def __init__(self, name: str, codec: StoreCodec, cache: WriteCache,
                 backend: BytesStore) -> None:
        self.name = name
        self.codec = codec
        self.cache = cache
        self.backend = backend
        self.timestamped = codec.timestamped

    def get(self, key: Any) -> Any:
        return self.codec.decode_value(self.cache.get(self.codec.encode_key(key)))

    def put(self, key: Any, value: Any) -> None:
        codec = self.codec
        self.cache.put(codec.encode_key(key), codec.encode_value(value))

    def encode(self, value: Any) -> bytes | None:
        """A value's bytes, for ``put_encoded``: where a batch operator checks each value as
        it is made and writes only the last per key."""
        return self.codec.encode_value(value)

    def put_encoded(self, entries: list[tuple[Any, bytes | None]]) -> None:
        """Write values ``encode`` made (``None`` deletes)."""
        encode_key = self.codec.encode_key
        self.cache.put_many([(encode_key(k), v) for k, v in entries])

    def put_if_absent(self, key: Any, value: Any) -> Any:
        old = self.get(key)
        if old is None:
            self.put(key, value)
        return old

    def delete(self, key: Any) -> Any:
        old = self.get(key)
        self.cache.put(self.codec.encode_key(key), None)
        return old

    def all(self) -> Iterator[tuple[Any, Any]]:
        decode_key, decode_value = self.codec.decode_key, self.codec.decode_value
        return ((decode_key(k), decode_value(v)) for k, v in self.cache.scan())

    def range(self, start: Any, end: Any) -> Iterator[tuple[Any, Any]]:
        """Keys between ``start`` and ``end`` inclusive, in the byte order of their serde."""
        lo, hi = self.codec.encode_key(start), self.codec.encode_key(end) + b"\x00"
        decode_key, decode_value = self.codec.decode_key, self.codec.decode_value
        return ((decode_key(k), decode_value(v)) for k, v in self.cache.scan(lo, hi))

    def approximate_num_entries(self) -> int:
        return self.backend.count() + len(self.cache.dirty)

    def flush(self) -> None:
        self.cache.flush()
        self.backend.flush()

    def restore(self, records: list[ChangelogRecord]) -> None:
        self.backend.write((k, v) for k, v, _ in records if k is not None)

    def discard(self) -> None:
        self.cache.clear()

    def close(self) -> None:
        self.backend.close()

    # -- reads from other threads: the backend as of the last flush, never the cache ------

    def committed_get(self, key: Any) -> Any:
        return self.codec.decode_value(self.backend.read(self.codec.encode_key(key)))

    def committed_items(self) -> list[tuple[Any, Any]]:
        decode_key, decode_value = self.codec.decode_key, self.codec.decode_value
        return [(decode_key(k), decode_value(v)) for k, v in self.backend.snapshot()]


class ReadOnlyView:
    """What users get from ``driver.store(name)`` and ``app.store(name)`` for one store:
    the committed state (as of the last commit), values without their timestamps. Safe to
    use from any thread."""

    def __init__(self, store: KeyValueStore) -> None:
        self._store = store
        self._timestamped = store.timestamped
        self.name = store.name

    def _plain(self, stored: Any) -> Any:
        return stored[0] if self._timestamped and stored is not None else stored

    def get(self, key: Any) -> Any:
        return self._plain(self._store.committed_get(key))

    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None:
        """``(value, timestamp)`` of a timestamped store, else ``(value, -1)``."""
        stored = self._store.committed_get(key)
        if stored is None:
            return None
        return (stored[0], stored[1]) if self._timestamped else (stored, -1)

    def all(self) -> Iterator[tuple[Any, Any]]:
        return ((k, self._plain(v)) for k, v in self._store.committed_items())

    def range(self, start: Any, end: Any) -> Iterator[tuple[Any, Any]]:
        lo, hi = self._store.codec.encode_key(start), self._store.codec.encode_key(end)
        encode = self._store.codec.encode_key
        return ((k, self._plain(v)) for k, v in self._store.committed_items()
                if lo <= encode(k) <= hi)

    def approximate_num_entries(self) -> int:
        return self._store.backend.count()

    def to_dict(self) -> dict[Any, Any]:
        return dict(self.all())
