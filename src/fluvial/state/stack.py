"""Building a store's stack for its kind: typed store → write cache → changelogging → backend.

The runtime (``runtime/stores.py``), the global tables and the TestDriver all open stores
here, so a test runs the same layers as production, over memory instead of RocksDB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from fluvial.io.serdes import Serde
from fluvial.state.bytes import BytesStore, MemoryBytesStore
from fluvial.state.cache import ChangeLogging, ChangelogSend, WriteCache
from fluvial.state.codec import StoreCodec
from fluvial.state.rocksdb import RocksDBBytesStore
from fluvial.state.session import SessionStore
from fluvial.state.store import KeyValueStore, StateStore
from fluvial.state.versioned import VersionedKeyValueStore
from fluvial.state.window import WindowStore, split_window_key

DEFAULT_CACHE_BYTES = 10 * 1024 * 1024  # per store, as Kafka Streams' cache.max.bytes total
KINDS = ("kv", "window", "session", "versioned")


class StoreDefinition(Protocol):
    """What a store needs to be opened (``topology.nodes.StoreSpec`` is one)."""

    name: str
    kind: str
    key_serde: Serde
    value_serde: Serde
    timestamped: bool
    persistent: bool
    window_size_ms: int | None
    retention_ms: int | None
    history_retention_ms: int | None


def open_store(spec: StoreDefinition, directory: Path | None,
               changelog: ChangelogSend | None,
               cache_bytes: int = DEFAULT_CACHE_BYTES) -> StateStore:
    """Open ``spec``'s stack: on RocksDB under ``directory`` when the spec is persistent and
    a directory is given, else in memory; logged to ``changelog`` when given."""
    backend: BytesStore = (RocksDBBytesStore(directory / spec.name)
                           if spec.persistent and directory is not None else MemoryBytesStore())
    codec = StoreCodec(spec.key_serde, spec.value_serde,
                       spec.timestamped and spec.kind != "versioned")
    kind = spec.kind
    if kind == "versioned":
        return VersionedKeyValueStore(spec.name, codec, WriteCache(backend, cache_bytes),
                                      backend, _required(spec, "history_retention_ms"),
                                      changelog)
    lower: BytesStore | ChangeLogging = backend
    if kind == "kv":
        if changelog is not None:
            lower = ChangeLogging(backend, changelog,
                                  lambda _k, v: codec.timestamp_of(v))
        return KeyValueStore(spec.name, codec, WriteCache(lower, cache_bytes), backend)
    if kind == "window":
        retention = _required(spec, "retention_ms")
        if changelog is not None:
            def window_time(key: bytes, value: bytes | None) -> int:
                return codec.timestamp_of(value, split_window_key(key[8:])[1])
            lower = ChangeLogging(backend, changelog, window_time, WindowStore.changelog_key)
        return WindowStore(spec.name, codec, WriteCache(lower, cache_bytes), backend,
                           retention, spec.window_size_ms,
                           getattr(spec, "retain_duplicates", False))
    if kind == "session":
        retention = _required(spec, "retention_ms")
        if changelog is not None:
            lower = ChangeLogging(backend, changelog, SessionStore.changelog_timestamp,
                                  SessionStore.changelog_key)
        return SessionStore(spec.name, codec, WriteCache(lower, cache_bytes), backend,
                            retention)
    raise ValueError(f"store {spec.name!r}: unknown kind {kind!r} (one of {', '.join(KINDS)})")


def _required(spec: StoreDefinition, field: str) -> int:
    value: Any = getattr(spec, field)
    if value is None or value < 0:
        raise ValueError(f"a {spec.kind} store needs {field} >= 0 (store {spec.name!r})")
    return int(value)


def memory_store(name: str, key_serde: Serde, value_serde: Serde,
                 timestamped: bool = True) -> KeyValueStore:
    """A key-value stack in memory with no changelog (tests, tools)."""
    backend = MemoryBytesStore()
    return KeyValueStore(name, StoreCodec(key_serde, value_serde, timestamped),
                         WriteCache(backend, DEFAULT_CACHE_BYTES), backend)
