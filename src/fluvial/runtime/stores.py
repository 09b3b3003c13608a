"""Opening a task's stores, restoring them from their changelogs, checkpointing on close."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from fluvial.io.client import Clients, Consumer, Message, Producer, TopicPartition
from fluvial.logs import record_context
from fluvial.runtime.changelog_reader import CatchUp
from fluvial.runtime.restore_progress import RestoreProgress
from fluvial.state.cache import ChangelogSend
from fluvial.state.checkpoint import Checkpoint
from fluvial.state.stack import open_store
from fluvial.state.store import StateStore
from fluvial.topology.nodes import StoreSpec

log = logging.getLogger("fluvial.state")


@dataclass
class OpenStore:
    spec: StoreSpec
    store: StateStore
    changelog: TopicPartition | None


class TaskStores:
    """The stores of one task, under ``<state_dir>/<application_id>/<task_id>``."""

    def __init__(self, directory: Path, application_id: str, partition: int,
                 specs: list[StoreSpec], producer: Producer) -> None:
        self.directory = directory
        self.checkpoint = Checkpoint(directory)
        self.stores: dict[str, OpenStore] = {}
        for spec in specs:
            changelog = (TopicPartition(spec.changelog_topic(application_id), partition)
                         if spec.logged else None)
            send = changelog_sender(producer, changelog) if changelog else None
            store = open_store(spec, directory / "rocksdb", send)
            self.stores[spec.name] = OpenStore(spec, store, changelog)

    def for_task(self) -> dict[str, StateStore]:
        return {name: s.store for name, s in self.stores.items()}

    def starting_points(self, reader: Consumer, persistent_only: bool = False
                        ) -> dict[TopicPartition, tuple[OpenStore, int, int]]:
        """Per changelog: its store, where applying starts and the changelog's end now.

        A store starts at its checkpoint when that can be trusted (persistent, within the
        changelog's range); otherwise it is wiped and starts at the changelog's beginning.
        Takes the checkpoint: from here on the files are in use and it no longer vouches
        for them.
        """
        checkpoint = self.checkpoint.take()
        points: dict[TopicPartition, tuple[OpenStore, int, int]] = {}
        for name, s in self.stores.items():
            if s.changelog is None or (persistent_only and not s.spec.persistent):
                continue
            low, high = reader.watermarks(s.changelog, timeout=30.0)
            offset = checkpoint.get(name)
            if not (s.spec.persistent and offset is not None and low <= offset <= high):
                s.store.backend.wipe()
                offset = low
            points[s.changelog] = (s, offset, high)
        return points

    def begin_restore(self, clients: Clients, timeout: float = 300.0) -> StoreRestore:
        """Start bringing every logged store up to its changelog's end (``StoreRestore.step``).

        The reader is read_committed: under exactly-once it applies committed transactions
        only, and waits for an open one (a crashed instance's) to be aborted or committed.
        """
        return StoreRestore(self, clients, timeout)

    def flush(self) -> None:
        for s in self.stores.values():
            s.store.flush()

    def close(self, clean: bool, clients: Clients | None,
              restored_to: dict[str, int] | None = None) -> None:
        """Close the stores; after a clean commit, checkpoint the changelog ends. A task that
        closes mid-restore checkpoints how far it got (``restored_to``): its next owner, if
        this instance, goes on from there."""
        offsets: dict[str, int] = {}
        if restored_to is not None:
            offsets = {name: offset for name, offset in restored_to.items()
                       if self.stores[name].spec.persistent}
        elif clean and clients is not None:
            reader = clients.consumer(None, {})
            try:
                for name, s in self.stores.items():
                    if s.changelog is not None and s.spec.persistent:
                        offsets[name] = reader.watermarks(s.changelog, timeout=30.0)[1]
            finally:
                reader.close()
        for s in self.stores.values():
            s.store.close()
        if offsets:
            self.checkpoint.write(offsets)

    def wipe(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class StoreRestore:
    """A task's logged stores catching up with their changelogs, one poll per ``step``.

    A store whose checkpoint is missing or out of the changelog's range (or that lives in
    memory) is wiped and rebuilt from the changelog's start.
    """

    def __init__(self, stores: TaskStores, clients: Clients, timeout: float) -> None:
        self._task = stores.directory.name
        self._reader = clients.consumer(None, {})
        try:
            points = stores.starting_points(self._reader)
            self._by_tp = {tp: s for tp, (s, _, _) in points.items()}
            todo = {tp: (s, start, end) for tp, (s, start, end) in points.items() if start < end}
            self.applied = {s.spec.name: 0 for s, _, _ in todo.values()}
            self._progress = RestoreProgress(
                self._task, {s.spec.name: end - start for s, start, end in todo.values()})
            self._catch_up = CatchUp(self._reader, {tp: p[1] for tp, p in points.items()},
                                     {tp: p[2] for tp, p in points.items()}, self._apply,
                                     timeout, f"restoring the stores of {self._task}")
        except BaseException:
            self._reader.close()
            raise
        self._started = time.monotonic()

    def _apply(self, tp: TopicPartition, messages: list[Message]) -> None:
        s = self._by_tp[tp]
        s.store.restore([(m.key(), m.value(), m.timestamp()[1]) for m in messages])
        self.applied[s.spec.name] += len(messages)
        self._progress.report(self.applied)

    def step(self, wait: float) -> bool:
        """Apply one poll's records (waiting up to ``wait`` s); True once every store is at
        its changelog's end (the reader is closed then)."""
        if not self._catch_up.step(wait):
            return False
        if self.applied:
            log.info("task %s restored %s in %.2fs", self._task, self.applied,
                     time.monotonic() - self._started, extra=record_context(self._task))
        self._reader.close()
        return True

    def progress(self) -> tuple[int, int]:
        """(records applied, records to apply) over the task's stores, for the dashboard."""
        return sum(self.applied.values()), sum(self._progress.totals.values())

    def positions(self) -> dict[str, int]:
        """How far each logged store got: every changelog offset below it is applied."""
        return {s.spec.name: self._catch_up.position[tp] for tp, s in self._by_tp.items()}

    def abandon(self) -> None:
        """The task closes before its stores caught up."""
        self._reader.close()


def changelog_sender(producer: Producer, tp: TopicPartition) -> ChangelogSend:
    topic, partition = tp.topic, tp.partition

    def send(key: bytes, value: bytes | None, timestamp: int) -> None:
        producer.produce(topic, key, value, timestamp, None, partition)

    return send
