"""Versioned key-value stores: versions by timestamp, history retention, changelog."""

from __future__ import annotations

from typing import Any

from tests.unit.state.support import Changelog

from fluvial.state.versioned import VersionedRecord


def _versioned(make_store: Any, **kw: Any) -> Any:
    kw.setdefault("history_retention_ms", 1000)
    return make_store("versioned", value_serde="string", **kw)


def test_get_as_of_finds_the_version_valid_then(make_store: Any) -> None:
    store = _versioned(make_store)
    store.put("k", "v10", 10)
    store.put("k", "v30", 30)
    store.flush()
    store.put("k", "v20", 20)  # out of order: between the two
    assert store.get("k") == VersionedRecord("v30", 30, None)
    assert store.get("k", 9) is None
    assert store.get("k", 10) == VersionedRecord("v10", 10, 20)
    assert store.get("k", 25) == VersionedRecord("v20", 20, 30)
    assert store.get("k", 1000) == VersionedRecord("v30", 30, None)
    store.put("k", "v20b", 20)  # same timestamp: replaces that version
    assert store.get("k", 20) == VersionedRecord("v20b", 20, 30)


def test_delete_is_a_tombstone_and_returns_what_it_ends(make_store: Any) -> None:
    store = _versioned(make_store)
    store.put("k", "a", 10)
    assert store.delete("k", 50) == VersionedRecord("a", 10, None)
    assert store.get("k") is None and store.get("k", 60) is None
    assert store.get("k", 40) == VersionedRecord("a", 10, 50)
    store.put("k", "b", 30)  # out of order, before the tombstone: valid until it
    assert store.get("k", 35) == VersionedRecord("b", 30, 50)


def test_history_retention(make_store: Any) -> None:
    store = _versioned(make_store, history_retention_ms=100)
    store.put("k", "old", 0)
    store.put("k", "mid", 50)
    store.put("other", "x", 500)  # observed time 500: history before 400 is gone
    assert store.put("k", "late", 399) is False and store.dropped == 1
    assert store.put("k", "ok", 400) is True
    assert store.get("k", 60) is None  # beyond the history retention
    assert store.get("k", 399) is None
    store.put("solo", "s", 10)  # dropped too: older than the retention
    assert store.get("solo") is None
    assert store.get("other", 100) is None
    store2 = _versioned(make_store, name="t", history_retention_ms=100)
    store2.put("k", "latest", 10)
    store2.put("z", "x", 1000)
    assert store2.get("k", 20) == VersionedRecord("latest", 10, None)  # latest never expires


def test_changelog_is_every_put_and_restores(make_store: Any, tmp_path: Any) -> None:
    log = Changelog()
    store = _versioned(make_store, changelog=log, directory=tmp_path / "a")
    store.put("k", "a", 10)
    store.put("k", "b", 20)
    store.delete("k", 30)
    assert log.records == [(b"k", b"a", 10), (b"k", b"b", 20), (b"k", None, 30)]
    again = _versioned(make_store, directory=tmp_path / "b")
    again.restore(log.records)
    assert again.get("k", 15) == VersionedRecord("a", 10, 20)
    assert again.get("k") is None and again.observed_time == 30
