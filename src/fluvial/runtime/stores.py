"""Opening a task's stores, restoring them from their changelogs, checkpointing on close."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from fluvial.io.client import Clients, Message, Producer, TopicPartition
from fluvial.runtime.changelog_reader import read_to_end
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

    def restore(self, clients: Clients, timeout: float = 300.0) -> dict[str, int]:
        """Bring every logged store up to its changelog's end; returns records applied.

        The reader is read_committed: under exactly-once it applies committed transactions
        only, and waits for an open one (a crashed instance's) to be aborted or committed.
        """
        checkpoint = self.checkpoint.take()
        reader = clients.consumer(None, {})
        try:
            start: dict[TopicPartition, int] = {}
            end: dict[TopicPartition, int] = {}
            by_tp: dict[TopicPartition, OpenStore] = {}
            for name, s in self.stores.items():
                if s.changelog is None:
                    continue
                low, high = reader.watermarks(s.changelog, timeout=30.0)
                offset = checkpoint.get(name)
                trusted = s.spec.persistent and offset is not None and low <= offset <= high
                if not trusted:
                    s.store.backend.wipe()
                start[s.changelog] = offset if trusted and offset is not None else low
                end[s.changelog] = high
                by_tp[s.changelog] = s
            applied = {s.spec.name: 0 for tp, s in by_tp.items() if start[tp] < end[tp]}
            progress = RestoreProgress(self.directory.name, {
                s.spec.name: end[tp] - start[tp] for tp, s in by_tp.items() if start[tp] < end[tp]})

            def apply(tp: TopicPartition, messages: list[Message]) -> None:
                s = by_tp[tp]
                s.store.restore([(m.key(), m.value(), m.timestamp()[1]) for m in messages])
                applied[s.spec.name] += len(messages)
                progress.report(applied)

            read_to_end(reader, start, end, apply, timeout,
                        f"restoring the stores of {self.directory.name}")
            if applied:
                log.info("restored %s in %s", applied, self.directory.name)
            return applied
        finally:
            reader.close()

    def flush(self) -> None:
        for s in self.stores.values():
            s.store.flush()

    def close(self, clean: bool, clients: Clients | None) -> None:
        """Close the stores; after a clean commit, checkpoint the changelog ends."""
        offsets: dict[str, int] = {}
        if clean and clients is not None:
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


def changelog_sender(producer: Producer, tp: TopicPartition) -> ChangelogSend:
    topic, partition = tp.topic, tp.partition

    def send(key: bytes, value: bytes | None, timestamp: int) -> None:
        producer.produce(topic, key, value, timestamp, None, partition)

    return send
