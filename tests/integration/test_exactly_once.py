"""Exactly-once on a real broker: WordCount in 2 processes, one SIGKILLed while input flows.

The killed instance leaves a transaction open (outputs, repartition and changelog records, and
input offsets); the broker aborts it when it times out, and the survivor takes over from the
last commit. Every count on the output topic, read as committed, must then be exact: at
least once would count the killed instance's uncommitted lines twice (run with
``EOS_TEST_GUARANTEE=at_least_once`` to see it fail, whenever the kill lands on uncommitted work).
"""

from __future__ import annotations

import os
import signal
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from tests.integration.kafka_helpers import KafkaTestBroker, wait_until
from tests.integration.wordcount_support import Instance, make_lines, word_counts

from fluvial.io import client
from fluvial.io.kafka import KafkaClients


def committed_outputs(kafka: KafkaTestBroker, topic: str,
                      timeout: float = 30.0) -> dict[str, list[int]]:
    """Every count per word on ``topic``, read_committed, in offset order (to the end)."""
    consumer = kafka.consumer({"isolation.level": "read_committed",
                               "enable.partition.eof": False})
    try:
        parts = sorted(kafka.topic_partitions(topic))
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        # the last stable offset: what a read_committed reader can reach now
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in parts}
        out: dict[str, list[int]] = {}
        deadline = time.monotonic() + timeout
        while True:
            for m in consumer.consume(num_messages=1000, timeout=0.2):
                if m.error() is not None:
                    raise AssertionError(f"reading {topic}: {m.error()}")
                out.setdefault(m.key().decode(), []).append(struct.unpack(">q", m.value())[0])
            positions = {tp.partition: tp.offset for tp in consumer.position(
                [TopicPartition(topic, p) for p in parts])}
            if all(ends[p] == 0 or positions[p] >= ends[p] for p in parts):
                return out
            if time.monotonic() > deadline:
                raise AssertionError(f"read_committed reader stuck at {positions}, ends {ends} "
                                     "(an open transaction?)")
    finally:
        consumer.close()


def test_adapter_transactions_commit_abort_and_fence(kafka: KafkaTestBroker,
                                                    unique_topic: Callable[[str], str]) -> None:
    """The confluent adapter: committed records and offsets appear together, aborted ones
    never; a second producer with the same transactional.id fences the first."""
    source, sink, group = unique_topic("in"), unique_topic("out"), unique_topic("group")
    kafka.create_topic(source)
    kafka.create_topic(sink)
    kafka.produce(source, ["a", "b"])
    clients = KafkaClients(kafka.bootstrap_servers)
    consumer = clients.consumer(group, {})
    tp = client.TopicPartition(source, 0)
    consumer.assign([(tp, OFFSET_BEGINNING)])
    txn_id = unique_topic("txn")
    producer = clients.producer({"transactional.id": txn_id})
    try:
        producer.init_transactions(30)
        producer.begin_transaction()
        producer.produce(sink, b"k", b"aborted", 0)
        producer.send_offsets_to_transaction({tp: 1}, consumer.group_metadata(), 30)
        producer.abort_transaction(30)
        assert consumer.committed([tp], 10) == {tp: None}
        producer.begin_transaction()
        producer.produce(sink, b"k", b"committed", 0)
        producer.send_offsets_to_transaction({tp: 2}, consumer.group_metadata(), 30)
        producer.commit_transaction(30)
        assert consumer.committed([tp], 10) == {tp: 2}
        values = [m.value for m in kafka.consume_all(sink, 1)]
        assert values == [b"committed"]

        producer.begin_transaction()
        producer.produce(sink, b"k", b"zombie", 0)
        newer = clients.producer({"transactional.id": txn_id})
        newer.init_transactions(30)  # aborts the open transaction, fences the old producer
        with pytest.raises((client.ProducerFencedError, client.TransactionAbortableError)):
            producer.commit_transaction(30)
        newer.begin_transaction()
        newer.produce(sink, b"k", b"newer", 0)
        newer.commit_transaction(30)
        assert [m.value for m in kafka.consume_all(sink, 2)] == [b"committed", b"newer"]
    finally:
        consumer.close()


