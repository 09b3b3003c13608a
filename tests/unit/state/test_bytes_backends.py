"""The bytes backends: one key order (bytes), scans over [lo, hi), atomic batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluvial.state.bytes import BytesStore, MemoryBytesStore
from fluvial.state.rocksdb import RocksDBBytesStore


@pytest.fixture(params=["memory", "rocksdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BytesStore:
    if request.param == "memory":
        return MemoryBytesStore()
    return RocksDBBytesStore(tmp_path / "db")


KEYS = [b"b", b"a", b"\xff", b"ab", b"\x00", b"a\x00", b"c"]


def test_scans_are_in_byte_order_both_ways(store: BytesStore) -> None:
    store.write((k, k + b"!") for k in KEYS)
    assert [k for k, _ in store.scan()] == sorted(KEYS)
    assert [k for k, _ in store.scan(reverse=True)] == sorted(KEYS, reverse=True)
    assert [k for k, _ in store.scan(b"a", b"b")] == [b"a", b"a\x00", b"ab"]
    assert [k for k, _ in store.scan(b"a", b"b", reverse=True)] == [b"ab", b"a\x00", b"a"]
    assert [k for k, _ in store.scan(None, b"a")] == [b"\x00"]
    assert [k for k, _ in store.scan(b"c")] == [b"c", b"\xff"]
    assert store.get(b"ab") == b"ab!"
    assert store.count() == len(KEYS)


def test_a_batch_applies_puts_and_deletes_in_order(store: BytesStore) -> None:
    store.write([(b"k", b"1"), (b"j", b"2")])
    store.write([(b"k", None), (b"j", b"3"), (b"x", None)])
    assert list(store.scan()) == [(b"j", b"3")]


def test_delete_range_and_wipe(store: BytesStore) -> None:
    store.write((bytes([i]), b"v") for i in range(10))
    store.delete_range(bytes([2]), bytes([5]))
    assert [k[0] for k, _ in store.scan()] == [0, 1, 5, 6, 7, 8, 9]
    store.wipe()
    assert list(store.scan()) == [] and store.get(b"\x01") is None


def test_snapshot_is_unchanged_by_later_batches(store: BytesStore) -> None:
    store.write([(b"a", b"1"), (b"b", b"1")])
    snap = store.snapshot()
    store.write([(b"a", b"2"), (b"b", None), (b"c", b"2")])
    assert snap == [(b"a", b"1"), (b"b", b"1")]


def test_a_closed_rocksdb_reads_as_empty_for_other_threads(tmp_path: Path) -> None:
    store = RocksDBBytesStore(tmp_path / "db")
    store.write([(b"a", b"1")])
    store.close()
    assert store.snapshot() == []
    store.close()  # twice is fine
