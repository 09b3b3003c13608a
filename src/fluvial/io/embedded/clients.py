"""Producer, admin and the ``Clients`` factory over an ``EmbeddedBroker``."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from fluvial.errors import ConfigError, FluvialError
from fluvial.io.client import (
    Clients,
    CommitFailedError,
    GroupMember,
    Headers,
    OutRecord,
    ProducerFencedError,
    TopicPartition,
    TopicSpec,
    TransactionAbortableError,
    UnknownTopicOrPartitionError,
)
from fluvial.io.embedded.broker import EmbeddedBroker
from fluvial.io.embedded.consumer import EmbeddedConsumer, EmbeddedGroupMetadata


class EmbeddedProducer:
    """Appends synchronously, so every record is acknowledged when ``produce`` returns.

    ``flush`` therefore never fails; it only pushes buffered file writes to the OS when the
    broker persists. Errors (missing topic, bad partition, wrong type) raise from ``produce``.

    With ``transactional.id`` in its config the producer is transactional: ``produce`` only
    buffers, and ``commit_transaction`` appends the buffered records and commits the offsets
    sent for the group in one step under the broker lock, so a reader never sees part of a
    transaction (every record in an embedded log is committed). ``abort_transaction`` drops
    them. ``init_transactions`` by a newer producer with the same id fences this one: its open
    transaction can never commit.
    """

    def __init__(self, broker: EmbeddedBroker, config: dict[str, Any] | None = None) -> None:
        self._broker = broker
        txn_id = (config or {}).get("transactional.id")
        self._txn_id: str | None = str(txn_id) if txn_id else None
        self._epoch = 0  # 0: init_transactions not called yet
        self._records: list[tuple[str, bytes | None, bytes | None, int, Headers | None,
                                  int | None]] | None = None  # None: no open transaction
        self._offsets: dict[str, dict[TopicPartition, int]] = {}
        self._members: dict[str, EmbeddedGroupMetadata] = {}

    def produce_many(self, topic: str, records: Iterable[OutRecord]) -> int:
        queued = 0
        for key, value, timestamp, headers in records:
            self.produce(topic, key, value, timestamp, headers)
            queued += 1
        return queued

    def produce(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
                headers: Headers | None = None, partition: int | None = None) -> None:
        if self._txn_id is None:
            self._broker.append(topic, key, value, timestamp, headers, partition)
            return
        if self._records is None:
            raise FluvialError("transactional producer: produce() outside a transaction "
                               "(call begin_transaction() first)")
        with self._broker._lock:  # fail now, not at commit, on a missing topic or partition
            self._check_target_locked(topic, partition)
        if timestamp == 0:
            timestamp = time.time_ns() // 1_000_000
        self._records.append((topic, key, value, timestamp, headers, partition))

    def _check_target_locked(self, topic: str, partition: int | None) -> None:
        self._broker._require_topic_locked(topic)
        if partition is not None:
            self._broker._log_locked(TopicPartition(topic, partition))

    def flush(self, timeout: float) -> None:
        self._broker.flush()

    def poll(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        self._records = None  # an open transaction is aborted
        self._broker.flush()

    # -- transactions ---------------------------------------------------------------------

    def _require_txn_id(self) -> str:
        if self._txn_id is None:
            raise ConfigError("transactions need transactional.id in the producer config")
        return self._txn_id

    def _check_epoch_locked(self, txn_id: str) -> None:
        if self._epoch == 0:
            raise FluvialError("call init_transactions() before using transactions")
        if self._broker._txn_epochs.get(txn_id) != self._epoch:
            self._records = None
            raise ProducerFencedError(f"producer with transactional.id {txn_id!r} was fenced "
                                      "by a newer one with the same id")

    def init_transactions(self, timeout: float) -> None:
        txn_id = self._require_txn_id()
        with self._broker._lock:
            self._epoch = self._broker._txn_epochs.get(txn_id, 0) + 1
            self._broker._txn_epochs[txn_id] = self._epoch
        self._records = None

    def begin_transaction(self) -> None:
        txn_id = self._require_txn_id()
        with self._broker._lock:
            self._check_epoch_locked(txn_id)
        if self._records is not None:
            raise FluvialError("a transaction is already open")
        self._records, self._offsets, self._members = [], {}, {}

    def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int],
                                    group_metadata: Any, timeout: float) -> None:
        if self._records is None:
            raise FluvialError("send_offsets_to_transaction() outside a transaction")
        if not isinstance(group_metadata, EmbeddedGroupMetadata):
            raise TypeError("group_metadata must come from an embedded consumer's "
                            "group_metadata()")
        group = group_metadata.group_id
        self._offsets.setdefault(group, {}).update(offsets)
        self._members[group] = group_metadata

    def commit_transaction(self, timeout: float) -> None:
        txn_id = self._require_txn_id()
        if self._records is None:
            raise FluvialError("commit_transaction() without an open transaction")
        broker = self._broker
        with broker._cond:
            self._check_epoch_locked(txn_id)
            try:
                for member in self._members.values():
                    member.check_locked()  # like EOS v2's generation check
            except CommitFailedError as e:
                raise TransactionAbortableError(str(e)) from e
            try:  # all or nothing: a topic deleted since produce fails the whole transaction
                for topic, *_, partition in self._records:
                    self._check_target_locked(topic, partition)
            except UnknownTopicOrPartitionError as e:
                raise TransactionAbortableError(str(e)) from e
            for record in self._records:
                broker._append_locked(*record)
            for group, offsets in self._offsets.items():
                broker._commit_locked(group, offsets)
            if not self._offsets:
                broker._flush_locked()
            broker._cond.notify_all()
        self._records, self._offsets, self._members = None, {}, {}

    def abort_transaction(self, timeout: float) -> None:
        self._require_txn_id()
        self._records, self._offsets, self._members = None, {}, {}


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

    def delete_records(self, before: dict[TopicPartition, int]) -> None:
        """Nothing: the embedded broker keeps every record of a live topic (its snapshots
        are what reprocessing reads)."""

    def group_members(self, group_id: str, timeout: float) -> list[GroupMember]:
        return self._broker.group_members(group_id)


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
