"""Session stores: Kafka Streams' key layout, find_sessions, retention, restore."""

from __future__ import annotations

import struct
from typing import Any

from tests.unit.state.support import Changelog


def _sessions(make_store: Any, **kw: Any) -> Any:
    kw.setdefault("retention_ms", 100_000)
    return make_store("session", timestamped=False, value_serde="int64", **kw)


def test_find_sessions_by_end_and_start(make_store: Any) -> None:
    store = _sessions(make_store)
    store.put("k", 0, 10, 1)
    store.put("k", 20, 30, 2)
    store.put("k", 40, 40, 3)
    store.put("k2", 20, 30, 9)
    store.flush()
    store.put("k", 50, 70, 4)  # cached
    found = list(store.find_sessions("k", 25, 45))
    assert found == [((20, 30), 2), ((40, 40), 3)]
    assert [s for s, _ in store.fetch("k")] == [(0, 10), (20, 30), (40, 40), (50, 70)]
    assert store.fetch_session("k", 20, 30) == 2 and store.fetch_session("k", 20, 31) is None
    store.remove("k", 20, 30)
    assert [s for s, _ in store.find_sessions("k", 0, 100)] == [(0, 10), (40, 40), (50, 70)]
    assert list(store.all())[-1] == (("k2", 20, 30), 9)


def test_expired_sessions_are_dropped(make_store: Any) -> None:
    store = _sessions(make_store, retention_ms=50)
    store.put("k", 0, 10, 1)
    store.put("k", 90, 100, 2)  # observed 100: sessions ending at or before 50 are gone
    store.put("k", 40, 50, 3)
    assert store.dropped == 1
    assert list(store.fetch("k")) == [((90, 100), 2)]


def test_changelog_key_is_key_end_start(make_store: Any, tmp_path: Any) -> None:
    log = Changelog()
    store = _sessions(make_store, changelog=log, directory=tmp_path / "a")
    store.put("u", 5, 60, 3)
    store.flush()
    assert log.records == [(b"u" + struct.pack(">qq", 60, 5), struct.pack(">q", 3), 60)]
    again = _sessions(make_store, directory=tmp_path / "b")
    again.restore(log.records)
    assert list(again.find_sessions("u", 0, 100)) == [((5, 60), 3)]
