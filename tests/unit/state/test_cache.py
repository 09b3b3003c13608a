"""The write cache and changelogging layers over a backend."""

from __future__ import annotations

from tests.unit.state.support import Changelog

from fluvial.state.bytes import MemoryBytesStore
from fluvial.state.cache import ChangeLogging, WriteCache


def _stack(max_bytes: int = 1 << 20) -> tuple[WriteCache, MemoryBytesStore, Changelog]:
    backend, log = MemoryBytesStore(), Changelog()
    cache = WriteCache(ChangeLogging(backend, log, lambda k, v: len(k)), max_bytes)
    return cache, backend, log


def test_writes_reach_the_backend_and_changelog_only_at_flush_once_per_key() -> None:
    cache, backend, log = _stack()
    for i in range(100):
        cache.put(b"hot", str(i).encode())
    cache.put(b"gone", b"x")
    cache.put(b"gone", None)
    assert cache.get(b"hot") == b"99" and backend.get(b"hot") is None and log.records == []
    cache.flush()
    assert backend.get(b"hot") == b"99"
    assert sorted(log.records) == [(b"gone", None, 4), (b"hot", b"99", 3)]
    cache.flush()
    assert len(log.records) == 2  # nothing changed: nothing logged


def test_scans_lay_cached_writes_over_the_backend_in_order() -> None:
    cache, backend, _ = _stack()
    backend.write([(b"a", b"old"), (b"c", b"old"), (b"e", b"old")])
    cache.put(b"b", b"new")
    cache.put(b"c", None)
    cache.put(b"e", b"new")
    cache.put(b"f", b"new")
    expected = [(b"a", b"old"), (b"b", b"new"), (b"e", b"new"), (b"f", b"new")]
    assert list(cache.scan()) == expected
    assert list(cache.scan(reverse=True)) == expected[::-1]
    assert list(cache.scan(b"b", b"f")) == expected[1:3]
    cache.put(b"d", b"new")  # a key added after a scan is still found
    assert [k for k, _ in cache.scan(b"c", b"e")] == [b"d"]


def test_a_full_cache_flushes_early() -> None:
    cache, backend, log = _stack(max_bytes=1000)
    for i in range(50):
        cache.put(b"k%03d" % i, b"v" * 10)
    assert backend.count() > 0 and len(log.records) == backend.count()
    cache.flush()
    assert backend.count() == 50


def test_clear_forgets_unflushed_writes() -> None:
    cache, backend, log = _stack()
    cache.put(b"a", b"1")
    cache.clear()
    cache.flush()
    assert backend.count() == 0 and log.records == []
