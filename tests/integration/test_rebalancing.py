"""Rebalancing on a real broker: instances join and leave while a task reads two topics.

The topology merges two co-partitioned topics and counts per key, so task ``0_p`` needs
partition *p* of both topics on one instance. Under the consumer group protocol (KIP-848, the
default) with the broker's range assignor, rebalances are incremental: tasks that stay on an
instance are neither closed nor restored, and no record is lost or counted twice.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.integration.kafka_helpers import KafkaTestBroker, wait_until
from tests.integration.test_exactly_once import committed_outputs

import fluvial
from fluvial import serdes
from fluvial.runtime.app import App
from fluvial.runtime.stream_thread import StreamThread

PARTITIONS = 6
TASKS = {f"0_{p}" for p in range(PARTITIONS)}


def merged_counts(left: str, right: str, sink: str) -> fluvial.Topology:
    """left + right → count per key → sink: one sub-topology reading both topics."""
    builder = fluvial.StreamsBuilder()
    text = serdes.String()
    (builder.stream(left, key_serde=text, value_serde=text)
        .merge(builder.stream(right, key_serde=text, value_serde=text))
        .group_by_key()
        .count(materialized="counts")
        .to_stream()
        .to(sink, key_serde=text, value_serde=serdes.Int64()))
    topology = builder.build()
    assert len(topology.subtopologies) == 1
    return topology


def records(start: int, count: int) -> list[tuple[str, str]]:
    return [(f"k{i % 40}", f"v{i}") for i in range(start, start + count)]


class Scenario:
    """Topics, the apps of one application id, and what was sent."""

    def __init__(self, kafka: KafkaTestBroker, unique_topic: Callable[[str], str],
                 tmp_path: Path, **settings: Any) -> None:
        self.kafka, self.tmp_path, self.settings = kafka, tmp_path, settings
        self.left, self.right, self.sink = (unique_topic("left"), unique_topic("right"),
                                            unique_topic("out"))
        self.app_id = unique_topic("app")
        for topic in (self.left, self.right, self.sink):
            kafka.create_topic(topic, partitions=PARTITIONS)
        self.topology = merged_counts(self.left, self.right, self.sink)
        self.apps: dict[str, App] = {}
        self.sent: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def send(self, start: int, count: int) -> None:
        """The same keys to both topics: the default partitioner puts a key on the same
        partition number in each, which is what co-partitioning means."""
        for topic, batch in ((self.left, records(start, count)),
                             (self.right, records(start + 7, count))):
            self.kafka.produce(topic, batch)
            with self._lock:
                self.sent.update(k for k, _ in batch)

    def start(self, name: str) -> App:
        app = App(self.topology, self.app_id, bootstrap_servers=self.kafka.bootstrap_servers,
                  state_dir=self.tmp_path / name, **self.settings).start()
        self.apps[name] = app
        return app

    def stop(self, name: str) -> None:
        app = self.apps.pop(name)
        app.close()
        assert app.error is None, app.error

    def threads(self) -> dict[str, StreamThread]:
        out = {}
        for name, app in self.apps.items():
            assert app.stream_thread is not None
            out[name] = app.stream_thread
        return out

    def settled(self) -> dict[str, set[str]] | None:
        """Each running instance's tasks, once every task runs on exactly one instance."""
        for app in self.apps.values():
            assert app.error is None, app.error
        layout = {name: set(t.tasks) for name, t in self.threads().items()}
        owned = [task for tasks in layout.values() for task in tasks]
        if sorted(owned) != sorted(TASKS) or not all(layout.values()):
            return None
        return layout

    def wait_settled(self) -> dict[str, set[str]]:
        def describe() -> str:
            return f"tasks: { {n: sorted(t.tasks) for n, t in self.threads().items()} }"

        layout = wait_until(self.settled, timeout=60, interval=0.02, message=describe)
        self.check_copartitioned()
        return layout

    def check_copartitioned(self) -> None:
        for name, thread in self.threads().items():
            assert thread.incomplete_assignments == 0, f"{name} got a partial assignment"
            owned = collections.defaultdict(set)
            for tp in thread.owned:
                owned[tp.partition].add(tp.topic)
            split = {p: ts for p, ts in owned.items() if ts != {self.left, self.right}}
            assert not split, f"{name} owns partition p of only one topic: {split}"

    def committed(self) -> int:
        return sum(o for t in (self.left, self.right)
                   for o in self.kafka.committed_offsets(self.app_id, t).values() if o > 0)

    def store_counts(self) -> dict[str, int]:
        merged: dict[str, int] = {}
        for app in self.apps.values():
            merged.update(app.store("counts").to_dict())
        return merged

    def close_all(self) -> None:
        for name in list(self.apps):
            self.stop(name)


