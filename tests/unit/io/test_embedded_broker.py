"""The embedded broker: partitioning, logs, groups and rebalancing, free readers, persistence."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fluvial.errors import ConfigError, FluvialError
from fluvial.io.client import (
    CommitFailedError,
    Message,
    TopicPartition,
    TopicSpec,
    UnknownTopicOrPartitionError,
)
from fluvial.io.embedded import (
    OFFSET_BEGINNING,
    OFFSET_END,
    EmbeddedBroker,
    EmbeddedClients,
    EmbeddedConsumer,
    murmur2,
    partition_for_key,
    range_assign,
)

TP = TopicPartition


def make(topics: dict[str, int], data_dir: Path | None = None) -> EmbeddedClients:
    clients = EmbeddedClients(EmbeddedBroker(data_dir=data_dir))
    clients.admin().create_topics([TopicSpec(t, n) for t, n in topics.items()])
    return clients


def drain(consumer: EmbeddedConsumer, max_records: int = 1000) -> list[Message]:
    out: list[Message] = []
    while batch := consumer.poll_batch(max_records, 0):
        out += batch
    return out


class Owners:
    """Records who owns what through the rebalance callbacks; fails on a double owner."""

    def __init__(self) -> None:
        self.owner: dict[TopicPartition, str] = {}
        self.events: list[tuple[str, str, list[TopicPartition]]] = []

    def subscribe(self, consumer: EmbeddedConsumer, name: str, topics: list[str]) -> None:
        def on_assign(parts: list[TopicPartition]) -> None:
            self.events.append((name, "assign", parts))
            for tp in parts:
                assert tp not in self.owner, f"{tp} given to {name}, still owned by {self.owner}"
                self.owner[tp] = name

        def on_revoke(parts: list[TopicPartition]) -> None:
            self.events.append((name, "revoke", parts))
            for tp in parts:
                assert self.owner.pop(tp) == name

        def on_lost(parts: list[TopicPartition]) -> None:
            self.events.append((name, "lost", parts))
            for tp in parts:
                if self.owner.get(tp) == name:
                    del self.owner[tp]

        consumer.subscribe(topics, on_assign, on_revoke, on_lost)

    def of(self, name: str) -> list[TopicPartition]:
        return sorted(tp for tp, n in self.owner.items() if n == name)


def settle(consumers: list[EmbeddedConsumer], rounds: int = 5) -> list[Message]:
    """Poll every member in turn (no waiting) so a rebalance completes."""
    out: list[Message] = []
    for _ in range(rounds):
        for c in consumers:
            out += c.poll_batch(1000, 0)
    return out


# -- partitioning ---------------------------------------------------------------------------

# Apache Kafka's UtilsTest.testMurmur2 (the Java client's reference values).
KAFKA_MURMUR2_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
    (b"", 275646681),
]


@pytest.mark.parametrize(("data", "expected"), KAFKA_MURMUR2_VECTORS)
def test_murmur2_matches_kafka_java(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_partition_for_key_is_to_positive_modulo() -> None:
    # toPositive(-790332482) = 1357151166; 1357151166 % 50 = 16
    assert partition_for_key(b"foobar", 50) == 16
    assert partition_for_key(b"21", 7) == (-973932308 & 0x7FFFFFFF) % 7


def test_keyed_records_land_on_the_java_partition() -> None:
    clients = make({"t": 12})
    producer = clients.producer({})
    keys = [f"key-{i}".encode() for i in range(200)]
    for k in keys:
        producer.produce("t", k, b"v", 1)
    placed = {m.key(): m.partition() for m in clients.broker.records("t")}
    assert placed == {k: partition_for_key(k, 12) for k in keys}
    assert len(set(placed.values())) == 12


def test_null_keys_spread_round_robin() -> None:
    clients = make({"t": 3})
    producer = clients.producer({})
    for _ in range(9):
        producer.produce("t", None, b"v", 1)
    assert [len(clients.broker.records("t", p)) for p in range(3)] == [3, 3, 3]


def test_explicit_partition_wins_over_key() -> None:
    clients = make({"t": 3})
    clients.producer({}).produce("t", b"foobar", b"v", 1, partition=2)
    assert clients.broker.records("t", 2)[0].key() == b"foobar"


# -- produce and read -----------------------------------------------------------------------

def test_messages_have_confluent_shape_and_offsets() -> None:
    clients = make({"t": 1})
    producer = clients.producer({})
    producer.produce("t", b"k", b"v1", 1000, headers=[("h", b"x"), ("n", None)])
    producer.produce("t", None, None, 2000)
    producer.flush(1)
    consumer = clients.consumer(None, {})
    consumer.assign([(TP("t", 0), 0)])
    first, second = consumer.poll_batch(10, 0)
    assert (first.topic(), first.partition(), first.offset()) == ("t", 0, 0)
    assert (first.key(), first.value(), first.timestamp()) == (b"k", b"v1", (1, 1000))
    assert first.headers() == [("h", b"x"), ("n", None)]
    assert first.error() is None
    assert (second.offset(), second.key(), second.value(), second.headers()) == (1, None, None,
                                                                                  None)


def test_timestamp_zero_means_now_and_str_is_encoded() -> None:
    clients = make({"t": 1})
    before = time.time_ns() // 1_000_000
    producer: Any = clients.producer({})  # str is accepted as confluent-kafka accepts it
    producer.produce("t", "k", "v", 0)
    msg = clients.broker.records("t", 0)[0]
    assert msg.timestamp()[1] >= before
    assert (msg.key(), msg.value()) == (b"k", b"v")


def test_poll_is_fair_across_partitions_and_ordered_within() -> None:
    clients = make({"t": 3})
    producer = clients.producer({})
    for p in range(3):
        for i in range(100):
            producer.produce("t", None, f"{p}-{i}".encode(), 1, partition=p)
    consumer = clients.consumer(None, {})
    consumer.assign([(TP("t", p), 0) for p in range(3)])
    batch = consumer.poll_batch(30, 0)
    counts = {p: sum(1 for m in batch if m.partition() == p) for p in range(3)}
    assert counts == {0: 10, 1: 10, 2: 10}
    rest = drain(consumer, 7)
    for p in range(3):
        offsets = [m.offset() for m in batch + rest if m.partition() == p]
        assert offsets == list(range(100))


def test_small_batches_rotate_so_no_partition_starves() -> None:
    clients = make({"t": 4})
    producer = clients.producer({})
    for p in range(4):
        for _ in range(10):
            producer.produce("t", None, b"v", 1, partition=p)
    consumer = clients.consumer(None, {})
    consumer.assign([(TP("t", p), 0) for p in range(4)])
    seen = {consumer.poll_batch(1, 0)[0].partition() for _ in range(4)}
    assert seen == {0, 1, 2, 3}


def test_large_batch_is_a_slice() -> None:
    clients = make({"t": 1})
    producer = clients.producer({})
    for i in range(25_000):
        producer.produce("t", None, b"%d" % i, 1)
    consumer = clients.consumer(None, {})
    consumer.assign([(TP("t", 0), 0)])
    batch = consumer.poll_batch(10_000, 0)
    assert len(batch) == 10_000 and batch[-1].offset() == 9_999
    assert batch[0] is clients.broker.records("t", 0)[0]  # shared, not copied
    assert len(drain(consumer, 10_000)) == 15_000


# -- errors ---------------------------------------------------------------------------------

def test_unknown_topic_is_a_clear_error_everywhere() -> None:
    clients = make({"t": 2})
    with pytest.raises(UnknownTopicOrPartitionError, match="'nope' does not exist"):
        clients.producer({}).produce("nope", b"k", b"v", 1)
    with pytest.raises(UnknownTopicOrPartitionError, match="'nope'"):
        clients.consumer("g", {}).subscribe(["t", "nope"], print, print, print)
    with pytest.raises(UnknownTopicOrPartitionError):
        clients.consumer(None, {}).assign([(TP("nope", 0), 0)])
    with pytest.raises(UnknownTopicOrPartitionError):
        clients.consumer(None, {}).watermarks(TP("nope", 0), 1)


def test_bad_partition_is_a_clear_error() -> None:
    clients = make({"t": 2})
    with pytest.raises(UnknownTopicOrPartitionError, match=r"2 partition.*partition 5"):
        clients.producer({}).produce("t", b"k", b"v", 1, partition=5)
    with pytest.raises(UnknownTopicOrPartitionError, match="partition 2 does not exist"):
        clients.consumer(None, {}).assign([(TP("t", 2), 0)])
    with pytest.raises(UnknownTopicOrPartitionError):
        clients.consumer("g", {}).commit({TP("t", -1): 0})


def test_malformed_inputs() -> None:
    clients = make({"t": 1})
    producer: Any = clients.producer({})
    with pytest.raises(TypeError, match="value must be bytes"):
        producer.produce("t", b"k", 42, 1)
    with pytest.raises(ValueError, match="timestamp"):
        producer.produce("t", b"k", b"v", -5)
    with pytest.raises(ConfigError, match="illegal topic name"):
        clients.admin().create_topics([TopicSpec("no/slash", 1)])
    with pytest.raises(ConfigError, match="partitions must be >= 1"):
        clients.admin().create_topics([TopicSpec("zero", 0)])
    with pytest.raises(ConfigError, match=r"auto\.offset\.reset"):
        clients.consumer("g", {"auto.offset.reset": "sometimes"})
    with pytest.raises(ConfigError, match="group id"):
        clients.consumer(None, {}).subscribe(["t"], print, print, print)
    with pytest.raises(ConfigError, match="group id"):
        clients.consumer(None, {}).commit({TP("t", 0): 1})
    with pytest.raises(ValueError, match="offset"):
        clients.consumer("g", {}).commit({TP("t", 0): -3})
    reader = clients.consumer(None, {})
    with pytest.raises(FluvialError, match="not assigned"):
        reader.seek(TP("t", 0), 0)
    reader.close()
    with pytest.raises(FluvialError, match="closed"):
        reader.poll_batch(1, 0)


# -- admin ----------------------------------------------------------------------------------

def test_admin_is_idempotent_and_keeps_existing_topics() -> None:
    clients = make({"t": 2})
    admin = clients.admin()
    admin.create_topics([TopicSpec("t", 5), TopicSpec("c", -1, config={"cleanup.policy":
                                                                        "compact"})])
    assert admin.partition_counts(["t", "c", "missing"]) == {"t": 2, "c": 1}
    assert clients.broker.topic_config("c") == {"cleanup.policy": "compact"}
    admin.delete_topics(["c", "missing"])
    assert admin.partition_counts(["c"]) == {}


def test_delete_topic_drops_records_and_offsets() -> None:
    clients = make({"t": 1})
    clients.producer({}).produce("t", b"k", b"v", 1)
    consumer = clients.consumer("g", {})
    consumer.commit({TP("t", 0): 1})
    clients.admin().delete_topics(["t"])
    clients.admin().create_topics([TopicSpec("t", 1)])
    assert consumer.watermarks(TP("t", 0), 1) == (0, 0)
    assert consumer.committed([TP("t", 0)], 1) == {TP("t", 0): None}


# -- groups ---------------------------------------------------------------------------------

def test_range_assign_matches_kafka_range_assignor() -> None:
    subs = {"m1": frozenset({"a", "b"}), "m2": frozenset({"a", "b"}), "m3": frozenset({"a"})}
    got = range_assign(subs, {"a": 7, "b": 4})
    assert got == {
        "m1": [TP("a", 0), TP("a", 1), TP("a", 2), TP("b", 0), TP("b", 1)],
        "m2": [TP("a", 3), TP("a", 4), TP("b", 2), TP("b", 3)],
        "m3": [TP("a", 5), TP("a", 6)],
    }


def test_single_member_gets_everything_from_earliest() -> None:
    clients = make({"t": 3})
    producer = clients.producer({})
    for i in range(6):
        producer.produce("t", None, b"%d" % i, 1)
    owners = Owners()
    consumer = clients.consumer("g", {})
    owners.subscribe(consumer, "a", ["t"])
    assert len(drain(consumer)) == 6
    assert owners.of("a") == [TP("t", 0), TP("t", 1), TP("t", 2)]
    assert consumer.position(TP("t", 0)) == 2


def test_auto_offset_reset_latest() -> None:
    clients = make({"t": 1})
    producer = clients.producer({})
    producer.produce("t", None, b"old", 1)
    consumer = clients.consumer("g", {"auto.offset.reset": "latest"})
    consumer.subscribe(["t"], print, print, print)
    assert consumer.poll_batch(10, 0) == []
    producer.produce("t", None, b"new", 1)
    assert [m.value() for m in consumer.poll_batch(10, 0)] == [b"new"]


def test_eager_rebalance_revokes_all_before_anyone_is_assigned() -> None:
    clients = make({"t": 4})
    owners = Owners()
    c1, c2, c3 = (clients.consumer("g", {}) for _ in range(3))
    owners.subscribe(c1, "c1", ["t"])
    settle([c1])
    assert owners.of("c1") == [TP("t", p) for p in range(4)]

    owners.subscribe(c2, "c2", ["t"])
    # c2 cannot get partitions while c1 still owns them
    assert c2.poll_batch(10, 0) == [] and owners.of("c2") == []
    settle([c2, c1])
    assert owners.of("c1") == [TP("t", 0), TP("t", 1)]
    assert owners.of("c2") == [TP("t", 2), TP("t", 3)]
    assert ("c1", "revoke", [TP("t", p) for p in range(4)]) in owners.events

    owners.subscribe(c3, "c3", ["t"])
    settle([c3, c2, c1])
    assert [len(owners.of(n)) for n in ("c1", "c2", "c3")] == [2, 1, 1]
    assert sorted(owners.owner) == [TP("t", p) for p in range(4)]  # none lost

    c2.close()  # revokes its partition, the others rebalance at their next poll
    settle([c1, c3])
    assert owners.of("c1") == [TP("t", 0), TP("t", 1)]
    assert owners.of("c3") == [TP("t", 2), TP("t", 3)]


def test_co_partitioned_topics_land_on_the_same_member() -> None:
    clients = make({"left": 5, "right": 5})
    owners = Owners()
    members = [clients.consumer("g", {}) for _ in range(3)]
    for i, c in enumerate(members):
        owners.subscribe(c, f"m{i}", ["left", "right"])
    settle(members)
    for i in range(3):
        mine = owners.of(f"m{i}")
        left = {tp.partition for tp in mine if tp.topic == "left"}
        right = {tp.partition for tp in mine if tp.topic == "right"}
        assert left == right and left


def test_committed_offsets_are_honoured_after_a_member_leaves() -> None:
    clients = make({"t": 2})
    producer = clients.producer({})
    for i in range(10):
        producer.produce("t", None, b"%d" % i, 1, partition=i % 2)
    owners = Owners()
    c1, c2 = clients.consumer("g", {}), clients.consumer("g", {})
    owners.subscribe(c1, "c1", ["t"])
    owners.subscribe(c2, "c2", ["t"])
    settle([c1, c2], rounds=1)
    assert owners.of("c1") == [TP("t", 0)] and owners.of("c2") == [TP("t", 1)]
    c2_partition = TP("t", 1)
    # c2 had read everything but commits only up to offset 3, then leaves
    c2.commit({c2_partition: 3})
    c2.close()
    got = settle([c1])
    assert sorted(m.offset() for m in got if m.partition() == 1) == [3, 4]
    assert c1.committed([c2_partition], 1) == {c2_partition: 3}


def test_revoke_callback_may_commit_without_deadlock() -> None:
    clients = make({"t": 2})
    clients.producer({}).produce("t", None, b"v", 1, partition=1)
    c1, c2 = clients.consumer("g", {}), clients.consumer("g", {})

    def commit_positions(parts: list[TopicPartition]) -> None:
        c1.commit({tp: c1.position(tp) or 0 for tp in parts})

    c1.subscribe(["t"], print, commit_positions, print)
    assert len(c1.poll_batch(10, 0)) == 1
    c2.subscribe(["t"], print, print, print)
    settle([c1, c2])
    assert c1.committed([TP("t", 1)], 1) == {TP("t", 1): 1}
    assert c2.poll_batch(10, 0) == []  # c2 starts at c1's committed offset


def test_resubscribe_changes_the_assignment() -> None:
    clients = make({"a": 1, "b": 1})
    owners = Owners()
    consumer = clients.consumer("g", {})
    owners.subscribe(consumer, "c", ["a"])
    settle([consumer])
    owners.subscribe(consumer, "c", ["a", "b"])
    settle([consumer])
    assert owners.of("c") == [TP("a", 0), TP("b", 0)]


def test_deleting_a_subscribed_topic_rebalances() -> None:
    clients = make({"a": 1, "b": 1})
    owners = Owners()
    consumer = clients.consumer("g", {})
    owners.subscribe(consumer, "c", ["a", "b"])
    settle([consumer])
    clients.admin().delete_topics(["b"])
    settle([consumer])
    assert owners.of("c") == [TP("a", 0)]


@pytest.mark.parametrize("seed", range(20))
def test_random_joins_and_leaves_never_double_own_or_lose(seed: int) -> None:
    import random

    rng = random.Random(seed)
    clients = make({"a": 5, "b": 5})
    owners = Owners()
    live: dict[str, EmbeddedConsumer] = {}
    for step in range(30):
        action = rng.random()
        if action < 0.3 or not live:
            name = f"c{step}"
            live[name] = clients.consumer("g", {})
            owners.subscribe(live[name], name, ["a", "b"])
        elif action < 0.5:
            live.pop(rng.choice(sorted(live))).close()
        for _ in range(rng.randrange(3) if live else 0):  # some members poll, randomly
            live[rng.choice(sorted(live))].poll_batch(10, 0)
        assert set(owners.owner.values()) <= set(live)
    if not live:
        live["last"] = clients.consumer("g", {})
        owners.subscribe(live["last"], "last", ["a", "b"])
    settle(list(live.values()))
    assert sorted(owners.owner) == sorted(TP(t, p) for t in "ab" for p in range(5))
    for name in live:  # co-partitioned: same partition numbers of a and b
        mine = owners.of(name)
        assert {tp.partition for tp in mine if tp.topic == "a"} == {
            tp.partition for tp in mine if tp.topic == "b"}


def test_member_that_stops_polling_is_evicted() -> None:
    clients = make({"t": 2})
    owners = Owners()
    slow = clients.consumer("g", {"max.poll.interval.ms": 1})
    owners.subscribe(slow, "slow", ["t"])
    settle([slow])
    fast = clients.consumer("g", {})
    owners.subscribe(fast, "fast", ["t"])
    # slow never polls again within 1 ms: fast's poll evicts it and takes everything
    deadline = time.monotonic() + 5
    while len([tp for tp, n in owners.owner.items() if n == "fast"]) < 2:
        assert time.monotonic() < deadline
        owners.owner = {tp: n for tp, n in owners.owner.items() if n != "slow"}  # zombie
        fast.poll_batch(10, 0.01)
    with pytest.raises(CommitFailedError, match="evicted"):
        slow.commit({TP("t", 0): 0})
    slow.poll_batch(10, 0)  # learns it lost its partitions, rejoins
    assert ("slow", "lost", [TP("t", 0), TP("t", 1)]) in owners.events


def test_close_revokes_owned_partitions() -> None:
    clients = make({"t": 2})
    owners = Owners()
    consumer = clients.consumer("g", {})
    owners.subscribe(consumer, "c", ["t"])
    settle([consumer])
    consumer.close()
    consumer.close()  # idempotent
    assert owners.owner == {}
    assert owners.events[-1] == ("c", "revoke", [TP("t", 0), TP("t", 1)])


def test_group_members_in_threads_share_the_work() -> None:
    clients = make({"t": 4})
    total = 400
    producer = clients.producer({})
    for i in range(total):
        producer.produce("t", b"%d" % i, b"v", 1)
    owners = Owners()
    lock = threading.Lock()
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def member(name: str) -> None:
        consumer = clients.consumer("g", {})
        with lock:
            owners.subscribe(consumer, name, ["t"])
        while not stop.is_set():
            batch = consumer.poll_batch(7, 0.05)
            with lock:
                seen.extend((m.partition(), m.offset()) for m in batch)
                if len(seen) >= total:
                    stop.set()
            if batch:
                consumer.commit({TP("t", m.partition()): m.offset() + 1 for m in batch})
        consumer.close()

    threads = [threading.Thread(target=member, args=(f"m{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert len(set(seen)) == total  # every record read; duplicates only after a rebalance


# -- free readers ---------------------------------------------------------------------------

def test_assign_reads_from_given_offsets_outside_any_group() -> None:
    clients = make({"changelog": 2})
    producer = clients.producer({})
    for i in range(10):
        producer.produce("changelog", None, b"%d" % i, 1, partition=i % 2)
    reader = clients.consumer(None, {})
    reader.assign([(TP("changelog", 0), 3), (TP("changelog", 1), OFFSET_END)])
    assert [m.offset() for m in drain(reader)] == [3, 4]
    assert reader.position(TP("changelog", 1)) == 5
    reader.seek(TP("changelog", 1), OFFSET_BEGINNING)
    assert len(drain(reader)) == 5
    reader.seek(TP("changelog", 0), 4)
    assert [m.offset() for m in drain(reader)] == [4]
    assert reader.committed([TP("changelog", 0)], 1) == {TP("changelog", 0): None}
    reader.assign([])
    assert reader.position(TP("changelog", 0)) is None


def test_assign_and_subscribe_do_not_mix() -> None:
    clients = make({"t": 1})
    reader = clients.consumer("g", {})
    reader.assign([(TP("t", 0), 0)])
    with pytest.raises(FluvialError, match="assign"):
        reader.subscribe(["t"], print, print, print)


def test_watermarks() -> None:
    clients = make({"t": 2})
    producer = clients.producer({})
    for _ in range(3):
        producer.produce("t", None, b"v", 1, partition=1)
    consumer = clients.consumer(None, {})
    assert consumer.watermarks(TP("t", 0), 1) == (0, 0)
    assert consumer.watermarks(TP("t", 1), 1) == (0, 3)


def test_pause_and_resume() -> None:
    clients = make({"t": 2})
    producer = clients.producer({})
    producer.produce("t", None, b"a", 1, partition=0)
    producer.produce("t", None, b"b", 1, partition=1)
    consumer = clients.consumer(None, {})
    consumer.assign([(TP("t", 0), 0), (TP("t", 1), 0)])
    consumer.pause([TP("t", 0)])
    assert [m.value() for m in drain(consumer)] == [b"b"]
    consumer.resume([TP("t", 0)])
    assert [m.value() for m in drain(consumer)] == [b"a"]


def test_committed_offsets_per_group() -> None:
    clients = make({"t": 1})
    a, b = clients.consumer("ga", {}), clients.consumer("gb", {})
    a.commit({TP("t", 0): 0})
    assert a.committed([TP("t", 0)], 1) == {TP("t", 0): 0}
    assert b.committed([TP("t", 0)], 1) == {TP("t", 0): None}


# -- waiting --------------------------------------------------------------------------------

class _SignallingCondition(threading.Condition):
    """Tells the test when a poll has really started waiting."""

    def __init__(self, lock: Any, entered: threading.Event) -> None:
        super().__init__(lock)
        self.entered = entered

    def wait(self, timeout: float | None = None) -> bool:
        self.entered.set()
        return super().wait(timeout)


def test_produce_wakes_a_waiting_poll_in_another_thread() -> None:
    clients = make({"t": 1})
    broker = clients.broker
    entered = threading.Event()
    broker._cond = _SignallingCondition(broker._lock, entered)
    consumer = clients.consumer(None, {})
    consumer.assign([(TP("t", 0), 0)])
    result: list[Message] = []
    waited: list[float] = []

    def poll() -> None:
        start = time.monotonic()
        result.extend(consumer.poll_batch(10, 30.0))
        waited.append(time.monotonic() - start)

    thread = threading.Thread(target=poll)
    thread.start()
    assert entered.wait(10), "poll never waited"
    clients.producer({}).produce("t", b"k", b"v", 1)
    thread.join(10)
    assert not thread.is_alive()
    assert [m.value() for m in result] == [b"v"]
    assert waited[0] < 10  # woken by the produce, not by its 30 s timeout


def test_poll_times_out_empty() -> None:
    clients = make({"t": 1})
    consumer = clients.consumer(None, {})
    consumer.assign([(TP("t", 0), 0)])
    start = time.monotonic()
    assert consumer.poll_batch(10, 0.05) == []
    assert time.monotonic() - start >= 0.04


# -- persistence ----------------------------------------------------------------------------

def test_topics_records_and_offsets_survive_a_restart(tmp_path: Path) -> None:
    clients = make({"t": 2, "gone": 1}, data_dir=tmp_path)
    producer = clients.producer({})
    producer.produce("t", b"k", b"v", 111, headers=[("h", b"1"), ("e", None)], partition=0)
    producer.produce("t", None, None, 222, partition=1)
    producer.produce("t", b"", b"", 333, headers=[], partition=1)
    clients.consumer("g", {}).commit({TP("t", 1): 2})
    clients.admin().delete_topics(["gone"])
    clients.broker.close()

    reopened = EmbeddedClients(EmbeddedBroker(data_dir=tmp_path))
    assert reopened.admin().partition_counts(["t", "gone"]) == {"t": 2}
    got = [(m.partition(), m.offset(), m.key(), m.value(), m.timestamp(), m.headers())
           for m in reopened.broker.records("t")]
    assert got == [(0, 0, b"k", b"v", (1, 111), [("h", b"1"), ("e", None)]),
                   (1, 0, None, None, (1, 222), None),
                   (1, 1, b"", b"", (1, 333), None)]
    consumer = reopened.consumer("g", {})
    assert consumer.committed([TP("t", 1)], 1) == {TP("t", 1): 2}
    reopened.producer({}).produce("t", None, b"after", 444, partition=0)
    reopened.broker.close()
    again = EmbeddedBroker(data_dir=tmp_path)
    assert [m.offset() for m in again.records("t", 0)] == [0, 1]


def test_a_torn_tail_is_cut_and_earlier_records_kept(tmp_path: Path) -> None:
    clients = make({"t": 1}, data_dir=tmp_path)
    for i in range(3):
        clients.producer({}).produce("t", None, b"%d" % i, 1)
    clients.broker.close()
    log = tmp_path / "topics" / "t" / "0.log"
    intact = log.read_bytes()
    log.write_bytes(intact + intact[:7])  # half a frame, as a crash mid-write leaves
    broker = EmbeddedBroker(data_dir=tmp_path)
    assert [m.value() for m in broker.records("t", 0)] == [b"0", b"1", b"2"]
    assert log.read_bytes() == intact
    broker.append("t", None, b"3")
    broker.close()
    assert [m.offset() for m in EmbeddedBroker(data_dir=tmp_path).records("t", 0)] == [0, 1, 2, 3]


def test_a_corrupt_frame_ends_the_log(tmp_path: Path) -> None:
    broker = EmbeddedBroker(data_dir=tmp_path)
    broker.create_topic("t", 1)
    broker.append("t", None, b"first", 1)
    broker.append("t", None, b"second", 1)
    broker.close()
    log = tmp_path / "topics" / "t" / "0.log"
    data = bytearray(log.read_bytes())
    data[-1] ^= 0xFF  # flip a bit in the last record's body: its CRC no longer matches
    log.write_bytes(bytes(data))
    assert [m.value() for m in EmbeddedBroker(data_dir=tmp_path).records("t", 0)] == [b"first"]
