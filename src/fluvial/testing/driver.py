"""TestDriver: run a topology synchronously, record by record, with no broker.

Like Kafka Streams' TopologyTestDriver: every topic has one partition, each piped record is
processed (through repartition topics too) and committed before ``pipe`` returns, so every
intermediate update is visible; the record cache is off unless ``record_cache=True``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from fluvial.errors import TopologyError
from fluvial.io.embedded.message import EmbeddedMessage
from fluvial.io.serdes import BytesSerde, Serde, resolve
from fluvial.processing.errors import ErrorPolicy, OnError
from fluvial.processing.processor import CollectorBase
from fluvial.processing.task import Task
from fluvial.record import Headers
from fluvial.state.stack import open_store
from fluvial.state.store import KeyValueStore, ReadOnlyView, StateStore
from fluvial.topology.nodes import SinkNode, SourceNode, StoreSpec
from fluvial.topology.topology import Topology


@dataclass
class TestRecord:
    key: Any
    value: Any
    timestamp: int
    headers: Headers | None = None

    __test__ = False  # not a pytest test class


class TestDriver(CollectorBase):
    __test__ = False

    def __init__(self, topology: Topology, application_id: str = "test-app",
                 on_error: str | OnError = OnError.STOP, dead_letter_topic: str | None = None,
                 wall_clock_ms: int | None = None, record_cache: bool = False) -> None:
        self.topology = topology
        self.application_id = application_id
        self._settings = (on_error, dead_letter_topic, record_cache)
        self._clock = int(time.time() * 1000) if wall_clock_ms is None else wall_clock_ms
        self._topics: dict[str, list[EmbeddedMessage]] = {}
        self._tasks: dict[str, Task] = {}  # real input topic -> task
        self._global: dict[str, tuple[KeyValueStore, Serde, Serde]] = {}
        # every store runs the production stack (serdes, cache, changelog) over memory
        self._stores: dict[str, StateStore] = {}
        self._written: list[EmbeddedMessage] = []  # by the step being settled, to topics read
        policy = ErrorPolicy.parse(on_error, dead_letter_topic)
        global_stores: dict[str, KeyValueStore] = {}
        for g in topology.global_stores:
            spec = StoreSpec(g.store.name, g.key_serde, g.value_serde, persistent=False)
            store = open_store(spec, None, None)
            assert isinstance(store, KeyValueStore)
            self._global[g.topic] = (store, g.key_serde, g.value_serde)
            self._stores[g.store.name] = store
            global_stores[g.store.name] = store
        for st in topology.subtopologies:
            stores: dict[str, StateStore] = {}
            for spec in st.stores:
                changelog = (partial(self._append_changelog, spec.changelog_topic(application_id))
                             if spec.logged else None)
                stores[spec.name] = open_store(spec, None, changelog)
                self._stores[spec.name] = stores[spec.name]
            task = Task(f"{st.id}_0", st, 0, application_id, stores, self, policy,
                        self._now, caching=record_cache, global_stores=global_stores)
            task.emit_interval_ms = 0  # closed windows emitted after every record, as TTD does
            for topic in st.source_topics(application_id):
                self._tasks[topic] = task

    def _now(self) -> int:
        return self._clock

    # -- Collector: where sinks write ----------------------------------------------------

    def send(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
             headers: Headers | None, partition: int | None) -> None:
        message = self._append(topic, key, value, timestamp, headers)
        if topic in self._tasks or topic in self._global:  # the topology reads it: feed back
            self._written.append(message)

    def _append_changelog(self, topic: str, key: bytes, value: bytes | None,
                          timestamp: int) -> None:
        self._append(topic, key, value, timestamp, None)

    def _append(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
                headers: Headers | None) -> EmbeddedMessage:
        log = self._topics.setdefault(topic, [])
        log.append(EmbeddedMessage(topic, 0, len(log), key, value, timestamp, headers))
        return log[-1]

    # -- driving ---------------------------------------------------------------------------

    def _pipe(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
              headers: Headers | None) -> None:
        if topic in self._global:
            self._update_global(topic, key, value, timestamp)
            return
        self._check_input(topic)
        message = self._append(topic, key, value, timestamp, headers)
        task = self._tasks[topic]
        self._settle(lambda: task.process(topic, [message]), task)

    def _check_input(self, topic: str) -> None:
        if topic not in self._tasks and topic not in self._global:
            known = ", ".join(sorted([t for t in self._tasks if not self._is_internal(t)]
                                     + list(self._global)))
            raise TopologyError(f"no source reads topic {topic!r}; the topology reads: {known}")

    def _settle(self, step: Callable[[], object], task: Task) -> None:
        """Run ``step`` on ``task`` and commit; then pipe what it wrote to topics the topology
        reads (repartition topics, or its own input topics) back in, each record in write
        order and fully processed before the next, as TopologyTestDriver does."""
        outer, self._written = self._written, []
        try:
            step()
            task.flush()
            written = self._written
        finally:
            self._written = outer
        for m in written:
            topic = m.topic()
            if topic in self._global:
                self._update_global(topic, m.key(), m.value(), m.timestamp()[1])
            else:
                reader = self._tasks[topic]
                self._settle(partial(reader.process, topic, [m]), reader)

    def _is_internal(self, topic: str) -> bool:
        return topic.startswith(f"{self.application_id}-") and topic.endswith("-repartition")

    def _update_global(self, topic: str, key: bytes | None, value: bytes | None,
                       timestamp: int) -> None:
        store, ks, vs = self._global[topic]
        k = ks.deserialize(key)
        v = vs.deserialize(value)
        if k is not None:
            store.put(k, None if v is None else (v, timestamp))
            store.flush()

    def _unique_tasks(self) -> list[Task]:
        return list({id(t): t for t in self._tasks.values()}.values())

    def advance_wall_clock(self, ms: int) -> None:
        """Move the wall clock and fire the wall-clock punctuators that are due."""
        self._clock += ms
        for task in self._unique_tasks():
            self._settle(task.punctuate_wall_clock, task)

    # -- topics and stores --------------------------------------------------------------

    def input_topic(self, name: str, key_serde: Serde | str | None = None,
                    value_serde: Serde | str | None = None, start_timestamp: int | None = None,
                    auto_advance_ms: int = 0) -> TestInputTopic:
        self._check_input(name)
        ks, vs = self._source_serdes(name)
        return TestInputTopic(self, name, resolve(key_serde, ks), resolve(value_serde, vs),
                              self._clock if start_timestamp is None else start_timestamp,
                              auto_advance_ms)

    def output_topic(self, name: str, key_serde: Serde | str | None = None,
                     value_serde: Serde | str | None = None) -> TestOutputTopic:
        ks, vs = self._sink_serdes(name)
        return TestOutputTopic(self, name, resolve(key_serde, ks), resolve(value_serde, vs))

    @property
    def dropped_records(self) -> int:
        """Records operators dropped by their semantics (late for a closed window, ...)."""
        return sum(task.dropped for task in self._unique_tasks())

    def store(self, name: str) -> Any:
        """A key-value store's committed state (values without timestamps); a window,
        session or versioned store itself (read it, don't write it)."""
        try:
            store = self._stores[name]
        except KeyError:
            known = ", ".join(sorted(self._stores))
            raise KeyError(f"no store {name!r}; stores: {known}") from None
        return ReadOnlyView(store) if isinstance(store, KeyValueStore) else store

    def read(self, topic: str) -> list[EmbeddedMessage]:
        return self._topics.get(topic, [])

    def _source_serdes(self, topic: str) -> tuple[Serde, Serde]:
        for node in self.topology.nodes.values():
            if isinstance(node, SourceNode) and topic in node.topics and not node.internal:
                return node.key_serde or BytesSerde(), node.value_serde or BytesSerde()
        for g in self.topology.global_stores:
            if g.topic == topic:
                return g.key_serde, g.value_serde
        return BytesSerde(), BytesSerde()

    def _sink_serdes(self, topic: str) -> tuple[Serde, Serde]:
        sinks = [n for n in self.topology.nodes.values() if isinstance(n, SinkNode)]
        # a sink named for the topic, else one that chooses its topic per record
        matches = [n for n in sinks if n.topic == topic] + [n for n in sinks if callable(n.topic)]
        if matches:
            return matches[0].key_serde or BytesSerde(), matches[0].value_serde or BytesSerde()
        return BytesSerde(), BytesSerde()

    def restarted(self) -> TestDriver:
        """A fresh driver on the same topology whose stores are restored from this one's
        changelog topics: an instance taking over after this one stopped with everything
        committed. Its operators start afresh (observed stream times are not kept, as in
        Kafka Streams); its output topics start empty; it keeps the changelogs."""
        on_error, dead_letter_topic, record_cache = self._settings
        other = TestDriver(self.topology, self.application_id, on_error, dead_letter_topic,
                           self._clock, record_cache)
        for st in self.topology.subtopologies:
            for spec in st.stores:
                topic = spec.changelog_topic(self.application_id)
                log = self._topics.get(topic, []) if spec.logged else []
                if log:
                    other._stores[spec.name].restore(
                        [(m.key(), m.value(), m.timestamp()[1]) for m in log])
                    other._topics[topic] = list(log)
        return other

    def close(self) -> None:
        for task in self._unique_tasks():
            task.close()

    def __enter__(self) -> TestDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TestInputTopic:
    __test__ = False

    def __init__(self, driver: TestDriver, name: str, key_serde: Serde, value_serde: Serde,
                 start_timestamp: int, auto_advance_ms: int) -> None:
        self._driver = driver
        self.name = name
        self._ks = key_serde
        self._vs = value_serde
        self._time = start_timestamp
        self._advance = auto_advance_ms

    def pipe(self, value: Any, key: Any = None, timestamp: int | None = None,
             headers: Headers | None = None) -> None:
        if timestamp is None:
            timestamp = self._time
            self._time += self._advance
        self._driver._pipe(self.name, self._ks.serialize(key), self._vs.serialize(value),
                           timestamp, headers)

    def pipe_list(self, values: Iterable[Any], timestamp: int | None = None) -> None:
        """Pipe values (no key), one record at a time."""
        for value in values:
            self.pipe(value, timestamp=timestamp)

    def pipe_key_values(self, pairs: Iterable[tuple[Any, Any]],
                        timestamp: int | None = None) -> None:
        for key, value in pairs:
            self.pipe(value, key=key, timestamp=timestamp)

    def advance_time(self, ms: int) -> None:
        self._time += ms


class TestOutputTopic:
    __test__ = False

    def __init__(self, driver: TestDriver, name: str, key_serde: Serde,
                 value_serde: Serde) -> None:
        self._driver = driver
        self.name = name
        self._ks = key_serde
        self._vs = value_serde
        self._position = 0

    def _next(self) -> EmbeddedMessage:
        log = self._driver.read(self.name)
        if self._position >= len(log):
            raise LookupError(f"output topic {self.name!r} has no more records")
        message = log[self._position]
        self._position += 1
        return message

    def read_record(self) -> TestRecord:
        m = self._next()
        return TestRecord(self._ks.deserialize(m.key()), self._vs.deserialize(m.value()),
                          m.timestamp()[1], m.headers())

    def read_value(self) -> Any:
        return self.read_record().value

    def read_key_value(self) -> tuple[Any, Any]:
        r = self.read_record()
        return r.key, r.value

    def read_records(self) -> list[TestRecord]:
        out = []
        while not self.is_empty():
            out.append(self.read_record())
        return out

    def read_values(self) -> list[Any]:
        return [r.value for r in self.read_records()]

    def read_key_values(self) -> list[tuple[Any, Any]]:
        return [(r.key, r.value) for r in self.read_records()]

    def read_key_values_to_map(self) -> dict[Any, Any]:
        """The latest value per key (a tombstone removes the key)."""
        result: dict[Any, Any] = {}
        for key, value in self.read_key_values():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = value
        return result

    def queue_size(self) -> int:
        return len(self._driver.read(self.name)) - self._position

    def is_empty(self) -> bool:
        return self.queue_size() == 0
