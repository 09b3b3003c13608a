"""Standby replicas: warm copies of other instances' task state, kept by following changelogs.

Kafka Streams places standby tasks in its own assignor. librdkafka cannot run a custom
assignor (and under KIP-848 the broker computes assignments), so fluvial places them itself:
each instance reads who runs what from the application's instance directory
(runtime/discovery.py) every few seconds, orders the members by id, and keeps a standby of
each task owned by member *i* on the next members in that order, one per host and never on
the owner's host. "Host" is a state directory: the
workers of ``fluvial run --workers N`` share one, so a standby there would be the same files
as the active task. Every instance computes the same placement from the same description.

A standby opens the task's stores in its state directory, applies their changelogs with a free
reader as they grow, and checkpoints every few seconds. When the task moves here (its owner died
or left), its restore starts at that checkpoint and replays only the tail.
In-memory stores have no standby: they restore in full where the task lands.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

from fluvial.io.client import Clients, Consumer, GroupMember, Message, TopicPartition
from fluvial.logs import record_context
from fluvial.runtime.changelog_reader import MAX_RECORDS
from fluvial.runtime.stores import OpenStore, TaskStores

log = logging.getLogger("fluvial.standby")

REFRESH_S = 5.0  # how often the group's assignment is read again
CHECKPOINT_S = 5.0  # how often standbys checkpoint
HOST_MARK = "-host-"  # client.id = <client id>-host-<host token>


def host_token(state_root: Path) -> str:
    """Names this machine's state directory in the group member's client.id."""
    where = f"{socket.gethostname()}:{state_root.resolve()}"
    return hashlib.sha256(where.encode()).hexdigest()[:12]


def _host(member: GroupMember) -> str:
    _, mark, token = member.client_id.rpartition(HOST_MARK)
    return token if mark else member.member_id


def place_standbys(members: list[GroupMember], task_of: Callable[[TopicPartition], str | None],
                   replicas: int) -> dict[str, set[str]]:
    """Member id -> the task ids it keeps standbys of."""
    ordered = sorted(members, key=lambda m: m.member_id)
    placed: dict[str, set[str]] = {m.member_id: set() for m in ordered}
    owned_on_host: dict[str, set[str]] = {}
    for m in ordered:
        owned_on_host.setdefault(_host(m), set()).update(
            t for t in map(task_of, m.partitions) if t is not None)
    for i, owner in enumerate(ordered):
        tasks = {t for t in map(task_of, owner.partitions) if t is not None}
        for task in tasks:
            hosts = {_host(owner)}
            for k in range(1, len(ordered)):
                if len(hosts) > replicas:
                    break
                candidate = ordered[(i + k) % len(ordered)]
                host = _host(candidate)
                if host in hosts or task in owned_on_host[host]:
                    continue
                placed[candidate.member_id].add(task)
                hosts.add(host)
    return placed


class _Standby:
    def __init__(self, stores: TaskStores, follow: dict[TopicPartition, OpenStore],
                 positions: dict[TopicPartition, int]) -> None:
        self.stores = stores
        self.follow = follow  # changelog -> its store (persistent stores only)
        self.positions = positions  # changelog -> next offset to apply
        self.ends: dict[TopicPartition, int] = {}  # changelog -> its end, as last fetched

    def checkpoint(self) -> dict[str, int]:
        return {s.spec.name: self.positions[tp] for tp, s in self.follow.items()}

    def lag(self, tp: TopicPartition) -> int | None:
        """Changelog records not applied yet (None until the reader has fetched once)."""
        end = self.ends.get(tp)
        return None if end is None else max(end - self.positions[tp], 0)


class Standbys:
    """This instance's standby tasks: placed from the group's assignment, kept current by one
    free reader over all their changelogs, a poll per loop iteration."""

    def __init__(self, clients: Clients, members: Callable[[], list[GroupMember]],
                 replicas: int, open_stores: Callable[[str], TaskStores],
                 task_of: Callable[[TopicPartition], str | None]) -> None:
        self._clients = clients
        self._members = members
        self._replicas = replicas
        self._open_stores = open_stores
        self._task_of = task_of
        self._reader: Consumer | None = None
        self.tasks: dict[str, _Standby] = {}
        self._next_refresh = 0.0
        self._next_checkpoint = 0.0

    def copies(self, store: str) -> dict[str, tuple[OpenStore, int | None]]:
        """Task id -> (its standby copy of ``store``, that copy's changelog lag): what an
        interactive query that allows stale state may read (any thread)."""
        found = {}
        for task_id, standby in list(self.tasks.items()):
            for tp, s in list(standby.follow.items()):
                if s.spec.name == store:
                    found[task_id] = (s, standby.lag(tp))
        return found

    def refresh_soon(self) -> None:
        """The group's membership moved: read the assignment at the next step."""
        self._next_refresh = 0.0

    def step(self, member_id: str | None, busy: set[str]) -> None:
        """Re-place standbys when due (never a task in ``busy``: active or restoring here),
        apply one poll of their changelogs, and checkpoint when due."""
        now = time.monotonic()
        if member_id is not None and now >= self._next_refresh:
            self._next_refresh = now + REFRESH_S
            self._place(member_id, busy)
        if self._reader is not None:
            self._apply(self._reader.poll_batch(MAX_RECORDS, 0.0))
        if now >= self._next_checkpoint:
            self._next_checkpoint = now + CHECKPOINT_S
            self._checkpoint()

    def _place(self, member_id: str, busy: set[str]) -> None:
        members = self._members()
        if all(m.member_id != member_id for m in members):
            return  # this instance is not in the view yet: place once it is
        wanted = place_standbys(members, self._task_of, self._replicas).get(member_id, set())
        wanted -= busy
        gone, new = set(self.tasks) - wanted, wanted - set(self.tasks)
        for task_id in sorted(gone):
            self._close(task_id)
        for task_id in sorted(new):
            self._start(task_id)
        if gone or new:
            log.info("standby tasks: %s", " ".join(sorted(self.tasks)) or "none")
            self._reassign()

    def _start(self, task_id: str) -> None:
        stores = self._open_stores(task_id)
        points = stores.starting_points(self._reader_for_watermarks(), persistent_only=True)
        self.tasks[task_id] = _Standby(stores, {tp: s for tp, (s, _, _) in points.items()},
                                       {tp: start for tp, (_, start, _) in points.items()})

    def _reader_for_watermarks(self) -> Consumer:
        if self._reader is None:
            self._reader = self._clients.consumer(None, {})
        return self._reader

    def _reassign(self) -> None:
        positions = {tp: offset for standby in self.tasks.values()
                     for tp, offset in standby.positions.items()}
        if positions:
            self._reader_for_watermarks().assign(sorted(positions.items()))
        elif self._reader is not None:
            self._reader.close()
            self._reader = None

    def _apply(self, messages: list[Message]) -> None:
        by_tp: dict[TopicPartition, list[Message]] = {}
        for m in messages:
            by_tp.setdefault(TopicPartition(m.topic(), m.partition()), []).append(m)
        for standby in self.tasks.values():
            for tp, s in standby.follow.items():
                batch = by_tp.get(tp)
                if batch:
                    s.store.restore([(m.key(), m.value(), m.timestamp()[1]) for m in batch])
                    standby.positions[tp] = batch[-1].offset() + 1
                if self._reader is None:
                    continue
                position = self._reader.position(tp)
                if position is not None and position > standby.positions[tp]:
                    standby.positions[tp] = position  # past markers and aborted records
                end = self._reader.end_offset(tp)
                if end is not None:
                    standby.ends[tp] = end

    def _checkpoint(self) -> None:
        """What a promoted standby may skip, even after a kill -9: replaying from an older
        offset than the files hold re-applies the same changelog records in order."""
        for standby in self.tasks.values():
            standby.stores.flush()
            standby.stores.checkpoint.write(standby.checkpoint())

    def promote(self, task_id: str) -> None:
        """The task is about to run here: hand its files over, checkpointed, so its restore
        goes on from where the standby got."""
        if task_id in self.tasks:
            self._close(task_id)
            self._reassign()
            log.info("standby task %s promoted", task_id, extra=record_context(task_id))

    def _close(self, task_id: str) -> None:
        standby = self.tasks.pop(task_id)
        standby.stores.close(clean=False, clients=None, restored_to=standby.checkpoint())

    def close(self) -> None:
        for task_id in list(self.tasks):
            self._close(task_id)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
