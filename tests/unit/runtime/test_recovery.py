"""Failures the loop survives (on the embedded broker, with faults injected into the clients):
a commit the group refuses under at-least-once, a fenced producer under exactly-once. Either
way the instance keeps running, rebuilds its tasks from their changelogs and rewinds to the
committed offsets; and an instance keeps its transactional.id across restarts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from tests.unit.runtime.test_exactly_once_embedded import (
    _broker_with_input,
    _crashing_split,
    _expected,
    _latest,
    _lines,
    _outputs,
    _wait_committed,
    _wait_drained,
    _wordcount,
)

from fluvial.io.client import (
    CommitFailedError,
    PartitionNotReadyError,
    ProducerFencedError,
    TopicPartition,
)
from fluvial.io.embedded import EmbeddedProducer
from fluvial.io.embedded.consumer import EmbeddedConsumer
from fluvial.runtime.app import App
from fluvial.runtime.instance import claim_slot


def test_refused_commit_under_at_least_once_drops_tasks_and_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chaos finding 2: "member epoch is stale" killed the instance; now the tasks are
    dropped (as Kafka Streams' TaskMigratedException) and reopened from the last commit."""
    lines = _lines(3000)
    broker = _broker_with_input(lines)
    real_commit = EmbeddedConsumer.commit
    refused = [0]

    def stale_epoch(self: EmbeddedConsumer, offsets: dict) -> None:  # type: ignore[type-arg]
        if refused[0] < 2:
            refused[0] += 1
            raise CommitFailedError("simulated: Broker: The member epoch is stale")
        real_commit(self, offsets)

    monkeypatch.setattr(EmbeddedConsumer, "commit", stale_epoch)
    app = App(_wordcount(_crashing_split([False])), "wc", broker=broker,
              commit_interval_ms=50, state_dir=tmp_path)
    app.start()
    try:
        _wait_committed(broker)
        _wait_drained(broker)
        thread = app.stream_thread
        assert thread is not None and thread.recoveries == 2
        assert app.running
    finally:
        app.close()
    assert app.error is None, app.error
    latest, expected = _latest(_outputs(broker)), _expected(lines)
    assert all(latest[w] >= n for w, n in expected.items()), "at-least-once lost counts"


def test_fenced_producer_is_replaced_and_counts_stay_exact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chaos finding 3: a fatal transactional error after a broker failover exited the app;
    now a new producer (same transactional.id) takes over and the tasks are rebuilt."""
    lines = _lines(3000)
    broker = _broker_with_input(lines)
    real_commit = EmbeddedProducer.commit_transaction
    fenced = [0]

    def fatal(self: EmbeddedProducer, timeout: float) -> None:
        if fenced[0] < 2 and self._records and self._offsets:
            fenced[0] += 1
            raise ProducerFencedError("simulated: fatal transactional error: fenced")
        real_commit(self, timeout)

    monkeypatch.setattr(EmbeddedProducer, "commit_transaction", fatal)
    app = App(_wordcount(_crashing_split([False])), "wc", broker=broker,
              processing_guarantee="exactly_once", state_dir=tmp_path)
    app.start()
    try:
        thread = app.stream_thread
        assert thread is not None
        first_producer = thread.producer
        _wait_committed(broker)
        _wait_drained(broker)
        assert thread.recoveries == 2
        assert thread.producer is not first_producer
    finally:
        app.close()
    assert app.error is None, app.error
    outputs = _outputs(broker)
    assert _latest(outputs) == dict(_expected(lines))
    per_word: dict[str, list[int]] = {}
    for word, count in outputs:
        per_word.setdefault(word, []).append(count)
    for word, counts in per_word.items():
        assert counts == sorted(set(counts)), f"{word}: {counts}"


def test_instance_slots_are_stable_and_exclusive(tmp_path: Path) -> None:
    first = claim_slot(tmp_path)
    second = claim_slot(tmp_path)  # the first is held: the next slot
    assert (first.slot, second.slot) == (0, 1)
    assert first.instance_id != second.instance_id
    assert first.transactional_id("wc") == f"wc-{first.instance_id}"
    assert second.group_instance_id("node-a") == "node-a-1"
    first_id = first.instance_id
    first.release()  # the process died: its successor takes the slot and its id
    again = claim_slot(tmp_path)
    assert (again.slot, again.instance_id) == (0, first_id)
    again.release()
    second.release()


def test_local_state_that_cannot_be_opened_is_wiped_and_restored(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Seen in the chaos run: RocksDB killed -9 while creating its database leaves a WAL and
    no manifest, and opening it fails ("wal_dir contains existing log file"). The task's
    local state is derived data: wipe it, restore from the changelog, go on."""
    broken = tmp_path / "wc" / "1_0" / "rocksdb" / "counts"
    broken.mkdir(parents=True)
    (broken / "000016.log").write_bytes(b"\0" * 64)
    lines = _lines(500)
    broker = _broker_with_input(lines)
    app = App(_wordcount(_crashing_split([False])), "wc", broker=broker,
              processing_guarantee="exactly_once", state_dir=tmp_path)
    with caplog.at_level("WARNING", "fluvial.runtime"):
        app.start()
        try:
            _wait_committed(broker)
            _wait_drained(broker)
        finally:
            app.close()
    assert app.error is None, app.error
    assert "task 1_0: local state" in caplog.text and "cannot be opened" in caplog.text
    assert _latest(_outputs(broker)) == dict(_expected(lines))


