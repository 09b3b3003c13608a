"""The runtime on the embedded broker: the same loop, rebalancing and restore as on Kafka."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from pathlib import Path

from examples.wordcount.app import INPUT, OUTPUT, build, split_words

from fluvial.io.embedded import EmbeddedBroker
from fluvial.runtime.app import App


def wait_for(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def feed(broker: EmbeddedBroker, lines: list[str]) -> None:
    for line in lines:
        broker.append(INPUT, None, line.encode(), 1)


def test_two_instances_share_tasks_and_hand_over_state(tmp_path: Path) -> None:
    broker = EmbeddedBroker()
    broker.create_topic(INPUT, 4)
    broker.create_topic(OUTPUT, 4)
    lines = [f"alpha beta {i % 5} gamma" for i in range(200)]
    feed(broker, lines)
    expected = collections.Counter(w for line in lines for w in split_words(line))

    first = App(build(), "wc", broker=broker, state_dir=tmp_path / "one").start()
    second = App(build(), "wc", broker=broker, state_dir=tmp_path / "two").start()
    try:
        def merged() -> dict[str, int]:
            return {**first.store("counts").to_dict(), **second.store("counts").to_dict()}

        wait_for(lambda: merged() == dict(expected))
        assert first.stream_thread is not None and second.stream_thread is not None
        wait_for(lambda: first.stream_thread.tasks and second.stream_thread.tasks)
        assert not set(first.stream_thread.tasks) & set(second.stream_thread.tasks)
    finally:
        second.close()
    assert second.error is None

    more = [f"alpha {i % 3}" for i in range(50)]
    feed(broker, more)
    expected.update(w for line in more for w in split_words(line))
    try:
        wait_for(lambda: first.store("counts").to_dict() == dict(expected))
        assert first.stream_thread is not None
        restored = sum(n for t in first.stream_thread.restored.values() for n in t.values())
        assert restored > 0, "the survivor did not restore the departed instance's state"
    finally:
        first.close()
    assert first.error is None


def test_outputs_and_offsets_after_close(tmp_path: Path) -> None:
    broker = EmbeddedBroker()
    broker.create_topic(INPUT, 1)
    broker.create_topic(OUTPUT, 1)
    feed(broker, ["a b a"])
    with App(build(), "wc", broker=broker, state_dir=tmp_path) as app:
        wait_for(lambda: app.store("counts").get("a") == 2)
    from fluvial.io.client import TopicPartition

    assert broker.committed("wc", [TopicPartition(INPUT, 0)]) == {TopicPartition(INPUT, 0): 1}
    latest = {m.key(): m.value() for m in broker.records(OUTPUT)}
    assert latest == {b"a": (2).to_bytes(8, "big"), b"b": (1).to_bytes(8, "big")}
