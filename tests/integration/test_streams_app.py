"""The streams runtime on a real Kafka broker: scaling, fail-over, restore, error policies."""

from __future__ import annotations

import re
import signal
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType
from examples.wordcount.app import build
from tests.integration.kafka_helpers import KafkaTestBroker, wait_until
from tests.integration.wordcount_support import Instance, make_lines, word_counts

import fluvial
from fluvial.errors import ProcessingError, TopologyError
from fluvial.runtime.app import App


def latest_counts(kafka: KafkaTestBroker, topic: str, minimum: int) -> dict[str, int]:
    """The last count per word on the output topic (one key stays on one partition)."""
    latest: dict[str, int] = {}
    for m in kafka.consume_all(topic, minimum, timeout=60):
        assert m.key is not None and m.value is not None
        latest[m.key.decode()] = struct.unpack(">q", m.value)[0]
    return latest


def counts_reaching(kafka: KafkaTestBroker, topic: str, expected: dict[str, int],
                    timeout: float = 60.0) -> dict[str, int]:
    """The last count per word, read until every word has reached its expected count (more
    is allowed: at-least-once may count a record twice) or ``timeout``.

    Committed *input* offsets do not mean the counting sub-topology is done: it still has the
    repartition topic to work through (after a fail-over, from a restored store).
    """
    return kafka.counts_reaching(topic, expected, bytes.decode, timeout)


def test_wordcount_in_process(kafka: KafkaTestBroker, unique_topic: Callable[[str], str],
                              tmp_path: Path) -> None:
    source, sink = unique_topic("in"), unique_topic("out")
    kafka.create_topic(source, partitions=3)
    kafka.create_topic(sink, partitions=3)
    text = make_lines(0, 300)
    kafka.produce(source, text)
    expected = word_counts(text)
    with App(build(source, sink), unique_topic("app"),
             bootstrap_servers=kafka.bootstrap_servers, state_dir=tmp_path) as app:
        wait_until(lambda: app.store("counts").to_dict() == expected or app.error,
                   timeout=60, message=lambda: f"counts: {app.store('counts').to_dict()}")
        assert app.error is None
    assert latest_counts(kafka, sink, sum(1 for _ in expected)) == expected


def test_restart_resumes_from_checkpoint(kafka: KafkaTestBroker,
                                         unique_topic: Callable[[str], str],
                                         tmp_path: Path) -> None:
    """A clean restart replays nothing; a lost state dir is rebuilt from the changelog."""
    source, sink, app_id = unique_topic("in"), unique_topic("out"), unique_topic("app")
    kafka.create_topic(source, partitions=2)
    kafka.create_topic(sink, partitions=2)
    first = make_lines(0, 200)
    kafka.produce(source, first)
    topology = build(source, sink)
    settings = {"bootstrap_servers": kafka.bootstrap_servers, "state_dir": tmp_path / "a"}

    with App(topology, app_id, **settings) as app:
        wait_until(lambda: app.store("counts").to_dict() == word_counts(first),
                   timeout=60)
    assert list((tmp_path / "a" / app_id).glob("1_*/.checkpoint")), "no checkpoint written"

    second = make_lines(200, 100)
    kafka.produce(source, second)
    with App(topology, app_id, **settings) as app:
        wait_until(lambda: app.store("counts").to_dict() == word_counts(first + second),
                   timeout=60)
        assert app.stream_thread is not None
        replayed = sum(n for t in app.stream_thread.restored.values() for n in t.values())
        assert replayed == 0, f"replayed {replayed} changelog records despite the checkpoint"

    # a new machine (empty state dir) restores everything from the changelog
    with App(topology, app_id, bootstrap_servers=kafka.bootstrap_servers,
             state_dir=tmp_path / "b") as app:
        wait_until(lambda: app.store("counts").to_dict() == word_counts(first + second),
                   timeout=60)
        assert app.stream_thread is not None
        replayed = sum(n for t in app.stream_thread.restored.values() for n in t.values())
        assert replayed >= len(word_counts(first + second))


