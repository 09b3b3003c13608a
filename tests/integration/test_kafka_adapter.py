"""One contract, two implementations: the embedded broker and the confluent-kafka adapter.

Every ``backend`` test runs against both, with the same assertions, so code above ``io``
can rely on behaviour it saw in fast unit tests holding on a real cluster. The tests at the
bottom cover what only the real adapter has (cooperative rebalancing, delivery failures).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from tests.integration.kafka_helpers import KafkaTestBroker

import fluvial.io.kafka as kafka_module
from fluvial.errors import ConfigError, DeliveryError
from fluvial.io.client import (
    Clients,
    Consumer,
    Message,
    TopicPartition,
    TopicSpec,
    UnknownTopicOrPartitionError,
)
from fluvial.io.embedded import EmbeddedBroker, EmbeddedClients, partition_for_key
from fluvial.io.kafka import KafkaClients

TP = TopicPartition
# Quick group protocol for tests; the embedded broker ignores these.
FAST_GROUP = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


class Backend:
    """The clients under test, plus the consumers to close at teardown."""

    def __init__(self, name: str, clients: Clients, topic: Callable[[str], str]) -> None:
        self.name = name
        self.clients = clients
        self.topic = topic
        self.consumers: list[Consumer] = []

    def consumer(self, group_id: str | None, **config: Any) -> Consumer:
        c = self.clients.consumer(group_id, {**FAST_GROUP, **config})
        self.consumers.append(c)
        return c

    def create(self, partitions: int, suffix: str = "t", **config: str) -> str:
        name = self.topic(suffix)
        self.clients.admin().create_topics([TopicSpec(name, partitions, config=config)])
        return name

    def group(self, suffix: str = "g") -> str:
        return self.topic(f"group-{suffix}")


@pytest.fixture(params=["embedded", "kafka"])
def backend(request: pytest.FixtureRequest,
            unique_topic: Callable[[str], str]) -> Iterator[Backend]:
    if request.param == "embedded":
        clients: Clients = EmbeddedClients(EmbeddedBroker())
    else:
        kafka: KafkaTestBroker = request.getfixturevalue("kafka")
        clients = KafkaClients(kafka.bootstrap_servers)
    backend = Backend(request.param, clients, unique_topic)
    yield backend
    for c in backend.consumers:
        with contextlib.suppress(Exception):  # a test may have closed it already
            c.close()


class Tracker:
    """Ownership as told by the rebalance callbacks."""

    def __init__(self) -> None:
        self.owned: set[TopicPartition] = set()
        self.events: list[tuple[str, list[TopicPartition]]] = []

    def on_assign(self, parts: list[TopicPartition]) -> None:
        self.events.append(("assign", parts))
        self.owned |= set(parts)

    def on_revoke(self, parts: list[TopicPartition]) -> None:
        self.events.append(("revoke", parts))
        self.owned -= set(parts)

    def on_lost(self, parts: list[TopicPartition]) -> None:
        self.events.append(("lost", parts))
        self.owned -= set(parts)

    def subscribe(self, consumer: Consumer, topics: Sequence[str]) -> None:
        consumer.subscribe(topics, self.on_assign, self.on_revoke, self.on_lost)


def poll_until(consumers: Sequence[Consumer], done: Callable[[list[Message]], bool],
               timeout: float = 60.0) -> list[Message]:
    """Poll every consumer in turn (a rebalance needs all members polling) until ``done``."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while not done(got):
        assert time.monotonic() < deadline, f"timed out; got {len(got)} message(s)"
        for c in consumers:
            got += c.poll_batch(500, 0.1)
    return got


def produce(backend: Backend, topic: str, records: Sequence[tuple[bytes | None, bytes]],
            partition: int | None = None) -> None:
    producer = backend.clients.producer({})
    for key, value in records:
        producer.produce(topic, key, value, 1_700_000_000_000, partition=partition)
    producer.flush(30)


# -- the contract ---------------------------------------------------------------------------

def test_admin_create_is_idempotent_and_counts_partitions(backend: Backend) -> None:
    admin = backend.clients.admin()
    name = backend.create(3)
    admin.create_topics([TopicSpec(name, 5)])  # exists: left as it is
    missing = backend.topic("missing")
    assert admin.partition_counts([name, missing]) == {name: 3}
    admin.delete_topics([name, missing])  # a missing topic is not an error
    assert admin.partition_counts([name]) == {}


