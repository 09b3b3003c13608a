"""The embedded in-process broker: topics, partition logs, committed offsets, groups.

One lock guards everything, and one condition on that lock is notified whenever something a
waiting consumer could care about happens (a record appended, a rebalance step, a topic
deleted), so a poll in one thread wakes as soon as a producer in another thread writes.

Topics are never auto-created: producing to or subscribing to a missing topic raises
``UnknownTopicOrPartitionError``, like a cluster with ``auto.create.topics.enable=false``.

Compacted topics (``cleanup.policy=compact``) keep every record: compaction only saves space,
and a reader that applies records in offset order ends with the same latest value per key.
The low watermark is therefore always 0.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from fluvial.errors import ConfigError
from fluvial.io.client import GroupMember, Headers, TopicPartition, UnknownTopicOrPartitionError
from fluvial.io.embedded.group import Group, Member
from fluvial.io.embedded.message import EmbeddedMessage
from fluvial.io.embedded.partitioner import partition_for_key
from fluvial.io.embedded.storage import LogFile, Storage

_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def _as_bytes(what: str, data: object) -> bytes | None:
    """bytes or None, accepting what confluent-kafka accepts (str is UTF-8 encoded)."""
    if data is None or type(data) is bytes:
        return data
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"{what} must be bytes, str or None, not {type(data).__name__}")


class EmbeddedBroker:
    """An in-process stand-in for a Kafka cluster.

    ``default_partitions`` is used for topics created with ``partitions=-1`` (the broker's
    default). With ``data_dir``, topics, records and committed offsets are kept in files there
    and reloaded when a broker is opened on the same directory.
    """

    def __init__(self, default_partitions: int = 1,
                 data_dir: str | os.PathLike[str] | None = None) -> None:
        if default_partitions < 1:
            raise ConfigError(f"default_partitions must be >= 1, got {default_partitions}")
        self.default_partitions = default_partitions
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._logs: dict[str, list[list[EmbeddedMessage]]] = {}
        self._configs: dict[str, dict[str, str]] = {}
        self._round_robin: dict[str, int] = {}
        self._offsets: dict[str, dict[TopicPartition, int]] = {}
        self._groups: dict[str, Group] = {}
        self._txn_epochs: dict[str, int] = {}  # transactional.id -> its newest producer's epoch
        self._files: dict[str, list[LogFile]] = {}
        self._dirty: list[LogFile] = []
        self._storage = Storage(data_dir) if data_dir is not None else None
        if self._storage is not None:
            for name, config, logs in self._storage.load_topics():
                self._logs[name] = logs
                self._configs[name] = config
                self._files[name] = self._storage.open_logs(name, len(logs))
            self._offsets = self._storage.load_offsets()

    # -- topics ---------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int = -1,
                     config: Mapping[str, str] | None = None) -> bool:
        """Create a topic; False (and no change) if it exists. ``partitions=-1``: the default."""
        if not _LEGAL_TOPIC.fullmatch(name) or name in (".", ".."):
            raise ConfigError(f"illegal topic name {name!r}: use 1-249 of [a-zA-Z0-9._-]")
        if partitions == -1:
            partitions = self.default_partitions
        if partitions < 1:
            raise ConfigError(f"topic {name!r}: partitions must be >= 1, got {partitions}")
        with self._cond:
            if name in self._logs:
                return False
            cfg = dict(config or {})
            if self._storage is not None:
                self._storage.create_topic(name, partitions, cfg)
                self._files[name] = self._storage.open_logs(name, partitions)
            self._logs[name] = [[] for _ in range(partitions)]
            self._configs[name] = cfg
            return True

    def delete_topic(self, name: str) -> bool:
        """Delete a topic, its records and its committed offsets; False if it did not exist.

        Groups subscribed to it rebalance without it.
        """
        with self._cond:
            if self._logs.pop(name, None) is None:
                return False
            self._configs.pop(name, None)
            self._round_robin.pop(name, None)
            files = self._files.pop(name, [])
            self._dirty = [f for f in self._dirty if f not in files]
            for f in files:
                f.close()
            if self._storage is not None:
                self._storage.delete_topic(name)
            for per_group in self._offsets.values():
                for tp in [tp for tp in per_group if tp.topic == name]:
                    del per_group[tp]
            self._save_offsets_locked()
            for group in self._groups.values():
                if group.subscribes_to(name):
                    group.rebalance(self._counts_locked())
            self._cond.notify_all()
            return True

    def partition_counts(self, topics: Iterable[str] | None = None) -> dict[str, int]:
        """Partition count per existing topic (all topics when ``topics`` is None)."""
        with self._lock:
            if topics is None:
                return self._counts_locked()
            return {t: len(self._logs[t]) for t in topics if t in self._logs}

    def topic_config(self, name: str) -> dict[str, str]:
        with self._lock:
            self._require_topic_locked(name)
            return dict(self._configs[name])

    # -- records --------------------------------------------------------------------------

    def append(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int = 0,
               headers: Headers | None = None, partition: int | None = None) -> EmbeddedMessage:
        """Append one record and wake waiting consumers.

        ``partition=None`` places keyed records like Java's default partitioner and spreads
        null keys round-robin. ``timestamp=0`` means now, as in librdkafka.
        """
        with self._cond:
            msg = self._append_locked(topic, key, value, timestamp, headers, partition)
            self._cond.notify_all()
            return msg

    def _append_locked(self, topic: str, key: bytes | None, value: bytes | None,
                       timestamp: int = 0, headers: Headers | None = None,
                       partition: int | None = None) -> EmbeddedMessage:
        key = _as_bytes("key", key)
        value = _as_bytes("value", value)
        if timestamp == 0:
            timestamp = time.time_ns() // 1_000_000
        elif timestamp < 0:
            raise ValueError(f"timestamp must be >= 0 ms since the epoch, got {timestamp}")
        headers = list(headers) if headers else None  # confluent reads [] back as None
        logs = self._require_topic_locked(topic)
        if partition is None:
            if key is not None:
                partition = partition_for_key(key, len(logs))
            else:
                n = self._round_robin.get(topic, 0)
                self._round_robin[topic] = n + 1
                partition = n % len(logs)
        elif not 0 <= partition < len(logs):
            raise UnknownTopicOrPartitionError(
                f"topic {topic!r} has {len(logs)} partition(s); partition {partition} "
                "does not exist")
        log = logs[partition]
        msg = EmbeddedMessage(topic, partition, len(log), key, value, timestamp, headers)
        log.append(msg)
        if self._storage is not None:
            f = self._files[topic][partition]
            if not f.dirty:
                self._dirty.append(f)
            f.append(msg)
        return msg

    def records(self, topic: str, partition: int | None = None) -> list[EmbeddedMessage]:
        """A copy of a partition's log (every partition's, in partition order, if None)."""
        with self._lock:
            logs = self._require_topic_locked(topic)
            if partition is None:
                return [m for log in logs for m in log]
            return list(self._log_locked(TopicPartition(topic, partition)))

    def read(self, tp: TopicPartition, offset: int, max_records: int,
             timeout: float = 0.0) -> list[EmbeddedMessage]:
        """Up to ``max_records`` records from ``offset`` on, waiting up to ``timeout`` seconds
        for the first one to be appended."""
        deadline = time.monotonic() + timeout
        with self._cond:
            log = self._log_locked(tp)
            while len(log) <= offset and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
                log = self._log_locked(tp)
            return log[offset:offset + max_records]

    def watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        """(low, high): low is always 0 since nothing is ever deleted from a live topic."""
        with self._lock:
            return (0, len(self._log_locked(tp)))

    # -- committed offsets ----------------------------------------------------------------

    def commit(self, group_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        with self._lock:
            self._commit_locked(group_id, offsets)

    def committed(self, group_id: str,
                  partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        with self._lock:
            per = self._offsets.get(group_id, {})
            return {tp: per.get(tp) for tp in partitions}

    def group_offsets(self, group_id: str) -> dict[TopicPartition, int]:
        """Every offset the group has committed."""
        with self._lock:
            return dict(self._offsets.get(group_id, {}))

    # -- lifecycle ------------------------------------------------------------------------

    def flush(self) -> None:
        """Push buffered appends to the OS (a no-op without ``data_dir``)."""
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        """Flush and close the files; the in-memory state stays readable."""
        with self._lock:
            self._flush_locked()
            for files in self._files.values():
                for f in files:
                    f.close()
            self._files.clear()
            self._storage = None

    def __enter__(self) -> EmbeddedBroker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- for the embedded clients; the caller holds the lock ------------------------------

    def _counts_locked(self) -> dict[str, int]:
        return {t: len(logs) for t, logs in self._logs.items()}

    def _require_topic_locked(self, topic: str) -> list[list[EmbeddedMessage]]:
        logs = self._logs.get(topic)
        if logs is None:
            raise UnknownTopicOrPartitionError(
                f"topic {topic!r} does not exist (topics are not auto-created; create it "
                "with Admin.create_topics)")
        return logs

    def _log_locked(self, tp: TopicPartition) -> list[EmbeddedMessage]:
        logs = self._require_topic_locked(tp.topic)
        if not 0 <= tp.partition < len(logs):
            raise UnknownTopicOrPartitionError(
                f"topic {tp.topic!r} has {len(logs)} partition(s); partition {tp.partition} "
                "does not exist")
        return logs[tp.partition]

    def _commit_locked(self, group_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            self._log_locked(tp)
            if not isinstance(offset, int) or offset < 0:
                raise ValueError(f"cannot commit offset {offset!r} for {tp}: must be an int >= 0")
        self._offsets.setdefault(group_id, {}).update(offsets)
        self._save_offsets_locked()

    def _save_offsets_locked(self) -> None:
        if self._storage is not None:
            self._flush_locked()  # a committed offset must never point past durable records
            self._storage.save_offsets(self._offsets)

    def _flush_locked(self) -> None:
        for f in self._dirty:
            f.flush()
        self._dirty.clear()

    def group_members(self, group_id: str) -> list[GroupMember]:
        """The group's members and what each holds now (the admin's describe)."""
        with self._cond:
            group = self._groups.get(group_id)
            if group is None:
                return []
            return [GroupMember(m.member_id, m.client_id, tuple(m.owned))
                    for m in group.members.values()]

    def _join_locked(self, group_id: str, member: Member) -> Group:
        group = self._groups.get(group_id)
        if group is None:
            group = self._groups[group_id] = Group(group_id)
        group.members[member.member_id] = member
        group.rebalance(self._counts_locked())
        self._cond.notify_all()
        return group

    def _leave_locked(self, group: Group, member: Member) -> None:
        """Remove a member (closed or evicted); the others rebalance at their next poll."""
        if group.members.pop(member.member_id, None) is not None:
            group.rebalance(self._counts_locked())
        self._cond.notify_all()
