"""The typed key-value store: serdes on put, one key order, committed reads, restore."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.state.support import Changelog

from fluvial.io.serdes import SerdeError
from fluvial.state.store import ReadOnlyView


def test_a_value_the_serde_cannot_write_fails_at_put(make_store: Any) -> None:
    store = make_store(value_serde="json")
    with pytest.raises(SerdeError, match="json serde cannot write"):
        store.put("k", ({1, 2}, 5))  # a set is not JSON
    with pytest.raises(SerdeError, match=r"\(value, int timestamp\)"):
        store.put("k", 7)  # a timestamped store needs the pair
    store.put("k", ([1, 2], 5))
    assert store.get("k") == ([1, 2], 5)


def test_range_and_all_are_in_the_byte_order_of_the_key_serde(make_store: Any) -> None:
    store = make_store(key_serde="int64", timestamped=False)
    for k in (3, -1, 0, 2**40, -(2**40)):
        store.put(k, k)
    store.flush()
    store.put(1, 1)  # cached, not flushed: scans still see it in order
    # big-endian two's complement: non-negative keys first, then negative ones
    assert [k for k, _ in store.all()] == [0, 1, 3, 2**40, -(2**40), -1]
    assert [k for k, _ in store.range(1, 2**40)] == [1, 3, 2**40]


def test_changelog_carries_the_timestamped_layout(make_store: Any) -> None:
    log = Changelog()
    store = make_store(changelog=log, value_serde="int64")
    store.put("a", (1, 100))
    store.put("a", (2, 200))
    store.delete("b")
    store.flush()
    assert sorted(log.records) == [
        (b"a", (200).to_bytes(8, "big") + (2).to_bytes(8, "big"), 200), (b"b", None, 0)]


def test_restore_replays_changelog_bytes(make_store: Any, tmp_path: Any) -> None:
    log = Changelog()
    first = make_store(changelog=log, name="one", directory=tmp_path / "1")
    first.put("x", ({"n": 1}, 10))
    first.put("y", ({"n": 2}, 20))
    first.flush()
    first.delete("y")
    first.flush()
    second = make_store(name="two", directory=tmp_path / "2")
    second.restore([(k, v, ts) for k, v, ts in log.records])
    assert list(second.all()) == [("x", ({"n": 1}, 10))]


def test_other_threads_read_the_last_flush_not_the_cache(make_store: Any) -> None:
    store = make_store(value_serde="int64")
    view = ReadOnlyView(store)
    store.put("a", (1, 0))
    assert view.get("a") is None and view.to_dict() == {}
    store.flush()
    store.put("a", (2, 0))
    store.put("b", (2, 0))
    assert view.to_dict() == {"a": 1} and view.get_with_timestamp("a") == (1, 0)
    store.flush()
    assert view.to_dict() == {"a": 2, "b": 2}
    assert list(view.range("b", "z")) == [("b", 2)]
