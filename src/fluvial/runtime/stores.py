"""Opening a task's stores, restoring them from their changelogs, checkpointing on close."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluvial.io.client import Clients, Producer, TopicPartition
from fluvial.state.checkpoint import Checkpoint
from fluvial.state.codec import StoreCodec
from fluvial.state.logged import CachedLoggedStore
from fluvial.state.rocksdb import RocksDBKeyValueStore
from fluvial.state.store import InMemoryKeyValueStore, KeyValueStore
from fluvial.topology.nodes import StoreSpec

log = logging.getLogger("fluvial.state")


@dataclass
class OpenStore:
    spec: StoreSpec
    store: CachedLoggedStore
    backend: KeyValueStore
    codec: StoreCodec
    changelog: TopicPartition | None


class TaskStores:
    """The stores of one task, under ``<state_dir>/<application_id>/<task_id>``."""

    def __init__(self, directory: Path, application_id: str, partition: int,
                 specs: list[StoreSpec], producer: Producer) -> None:
        self.directory = directory
        self.checkpoint = Checkpoint(directory)
        self.stores: dict[str, OpenStore] = {}
        for spec in specs:
            codec = StoreCodec(spec.key_serde, spec.value_serde, spec.timestamped)
            backend: KeyValueStore
            if spec.persistent:
                backend = RocksDBKeyValueStore(spec.name, directory / "rocksdb" / spec.name, codec)
            else:
                backend = InMemoryKeyValueStore(spec.name)
            changelog = (TopicPartition(spec.changelog_topic(application_id), partition)
                         if spec.logged else None)
            send = _changelog_sender(producer, changelog) if changelog else None
            self.stores[spec.name] = OpenStore(spec, CachedLoggedStore(backend, codec, send),
                                               backend, codec, changelog)

    def for_task(self) -> dict[str, KeyValueStore]:
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
                persistent_ok = s.spec.persistent and offset is not None and low <= offset <= high
                if not persistent_ok and isinstance(s.backend, RocksDBKeyValueStore):
                    s.backend.wipe()
                begin = offset if persistent_ok and offset is not None else low
                if begin < high:
                    start[s.changelog], end[s.changelog] = begin, high
                    by_tp[s.changelog] = s
            applied = {s.spec.name: 0 for s in by_tp.values()}
            if not start:
                return applied
            reader.assign(list(start.items()))
            position = dict(start)
            deadline = time.monotonic() + timeout
            while any(position[tp] < end[tp] for tp in start):
                if time.monotonic() > deadline:
                    behind = {f"{tp.topic}[{tp.partition}]": end[tp] - position[tp]
                              for tp in start if position[tp] < end[tp]}
                    raise TimeoutError(f"restoring state timed out; records left: {behind}")
                for m in reader.poll_batch(10_000, 0.5):
                    tp = TopicPartition(m.topic(), m.partition())
                    s = by_tp[tp]
                    if m.offset() >= end[tp]:
                        continue
                    _apply(s, m.key(), m.value())
                    applied[s.spec.name] += 1
                    position[tp] = m.offset() + 1
                for tp in start:  # read_committed: transaction markers are never delivered,
                    if position[tp] < end[tp]:  # but the reader's position moves past them
                        pos = reader.position(tp)
                        if pos is not None and pos > position[tp]:
                            position[tp] = pos
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


def _apply(s: OpenStore, key: bytes | None, value: bytes | None) -> None:
    if key is None:
        return
    if isinstance(s.backend, RocksDBKeyValueStore):
        s.backend.put_raw(key, value)
    else:
        s.backend.put(s.codec.decode_key(key), s.codec.decode_value(value))


def _changelog_sender(producer: Producer, tp: TopicPartition) -> Any:
    topic, partition = tp.topic, tp.partition

    def send(key: bytes, value: bytes | None, timestamp: int) -> None:
        producer.produce(topic, key, value, timestamp, None, partition)

    return send
