"""Helpers for integration tests against a real Kafka broker.

Kept out of conftest.py so tests (and benchmarks) can import them directly:
``from tests.integration.kafka_helpers import KafkaTestBroker, wait_until``.

Every wait here polls a condition with a deadline; nothing sleeps a fixed time to
"let Kafka settle", because that is both slow and flaky.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from tools.kafka_cluster import KafkaCluster

T = TypeVar("T")

Bytesish = bytes | str | None
# A record to produce: a value, or (key, value), or (key, value, headers).
RecordIn = Bytesish | tuple[Bytesish, Bytesish] | tuple[Bytesish, Bytesish, Mapping[str, bytes]]


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition not met",
) -> T:
    """Poll ``predicate`` until it returns a truthy value; return that value.

    Raises ``AssertionError`` (with ``message``) after ``timeout`` seconds. Exceptions
    from the predicate count as "not yet" but the last one is reported.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            msg = message() if callable(message) else message
            suffix = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout:.1f}s: {msg}{suffix}")
        time.sleep(interval)


def _b(x: Bytesish) -> bytes | None:
    if x is None or isinstance(x, bytes):
        return x
    return x.encode()


def _headers(raw: Any) -> list[tuple[str, bytes | None]]:
    """librdkafka returns headers as a list of (name, value) pairs, or None."""
    return [(k, _b(v)) for k, v in (raw or [])]


