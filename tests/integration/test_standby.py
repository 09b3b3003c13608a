"""Standby replicas on a real broker: placed from the group's description (KIP-848), kept
current from the changelogs, and a fail-over that replays only what they had not applied."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from examples.wordcount.app import build
from tests.integration.kafka_helpers import KafkaTestBroker, wait_until
from tests.integration.wordcount_support import word_counts

from fluvial.io.client import TopicPartition
from fluvial.runtime.app import App


def test_a_standby_takes_over_with_its_state_already_in_place(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str], tmp_path: Path) -> None:
    source, sink, app_id = unique_topic("in"), unique_topic("out"), unique_topic("app")
    kafka.create_topic(source, partitions=4)
    kafka.create_topic(sink, partitions=4)
    lines = [f"word{i % 1500} word{(i * 7) % 1500}" for i in range(3000)]  # many keys
    kafka.produce(source, lines)
    expected = word_counts(lines)
    topology = build(source, sink)
    settings = {"bootstrap_servers": kafka.bootstrap_servers, "num_standby_replicas": 1}

    first = App(topology, app_id, state_dir=tmp_path / "one", **settings).start()
    second = App(topology, app_id, state_dir=tmp_path / "two", **settings).start()
    a, b = first.stream_thread, second.stream_thread
    assert a is not None and b is not None and a.standbys is not None
    reader = first.clients.consumer(None, {})
    try:
        def merged() -> dict[str, int]:
            return {**first.store("counts").to_dict(), **second.store("counts").to_dict()}

        wait_until(lambda: merged() == expected and a.tasks and b.tasks, timeout=90,
                   message=lambda: f"a runs {sorted(a.tasks)}, b runs {sorted(b.tasks)}")
        counting = {t for t in b.tasks if t.startswith("1_")}
        changelogs = {t: TopicPartition(f"{app_id}-counts-changelog", int(t[2:]))
                      for t in counting}

        def caught_up() -> bool:
            standbys = dict(a.standbys.tasks)  # type: ignore[union-attr]
            return counting <= set(standbys) and all(
                standbys[t].positions[tp] >= reader.watermarks(tp, 10.0)[1]
                for t, tp in changelogs.items())

        wait_until(caught_up, timeout=60, message=lambda: (
            f"a's standbys {sorted(a.standbys.tasks)} of b's {sorted(counting)}"))  # type: ignore[union-attr]
        ends = {t: reader.watermarks(tp, 10.0)[1] for t, tp in changelogs.items()}
    finally:
        second.close()
        reader.close()
    assert second.error is None

    try:
        wait_until(lambda: counting <= set(a.tasks), timeout=60,
                   message=lambda: f"a runs {sorted(a.tasks)}; b ran {sorted(counting)}")
        wait_until(lambda: first.store("counts").to_dict() == expected, timeout=60)
        replayed = sum(a.restored[t].get("counts", 0) for t in counting)
        # b's final commit may add a little to the changelogs; the bulk came from the standby
        assert sum(ends.values()) >= 100 and replayed < sum(ends.values()) / 10, (
            replayed, ends)
    finally:
        first.close()
    assert first.error is None
