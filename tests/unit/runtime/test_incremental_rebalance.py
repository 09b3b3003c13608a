"""The runtime under incremental rebalance callbacks (KIP-848, cooperative), driven directly.

The embedded broker's group is eager range, so these tests call the stream thread's callbacks
themselves with the deltas a KIP-848 member gets, including a partial assignment (partition p
of one topic of a two-topic task) that the range assignor never hands out but the runtime
must survive: the task waits, paused, until the rest arrives. The callbacks only record and
pause; the loop's ``_advance_tasks`` restores and runs the tasks, as ``run_once`` calls it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import fluvial
from fluvial import serdes
from fluvial.io.client import Consumer, TopicPartition
from fluvial.io.embedded import EmbeddedBroker
from fluvial.io.kafka import KafkaClients
from fluvial.runtime.app import App
from fluvial.runtime.changelog_reader import MAX_RECORDS
from fluvial.runtime.stream_thread import StreamThread

LEFT, RIGHT, SINK = "left", "right", "counts-out"


class Spy:
    """The stream thread's consumer, recording pause / resume / seek."""

    def __init__(self, inner: Consumer) -> None:
        self.inner = inner
        self.calls: list[tuple[str, list[TopicPartition] | tuple[TopicPartition, int]]] = []

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self.calls.append(("pause", sorted(partitions)))

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self.calls.append(("resume", sorted(partitions)))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.calls.append(("seek", (tp, offset)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def flow(self) -> list[tuple[str, list[TopicPartition] | tuple[TopicPartition, int]]]:
        """pause / resume only (every task that opens also seeks to its committed offsets)."""
        return [c for c in self.calls if c[0] != "seek"]

    def seeks(self) -> list[tuple[TopicPartition, int]]:
        return [c[1] for c in self.calls if c[0] == "seek"]  # type: ignore[misc]


class Msg:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._t, self._p, self._o = topic, partition, offset

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


@pytest.fixture
def broker() -> EmbeddedBroker:
    broker = EmbeddedBroker()
    for topic in (LEFT, RIGHT, SINK):
        broker.create_topic(topic, 2)
    return broker


@pytest.fixture
def thread(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[tuple[StreamThread, Spy]]:
    builder = fluvial.StreamsBuilder()
    text = serdes.String()
    (builder.stream(LEFT, key_serde=text, value_serde=text)
        .merge(builder.stream(RIGHT, key_serde=text, value_serde=text))
        .group_by_key().count(materialized="counts").to_stream().to(SINK))
    app = App(builder.build(), "inc", broker=broker, state_dir=tmp_path)
    st = app._setup()  # subscribed, never polled: no callback runs but ours
    spy = Spy(st.consumer)
    st.consumer = spy  # type: ignore[assignment]
    yield st, spy
    st.consumer = spy.inner
    st.close()


def test_a_task_opens_only_once_all_its_partitions_are_owned(
        thread: tuple[StreamThread, Spy], caplog: pytest.LogCaptureFixture) -> None:
    st, spy = thread
    st._on_assign([tp(LEFT, 0), tp(LEFT, 1), tp(RIGHT, 1)])
    assert not st.tasks and not st.restoring  # the callback only records and pauses
    assert spy.flow() == [("pause", [tp(LEFT, 0), tp(LEFT, 1), tp(RIGHT, 1)])]
    with caplog.at_level(logging.WARNING, "fluvial.runtime"):
        st._advance_tasks()  # the loop's turn: nothing to restore, so 0_1 runs at once
    assert set(st.tasks) == {"0_1"}
    assert spy.flow()[-1] == ("resume", [tp(LEFT, 1), tp(RIGHT, 1)])
    assert spy.seeks() == [(tp(LEFT, 1), 0), (tp(RIGHT, 1), 0)]  # no commit yet: earliest
    assert st.incomplete_assignments == 1
    assert f"task 0_0 reads {LEFT}, {RIGHT}, but this instance was assigned only {LEFT}[0]" \
        in caplog.text
    assert f"until {RIGHT}[0] arrive" in caplog.text
    st._advance_tasks()
    assert st.incomplete_assignments == 1  # warned once per task

    # a record of the held-back partition fetched before the pause: read again later
    st._process([Msg(LEFT, 0, 5)])  # type: ignore[list-item]
    assert spy.calls[-1] == ("seek", (tp(LEFT, 0), 5))
    assert st.processed == 0

    st._on_assign([tp(RIGHT, 0)])  # the rest arrives: open, resume
    st._advance_tasks()
    assert set(st.tasks) == {"0_0", "0_1"}
    assert spy.flow()[-1] == ("resume", [tp(LEFT, 0), tp(RIGHT, 0)])
    assert spy.seeks()[-2:] == [(tp(LEFT, 0), 0), (tp(RIGHT, 0), 0)]
    assert st.opened == {"0_0": 1, "0_1": 1}


def test_incremental_revoke_closes_only_what_moves(thread: tuple[StreamThread, Spy]) -> None:
    st, spy = thread
    st._on_assign([tp(LEFT, 0), tp(LEFT, 1), tp(RIGHT, 0), tp(RIGHT, 1)])
    st._advance_tasks()
    assert set(st.tasks) == {"0_0", "0_1"}
    staying = st.tasks["0_0"]
    flow = len(spy.flow())

    st._on_revoke([tp(LEFT, 1), tp(RIGHT, 1)])
    assert set(st.tasks) == {"0_0"}
    assert st.tasks["0_0"] is staying  # untouched: not closed, not restored
    assert st.opened == {"0_0": 1, "0_1": 1}
    assert st.owned == {tp(LEFT, 0), tp(RIGHT, 0)}
    assert len(spy.flow()) == flow

    # a revoke that splits a task (never from range): the task closes, its rest is held back
    st._on_revoke([tp(RIGHT, 0)])
    assert not st.tasks
    assert spy.flow()[flow:] == [("pause", [tp(LEFT, 0)])]
    st._on_revoke([tp(LEFT, 0)])
    assert not st.owned


def _fill_changelog(broker: EmbeddedBroker, records: int) -> None:
    """Partition 0 of the counts store's changelog: ``records`` updates of distinct keys."""
    changelog = "inc-counts-changelog"
    for i in range(records):
        broker.append(changelog, f"k{i}".encode(), (1).to_bytes(8, "big"), partition=0)


def test_a_task_restores_in_steps_of_the_loop_and_runs_once_caught_up(
        broker: EmbeddedBroker, thread: tuple[StreamThread, Spy]) -> None:
    st, spy = thread
    _fill_changelog(broker, 3 * MAX_RECORDS)
    st._on_assign([tp(LEFT, 0), tp(LEFT, 1), tp(RIGHT, 0), tp(RIGHT, 1)])
    st._advance_tasks()
    assert set(st.tasks) == {"0_1"}  # nothing to restore
    assert set(st.restoring) == {"0_0"}  # one poll of its changelog applied, not more
    assert ("resume", [tp(LEFT, 0), tp(RIGHT, 0)]) not in spy.flow()
    steps = 1
    while "0_0" in st.restoring:
        st._advance_tasks()
        steps += 1
    assert steps >= 3
    assert st.restored["0_0"] == {"counts": 3 * MAX_RECORDS}
    assert spy.flow()[-1] == ("resume", [tp(LEFT, 0), tp(RIGHT, 0)])


def test_a_task_moved_away_mid_restore_keeps_its_progress(
        broker: EmbeddedBroker, thread: tuple[StreamThread, Spy]) -> None:
    st, _ = thread
    _fill_changelog(broker, 3 * MAX_RECORDS)
    st._on_assign([tp(LEFT, 0), tp(RIGHT, 0)])
    st._advance_tasks()
    assert "0_0" in st.restoring
    st._on_revoke([tp(LEFT, 0), tp(RIGHT, 0)])
    assert not st.restoring and not st.tasks
    st._on_assign([tp(LEFT, 0), tp(RIGHT, 0)])  # back here: goes on from its checkpoint
    while "0_0" not in st.tasks:
        st._advance_tasks()
    assert 0 < st.restored["0_0"]["counts"] < 3 * MAX_RECORDS


def test_kafka_adapter_drops_classic_only_settings_under_kip848(
        caplog: pytest.LogCaptureFixture) -> None:
    """librdkafka refuses them with group.protocol=consumer: the broker owns them there."""
    clients = KafkaClients("127.0.0.1:1")
    with caplog.at_level(logging.WARNING, "fluvial.io.kafka"):
        consumer = clients.consumer("g", {"group.protocol": "consumer",
                                          "session.timeout.ms": 6000})
    try:
        assert consumer._cooperative
        assert "session.timeout.ms=6000 is ignored" in caplog.text
        assert "partition.assignment.strategy" not in caplog.text  # the adapter's default
    finally:
        consumer.close()
    classic = clients.consumer("g", {})
    try:
        assert not classic._cooperative
    finally:
        classic.close()
