"""Producer, admin and the ``Clients`` factory over an ``EmbeddedBroker``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fluvial.io.client import Clients, Headers, TopicSpec
from fluvial.io.embedded.broker import EmbeddedBroker
from fluvial.io.embedded.consumer import EmbeddedConsumer


class EmbeddedProducer:
    """Appends synchronously, so every record is acknowledged when ``produce`` returns.

    ``flush`` therefore never fails; it only pushes buffered file writes to the OS when the
    broker persists. Errors (missing topic, bad partition, wrong type) raise from ``produce``.
    """

    def __init__(self, broker: EmbeddedBroker, config: dict[str, Any] | None = None) -> None:
        self._broker = broker

    def produce(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
                headers: Headers | None = None, partition: int | None = None) -> None:
        self._broker.append(topic, key, value, timestamp, headers, partition)

    def flush(self, timeout: float) -> None:
        self._broker.flush()

    def poll(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        self._broker.flush()


class EmbeddedAdmin:
    """Topic administration; both create and delete are idempotent."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self._broker = broker

    def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        for spec in specs:
            self._broker.create_topic(spec.name, spec.partitions, spec.config)

    def partition_counts(self, topics: Sequence[str]) -> dict[str, int]:
        return self._broker.partition_counts(topics)

    def delete_topics(self, topics: Sequence[str]) -> None:
        for topic in topics:
            self._broker.delete_topic(topic)


class EmbeddedClients:
    """``fluvial.io.client.Clients`` bound to one embedded broker (a fresh one by default)."""

    def __init__(self, broker: EmbeddedBroker | None = None) -> None:
        self.broker = broker if broker is not None else EmbeddedBroker()

    def consumer(self, group_id: str | None, config: dict[str, Any]) -> EmbeddedConsumer:
        return EmbeddedConsumer(self.broker, group_id, config)

    def producer(self, config: dict[str, Any]) -> EmbeddedProducer:
        return EmbeddedProducer(self.broker, config)

    def admin(self) -> EmbeddedAdmin:
        return EmbeddedAdmin(self.broker)


def _conforms(broker: EmbeddedBroker) -> Clients:
    """Never called: makes mypy check that these classes implement the client protocols."""
    return EmbeddedClients(broker)