@pytest.fixture
def scenario(kafka: KafkaTestBroker, unique_topic: Callable[[str], str],
             tmp_path: Path) -> Iterator[Callable[..., Scenario]]:
    made: list[Scenario] = []

    def make(**settings: Any) -> Scenario:
        s = Scenario(kafka, unique_topic, tmp_path, **settings)
        made.append(s)
        return s

    yield make
    for s in made:
        for app in s.apps.values():
            app.close()


@pytest.mark.parametrize("protocol", ["consumer", "classic"])
def test_copartitioning_holds_as_instances_join_and_leave(
        scenario: Callable[..., Scenario], protocol: str) -> None:
    """1 → 2 → 3 → 2 → 1 instances: partition p of both topics is always on one instance,
    the guard never sees half a task, and the counts come out exact."""
    s = scenario(group_protocol=protocol)
    n = 0

    def step(action: Callable[[], object]) -> None:
        nonlocal n
        action()
        s.send(n, 300)
        n += 300
        s.wait_settled()
        wait_until(lambda: s.store_counts() == dict(s.sent), timeout=60,
                   message=lambda: f"counts {s.store_counts()} != {dict(s.sent)}")

    step(lambda: s.start("a"))
    step(lambda: s.start("b"))
    step(lambda: s.start("c"))
    step(lambda: s.stop("b"))
    step(lambda: s.stop("a"))
    assert set(s.threads()["c"].tasks) == TASKS
    s.close_all()


@pytest.mark.parametrize("protocol", ["consumer", "classic"])
def test_tasks_that_stay_are_not_reopened(scenario: Callable[..., Scenario],
                                          protocol: str) -> None:
    """A third instance joins: under KIP-848 the tasks that stay on a and b keep running (one
    open each, no restore); classic eager range closes and reopens every task."""
    s = scenario(group_protocol=protocol)
    s.send(0, 600)
    s.start("a")
    s.start("b")
    before = s.wait_settled()
    wait_until(lambda: s.store_counts() == dict(s.sent), timeout=60)
    opens_before = {name: dict(t.opened) for name, t in s.threads().items()}

    s.start("c")
    after = s.wait_settled()
    threads = s.threads()
    kept = {name: before[name] & after[name] for name in ("a", "b")}
    assert any(kept.values()), f"no task stayed put: {before} -> {after}"
    reopened = {name: {t: threads[name].opened[t] - opens_before[name][t] for t in tasks
                       if threads[name].opened[t] != opens_before[name][t]}
                for name, tasks in kept.items()}
    if protocol == "consumer":
        assert reopened == {"a": {}, "b": {}}, f"tasks that stayed were reopened: {reopened}"
        for name in ("a", "b"):  # what moved was closed, nothing else
            assert set(threads[name].tasks) == after[name]
    else:
        assert any(reopened.values()), "eager range reopened nothing"
    s.send(600, 300)
    wait_until(lambda: s.store_counts() == dict(s.sent), timeout=60)
    s.close_all()


@contextmanager
def flowing(s: Scenario) -> Iterator[None]:
    """Input keeps arriving (in small batches) while the body changes the membership."""
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        n = 0
        try:
            while not done.is_set():
                s.send(n, 60)
                n += 60
                time.sleep(0.02)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    sender = threading.Thread(target=run, daemon=True)
    sender.start()
    try:
        yield
    finally:
        done.set()
        sender.join(60)
    assert not errors, errors


def progressed(s: Scenario, mark: int) -> None:
    wait_until(lambda: s.committed() >= mark, timeout=60,
               message=lambda: f"no progress: committed {s.committed()} < {mark}")


def test_exactly_once_counts_exact_while_instances_join_and_leave(
        scenario: Callable[..., Scenario]) -> None:
    s = scenario(processing_guarantee="exactly_once")
    with flowing(s):
        s.start("a")
        for action in (lambda: s.start("b"), lambda: s.start("c"), lambda: s.stop("b"),
                       lambda: s.start("d"), lambda: s.stop("a")):
            progressed(s, s.committed() + 300)
            action()
            s.wait_settled()
    total = sum(s.sent.values())
    wait_until(lambda: s.committed() == total, timeout=60,
               message=lambda: f"committed {s.committed()} of {total}")
    wait_until(lambda: s.store_counts() == dict(s.sent), timeout=30)
    s.close_all()

    outputs = committed_outputs(s.kafka, s.sink)
    latest = {k: counts[-1] for k, counts in outputs.items()}
    assert latest == dict(s.sent)
    for key, counts in outputs.items():
        assert counts == sorted(set(counts)), f"{key}: repeated or decreasing counts {counts}"

