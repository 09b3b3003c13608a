"""A long restore says how far it got: records and percent per store, once per interval."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fluvial.io.embedded import EmbeddedBroker, EmbeddedClients
from fluvial.io.serdes import Int64Serde, StringSerde
from fluvial.runtime import restore_progress
from fluvial.runtime.restore_progress import RestoreProgress
from fluvial.runtime.stores import TaskStores
from fluvial.topology.nodes import StoreSpec


def test_progress_is_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    progress = RestoreProgress("1_0", {"counts": 200_000, "totals": 10}, interval_s=10,
                               clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="fluvial.restore"):
        progress.report({"counts": 5_000, "totals": 10})
        now[0] = 10.0
        progress.report({"counts": 50_000, "totals": 10})
        now[0] = 15.0
        progress.report({"counts": 90_000, "totals": 10})
    assert [r.getMessage() for r in caplog.records] == [
        "task 1_0 restoring: counts 50,000 of 200,000 records (25 %), "
        "totals 10 of 10 records (100 %)"]


def test_a_real_restore_reports_its_progress(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    broker = EmbeddedBroker()
    broker.create_topic("app-counts-changelog", 1)
    for i in range(3_000):
        broker.append("app-counts-changelog", f"k{i}".encode(), Int64Serde().serialize(i))
    clients = EmbeddedClients(broker)
    monkeypatch.setattr(restore_progress, "INTERVAL_S", 0.0)  # every batch
    stores = TaskStores(tmp_path / "0_0", "app", 0,
                        [StoreSpec("counts", StringSerde(), Int64Serde(), timestamped=False)],
                        clients.producer({}))
    try:
        with caplog.at_level(logging.INFO, logger="fluvial.restore"):
            restore = stores.begin_restore(clients)
            assert restore.progress() == (0, 3_000)  # what the dashboard shows
            while not restore.step(0.5):
                pass
            assert restore.applied == {"counts": 3_000}
            assert restore.progress() == (3_000, 3_000)
    finally:
        stores.close(clean=False, clients=None)
    lines = [r.getMessage() for r in caplog.records]
    assert lines, "no progress reported"
    assert lines[-1] == "task 0_0 restoring: counts 3,000 of 3,000 records (100 %)"