def test_records_round_trip_with_java_partitioning(backend: Backend) -> None:
    topic = backend.create(6)
    keys = [f"user-{i}".encode() for i in range(60)]
    producer = backend.clients.producer({})
    producer.produce(topic, b"h", b"with-headers", 1_700_000_000_123,
                     headers=[("trace", b"abc"), ("none", None)], partition=0)
    producer.produce_many(topic, [(k, b"v-" + k, 1_700_000_000_000 + i, [("i", b"%d" % i)])
                                  for i, k in enumerate(keys)])
    producer.flush(30)

    reader = backend.consumer(None)
    reader.assign([(TP(topic, p), 0) for p in range(6)])
    got = poll_until([reader], lambda got: len(got) >= 61)
    assert len(got) == 61
    by_key = {m.key(): m for m in got}
    for i, k in enumerate(keys):  # librdkafka's murmur2_random and our murmur2 agree with Java
        assert by_key[k].partition() == partition_for_key(k, 6), k
        assert by_key[k].value() == b"v-" + k
        assert by_key[k].timestamp() == (1, 1_700_000_000_000 + i)
        assert by_key[k].headers() == [("i", b"%d" % i)]
    first = by_key[b"h"]
    assert (first.partition(), first.offset()) == (0, 0)
    assert first.timestamp() == (1, 1_700_000_000_123)
    assert first.headers() == [("trace", b"abc"), ("none", None)]
    assert first.error() is None
    for p in range(6):
        offsets = [m.offset() for m in got if m.partition() == p]
        assert offsets == list(range(len(offsets)))
        assert reader.watermarks(TP(topic, p), 10) == (0, len(offsets))


def test_single_member_gets_all_partitions_and_commits(backend: Backend) -> None:
    topic = backend.create(3)
    produce(backend, topic, [(b"k%d" % i, b"v%d" % i) for i in range(30)])
    group = backend.group()
    tracker = Tracker()
    consumer = backend.consumer(group)
    tracker.subscribe(consumer, [topic])
    got = poll_until([consumer], lambda got: len(got) >= 30)
    assert tracker.owned == {TP(topic, p) for p in range(3)}
    ends = {TP(topic, m.partition()): m.offset() + 1 for m in got}
    consumer.commit(ends)
    assert consumer.committed(sorted(ends), 10) == ends
    assert all(consumer.position(tp) == off for tp, off in ends.items())
    consumer.close()
    assert tracker.events[-1][0] == "revoke" and tracker.owned == set()


def test_range_assignment_co_partitions_and_rebalances(backend: Backend) -> None:
    left, right = backend.create(4, "left"), backend.create(4, "right")
    group = backend.group()
    t1, t2 = Tracker(), Tracker()
    c1, c2 = backend.consumer(group), backend.consumer(group)
    t1.subscribe(c1, [left, right])
    poll_until([c1], lambda _: len(t1.owned) == 8)
    t2.subscribe(c2, [left, right])
    poll_until([c1, c2], lambda _: len(t1.owned) == 4 and len(t2.owned) == 4)
    assert not t1.owned & t2.owned
    for t in (t1, t2):  # partition p of both topics on the same member
        assert {tp.partition for tp in t.owned if tp.topic == left} == {
            tp.partition for tp in t.owned if tp.topic == right}
    # eager: c1 gave up everything before getting its half back
    assert ("revoke", sorted(TP(t, p) for t in (left, right) for p in range(4))) in t1.events


def test_committed_offsets_are_honoured_after_a_member_leaves(backend: Backend) -> None:
    topic = backend.create(2)
    for p in range(2):
        produce(backend, topic, [(None, b"p%d-%d" % (p, i)) for i in range(5)], partition=p)
    group = backend.group()
    t1, t2 = Tracker(), Tracker()
    c1, c2 = backend.consumer(group), backend.consumer(group)
    t1.subscribe(c1, [topic])
    t2.subscribe(c2, [topic])
    poll_until([c1, c2], lambda _: len(t1.owned) == 1 and len(t2.owned) == 1)
    (mine,) = t2.owned
    c2.commit({mine: 3})
    c2.close()
    got = poll_until([c1], lambda got: sum(m.partition() == mine.partition for m in got) >= 2)
    assert t1.owned == {TP(topic, 0), TP(topic, 1)}
    assert sorted(m.offset() for m in got if m.partition() == mine.partition) == [3, 4]


