"""The embedded consumer: a group member (``subscribe``) or a free reader (``assign``).

Rebalance callbacks run inside ``poll_batch``, in the polling thread and without the broker
lock held (as librdkafka runs them), so a callback may commit, seek or read watermarks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from fluvial.errors import ConfigError, FluvialError
from fluvial.io.client import (
    CommitFailedError,
    Message,
    RebalanceCallback,
    TopicPartition,
)
from fluvial.io.embedded.broker import EmbeddedBroker
from fluvial.io.embedded.group import Group, Member, new_member_id
from fluvial.io.embedded.message import EmbeddedMessage

# confluent_kafka's logical offsets, accepted by assign() and seek()
OFFSET_BEGINNING = -2
OFFSET_END = -1
OFFSET_STORED = -1000
OFFSET_INVALID = -1001

_RESETS = {"earliest": "earliest", "smallest": "earliest", "beginning": "earliest",
           "latest": "latest", "largest": "latest", "end": "latest"}

_Step = tuple[RebalanceCallback, list[TopicPartition], Callable[[], None]]


def _noop(partitions: list[TopicPartition]) -> None:
    pass


class EmbeddedConsumer:
    """Implements ``fluvial.io.client.Consumer`` on an ``EmbeddedBroker``.

    Config read: ``auto.offset.reset`` (earliest | latest, default earliest),
    ``max.poll.interval.ms`` (default 300000), ``client.id``. Others are accepted and ignored;
    ``partition.assignment.strategy`` included: the embedded group is always eager range, which
    a caller written for cooperative deltas handles too (revoke all, then assign all).
    """

    def __init__(self, broker: EmbeddedBroker, group_id: str | None,
                 config: dict[str, Any] | None = None) -> None:
        config = config or {}
        reset = str(config.get("auto.offset.reset", "earliest"))
        if reset not in _RESETS:
            raise ConfigError(f"auto.offset.reset={reset!r}: the embedded broker supports "
                              f"{sorted(_RESETS)}")
        self._broker = broker
        self._cond = broker._cond
        self._group_id = group_id
        self._reset = _RESETS[reset]
        self._max_poll_interval = float(config.get("max.poll.interval.ms", 300_000)) / 1000
        self._client_id = str(config.get("client.id", "fluvial"))
        self._member: Member | None = None
        self._group: Group | None = None
        self._on_assign: RebalanceCallback = _noop
        self._on_revoke: RebalanceCallback = _noop
        self._on_lost: RebalanceCallback = _noop
        self._positions: dict[TopicPartition, int] = {}
        self._order: list[TopicPartition] = []
        self._paused: set[TopicPartition] = set()
        self._manual = False
        self._closed = False
        self._rotation = 0

    # -- membership -----------------------------------------------------------------------

    def subscribe(self, topics: Sequence[str], on_assign: RebalanceCallback,
                  on_revoke: RebalanceCallback, on_lost: RebalanceCallback) -> None:
        if not self._group_id:
            raise ConfigError("subscribe() needs a group id; use assign() to read without one")
        if not topics:
            raise ValueError("subscribe() needs at least one topic")
        with self._cond:
            self._check_open()
            if self._manual:
                raise FluvialError("this consumer uses assign(); it cannot also subscribe()")
            for t in topics:
                self._broker._require_topic_locked(t)
            self._on_assign, self._on_revoke, self._on_lost = on_assign, on_revoke, on_lost
            if self._member is None:
                self._member = Member(new_member_id(self._client_id), frozenset(topics),
                                      self._max_poll_interval, time.monotonic(),
                                      self._client_id)
                self._group = self._broker._join_locked(self._group_id, self._member)
            elif self._member.topics != frozenset(topics):
                self._member.topics = frozenset(topics)
                assert self._group is not None
                self._group.rebalance(self._broker._counts_locked())
                self._cond.notify_all()

    def assign(self, partitions: Sequence[tuple[TopicPartition, int]]) -> None:
        """Read exactly these partitions from these offsets (``OFFSET_*`` constants allowed)."""
        with self._cond:
            self._check_open()
            if self._member is not None:
                raise FluvialError("this consumer is subscribed; it cannot also assign()")
            positions = {tp: self._start_offset_locked(tp, offset) for tp, offset in partitions}
            self._manual = True
            self._set_assignment(positions)

    # -- reading --------------------------------------------------------------------------

    def poll_batch(self, max_records: int, timeout: float) -> list[Message]:
        """Up to ``max_records`` records, waiting up to ``timeout`` s for the first one."""
        if max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {max_records}")
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            with self._cond:
                self._check_open()
                now = time.monotonic()
                step = self._rebalance_step_locked(now)
                if step is None:
                    batch = self._fetch_locked(max_records)
                    if batch:
                        return cast("list[Message]", batch)
                    remaining = deadline - now
                    if remaining <= 0:
                        return []
                    self._cond.wait(self._wait_limit_locked(remaining, now))
                    continue
            callback, partitions, finish = step
            try:
                callback(partitions)
            finally:
                with self._cond:
                    finish()
                    self._cond.notify_all()

    def _rebalance_step_locked(self, now: float) -> _Step | None:
        """The next rebalance callback this member must run, or None to go on fetching."""
        member, group = self._member, self._group
        if member is None or group is None:
            return None
        member.last_poll = now
        if member.lost:
            return (self._on_lost, list(member.owned), self._rejoin_locked)
        if member.generation >= group.generation:
            return None
        if member.owned:
            return (self._on_revoke, list(member.owned), self._drop_owned_locked)
        blockers = group.blockers()
        if blockers:
            stale = [m for m in blockers if now - m.last_poll > m.max_poll_interval]
            for other in stale:
                other.lost = True
                self._broker._leave_locked(group, other)
            return self._rebalance_step_locked(now) if stale else None
        new = list(group.assignment.get(member.member_id, []))
        member.owned = new
        member.generation = group.generation
        self._set_assignment({tp: self._start_offset_locked(tp, OFFSET_STORED) for tp in new})
        return (self._on_assign, list(new), _nothing)

    def _drop_owned_locked(self) -> None:
        if self._member is not None:
            self._member.owned = []
        self._set_assignment({})

    def _rejoin_locked(self) -> None:
        """After eviction: forget the lost partitions and join the group again."""
        self._drop_owned_locked()
        if self._member is not None and self._group_id and not self._closed:
            self._member.lost = False
            self._member.generation = 0
            self._group = self._broker._join_locked(self._group_id, self._member)

    def _wait_limit_locked(self, remaining: float, now: float) -> float:
        """Wake in time to evict a member that blocks the rebalance barrier."""
        group, member = self._group, self._member
        if group is None or member is None or member.generation >= group.generation:
            return remaining
        for other in group.blockers():
            remaining = min(remaining, max(other.last_poll + other.max_poll_interval - now, 0.001))
        return remaining

    def _fetch_locked(self, max_records: int) -> list[EmbeddedMessage]:
        """Fair share per partition (rotating the starting one), offset order within each."""
        all_logs = self._broker._logs
        order = self._order
        n = len(order)
        if n == 0:
            return []
        start = self._rotation % n
        self._rotation += 1
        avail: list[tuple[TopicPartition, list[EmbeddedMessage], int, int]] = []
        total = 0
        for i in range(n):
            tp = order[(start + i) % n]
            if tp in self._paused:
                continue
            logs = all_logs.get(tp.topic)
            if logs is None or tp.partition >= len(logs):
                continue
            log = logs[tp.partition]
            pos = self._positions[tp]
            ready = len(log) - pos
            if ready > 0:
                avail.append((tp, log, pos, ready))
                total += ready
        if not avail:
            return []
        if total <= max_records:
            takes = [a[3] for a in avail]
        else:
            takes = [0] * len(avail)
            left, pending = max_records, list(range(len(avail)))
            while left and pending:
                share = max(1, left // len(pending))
                still = []
                for i in pending:
                    take = min(share, avail[i][3] - takes[i], left)
                    takes[i] += take
                    left -= take
                    if takes[i] < avail[i][3]:
                        still.append(i)
                    if not left:
                        break
                pending = still
        if len(avail) == 1:
            tp, log, pos, _ = avail[0]
            self._positions[tp] = pos + takes[0]
            return log[pos:pos + takes[0]]
        batch: list[EmbeddedMessage] = []
        for (tp, log, pos, _), take in zip(avail, takes, strict=True):
            if take:
                batch += log[pos:pos + take]
                self._positions[tp] = pos + take
        return batch

    # -- offsets --------------------------------------------------------------------------

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if not self._group_id:
            raise ConfigError("commit() needs a group id; this consumer has none")
        with self._cond:
            self._check_member_locked()
            self._broker._commit_locked(self._group_id, offsets)

    def _check_member_locked(self) -> None:
        """Raise ``CommitFailedError`` unless this consumer may commit for its group now."""
        self._check_open()
        member, group = self._member, self._group
        if member is not None and (member.lost or group is None
                                   or member.member_id not in group.members):
            raise CommitFailedError(
                f"group {self._group_id!r} evicted member {member.member_id} (no poll for "
                f"{self._max_poll_interval:g}s); its partitions were reassigned")

    def group_metadata(self) -> EmbeddedGroupMetadata:
        if not self._group_id:
            raise ConfigError("group_metadata() needs a group id; this consumer has none")
        return EmbeddedGroupMetadata(self._group_id, self)

    def committed(self, partitions: Sequence[TopicPartition],
                  timeout: float) -> dict[TopicPartition, int | None]:
        if not self._group_id:
            return {tp: None for tp in partitions}
        return self._broker.committed(self._group_id, partitions)

    def watermarks(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return self._broker.watermarks(tp)

    def end_offset(self, tp: TopicPartition) -> int | None:
        return self._broker.watermarks(tp)[1]

    def position(self, tp: TopicPartition) -> int | None:
        with self._cond:
            return self._positions.get(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        with self._cond:
            self._check_open()
            if tp not in self._positions:
                raise FluvialError(f"cannot seek {tp}: it is not assigned to this consumer")
            self._positions[tp] = self._start_offset_locked(tp, offset)
            self._cond.notify_all()

    def member_id(self) -> str | None:
        return self._member.member_id if self._member is not None else None

    def assignment(self) -> list[TopicPartition]:
        with self._cond:
            return list(self._positions)

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        with self._cond:
            self._paused.update(partitions)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        with self._cond:
            self._paused.difference_update(partitions)
            self._cond.notify_all()

    def close(self) -> None:
        """Revoke owned partitions (``on_revoke``, or ``on_lost`` if evicted) and leave."""
        with self._cond:
            if self._closed:
                return
            member = self._member
            owned = list(member.owned) if member is not None else []
            callback = self._on_lost if member is not None and member.lost else self._on_revoke
        try:
            if owned:
                callback(owned)
        finally:
            with self._cond:
                self._closed = True
                self._set_assignment({})
                if member is not None:
                    member.owned = []
                    if self._group is not None:
                        self._broker._leave_locked(self._group, member)

    # -- helpers (lock held) --------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise FluvialError("consumer is closed")

    def _set_assignment(self, positions: dict[TopicPartition, int]) -> None:
        self._positions = positions
        self._order = sorted(positions)
        self._paused &= positions.keys()

    def _start_offset_locked(self, tp: TopicPartition, offset: int) -> int:
        """Resolve a requested or logical offset; out of range falls back to the reset policy."""
        high = len(self._broker._log_locked(tp))
        if offset == OFFSET_BEGINNING:
            return 0
        if offset == OFFSET_END:
            return high
        if offset in (OFFSET_STORED, OFFSET_INVALID):
            stored = self._broker._offsets.get(self._group_id or "", {}).get(tp)
            if stored is not None and stored <= high:
                return stored
        elif offset < 0:
            raise ValueError(f"invalid offset {offset} for {tp}")
        elif offset <= high:
            return offset
        return 0 if self._reset == "earliest" else high


@dataclass(frozen=True)
class EmbeddedGroupMetadata:
    """What ``send_offsets_to_transaction`` gets: the group and the member committing for it;
    the transaction's commit fails if that member was evicted meanwhile."""

    group_id: str
    consumer: EmbeddedConsumer

    def check_locked(self) -> None:
        self.consumer._check_member_locked()


def _nothing() -> None:
    pass
