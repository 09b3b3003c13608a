"""Interactive queries on a real broker: any instance answers any key with its owner's value,
through a rebalance (a third instance joins): "moving" is allowed mid-way, a wrong value never."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from examples.wordcount.app import build
from tests.integration.kafka_helpers import KafkaTestBroker, wait_until
from tests.integration.wordcount_support import Instance, word_counts

from fluvial import StreamsBuilder, TimeWindows, Topology, serdes
from fluvial.errors import StoreMovingError
from fluvial.io.client import TopicPartition
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


def wordcount_input(kafka: KafkaTestBroker, unique_topic: Callable[[str], str]) -> tuple[
        str, str, str, dict[str, int]]:
    """(input, output, application id, the counts): 1000 lines of 200 words on 4 partitions."""
    source, sink, app_id = unique_topic("in"), unique_topic("out"), unique_topic("app")
    kafka.create_topic(source, partitions=4)
    kafka.create_topic(sink, partitions=4)
    lines = [f"word{i % 200} word{(i * 7) % 200}" for i in range(1000)]
    kafka.produce(source, lines)
    return source, sink, app_id, word_counts(lines)


def test_any_instance_answers_any_key_through_a_rebalance(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str], tmp_path: Path) -> None:
    source, sink, app_id, expected = wordcount_input(kafka, unique_topic)
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
        # every user's windows of the range, gathered from both instances
        assert a.query("per-second").fetch_all(second, second + 1000) == sorted(
            (((u, start), n) for u in users for start, n in expected),
            key=lambda row: (row[0][1], row[0][0]))
    finally:
        for app, server in zip(apps, servers, strict=False):
            app.close()
            server.stop()
    assert [app.error for app in apps] == [None] * len(apps)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http_get(port: int, path: str) -> object:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_standby_reads_and_a_fallback_to_the_standby_when_the_owner_is_killed(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str], tmp_path: Path) -> None:
    """Two instances, one standby replica each: A in this process, B a ``fluvial run``
    process. A reads its own keys from B's standby; once B is killed (SIGKILL: its port
    refuses, its directory entry not yet stale), a read that allows stale state is answered
    by A's standby of B's task, at lag 0, while an active-only read says "moving"."""
    source, sink, app_id, expected = wordcount_input(kafka, unique_topic)
    port_b = free_port()
    a = App(build(source, sink), app_id, state_dir=tmp_path / "a",
            bootstrap_servers=kafka.bootstrap_servers, commit_interval_ms=200,
            num_standby_replicas=1)
    server_a = AppServer(a, port=0, token=TOKEN).start()
    a.start()
    b = Instance("b", app_id, kafka.bootstrap_servers, source, sink, tmp_path, env={
        "FLUVIAL_NUM_STANDBY_REPLICAS": "1", "FLUVIAL_HTTP_PORT": str(port_b),
        "FLUVIAL_HTTP_TOKEN": TOKEN, "FLUVIAL_COMMIT_INTERVAL_MS": "200"})
    reader = a.clients.consumer(None, {})
    try:
        wait_until(lambda: count_tasks(a) and answers_everything(a, expected), timeout=120,
                   message=lambda: f"a runs {sorted(count_tasks(a))}; b: {b.text()[-2000:]}")
        on_a = [w for w in expected if a.query("counts").partition_of(w)
                in a.query("counts").local_views()]
        on_b = [w for w in expected if w not in on_a]
        assert on_a and on_b
        b_tasks = {f"1_{a.query('counts').partition_of(w)}" for w in on_b}
        thread = a.stream_thread
        assert thread is not None and thread.standbys is not None

        def a_caught_up() -> bool:
            copies = dict(thread.standbys.tasks)  # type: ignore[union-attr]
            return b_tasks <= set(copies) and all(
                copies[t].positions[tp] >= reader.watermarks(tp, 10.0)[1] for t in b_tasks
                for tp in [TopicPartition(f"{app_id}-counts-changelog", int(t[2:]))])

        wait_until(a_caught_up, timeout=60, message=lambda: (
            f"a's standbys {sorted(thread.standbys.tasks)} of b's {sorted(b_tasks)}"))  # type: ignore[union-attr]

        # A's own keys, answered by B's standby copy (once B's copy has caught up)
        def from_b_standby() -> bool:
            answer = a.query("counts", "standby").get_with_metadata(on_a[0])
            return (answer.value, answer.instance, answer.active, answer.lag) == (
                expected[on_a[0]], f"127.0.0.1:{port_b}", False, 0)

        wait_until(from_b_standby, timeout=60, message="b's standby answers a's key")
        body = http_get(server_a.port, f"/stores/counts/keys/{on_a[1]}?replica=standby")
        assert body == {"key": on_a[1], "value": expected[on_a[1]], "metadata": {
            "partition": a.query("counts").partition_of(on_a[1]),
            "instance": f"127.0.0.1:{port_b}", "active": False, "lag": 0}}

        b.proc.kill()
        b.proc.wait(30)
        killed_at = time.monotonic()
        try:
            a.query("counts").get(on_b[0])
            raise AssertionError("an active-only read was answered with its owner killed")
        except StoreMovingError:
            pass
        answer = a.query("counts", replica="any").get_with_metadata(on_b[0])
        body = http_get(server_a.port, f"/stores/counts/keys/{on_b[1]}?replica=any")
        # A's directory still lists the killed B (STALE_S): the fallback was for a refused
        # connection, not a missing owner
        assert time.monotonic() - killed_at < 10
        assert (answer.value, answer.instance, answer.active, answer.lag) == (
            expected[on_b[0]], "local", False, 0)
        assert body == {"key": on_b[1], "value": expected[on_b[1]], "metadata": {
            "partition": a.query("counts").partition_of(on_b[1]),
            "instance": f"127.0.0.1:{server_a.port}", "active": False, "lag": 0}}
    finally:
        if b.proc.poll() is None:
            b.proc.kill()
        reader.close()
        a.close()
        server_a.stop()
    assert a.error is None
