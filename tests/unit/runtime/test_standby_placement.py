"""Standby replicas: where they are placed, and a fail-over that replays only the tail.

The embedded broker runs the same loop and group as Kafka; two apps in one process with
their own state directories are two hosts.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from pathlib import Path

from examples.wordcount.app import INPUT, OUTPUT, build, split_words

from fluvial.io.client import GroupMember, TopicPartition
from fluvial.io.embedded import EmbeddedBroker
from fluvial.runtime.app import App
from fluvial.runtime.standby import HOST_MARK, place_standbys


def member(member_id: str, host: str, *partitions: int) -> GroupMember:
    return GroupMember(member_id, f"fluvial{HOST_MARK}{host}",
                       tuple(TopicPartition("in", p) for p in partitions))


def task_of(tp: TopicPartition) -> str:
    return f"0_{tp.partition}"


def test_each_task_gets_its_replicas_on_the_next_hosts_never_its_own() -> None:
    members = [member("a", "h1", 0), member("b", "h2", 1), member("c", "h3", 2)]
    assert place_standbys(members, task_of, 1) == {"a": {"0_2"}, "b": {"0_0"}, "c": {"0_1"}}
    assert place_standbys(members, task_of, 2) == {
        "a": {"0_1", "0_2"}, "b": {"0_0", "0_2"}, "c": {"0_0", "0_1"}}
    assert place_standbys(members, task_of, 5) == place_standbys(members, task_of, 2)


def test_workers_sharing_a_state_directory_count_as_one_host() -> None:
    # a and b: two workers of one `fluvial run --workers 2` (one state directory)
    members = [member("a", "h1", 0), member("b", "h1", 1), member("c", "h2", 2)]
    placed = place_standbys(members, task_of, 1)
    assert placed["c"] == {"0_0", "0_1"}
    # never beside a task its host runs: 0_2's standby goes to h1 once, not to both workers
    assert "0_2" in placed["a"] | placed["b"]
    assert not placed["a"] & placed["b"]
    assert place_standbys([member("a", "h1", 0), member("b", "h1", 1)], task_of, 1) == {
        "a": set(), "b": set()}


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_a_standby_takes_over_replaying_only_the_changelogs_tail(tmp_path: Path) -> None:
    broker = EmbeddedBroker()
    broker.create_topic(INPUT, 4)
    broker.create_topic(OUTPUT, 4)
    lines = [f"w{i % 500} w{(i * 7) % 500}" for i in range(4000)]
    for line in lines:
        broker.append(INPUT, None, line.encode(), 1)
    expected = collections.Counter(w for line in lines for w in split_words(line))
    settings = {"num_standby_replicas": 1, "commit_interval_ms": 100}

    first = App(build(), "wc", broker=broker, state_dir=tmp_path / "one", **settings).start()
    second = App(build(), "wc", broker=broker, state_dir=tmp_path / "two", **settings).start()
    a, b = first.stream_thread, second.stream_thread
    assert a is not None and b is not None and a.standbys is not None
    try:
        def merged() -> dict[str, int]:
            return {**first.store("counts").to_dict(), **second.store("counts").to_dict()}

        wait_for(lambda: merged() == dict(expected) and a.tasks and b.tasks)
        counting = {t for t in b.tasks if t.startswith("1_")}  # the count's sub-topology

        def caught_up() -> bool:  # the first app follows every count task the second runs
            standbys = a.standbys.tasks  # type: ignore[union-attr]
            return counting <= set(standbys) and all(
                s.positions[tp] == broker.watermarks(tp)[1]
                for t in counting for s in [standbys[t]] for tp in s.positions)

        wait_for(caught_up)
    finally:
        second.close()
    assert second.error is None

    more = [f"w{i % 3}" for i in range(30)]
    for line in more:
        broker.append(INPUT, None, line.encode(), 1)
    expected.update(w for line in more for w in split_words(line))
    try:
        wait_for(lambda: first.store("counts").to_dict() == dict(expected))
        # the second app's count tasks moved here: their state came from the standbys
        assert counting <= set(a.tasks)
        changelog = sum(broker.watermarks(TopicPartition("wc-counts-changelog", int(t[2:])))[1]
                        for t in counting)
        replayed = sum(a.restored[t].get("counts", 0) for t in counting)
        assert changelog >= 100 and replayed < changelog / 10, (replayed, changelog)
    finally:
        first.close()
    assert first.error is None