def test_committed_offset_waits_for_a_pending_transactional_commit(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str]) -> None:
    """Chaos finding 1: a task started input partition 4 at offset 0 although 44,343 was
    committed. While the previous owner's transaction (holding newer offsets) is open, the
    committed offset is unreadable: ``committed`` must wait, then raise, never answer "none";
    once the transaction resolves (here: aborted), it answers the last committed offset."""
    source, group = unique_topic("in"), unique_topic("group")
    kafka.create_topic(source)
    clients = KafkaClients(kafka.bootstrap_servers)
    member = clients.consumer(group, {})
    tp = client.TopicPartition(source, 0)
    member.assign([(tp, OFFSET_BEGINNING)])
    earlier = clients.producer({"transactional.id": unique_topic("txn-a")})
    dead = clients.producer({"transactional.id": unique_topic("txn-b")})
    try:
        assert member.committed([tp], 10) == {tp: None}  # truly nothing: the reset applies
        earlier.init_transactions(30)
        earlier.begin_transaction()
        earlier.send_offsets_to_transaction({tp: 5}, member.group_metadata(), 30)
        earlier.commit_transaction(30)
        dead.init_transactions(30)
        dead.begin_transaction()
        dead.send_offsets_to_transaction({tp: 9}, member.group_metadata(), 30)  # left open
        with pytest.raises(client.OffsetFetchError, match=r"\[0\]|partition"):
            member.committed([tp], 2.0)
        resolve = threading.Timer(1.0, lambda: dead.abort_transaction(30))
        resolve.start()
        assert member.committed([tp], 30.0) == {tp: 5}
        resolve.join(30)
    finally:
        member.close()


def test_wordcount_exactly_once_survives_sigkill(kafka: KafkaTestBroker,
                                                 unique_topic: Callable[[str], str],
                                                 tmp_path: Path,
                                                 instances: list[Instance]) -> None:
    source, sink, app_id = unique_topic("in"), unique_topic("out"), unique_topic("app")
    kafka.create_topic(source, partitions=4)
    kafka.create_topic(sink, partitions=4)
    guarantee = os.environ.get("EOS_TEST_GUARANTEE", "exactly_once")
    a = Instance("a", app_id, kafka.bootstrap_servers, source, sink, tmp_path, guarantee)
    instances.append(a)
    b = Instance("b", app_id, kafka.bootstrap_servers, source, sink, tmp_path, guarantee)
    instances.append(b)

    sent: list[str] = []

    def committed() -> int:
        return sum(o for o in kafka.committed_offsets(app_id, source).values() if o > 0)

    def logs() -> str:
        return f"--- a:\n{a.text()[-3000:]}\n--- b:\n{b.text()[-3000:]}"

    first = make_lines(0, 500)
    kafka.produce(source, first)
    sent.extend(first)
    wait_until(lambda: committed() == len(sent), timeout=90,
               message=lambda: f"first batch: committed {committed()} of {len(sent)}\n{logs()}")
    # both members must be working (b with tasks of its own) when b is killed
    wait_until(lambda: "tasks running" in a.text() and "tasks running" in b.text(),
               timeout=60, message=lambda: f"both instances own tasks\n{logs()}")

    # input keeps flowing while b dies: a producer thread paces batches, and goes on for
    # 1000 more lines after the kill
    killed = threading.Event()
    errors: list[BaseException] = []

    def keep_sending() -> None:
        try:
            n, until = len(first), 20_000
            while n < until:
                if killed.is_set() and until == 20_000:
                    until = n + 1000
                batch = make_lines(n, 25)
                kafka.produce(source, batch)
                sent.extend(batch)
                n += len(batch)
                time.sleep(0.01)  # pacing the input, not synchronisation
        except BaseException as exc:
            errors.append(exc)

    sender = threading.Thread(target=keep_sending, daemon=True)
    sender.start()
    try:
        mark = committed() + 1000
        wait_until(lambda: committed() >= mark, timeout=60,
                   message=lambda: f"flowing: committed {committed()} < {mark}\n{logs()}")
        assert b.proc.poll() is None, logs()
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait(30)
    finally:
        killed.set()
        sender.join(120)
    assert not errors, errors
    assert not sender.is_alive()

    expected = word_counts(sent)
    wait_until(lambda: committed() == len(sent), timeout=120,
               message=lambda: f"committed {committed()} of {len(sent)}\n{logs()}")
    assert a.proc.poll() is None, f"the survivor died\n{logs()}"

    def exact() -> bool:
        latest = {w: counts[-1] for w, counts in committed_outputs(kafka, sink).items()}
        return latest == expected

    wait_until(exact, timeout=60, interval=0.5, message=lambda: (
        f"latest committed count per word != input's word counts:\n"
        f"got      {({w: c[-1] for w, c in committed_outputs(kafka, sink).items()})}\n"
        f"expected {expected}\n{logs()}"))
    for word, counts in committed_outputs(kafka, sink).items():
        assert counts == sorted(set(counts)), f"{word}: repeated or decreasing counts {counts}"

    a.proc.send_signal(signal.SIGTERM)
    assert a.proc.wait(60) == 0, a.text()[-3000:]
