"""Global tables: every partition of a topic, on every instance, loaded before processing.

The source topic is the changelog: a global store is rebuilt from it at start-up and then
follows it, so it needs no checkpoint and no topic of its own.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from fluvial.errors import TopologyError
from fluvial.io.client import Clients, Consumer, Message, TopicPartition
from fluvial.state.codec import StoreCodec
from fluvial.state.rocksdb import RocksDBKeyValueStore
from fluvial.state.store import InMemoryKeyValueStore, KeyValueStore
from fluvial.topology.nodes import GlobalStoreSpec


class GlobalStores:
    def __init__(self, specs: list[GlobalStoreSpec], clients: Clients, directory: Path) -> None:
        self.specs = {g.topic: g for g in specs}
        self.stores: dict[str, KeyValueStore] = {}
        self._by_topic: dict[str, tuple[KeyValueStore, StoreCodec]] = {}
        shutil.rmtree(directory, ignore_errors=True)
        for g in specs:
            # the store keeps what the topic's serdes read, stamped with the record time
            codec = StoreCodec(g.key_serde, g.value_serde, timestamped=True)
            store: KeyValueStore = (
                RocksDBKeyValueStore(g.store.name, directory / g.store.name, codec)
                if g.store.persistent else InMemoryKeyValueStore(g.store.name))
            self.stores[g.store.name] = store
            self._by_topic[g.topic] = (store, codec)
        self._consumer: Consumer = clients.consumer(None, {})
        counts = clients.admin().partition_counts(list(self.specs))
        missing = [t for t in self.specs if t not in counts]
        if missing:
            raise TopologyError(f"global table topic(s) missing: {', '.join(missing)}")
        self._partitions = [TopicPartition(t, p) for t in self.specs for p in range(counts[t])]

    def bootstrap(self, timeout: float = 300.0) -> None:
        """Read every partition to its current end before the app processes anything."""
        end = {tp: self._consumer.watermarks(tp, 30.0)[1] for tp in self._partitions}
        self._consumer.assign([(tp, 0) for tp in self._partitions])
        position = dict.fromkeys(self._partitions, 0)
        deadline = time.monotonic() + timeout
        while any(position[tp] < end[tp] for tp in self._partitions):
            if time.monotonic() > deadline:
                raise TimeoutError("loading global tables timed out")
            for m in self._consumer.poll_batch(10_000, 0.5):
                self._apply(m)
                position[TopicPartition(m.topic(), m.partition())] = m.offset() + 1

    def poll(self) -> None:
        for m in self._consumer.poll_batch(10_000, 0.0):
            self._apply(m)

    def _apply(self, m: Message) -> None:
        store, codec = self._by_topic[m.topic()]
        key = codec.key_serde.deserialize(m.key())
        value = codec.value_serde.deserialize(m.value())
        if key is None:
            return
        store.put(key, None if value is None else (value, m.timestamp()[1]))

    def close(self) -> None:
        self._consumer.close()
        for store in self.stores.values():
            store.close()
