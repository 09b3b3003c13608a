"""Window stores: Kafka Streams' key layout, retention by observed stream time, restore."""

from __future__ import annotations

import struct
from typing import Any

from tests.unit.state.support import Changelog

HOUR = 3_600_000


def _window(make_store: Any, **kw: Any) -> Any:
    kw.setdefault("retention_ms", 10 * HOUR)
    return make_store("window", window_size_ms=HOUR, **kw)


def test_fetch_and_fetch_range_in_start_order(make_store: Any) -> None:
    store = _window(make_store, timestamped=False, value_serde="int64")
    for start in (3 * HOUR, 0, HOUR, 7 * HOUR):
        store.put("k", start // HOUR, start)
    store.put("k2", 99, HOUR)
    store.put("k\x00", 98, HOUR)  # a longer key with k's bytes in front must not leak in
    store.flush()
    store.put("k", 5, 5 * HOUR)  # cached
    assert store.fetch("k", HOUR) == 1 and store.fetch("k", 2 * HOUR) is None
    # a committed read (another thread's) sees the last flush, not the cached write
    assert list(store.fetch_all(5 * HOUR, 5 * HOUR)) == [(("k", 5 * HOUR), 5)]
    assert list(store.fetch_all(5 * HOUR, 5 * HOUR, committed=True)) == []
    assert list(store.fetch_range("k", 5 * HOUR, 5 * HOUR, committed=True)) == []
    assert list(store.fetch_range("k", HOUR, 5 * HOUR)) == [
        (HOUR, 1), (3 * HOUR, 3), (5 * HOUR, 5)]
    assert [s for s, _ in store.fetch_range("k", 0, 10**15)] == [
        0, HOUR, 3 * HOUR, 5 * HOUR, 7 * HOUR]
    # in store-key byte order, as Kafka Streams: "k\0" + start sorts before "k" + start
    assert list(store.fetch_all(HOUR, HOUR)) == [(("k\x00", HOUR), 98), (("k", HOUR), 1),
                                                 (("k2", HOUR), 99)]
    store.put("k", None, HOUR)  # a None value deletes
    assert [s for s, _ in store.fetch_range("k", 0, HOUR)] == [0]


def test_puts_older_than_retention_are_dropped_and_reads_skip_expired(make_store: Any) -> None:
    store = _window(make_store, retention_ms=2 * HOUR, timestamped=False,
                    value_serde="int64")
    store.put("k", 0, 0)
    store.put("k", 1, HOUR)
    store.put("k", 3, 3 * HOUR)  # observed time 3h: windows starting at or before 1h expire
    assert store.fetch("k", 0) is None and store.fetch("k", HOUR) is None
    store.put("k", 9, HOUR)
    assert store.dropped == 1
    assert list(store.fetch_range("k", 0, 3 * HOUR)) == [(3 * HOUR, 3)]
    store.put("k", 2, HOUR + 1)  # just inside the retention
    assert list(store.all()) == [(("k", HOUR + 1), 2), (("k", 3 * HOUR), 3)]
    store.flush()
    assert list(store.all()) == [(("k", HOUR + 1), 2), (("k", 3 * HOUR), 3)]


def test_changelog_key_is_key_start_seqnum_and_restores(make_store: Any, tmp_path: Any) -> None:
    log = Changelog()
    store = _window(make_store, changelog=log, value_serde="int64",
                    directory=tmp_path / "a")
    store.put("ab", (7, 1234), 1000)
    store.flush()
    ((key, value, ts),) = log.records
    assert key == b"ab" + struct.pack(">qi", 1000, 0)
    assert value == struct.pack(">qq", 1234, 7) and ts == 1234
    again = _window(make_store, value_serde="int64", directory=tmp_path / "b")
    again.restore(log.records)
    assert again.fetch("ab", 1000) == (7, 1234) and again.observed_time == 1000


def test_observed_time_survives_a_reopen_on_rocksdb(make_store: Any, backend: str,
                                                    tmp_path: Any) -> None:
    if backend != "rocksdb":
        return  # a memory store reopens empty
    store = _window(make_store, timestamped=False, value_serde="int64", directory=tmp_path)
    store.put("z", 1, 5 * HOUR)
    store.put("a", 1, 4 * HOUR)
    store.flush()
    store.close()
    assert _window(make_store, directory=tmp_path).observed_time == 5 * HOUR


def test_a_store_keeping_duplicates_keeps_every_put_in_order(make_store: Any) -> None:
    """A stream-stream join's store: each put is a new entry (sequence numbers from 1, as
    Kafka Streams), a None put only moves observed time on."""
    log = Changelog()
    store = _window(make_store, changelog=log, retention_ms=2 * HOUR, timestamped=False,
                    value_serde="int64", retain_duplicates=True)
    store.put("k", 1, HOUR)
    store.put("k", 2, HOUR)
    store.put("k", 3, 0)
    assert list(store.fetch_range("k", 0, HOUR)) == [(0, 3), (HOUR, 1), (HOUR, 2)]
    store.flush()
    assert [key[-4:] for key, _, _ in log.records] == [struct.pack(">i", n) for n in (1, 2, 3)]
    store.put("k", None, 3 * HOUR)  # expires everything at or before 1h
    assert list(store.fetch_range("k", 0, 3 * HOUR)) == []