def test_instances_scale_out_and_fail_over(kafka: KafkaTestBroker,
                                           unique_topic: Callable[[str], str], tmp_path: Path,
                                           instances: list[Instance]) -> None:
    """2 instances, a 3rd joins mid-stream, one is SIGKILLed: no record is lost."""
    source, sink, app_id = unique_topic("in"), unique_topic("out"), unique_topic("app")
    kafka.create_topic(source, partitions=6)
    kafka.create_topic(sink, partitions=6)

    def start(name: str) -> Instance:
        instance = Instance(name, app_id, kafka.bootstrap_servers, source, sink, tmp_path)
        instances.append(instance)
        return instance

    def committed() -> int:
        offsets = kafka.committed_offsets(app_id, source)
        return sum(o for o in offsets.values() if o > 0)

    sent: list[str] = []

    def send(batch: list[str]) -> None:
        kafka.produce(source, batch)
        sent.extend(batch)

    a, b = start("a"), start("b")
    send(make_lines(0, 400))
    wait_until(lambda: committed() >= 200, timeout=90,
               message=lambda: f"nothing committed; log a:\n{a.text()[-2000:]}")
    c = start("c")
    send(make_lines(400, 400))
    wait_until(lambda: committed() >= 600, timeout=90, message="second batch not committed")
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(30)
    send(make_lines(800, 400))
    expected = word_counts(sent)
    wait_until(lambda: committed() == len(sent), timeout=120,
               message=lambda: f"committed {committed()} of {len(sent)}")
    assert a.proc.poll() is None and c.proc.poll() is None, "a survivor died"

    latest = counts_reaching(kafka, sink, expected)
    assert set(latest) == set(expected)
    short = {w: (latest[w], n) for w, n in expected.items() if latest[w] < n}
    assert not short, f"counts lost records (got, expected): {short}"
    # at-least-once: a record whose offset was not yet committed when b died is
    # counted again by its new owner, so counts may exceed; exactly-once makes them equal.
    restored_logs = a.text() + c.text()
    assert "restored" in restored_logs, "no survivor restored state from a changelog"

    for i in (a, c):
        i.proc.send_signal(signal.SIGTERM)
    for i in (a, c):
        assert i.proc.wait(60) == 0, i.text()[-3000:]


def test_dead_letter_policy(kafka: KafkaTestBroker, unique_topic: Callable[[str], str],
                            tmp_path: Path) -> None:
    source, sink, app_id = unique_topic("in"), unique_topic("out"), unique_topic("app")
    kafka.create_topic(source, partitions=1)
    kafka.create_topic(sink, partitions=1)
    dead = f"{app_id}-dead-letter"
    builder = fluvial.StreamsBuilder()
    builder.stream(source, value_serde="json").map_values(lambda v: v["n"] * 2).to(
        sink, value_serde="json")
    kafka.produce(source, [b'{"n": 1}', b"not json", b'{"m": 3}', b'{"n": 4}'])
    with App(builder.build(), app_id, bootstrap_servers=kafka.bootstrap_servers,
             state_dir=tmp_path, on_error="dead_letter") as app:
        wait_until(lambda: kafka.committed_offsets(app_id, source).get(0) == 4 or app.error,
                   timeout=60)
        assert app.error is None
    assert [m.value for m in kafka.consume_all(sink, 2)] == [b"2", b"8"]
    dead_letters = kafka.consume_all(dead, 2)
    assert [m.value for m in dead_letters] == [b"not json", b'{"m": 3}']
    headers = dict(dead_letters[0].headers)
    assert headers["fluvial.topic"] == source.encode()
    assert headers["fluvial.offset"] == b"1"
    assert b"invalid JSON" in (headers["fluvial.error"] or b"")
    assert b"KeyError" in (dict(dead_letters[1].headers)["fluvial.error"] or b"")


def test_stop_policy_commits_nothing_past_the_bad_record(kafka: KafkaTestBroker,
                                                         unique_topic: Callable[[str], str],
                                                         tmp_path: Path) -> None:
    source, sink, app_id = unique_topic("in"), unique_topic("out"), unique_topic("app")
    kafka.create_topic(source, partitions=1)
    kafka.create_topic(sink, partitions=1)
    builder = fluvial.StreamsBuilder()
    builder.stream(source, value_serde="json").map_values(lambda v: v["n"]).to(sink)
    kafka.produce(source, [b'{"n": 1}', b'{"n": 2}', b"{broken", b'{"n": 4}'])
    app = App(builder.build(), app_id, bootstrap_servers=kafka.bootstrap_servers,
              state_dir=tmp_path, commit_interval_ms=10).start()
    wait_until(lambda: not app.running, timeout=60, message="the app did not stop")
    assert isinstance(app.error, ProcessingError)
    assert (app.error.topic, app.error.partition, app.error.offset) == (source, 0, 2)
    assert f"topic {source!r} partition 0 offset 2" in str(app.error)
    assert app_id in str(app.error)
    assert kafka.committed_offsets(app_id, source).get(0, -1) <= 2


