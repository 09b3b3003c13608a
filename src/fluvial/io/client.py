"""The narrow client interface that both confluent-kafka and the embedded broker implement.

Everything above ``io`` talks to Kafka only through these protocols, so an app runs unchanged
on a real cluster or in-process. The message type is confluent-kafka's own ``Message`` shape
(methods, not attributes) so the real client's objects pass through without a copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fluvial.errors import FluvialError, TopologyError

Headers = list[tuple[str, bytes | None]]


class Message(Protocol):
    def topic(self) -> str: ...
    def partition(self) -> int: ...
    def offset(self) -> int: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def headers(self) -> Headers | None: ...
    def error(self) -> Any: ...


@dataclass(frozen=True, order=True)
class TopicPartition:
    topic: str
    partition: int


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int = -1  # -1: the broker's default
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupMember:
    """A consumer group member as the coordinator describes it."""

    member_id: str
    client_id: str
    partitions: tuple[TopicPartition, ...]  # what it holds now
    instance_id: str | None = None  # group.instance.id of a static member


class UnknownTopicOrPartitionError(TopologyError, LookupError):
    """A topic or partition named in subscribe/assign/produce does not exist.

    Topics are never auto-created: a typo must fail loudly, not create an empty topic.
    """


class CommitFailedError(FluvialError):
    """The group no longer accepts this member's commit (it was evicted or the group is gone).

    The runtime treats it like Kafka Streams' TaskMigratedException: drop the tasks, rejoin.
    """


class OffsetFetchError(FluvialError):
    """The group's committed offset of a partition could not be read.

    A task must never start a partition that has a committed offset anywhere but there, so
    the runtime stops rather than guess (a reset would re-read or skip committed work).
    ``retriable``: the cause resolves by itself (a transactional commit still pending, a
    coordinator moving), so a later try may succeed.
    """

    def __init__(self, message: str, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


class PartitionNotReadyError(FluvialError):
    """A partition assigned a moment ago cannot be positioned yet (librdkafka starts its
    fetcher asynchronously): the seek succeeds once it has, so the runtime tries again."""


class TransactionAbortableError(FluvialError):
    """The open transaction cannot commit; abort it, rewind to the last commit, go on.

    Nothing of the transaction became visible. The producer stays usable after
    ``abort_transaction`` (a failed delivery, a group generation gone stale, a timeout).
    """


class ProducerFencedError(FluvialError):
    """A newer producer with the same ``transactional.id`` took over, or the producer hit a
    fatal error (transactional or idempotent): it can never deliver or commit again. The
    runtime closes it, creates a new one and rebuilds the tasks from their changelogs."""


OutRecord = tuple[bytes | None, bytes | None, int, Headers | None]
"""A record to produce: key, value, timestamp, headers."""

RebalanceCallback = Callable[[list[TopicPartition]], None]


class Consumer(Protocol):
    """A group member (``subscribe``) or a free reader (``assign``, used to restore state)."""

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: RebalanceCallback,
        on_revoke: RebalanceCallback,
        on_lost: RebalanceCallback,
    ) -> None: ...
    def assign(self, partitions: Sequence[tuple[TopicPartition, int]]) -> None:
        """Read these partitions from these offsets, outside any group."""
    def poll_batch(self, max_records: int, timeout: float) -> list[Message]: ...
    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Synchronously commit ``offsets`` (the next offset to read, as Kafka does)."""
    def committed(self, partitions: Sequence[TopicPartition], timeout: float) -> dict[
        TopicPartition, int | None]:
        """The group's committed offsets; ``None`` only where the group has none.

        Waits out what resolves by itself (a pending transactional offset commit, a moving
        coordinator) up to ``timeout``; raises ``OffsetFetchError`` rather than guess."""
    def watermarks(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        """(low, high) offsets of the partition."""
    def end_offset(self, tp: TopicPartition) -> int | None:
        """An assigned partition's end as of the last fetch (no request); None before one."""
    def position(self, tp: TopicPartition) -> int | None: ...
    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Raises ``PartitionNotReadyError`` for a partition assigned too recently."""
    def pause(self, partitions: Sequence[TopicPartition]) -> None: ...
    def resume(self, partitions: Sequence[TopicPartition]) -> None: ...
    def group_metadata(self) -> Any:
        """The group's membership (member, generation) as the producer's
        ``send_offsets_to_transaction`` needs it: the broker fences a stale generation."""
    def member_id(self) -> str | None:
        """This member's id in its group; None before it has joined."""
    def assignment(self) -> list[TopicPartition]:
        """The partitions the client holds now: what the rebalance callbacks assigned."""
    def close(self) -> None: ...


class Producer(Protocol):
    """Records go out as produced; a producer whose config has ``transactional.id`` sends them
    in transactions instead: visible to read_committed consumers only once committed, together
    with the consumed offsets sent into the same transaction (exactly-once).
    """

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> None:
        """Queue a record; ``partition=None`` hashes the key like Java's default partitioner."""
    def produce_many(self, topic: str, records: Iterable[OutRecord]) -> int:
        """Queue ``(key, value, timestamp, headers)`` records, keyed to their partitions: one
        call per batch, so a sink pays the per-record cost only inside the client. Records
        are taken one at a time (a generator is best: each serialized value is freed as soon
        as it is queued); returns how many were queued."""
    def flush(self, timeout: float) -> None:
        """Wait until every queued record is acknowledged; raise ``DeliveryError`` if any failed."""
    def poll(self, timeout: float) -> None: ...
    def close(self) -> None:
        """Deliver what is queued; a producer that hit a fatal error drops it instead."""

    # -- transactions (only with ``transactional.id``) -----------------------------------
    def init_transactions(self, timeout: float) -> None:
        """Register the transactional id, fencing older producers that used it (and aborting
        any transaction they left open). Once, before the first transaction."""
    def begin_transaction(self) -> None: ...
    def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int],
                                    group_metadata: Any, timeout: float) -> None:
        """Commit these offsets (the next offset to read) for the consumer's group, atomically
        with the open transaction's records."""
    def commit_transaction(self, timeout: float) -> None:
        """Deliver and commit. Raises ``TransactionAbortableError`` (call
        ``abort_transaction``, rewind) or ``ProducerFencedError`` (close the producer)."""
    def abort_transaction(self, timeout: float) -> None:
        """Drop the open transaction's records and offsets."""


class Admin(Protocol):
    def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create topics that do not exist yet; an existing topic is left as it is."""
    def partition_counts(self, topics: Sequence[str]) -> dict[str, int]:
        """Partition count of each topic that exists; missing topics are left out."""
    def delete_topics(self, topics: Sequence[str]) -> None: ...
    def delete_records(self, before: dict[TopicPartition, int]) -> None:
        """Ask for every record below ``before[tp]`` to be deleted; does not wait, and a
        failure is only logged (the next purge asks again)."""
    def group_members(self, group_id: str, timeout: float) -> list[GroupMember]:
        """The group's members and the partitions each holds; [] for an unknown group."""


class Clients(Protocol):
    """A factory for the three kinds of client, bound to one cluster."""

    def consumer(self, group_id: str | None, config: dict[str, Any]) -> Consumer: ...
    def producer(self, config: dict[str, Any]) -> Producer: ...
    def admin(self) -> Admin: ...
