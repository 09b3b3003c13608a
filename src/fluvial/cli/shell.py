"""``fluvial produce`` / ``consume`` / ``create-topics``: text lines in and out of topics, on
the embedded broker of a data directory or on Kafka."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from fluvial.errors import ConfigError
from fluvial.io.client import Message, TopicPartition, TopicSpec
from fluvial.io.embedded.shared import SharedBroker, connect
from fluvial.io.serdes import resolve

_BATCH = 1000
_POLL_S = 0.5  # one wait for new records: the longest Ctrl-C waits in --follow
_KAFKA_MIN_WAIT_S = 1.0

# text on the command line -> the value the serde writes
_PARSE: dict[str, Callable[[str], Any]] = {
    "string": str, "json": json.loads, "int64": int, "float64": float, "bytes": str.encode,
}


class KafkaTopics:
    """``SharedBroker`` on a Kafka cluster: one producer, one free (group-less) reader."""

    def __init__(self, bootstrap_servers: str, kafka_config: dict[str, Any]) -> None:
        from fluvial.io.kafka import KafkaClients

        self._clients = KafkaClients(bootstrap_servers, kafka_config)
        self._producer: Any = None
        self._reader: Any = None
        self._buffered: dict[TopicPartition, list[Message]] = {}

    def create_topic(self, name: str, partitions: int = -1) -> bool:
        self._clients.admin().create_topics([TopicSpec(name, partitions)])
        return True

    def partition_counts(self, topics: Sequence[str]) -> dict[str, int]:
        return self._clients.admin().partition_counts(topics)

    def append(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int = 0,
               headers: Any = None, partition: int | None = None) -> Any:
        if self._producer is None:
            self._producer = self._clients.producer({})
        self._producer.produce(topic, key, value, timestamp, headers, partition)

    def read(self, tp: TopicPartition, offset: int, max_records: int,
             timeout: float = 0.0) -> list[Message]:
        if self._reader is None:  # every partition of the topic, from the start
            count = self.partition_counts([tp.topic])[tp.topic]
            self._reader = self._clients.consumer(None, {})
            self._reader.assign([(TopicPartition(tp.topic, p), 0) for p in range(count)])
        if not self._buffered.get(tp):
            # a fetch takes a round trip or two: "nothing there" needs a real wait
            for msg in self._reader.poll_batch(max_records, max(timeout, _KAFKA_MIN_WAIT_S)):
                part = TopicPartition(msg.topic(), msg.partition())
                self._buffered.setdefault(part, []).append(msg)
        out, self._buffered[tp] = self._buffered.get(tp, []), []
        return out

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(30.0)
            self._producer.close()
        if self._reader is not None:
            self._reader.close()


Session = Callable[[], contextlib.AbstractContextManager[tuple[SharedBroker, bool]]]
"""Opens the broker for a while: (broker, whether a read may wait inside it)."""


@contextlib.contextmanager
def topics_on(embedded: str | None, bootstrap_servers: str | None,
              kafka_config: dict[str, Any] | None = None) -> Iterator[Session]:
    """Sessions on the broker that ``--embedded DIR`` or ``-b HOST:PORT`` names.

    On an embedded directory nobody serves, a session owns the directory for its length:
    keep sessions short, so that a ``fluvial run --embedded`` starting meanwhile gets it.
    """
    if (embedded is None) == (bootstrap_servers is None):
        raise ConfigError("name the broker: --embedded DIR or --bootstrap-servers HOST:PORT")
    if bootstrap_servers is not None:
        from fluvial.io.kafka_check import check_cluster

        check_cluster(bootstrap_servers, [kafka_config or {}], 30.0)
        kafka = KafkaTopics(bootstrap_servers, kafka_config or {})

        @contextlib.contextmanager
        def on_kafka() -> Iterator[tuple[SharedBroker, bool]]:
            yield kafka, True

        try:
            yield on_kafka
        finally:
            kafka.close()
        return
    data_dir = embedded
    assert data_dir is not None

    @contextlib.contextmanager
    def on_embedded() -> Iterator[tuple[SharedBroker, bool]]:
        broker, owned = connect(data_dir)
        try:
            yield broker, owned is None  # waiting while we own it would lock the owner out
        finally:
            if owned is not None:
                owned.close()

    yield on_embedded


def _parse(serde: str, text: str, what: str, line_no: int) -> bytes | None:
    try:
        return resolve(serde).serialize(_PARSE[serde](text))
    except ValueError as exc:
        raise ConfigError(f"line {line_no}: {what} {text!r} is not {serde}: {exc}") from None


def _show(serde: str, data: bytes | None) -> str:
    value = resolve(serde).deserialize(data)
    if serde == "json":
        return json.dumps(value)
    if isinstance(value, bytes):
        return value.decode(errors="backslashreplace")
    return "null" if value is None else str(value)


def create_topics(broker: SharedBroker, names: Sequence[str], partitions: int) -> list[str]:
    """Create the topics that do not exist yet; their names."""
    have = broker.partition_counts(names)
    created = [name for name in names if name not in have]
    for name in created:
        broker.create_topic(name, partitions)
    return created


def produce_lines(broker: SharedBroker, topic: str, lines: Iterable[str],
                  key_separator: str | None, key_serde: str, value_serde: str,
                  create_partitions: int | None) -> int:
    """Append one record per line (``KEY<SEP>VALUE`` with ``key_separator``); the count.

    A missing topic is created with ``create_partitions`` partitions, or refused when None.
    """
    if not broker.partition_counts([topic]):
        if create_partitions is None:
            raise ConfigError(f"topic {topic!r} does not exist; create it first "
                              f"(fluvial create-topics)")
        broker.create_topic(topic, create_partitions)
    count = 0
    for count, line in enumerate(lines, 1):
        key = None
        text = line
        if key_separator is not None:
            if key_separator not in line:
                raise ConfigError(f"line {count}: no key separator {key_separator!r} in "
                                  f"{line!r}")
            key_text, text = line.split(key_separator, 1)
            key = _parse(key_serde, key_text, "key", count)
        broker.append(topic, key, _parse(value_serde, text, "value", count))
    return count


def consume_records(session: Session, topic: str, key_serde: str, value_serde: str,
                    follow: bool, max_records: int | None,
                    timeout: float) -> Iterator[tuple[str, str]]:
    """(key, value) as text from the start of every partition of ``topic``: what is there now,
    or up to ``max_records`` within ``timeout`` seconds, or everything until interrupted."""
    deadline = time.monotonic() + timeout
    positions: dict[TopicPartition, int] = {}
    seen = 0
    while True:
        waiting = follow or (max_records is not None and seen < max_records
                             and time.monotonic() < deadline)
        got = 0
        with session() as (broker, may_wait):
            count = broker.partition_counts([topic]).get(topic)
            if count is None and not waiting:
                raise ConfigError(f"topic {topic!r} does not exist")
            for p in range(count or 0):
                positions.setdefault(TopicPartition(topic, p), 0)
            for tp, offset in positions.items():
                wait = _POLL_S / len(positions) if waiting and may_wait else 0.0
                for msg in broker.read(tp, offset, _BATCH, wait):
                    positions[tp] = msg.offset() + 1
                    got += 1
                    seen += 1
                    yield _show(key_serde, msg.key()), _show(value_serde, msg.value())
                    if max_records is not None and seen >= max_records:
                        return
        if not waiting and got == 0:
            return
        if got == 0 and (count is None or not may_wait):
            time.sleep(_POLL_S)  # nothing to wake us: a topic to appear, or the owner's writes
