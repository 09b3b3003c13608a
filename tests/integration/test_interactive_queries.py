"""Interactive queries on a real broker: any instance answers any key with its owner's value,
through a rebalance (a third instance joins): "moving" is allowed mid-way, a wrong value never."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from examples.wordcount.app import build
from tests.integration.kafka_helpers import KafkaTestBroker, wait_until
from tests.integration.wordcount_support import word_counts

from fluvial import StreamsBuilder, TimeWindows, Topology, serdes
from fluvial.errors import StoreMovingError
from fluvial.runtime.app import App
from fluvial.server import AppServer

TOKEN = "t0ken"


def answers_everything(app: App, expected: dict[str, int]) -> bool:
    try:
        return all(app.query("counts").get(w) == n for w, n in expected.items())
    except StoreMovingError:
        return False


def count_tasks(app: App) -> set[str]:
    thread = app.stream_thread
    return {t for t in list(thread.tasks) if t.startswith("1_")} if thread is not None else set()


def test_any_instance_answers_any_key_through_a_rebalance(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str], tmp_path: Path) -> None:
    source, sink, app_id = unique_topic("in"), unique_topic("out"), unique_topic("app")
    kafka.create_topic(source, partitions=4)
    kafka.create_topic(sink, partitions=4)
    lines = [f"word{i % 200} word{(i * 7) % 200}" for i in range(1000)]
    kafka.produce(source, lines)
    expected = word_counts(lines)
    topology = build(source, sink)
    apps: list[App] = []
    servers: list[AppServer] = []

    def start(name: str) -> App:
        app = App(topology, app_id, state_dir=tmp_path / name,
                  bootstrap_servers=kafka.bootstrap_servers, commit_interval_ms=200)
        servers.append(AppServer(app, port=0, token=TOKEN).start())
        apps.append(app.start())
        return app

    try:
        a, b = start("a"), start("b")
        wait_until(lambda: count_tasks(a) and count_tasks(b) and answers_everything(a, expected)
                   and answers_everything(b, expected), timeout=120,
                   message=lambda: f"a runs {sorted(count_tasks(a))}, "
                                   f"b runs {sorted(count_tasks(b))}")
        on_b = [w for w in expected if a.query("counts").partition_of(w)
                in b.query("counts").local_views()]
        assert on_b
        answer = a.query("counts").get_with_metadata(on_b[0])
        assert (answer.value, answer.instance) == (expected[on_b[0]],
                                                   f"127.0.0.1:{servers[1].port}")

        c = start("c")  # the group rebalances: some tasks move to c and restore there
        wrong: list[tuple[str, object]] = []
        moving = answered = 0
        deadline = time.monotonic() + 180
        while not (count_tasks(c) and answers_everything(c, expected)):
            assert time.monotonic() < deadline, f"c runs {sorted(count_tasks(c))}"
            for word, count in expected.items():
                try:
                    value = a.query("counts").get(word)
                except StoreMovingError:
                    moving += 1
                    continue
                answered += 1
                if value != count:
                    wrong.append((word, value))
        assert wrong == []
        wait_until(lambda: all(answers_everything(app, expected) for app in apps), timeout=60,
                   message="every instance answers every key after the rebalance")
        owners = {a.query("counts").get_with_metadata(w).instance for w in expected}
        assert f"127.0.0.1:{servers[2].port}" in owners  # c's tasks answer through c
        assert sorted(b.query("counts").all()) == sorted(expected.items())
        print(f"during the rebalance: {answered} right answers, {moving} 'moving'")
    finally:
        for app, server in zip(apps, servers, strict=False):
            app.close()
            server.stop()
    assert [app.error for app in apps] == [None] * len(apps)


def windowed_counts(source: str) -> Topology:
    builder = StreamsBuilder()
    (builder.stream(source, key_serde=serdes.String(), value_serde=serdes.String())
        .group_by_key().windowed_by(TimeWindows.of_size_and_grace(1000, 60_000))
        .count(materialized="per-second"))
    return builder.build()


def test_a_windowed_count_is_read_from_either_instance(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str], tmp_path: Path) -> None:
    """Each user's clicks at 0.5 s, 1.2 s and 1.7 s past a whole second: windows of 1 s count
    1 and 2, whichever instance is asked."""
    source, app_id = unique_topic("clicks"), unique_topic("app")
    kafka.create_topic(source, partitions=4)
    users = [f"user{i}" for i in range(40)]
    # no repartition before the store: the input must be partitioned as the store's
    # changelog (murmur2, Java's default), not by librdkafka's default (CRC32)
    producer = kafka.producer({"partitioner": "murmur2_random"})
    second = time.time_ns() // 1_000_000 // 1000 * 1000  # recent: not past the retention
    for at in (500, 1200, 1700):
        for user in users:
            producer.produce(source, key=user.encode(), value=b"click", timestamp=second + at)
    assert producer.flush(30) == 0
    expected = [(second, 1), (second + 1000, 2)]
    apps: list[App] = []
    servers: list[AppServer] = []

    def reads_everything(app: App) -> bool:
        try:
            return all(app.query("per-second").fetch(u, second - 5000, second + 5000) == expected
                       for u in users)
        except StoreMovingError:
            return False

    try:
        for name in ("a", "b"):
            app = App(windowed_counts(source), app_id, state_dir=tmp_path / name,
                      bootstrap_servers=kafka.bootstrap_servers, commit_interval_ms=200)
            servers.append(AppServer(app, port=0, token=TOKEN).start())
            apps.append(app.start())
        a, b = apps
        wait_until(lambda: a.query("per-second").local_stores()
                   and b.query("per-second").local_stores()
                   and reads_everything(a) and reads_everything(b), timeout=120,
                   message="both instances read every user's windows")
        on_b = [u for u in users if a.query("per-second").partition_of(u)
                in b.query("per-second").local_stores()]
        assert on_b and len(on_b) < len(users)
        answer = a.query("per-second").fetch_with_metadata(on_b[0], second + 1, second + 1000)
        assert (answer.rows, answer.instance) == ([(second + 1000, 2)],
                                                  f"127.0.0.1:{servers[1].port}")
    finally:
        for app, server in zip(apps, servers, strict=False):
            app.close()
            server.stop()
    assert [app.error for app in apps] == [None] * len(apps)
