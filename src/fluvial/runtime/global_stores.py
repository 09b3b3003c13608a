"""Global tables: every partition of a topic, on every instance, loaded before processing.

The source topic is the changelog: a global store is rebuilt from it at start-up and then
follows it, so it needs no checkpoint and no topic of its own. A record whose key or value
the table's serdes cannot read goes through the app's error policy: stop (the app stops,
naming topic, partition and offset), skip, or dead-letter (its bytes, with the error in
headers, to the dead-letter topic).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

from fluvial.errors import ProcessingError, TopologyError
from fluvial.io.client import Clients, Consumer, Message, Producer, TopicPartition
from fluvial.processing.errors import ErrorPolicy, OnError, RecentErrors, dead_letter_headers
from fluvial.runtime.changelog_reader import read_to_end
from fluvial.state.stack import open_store
from fluvial.state.store import KeyValueStore
from fluvial.topology.nodes import GlobalStoreSpec

log = logging.getLogger("fluvial.global")


class GlobalStores:
    def __init__(self, specs: list[GlobalStoreSpec], clients: Clients, directory: Path,
                 policy: ErrorPolicy | None = None, application_id: str = "") -> None:
        self.specs = {g.topic: g for g in specs}
        self.policy = policy or ErrorPolicy()
        self.application_id = application_id
        self.skipped = 0  # records skipped or dead-lettered
        self.recent_errors = RecentErrors()
        self._clients = clients
        self._dead_letters: Producer | None = None
        self.stores: dict[str, KeyValueStore] = {}
        self._by_topic: dict[str, tuple[KeyValueStore, GlobalStoreSpec]] = {}
        shutil.rmtree(directory, ignore_errors=True)
        for g in specs:
            # the store keeps what the topic's serdes read, stamped with the record time
            spec = replace(g.store, key_serde=g.key_serde, value_serde=g.value_serde,
                           timestamped=True, kind="kv")
            store = open_store(spec, directory, None)
            assert isinstance(store, KeyValueStore)
            self.stores[g.store.name] = store
            self._by_topic[g.topic] = (store, g)
        self._consumer: Consumer = clients.consumer(None, {})
        counts = clients.admin().partition_counts(list(self.specs))
        missing = [t for t in self.specs if t not in counts]
        if missing:
            raise TopologyError(f"global table topic(s) missing: {', '.join(missing)}")
        self._partitions = [TopicPartition(t, p) for t in self.specs for p in range(counts[t])]

    def bootstrap(self, timeout: float = 300.0) -> None:
        """Read every partition to its current end before the app processes anything."""
        end = {tp: self._consumer.watermarks(tp, 30.0)[1] for tp in self._partitions}
        start = dict.fromkeys(self._partitions, 0)
        read_to_end(self._consumer, start, end, self._apply, timeout, "loading global tables")
        self._flush()
        # follow every partition from where loading stopped (records past the end that the
        # last poll fetched were left for this)
        self._consumer.assign(list(end.items()))

    def poll(self) -> None:
        messages = self._consumer.poll_batch(10_000, 0.0)
        if messages:
            for m in messages:
                self._apply(TopicPartition(m.topic(), m.partition()), [m])
            self._flush()

    def _apply(self, tp: TopicPartition, messages: list[Message]) -> None:
        store, g = self._by_topic[tp.topic]
        for m in messages:
            try:
                key = g.key_serde.deserialize(m.key())
                value = g.value_serde.deserialize(m.value())
                if key is None:
                    continue
                store.put(key, None if value is None else (value, m.timestamp()[1]))
            except Exception as exc:
                self._on_error(m, exc, f"global table {g.store.name!r}")

    def _on_error(self, m: Message, error: Exception, stage: str) -> None:
        message = (f"application {self.application_id!r} {stage}: reading failed on topic "
                   f"{m.topic()!r} partition {m.partition()} offset {m.offset()}: "
                   f"{type(error).__name__}: {error}")
        mode = self.policy.on_error
        if mode is OnError.STOP:
            raise ProcessingError(message, application_id=self.application_id,
                                  topic=m.topic(), partition=m.partition(), offset=m.offset(),
                                  stage=stage) from error
        self.skipped += 1
        self.recent_errors.note(mode.value, f"{stage}: {type(error).__name__}: {error}",
                                m.topic(), m.partition(), m.offset())
        if mode is OnError.SKIP:
            log.warning("skipped: %s", message)
            return
        if self._dead_letters is None:
            self._dead_letters = self._clients.producer({})
        headers = dead_letter_headers(m.headers(), message, stage, m.topic(), m.partition(),
                                      m.offset(), None)
        self._dead_letters.produce(self.policy.topic(self.application_id), m.key(), m.value(),
                                   m.timestamp()[1], headers, None)
        log.warning("dead-lettered: %s", message)

    def _flush(self) -> None:
        for store in self.stores.values():
            store.flush()
        if self._dead_letters is not None:
            self._dead_letters.flush(60.0)

    def close(self) -> None:
        self._consumer.close()
        if self._dead_letters is not None:
            self._dead_letters.close()
        for store in self.stores.values():
            store.close()