def test_missing_source_topic_is_a_clear_error(kafka: KafkaTestBroker,
                                               unique_topic: Callable[[str], str],
                                               tmp_path: Path) -> None:
    source, sink = unique_topic("nope"), unique_topic("out")
    builder = fluvial.StreamsBuilder()
    builder.stream(source).to(sink)
    missing = f"source topic(s) {source} and sink topic(s) {sink} missing"
    with pytest.raises(TopologyError, match=re.escape(missing)):
        App(builder.build(), unique_topic("app"), bootstrap_servers=kafka.bootstrap_servers,
            state_dir=tmp_path).start()


def test_a_static_member_killed_and_restarted_at_once_rejoins(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str], tmp_path: Path,
        instances: list[Instance]) -> None:
    """Under KIP-848 the broker refuses a static member's new process (UNRELEASED_INSTANCE_ID,
    fatal to that consumer) while the killed one has not expired: the restarted instance
    waits for that, then joins and goes on counting."""
    source, sink, app_id = unique_topic("in"), unique_topic("out"), unique_topic("app")
    kafka.create_topic(source, partitions=2)
    kafka.create_topic(sink, partitions=2)
    a = Instance("a", app_id, kafka.bootstrap_servers, source, sink, tmp_path,
                 env={"FLUVIAL_GROUP_INSTANCE_ID": "static-a"})
    instances.append(a)
    first = make_lines(0, 200)
    kafka.produce(source, first)
    wait_until(a.has_tasks, timeout=90, message=lambda: a.text()[-3000:])
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(30)
    a.restart()  # at once: the killed member still holds "static-a"
    second = make_lines(200, 200)
    kafka.produce(source, second)
    counts = counts_reaching(kafka, sink, word_counts(first + second), timeout=120)
    assert "joining once the group has let its membership expire" in a.text()
    assert a.proc.poll() is None, f"the restarted instance exited\n{a.text()[-3000:]}"
    short = {w: (counts.get(w), n) for w, n in word_counts(first + second).items()
             if counts.get(w, 0) < n}
    assert not short, f"counts lost records (got, expected): {short}\n{a.text()[-3000:]}"
    a.proc.send_signal(signal.SIGTERM)
    assert a.proc.wait(60) == 0, a.text()[-3000:]


def test_repartition_topics_keep_records_until_committed_then_purge_them(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str], tmp_path: Path) -> None:
    """A repartition topic is created with no time retention (records with old event times
    must not be deleted before they are read) and the records every task committed past are
    deleted, as Kafka Streams does; the counts stay right."""
    source, sink, app_id = unique_topic("in"), unique_topic("out"), unique_topic("app")
    kafka.create_topic(source, partitions=2)
    kafka.create_topic(sink, partitions=2)
    text = make_lines(0, 400)
    kafka.produce(source, text)
    expected = word_counts(text)
    repartition = f"{app_id}-counts-repartition"
    with App(build(source, sink), app_id, bootstrap_servers=kafka.bootstrap_servers,
             state_dir=tmp_path, repartition_purge_interval_ms=200,
             commit_interval_ms=100) as app:
        wait_until(lambda: app.store("counts").to_dict() == expected or app.error,
                   timeout=60, message=lambda: f"counts: {app.store('counts').to_dict()}")
        consumer = kafka.consumer()
        try:
            def low_watermarks() -> list[int]:
                return [consumer.get_watermark_offsets(TopicPartition(repartition, p),
                                                       timeout=10)[0] for p in range(2)]
            wait_until(lambda: all(low > 0 for low in low_watermarks()), timeout=30,
                       message=lambda: f"low watermarks of {repartition}: {low_watermarks()}")
        finally:
            consumer.close()
        assert app.error is None
    (future,) = kafka.admin().describe_configs(
        [ConfigResource(ResourceType.TOPIC, repartition)]).values()
    config = future.result(timeout=30)
    assert config["retention.ms"].value == "-1"
    assert config["cleanup.policy"].value == "delete"