def test_a_seek_refused_on_a_just_assigned_partition_is_tried_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """librdkafka refuses a seek (Local: Erroneous state) on a partition whose fetcher has
    not started yet, a moment after it was assigned; this stopped an instance of the demo
    cluster once. The task now starts at the next step, at the same position."""
    lines = _lines(2000)
    broker = _broker_with_input(lines)
    real_seek = EmbeddedConsumer.seek
    refused: list[object] = []

    def not_started_yet(self: EmbeddedConsumer, tp: object, offset: int) -> None:
        if len(refused) < 3:
            refused.append(tp)
            raise PartitionNotReadyError(f"cannot seek {tp} to {offset} yet: simulated: "
                                         f"Local: Erroneous state")
        real_seek(self, tp, offset)  # type: ignore[arg-type]

    monkeypatch.setattr(EmbeddedConsumer, "seek", not_started_yet)
    app = App(_wordcount(_crashing_split([False])), "wc", broker=broker,
              commit_interval_ms=50, state_dir=tmp_path)
    app.start()
    try:
        _wait_committed(broker)
        _wait_drained(broker)
        assert app.running
    finally:
        app.close()
    assert app.error is None, app.error
    assert len(refused) == 3
    assert _latest(_outputs(broker)) == _expected(lines)


def test_an_assignment_no_callback_announced_is_taken_and_processed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Seen in a chaos run: after a member was fenced and rejoined, partitions assigned to
    it were processed by nobody. Here the first assign callback never reaches the stream
    thread; its reconciliation with the client's own assignment takes them anyway."""
    lines = _lines(3000)
    broker = _broker_with_input(lines)
    real_subscribe = EmbeddedConsumer.subscribe

    def dropping_first_assign(self: EmbeddedConsumer, topics: list[str], on_assign: Any,
                              on_revoke: Any, on_lost: Any) -> None:
        calls = [0]

        def assign(partitions: list[TopicPartition]) -> None:
            calls[0] += 1
            if calls[0] > 1:
                on_assign(partitions)

        real_subscribe(self, topics, assign, on_revoke, on_lost)

    monkeypatch.setattr(EmbeddedConsumer, "subscribe", dropping_first_assign)
    app = App(_wordcount(_crashing_split([False])), "wc", broker=broker,
              processing_guarantee="exactly_once", state_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="fluvial.runtime"):
        app.start()
        try:
            _wait_committed(broker)
            _wait_drained(broker)
        finally:
            app.close()
    assert app.error is None, app.error
    assert _latest(_outputs(broker)) == dict(_expected(lines))
    assert any("without a rebalance callback; taking them" in r.getMessage()
               for r in caplog.records)