@dataclass(frozen=True)
class Consumed:
    """One consumed record, detached from librdkafka's Message."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp: int


@dataclass(frozen=True)
class Delivered:
    """Where a produced record landed."""

    partition: int
    offset: int


class KafkaTestBroker:
    """What the ``kafka`` / ``kafka_cluster`` fixtures hand to tests.

    ``cluster`` is the :class:`KafkaCluster` when this session started the broker
    itself (so tests can kill/restart nodes), or ``None`` for an external broker
    given by ``FLUVIAL_BOOTSTRAP``.
    """

    def __init__(self, bootstrap_servers: str, cluster: KafkaCluster | None = None) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.cluster = cluster
        self._admin: AdminClient | None = None

    @property
    def external(self) -> bool:
        return self.cluster is None

    # -- clients -----------------------------------------------------------------------

    def config(self, **extra: Any) -> dict[str, Any]:
        """Client config with the bootstrap servers; keyword names use '_' for '.'."""
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers}
        conf.update({k.replace("_", "."): v for k, v in extra.items()})
        return conf

    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        return self._admin

    def producer(self, config: Mapping[str, Any] | None = None) -> Producer:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
        }
        conf.update(config or {})
        return Producer(conf)

    def consumer(self, config: Mapping[str, Any] | None = None) -> Consumer:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": f"test-{uuid.uuid4().hex[:12]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
        conf.update(config or {})
        return Consumer(conf)

    # -- topics ------------------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        replication: int = 1,
        config: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> str:
        """Create a topic and wait until every partition has a leader; return its name."""
        topic = NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=replication,
            config=dict(config or {}),
        )
        futures = self.admin().create_topics([topic], operation_timeout=timeout)
        futures[name].result(timeout=timeout)
        self.wait_for_leaders(name, partitions, timeout=timeout)
        return name

    def delete_topic(self, name: str, timeout: float = 30.0) -> None:
        self.admin().delete_topics([name], operation_timeout=timeout)[name].result(timeout)

    def topic_partitions(self, name: str, timeout: float = 10.0) -> dict[int, Any]:
        """partition id -> PartitionMetadata (leader, replicas, isrs) of a topic."""
        md = self.admin().list_topics(topic=name, timeout=timeout)
        tmd = md.topics.get(name)
        if tmd is None or tmd.error is not None:
            raise KafkaException(tmd.error if tmd is not None else KafkaError.UNKNOWN_TOPIC_OR_PART)
        return dict(tmd.partitions)

    def wait_for_leaders(self, name: str, partitions: int, timeout: float = 30.0) -> None:
        def ready() -> bool:
            parts = self.topic_partitions(name)
            return len(parts) == partitions and all(p.leader >= 0 for p in parts.values())

        wait_until(ready, timeout, message=f"topic {name!r} has no leader for every partition")

    def leader_of(self, name: str, partition: int = 0) -> int:
        return int(self.topic_partitions(name)[partition].leader)

    def wait_for_isr(
        self, name: str, expected: Iterable[int], timeout: float = 60.0
    ) -> dict[int, Any]:
        """Wait until every partition's in-sync replica set equals ``expected``."""
        want = sorted(expected)

        def done() -> dict[int, Any] | None:
            parts = self.topic_partitions(name)
            ok = parts and all(sorted(p.isrs) == want for p in parts.values())
            return parts if ok else None

        return wait_until(
            done,
            timeout,
            interval=0.2,
            message=lambda: (
                f"ISR of {name!r} never became {want}: "
                f"{ {i: p.isrs for i, p in self.topic_partitions(name).items()} }"
            ),
        )

    # -- records -----------------------------------------------------------------------

    def produce(
        self,
        topic: str,
        records: Iterable[RecordIn],
        partition: int | None = None,
        config: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> list[Delivered]:
        """Produce records (acks=all, idempotent by default) and wait for every ack.

        Raises ``KafkaException`` on the first delivery error.
        """
        producer = self.producer(config)
        delivered: list[Delivered] = []
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                errors.append(err)
            else:
                delivered.append(Delivered(msg.partition(), msg.offset()))

        count = 0
        for rec in records:
            headers: Mapping[str, bytes] | None = None
            if isinstance(rec, tuple):
                key, value = rec[0], rec[1]
                if len(rec) == 3:
                    headers = rec[2]
            else:
                key, value = None, rec
            kwargs: dict[str, Any] = {
                "key": _b(key),
                "value": _b(value),
                "on_delivery": on_delivery,
            }
            if partition is not None:
                kwargs["partition"] = partition
            if headers:
                kwargs["headers"] = list(headers.items())
            while True:
                try:
                    producer.produce(topic, **kwargs)
                    break
                except BufferError:
                    producer.poll(0.1)  # local queue full: serve callbacks, then retry
            count += 1
            producer.poll(0)
        remaining = producer.flush(timeout)
        if errors:
            raise KafkaException(errors[0])
        if remaining or len(delivered) != count:
            raise AssertionError(
                f"only {len(delivered)} of {count} records acknowledged within {timeout}s"
            )
        return delivered

    def consume_all(
        self,
        topic: str,
        expected_count: int,
        timeout: float = 30.0,
        partitions: Sequence[int] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> list[Consumed]:
        """Read ``topic`` from the beginning until ``expected_count`` records arrived.

        Uses manual assignment (no group join, so no rebalance wait) and
        read_committed isolation. Fails if the count is not reached within
        ``timeout``. Returns as soon as the count is reached, so it can return more
        than ``expected_count`` (records of the last batch); tests that must see
        exactly N records assert ``len(...) == N``.
        """
        consumer = self.consumer({"isolation.level": "read_committed", **(config or {})})
        try:
            if partitions is None:
                partitions = sorted(self.topic_partitions(topic))
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
            out: list[Consumed] = []
            deadline = time.monotonic() + timeout
            while len(out) < expected_count and time.monotonic() < deadline:
                for msg in consumer.consume(num_messages=500, timeout=0.2):
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            continue
                        raise KafkaException(err)
                    out.append(
                        Consumed(
                            topic=msg.topic() or topic,
                            partition=msg.partition() or 0,
                            offset=msg.offset() or 0,
                            key=msg.key(),
                            value=msg.value(),
                            headers=tuple(_headers(msg.headers())),
                            timestamp=msg.timestamp()[1],
                        )
                    )
            if len(out) < expected_count:
                raise AssertionError(
                    f"read {len(out)} of {expected_count} records from {topic!r} in {timeout}s"
                )
            return out
        finally:
            consumer.close()

    def counts_reaching(self, topic: str, expected: Mapping[T, int],
                        key: Callable[[bytes], T], timeout: float = 60.0) -> dict[T, int]:
        """The last count (a Kafka Long value) per key on ``topic``, read from the start
        until every key of ``expected`` has reached its count (more is allowed: at-least-once
        may count a record twice) or ``timeout``; ``key`` reads an output key."""
        consumer = self.consumer({"isolation.level": "read_committed"})
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                         for p in sorted(self.topic_partitions(topic))])
        latest: dict[T, int] = {}
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and any(latest.get(k, 0) < n
                                                      for k, n in expected.items()):
                for m in consumer.consume(num_messages=500, timeout=0.2):
                    k, value = m.key(), m.value()
                    if m.error() is None and k is not None and value is not None:
                        latest[key(k)] = int.from_bytes(value, "big", signed=True)
        finally:
            consumer.close()
        return latest

    def committed_offsets(self, group_id: str, topic: str, timeout: float = 10.0) -> dict[int, int]:
        """partition -> committed offset of a consumer group (-1001 if none)."""
        consumer = self.consumer({"group.id": group_id})
        try:
            parts = [TopicPartition(topic, p) for p in sorted(self.topic_partitions(topic))]
            return {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=timeout)}
        finally:
            consumer.close()

    def close(self) -> None:
        self._admin = None


def make_topic_name(prefix: str) -> str:
    """A legal, unique Kafka topic name that still says which test made it."""
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in prefix)[:180]
    return f"{safe}-{uuid.uuid4().hex[:10]}"
