"""What `fluvial reset` asks of a cluster: a group's members and offsets, offsets by time,
and deleting topics until they are gone.

Separate from ``fluvial.io.client.Admin`` (what a running app needs): only the reset tool
uses these, on a real cluster through Kafka's admin API and on the embedded broker through
``fluvial.io.embedded.group_admin``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import confluent_kafka as ck
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient, OffsetSpec

from fluvial.errors import FluvialError
from fluvial.io.client import TopicPartition
from fluvial.io.kafka_logging import librdkafka_logger

T = TypeVar("T")
log = logging.getLogger("fluvial.reset")
_NO_SUCH_GROUP = (ck.KafkaError.GROUP_ID_NOT_FOUND,)
# errors that pass by themselves: a group coordinator loading its state, or moving
_PASSING = (ck.KafkaError.COORDINATOR_LOAD_IN_PROGRESS, ck.KafkaError.NOT_COORDINATOR,
            ck.KafkaError.COORDINATOR_NOT_AVAILABLE, ck.KafkaError.LEADER_NOT_AVAILABLE,
            ck.KafkaError.NOT_LEADER_FOR_PARTITION)


class GroupAdminError(FluvialError):
    """The cluster refused or failed an admin request of the reset tool."""


class GroupAdmin(Protocol):
    def active_members(self, group_id: str) -> list[str]:
        """The group's members now (client id and host of each); empty when none."""
    def topics(self) -> dict[str, int]:
        """Every topic and its partition count."""
    def committed(self, group_id: str) -> dict[TopicPartition, int]:
        """Every offset the group has committed."""
    def offsets_at(self, partitions: Sequence[TopicPartition],
                   timestamp_ms: int | None) -> dict[TopicPartition, int]:
        """Per partition: the earliest offset (``None``), or the first whose timestamp is at
        or after ``timestamp_ms`` (the end of the partition when no record is that late)."""
    def commit(self, group_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Set the (empty) group's committed offsets."""
    def delete_topics(self, topics: Sequence[str]) -> None:
        """Delete the topics and return once none of them is listed any more."""
    def close(self) -> None: ...


class KafkaGroupAdmin:
    """``GroupAdmin`` over Kafka's admin API (librdkafka)."""

    def __init__(self, bootstrap_servers: str, config: Mapping[str, Any],
                 timeout_s: float = 30.0) -> None:
        self._timeout = timeout_s
        conf: dict[str, Any] = {**config, "bootstrap.servers": bootstrap_servers,
                                "logger": librdkafka_logger()}
        self._admin = AdminClient(conf)

    def _call(self, request: Callable[[], T], what: str) -> T:
        """``request()`` (send, wait for the answer), again while the cluster answers with an
        error that passes (a group coordinator loading or moving: a broker just started),
        until the timeout."""
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                return request()
            except ck.KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if not isinstance(error, ck.KafkaError):
                    raise GroupAdminError(f"{what}: {exc}") from None
                if not (error.retriable() or error.code() in _PASSING) or \
                        time.monotonic() >= deadline:
                    raise GroupAdminError(f"{what}: {error.str() or error.name()}") from None
            except TimeoutError:
                raise GroupAdminError(f"{what}: no answer within {self._timeout:g} s") from None
            time.sleep(0.2)

    def active_members(self, group_id: str) -> list[str]:
        def describe() -> list[str]:
            future = self._admin.describe_consumer_groups(
                [group_id], request_timeout=self._timeout)[group_id]
            try:
                description = future.result(timeout=self._timeout)
            except ck.KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if isinstance(error, ck.KafkaError) and error.code() in _NO_SUCH_GROUP:
                    return []
                raise
            return [f"{m.client_id}@{m.host}" for m in description.members]

        return self._call(describe, f"describing group {group_id!r}")

    def topics(self) -> dict[str, int]:
        metadata = self._call(lambda: self._admin.list_topics(timeout=self._timeout),
                              "listing topics")
        return {name: len(t.partitions) for name, t in metadata.topics.items()}

    def committed(self, group_id: str) -> dict[TopicPartition, int]:
        result = self._call(lambda: self._admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group_id)], request_timeout=self._timeout)[group_id]
            .result(timeout=self._timeout), f"reading the offsets of group {group_id!r}")
        return {TopicPartition(tp.topic, tp.partition): tp.offset
                for tp in result.topic_partitions or [] if tp.offset >= 0}

    def offsets_at(self, partitions: Sequence[TopicPartition],
                   timestamp_ms: int | None) -> dict[TopicPartition, int]:
        if timestamp_ms is None:
            return self._list_offsets(partitions, OffsetSpec.earliest())
        spec = OffsetSpec.for_timestamp(timestamp_ms)
        found = self._list_offsets(partitions, spec)
        deadline = time.monotonic() + self._timeout
        while too_late := [tp for tp, offset in found.items() if offset < 0]:
            # "no record that late" sends the partition to its end (as Kafka's tool does),
            # which skips records: only when its newest record's time agrees; else ask again
            newest = {tp: info.timestamp for tp, info in
                      self._list_offsets_info(too_late, OffsetSpec.max_timestamp()).items()}
            doubtful = [tp for tp in too_late if newest[tp] >= timestamp_ms]
            if not doubtful:
                found.update(self._list_offsets(too_late, OffsetSpec.latest()))
                break
            if time.monotonic() >= deadline:
                raise GroupAdminError(
                    f"offsets at {timestamp_ms}: the broker found no record that late in "
                    f"{', '.join(f'{tp.topic}[{tp.partition}]' for tp in doubtful)}, whose "
                    f"newest record is later; try again")
            log.warning("the broker found no record at or after %d in %s although its newest "
                        "record is later; asking again", timestamp_ms, doubtful)
            time.sleep(0.2)
            found.update(self._list_offsets(doubtful, spec))
        return found

    def _list_offsets(self, partitions: Sequence[TopicPartition],
                      spec: OffsetSpec) -> dict[TopicPartition, int]:
        return {tp: info.offset for tp, info in self._list_offsets_info(partitions, spec).items()}

    def _list_offsets_info(self, partitions: Sequence[TopicPartition],
                           spec: OffsetSpec) -> dict[TopicPartition, Any]:
        if not partitions:
            return {}

        def list_offsets() -> dict[TopicPartition, Any]:
            futures = self._admin.list_offsets(
                {ck.TopicPartition(tp.topic, tp.partition): spec for tp in partitions},
                request_timeout=self._timeout)
            return {TopicPartition(k.topic, k.partition): f.result(timeout=self._timeout)
                    for k, f in futures.items()}

        return self._call(list_offsets, "listing offsets of "
                          f"{', '.join(sorted({tp.topic for tp in partitions}))}")

    def commit(self, group_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        request = ConsumerGroupTopicPartitions(
            group_id, [ck.TopicPartition(tp.topic, tp.partition, offset)
                       for tp, offset in sorted(offsets.items())])
        result = self._call(lambda: self._admin.alter_consumer_group_offsets(
            [request], request_timeout=self._timeout)[group_id].result(timeout=self._timeout),
            f"setting the offsets of group {group_id!r}")
        failed = [f"{tp.topic}-{tp.partition}: {tp.error.str()}"
                  for tp in result.topic_partitions or [] if tp.error is not None]
        if failed:
            raise GroupAdminError(f"setting the offsets of group {group_id!r} failed for "
                                  f"{'; '.join(failed)}")

    def delete_topics(self, topics: Sequence[str]) -> None:
        if not topics:
            return
        futures = self._admin.delete_topics(list(topics), operation_timeout=self._timeout,
                                            request_timeout=self._timeout)
        for name, future in futures.items():
            try:
                future.result(timeout=self._timeout)
            except ck.KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if isinstance(error, ck.KafkaError) and \
                        error.code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART:
                    continue  # gone already
                raise GroupAdminError(f"deleting topic {name!r}: {exc}") from None
        # the controller has deleted them; wait until the metadata says so too, so an app
        # started right after the reset creates them afresh instead of reusing the old ones
        deadline = time.monotonic() + self._timeout
        while left := sorted(set(topics) & set(self.topics())):
            if time.monotonic() >= deadline:
                raise GroupAdminError(f"topic(s) {', '.join(left)} still listed "
                                      f"{self._timeout:g} s after their deletion")
            time.sleep(0.2)

    def close(self) -> None:
        """The admin client holds no group membership; nothing to leave."""