def test_free_reader_seek_position_pause_resume(backend: Backend) -> None:
    topic = backend.create(2)
    for p in range(2):
        produce(backend, topic, [(None, b"%d" % i) for i in range(4)], partition=p)
    reader = backend.consumer(None)
    reader.assign([(TP(topic, 0), 2), (TP(topic, 1), 0)])
    reader.pause([TP(topic, 1)])
    got = poll_until([reader], lambda got: len(got) >= 2)
    assert [(m.partition(), m.offset()) for m in got] == [(0, 2), (0, 3)]
    assert reader.position(TP(topic, 0)) == 4
    reader.resume([TP(topic, 1)])
    got = poll_until([reader], lambda got: len(got) >= 4)
    assert [m.offset() for m in got] == [0, 1, 2, 3]
    reader.seek(TP(topic, 1), 1)
    got = poll_until([reader], lambda got: len(got) >= 3)
    assert [m.offset() for m in got] == [1, 2, 3]
    assert reader.committed([TP(topic, 0)], 10) == {TP(topic, 0): None}


def test_seek_from_on_assign_sets_the_start(backend: Backend) -> None:
    topic = backend.create(1)
    produce(backend, topic, [(None, b"%d" % i) for i in range(5)])
    consumer = backend.consumer(backend.group())

    def on_assign(parts: list[TopicPartition]) -> None:
        for tp in parts:
            consumer.seek(tp, 3)

    consumer.subscribe([topic], on_assign, lambda parts: None, lambda parts: None)
    got = poll_until([consumer], lambda got: len(got) >= 2)
    assert [m.offset() for m in got] == [3, 4]


def test_missing_topics_are_clear_errors(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_module, "METADATA_WAIT_S", 0.5)
    missing = backend.topic("missing")
    with pytest.raises(UnknownTopicOrPartitionError, match="missing"):
        backend.consumer(backend.group()).subscribe([missing], print, print, print)
    topic = backend.create(2)
    with pytest.raises(UnknownTopicOrPartitionError, match="partition 7"):
        backend.consumer(None).assign([(TP(topic, 7), 0)])


# -- the real adapter only ------------------------------------------------------------------

def test_cooperative_sticky_callbacks_get_only_the_delta(kafka: KafkaTestBroker,
                                                         unique_topic: Callable[[str], str]
                                                         ) -> None:
    backend = Backend("kafka", KafkaClients(kafka.bootstrap_servers), unique_topic)
    try:
        topic = backend.create(4)
        group = backend.group()
        coop = {"partition.assignment.strategy": "cooperative-sticky"}
        t1, t2 = Tracker(), Tracker()
        c1 = backend.consumer(group, **coop)
        t1.subscribe(c1, [topic])
        poll_until([c1], lambda _: len(t1.owned) == 4)
        c2 = backend.consumer(group, **coop)
        t2.subscribe(c2, [topic])
        poll_until([c1, c2], lambda _: len(t1.owned) == 2 and len(t2.owned) == 2)
        revokes = [parts for kind, parts in t1.events if kind == "revoke"]
        assert revokes and all(len(parts) == 2 for parts in revokes)  # never all four
        assert not t1.owned & t2.owned
        produce(backend, topic, [(b"k%d" % i, b"v") for i in range(40)])
        got = poll_until([c1, c2], lambda got: len(got) >= 40)
        assert len({(m.partition(), m.offset()) for m in got}) == 40
    finally:
        for c in backend.consumers:
            c.close()


def test_flush_raises_delivery_error_naming_topic_and_partition(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str]) -> None:
    clients = KafkaClients(kafka.bootstrap_servers)
    topic = unique_topic("t")
    clients.admin().create_topics([TopicSpec(topic, 1)])
    producer = clients.producer({"message.timeout.ms": 5000})
    producer.produce(topic, b"k", b"v", 0)
    producer.flush(30)
    with pytest.raises(DeliveryError, match=rf"{topic}.*partition 5"):
        producer.produce(topic, b"k", b"v", 0, partition=5)
        producer.flush(30)


def test_auto_commit_cannot_be_turned_on() -> None:
    clients = KafkaClients("127.0.0.1:1")
    with pytest.raises(ConfigError, match=r"enable\.auto\.commit"):
        clients.consumer("g", {"enable.auto.commit": True})
