"""A task: one sub-topology for one partition, run a batch at a time.

The task walks its nodes in topological order once per batch; each node gets everything its
parents forwarded for that batch. A node fed by several parents (``merge`` after ``split``)
re-sorts its input by source offset, so it sees records in the order per-record processing
would have given it. Offsets cannot order records that share one (a ``flat_map``'s outputs,
one record sent down two paths): where such records can meet again in a merge, the task runs
depth-first instead, each forwarded record going through the children before the next. So it
does where two paths from one source share a store (a stream joined with a table built from
the same stream): the join must see the table as it was at each record, not after the batch.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fluvial.errors import ProcessingError, RegistryUnavailableError, TopologyError
from fluvial.io.client import Message
from fluvial.io.serdes import BytesSerde, Serde, fast_deserializer
from fluvial.logs import record_context
from fluvial.processing.errors import ErrorPolicy, OnError, RecentErrors, dead_letter_headers
from fluvial.processing.fused import FusedChain
from fluvial.processing.processor import (
    Collector,
    Processor,
    PunctuationType,
    Punctuator,
)
from fluvial.processing.sink import Sink
from fluvial.processing.stateless import Split
from fluvial.processing.timestamps import TimestampExtractor
from fluvial.record import Record
from fluvial.state.store import KeyValueStore, StateStore
from fluvial.topology.nodes import ProcessorNode, SinkNode, SourceNode
from fluvial.topology.topology import SubTopology

log = logging.getLogger("fluvial.task")

_BYTES = BytesSerde()


@dataclass
class _Schedule:
    node: int
    interval: int
    kind: PunctuationType
    callback: Punctuator
    next_time: int


class _Context:
    """The ProcessorContext of one node in one task."""

    def __init__(self, task: Task, index: int, children: list[int], names: list[str],
                 stores: frozenset[str]) -> None:
        self._task = task
        self._index = index
        self._children = children
        self._by_name = dict(zip(names, children, strict=True))
        self._stores = stores

    application_id = property(lambda self: self._task.application_id)
    task_id = property(lambda self: self._task.task_id)
    partition = property(lambda self: self._task.partition)
    stream_time = property(lambda self: self._task.stream_time)
    wall_clock_time = property(lambda self: self._task.clock())
    collector = property(lambda self: self._task.collector)
    caching = property(lambda self: self._task.caching)
    emit_interval_ms = property(lambda self: self._task.emit_interval_ms)

    def forward(self, batch: list[Record], child: str | None = None) -> None:
        targets = self._children if child is None else [self._by_name[child]]
        if self._task.depth_first:
            processors = self._task._processors
            for record in batch:
                for c in targets:
                    processors[c].process([record])  # type: ignore[union-attr]
            return
        enqueue = self._task._enqueue
        for c in targets:
            enqueue(c, batch)

    def get_store(self, name: str) -> Any:
        if name in self._stores:
            return self._task.stores[name]
        global_store = self._task.global_stores.get(name)
        if global_store is not None:  # every processor may read a global store
            return global_store
        raise TopologyError(f"store {name!r} is not connected to this processor; "
                            f"connect it with stores=[...]")

    def schedule(self, interval_ms: int, kind: PunctuationType, callback: Punctuator) -> None:
        if interval_ms <= 0:
            raise ValueError("a punctuation interval must be positive")
        # as Kafka Streams: stream time punctuates at the first data, then at multiples of the
        # interval; wall-clock time once the interval has passed from now
        first = 0 if kind is PunctuationType.STREAM_TIME else self._task.clock() + interval_ms
        self._task._schedules.append(_Schedule(self._index, interval_ms, kind, callback, first))

    def topic_name(self, name: str) -> str:
        return f"{self._task.application_id}-{name}"

    def on_error(self, record: Record, error: BaseException, stage: str) -> None:
        self._task.on_error(record, error, stage)

    def record_dropped(self, record: Record, reason: str) -> None:
        self._task.dropped += 1
        log.debug("task %s dropped a record at %s: %s", self._task.task_id, record.where(),
                  reason, extra=record_context(self._task.task_id, record.topic,
                                               record.partition, record.offset))


class Task:
    def __init__(self, task_id: str, subtopology: SubTopology, partition: int,
                 application_id: str, stores: Mapping[str, StateStore],
                 collector: Collector, policy: ErrorPolicy,
                 clock: Callable[[], int], caching: bool = False,
                 global_stores: Mapping[str, KeyValueStore] | None = None,
                 recent_errors: RecentErrors | None = None) -> None:
        self.task_id = task_id
        self.subtopology = subtopology
        self.partition = partition
        self.application_id = application_id
        self.stores = dict(stores)
        #: global stores by name, readable (not writable) by every processor; their owner
        #: (the runtime or the TestDriver) updates them between batches, never during one
        self.global_stores: Mapping[str, KeyValueStore] = global_stores or {}
        self.collector = collector
        self.policy = policy
        self.clock = clock
        self.caching = caching
        #: how often (wall clock) on-window-close aggregations look for closed windows:
        #: Kafka Streams' 1 s; the TestDriver sets 0 (every record), as TopologyTestDriver
        self.emit_interval_ms = 1000
        self.stream_time = -1
        self.skipped = 0
        #: where skipped and dead-lettered records are told (the runtime's, for its dashboard)
        self.recent_errors = recent_errors
        #: records operators dropped by their semantics (late for a closed window, a null key
        #: a windowed aggregation cannot group): Kafka Streams' dropped-records metric
        self.dropped = 0
        self._schedules: list[_Schedule] = []
        self._current: list[Message] = []
        self.depth_first = False

        nodes = subtopology.nodes
        index = {n.name: i for i, n in enumerate(nodes)}
        self._queues: list[list[Record] | None] = [None] * len(nodes)
        self._mixed = [False] * len(nodes)
        self._processors: list[Processor | None] = []
        self._sources: dict[str, tuple[int, Serde, Serde, Any, Any]] = {}
        self._extractors: dict[str, TimestampExtractor] = {}
        #: per source topic: the largest event time extracted so far (what extractors see)
        self._partition_time: dict[str, int] = {}
        self._source_contexts: dict[int, _Context] = {}
        child_indexes: list[list[int]] = []
        for i, node in enumerate(nodes):
            children = [index[c] for c in node.children]
            child_indexes.append(children)
            names = list(node.children)
            processor: Processor | None = None
            store_names: frozenset[str] = frozenset()
            if isinstance(node, SourceNode):
                for topic in node.topics:
                    real = f"{application_id}-{topic}" if node.internal else topic
                    ks, vs = node.key_serde or _BYTES, node.value_serde or _BYTES
                    self._sources[real] = (i, ks, vs, fast_deserializer(ks),
                                           fast_deserializer(vs))
                    if node.timestamp_extractor is not None:
                        self._extractors[real] = node.timestamp_extractor
            elif isinstance(node, ProcessorNode):
                assert node.supplier is not None
                processor = node.supplier()
                store_names = frozenset(node.stores)
            elif isinstance(node, SinkNode):
                processor = Sink(node.topic, node.key_serde or _BYTES, node.value_serde or _BYTES,
                                 node.internal, node.partitioner)
            context = _Context(self, i, children, names, store_names)
            self._processors.append(processor)
            if processor is not None:
                processor.init(context)
            else:
                self._source_contexts[i] = context
        self.depth_first = (_merges_after_fan_out(nodes, self._processors)
                            or _shares_a_store_below_one_source(nodes))
        parents = [len(n.parents) for n in nodes]
        #: source topic -> its fused chain, where the sub-topology below it is one
        self.fused: dict[str, FusedChain] = {}
        for topic, (i, _, _, kd, vd) in self._sources.items():
            if topic in self._extractors:  # the fused chain keeps the record's timestamp
                continue
            chain = FusedChain.find(child_indexes, parents, self._processors, i, kd, vd)
            if chain is not None:
                self.fused[topic] = chain

    # -- input ---------------------------------------------------------------------------

    def process(self, topic: str, messages: list[Message]) -> None:
        """Run one poll batch of ``topic``'s partition (offset order) through the sub-topology."""
        index, key_serde, value_serde, kd, vd = self._sources[topic]
        partition = self.partition
        self._current = messages
        fused = self.fused.get(topic)
        if fused is not None and fused.run(topic, partition, messages):
            self._current = []
            return
        try:
            records = [Record(kd(m.key()), vd(m.value()), m.timestamp()[1], m.headers(), topic,
                              partition, m.offset()) for m in messages]
        except Exception:  # a tombstone for a fast path, or a bad record: go one by one
            records = self._decode_one_by_one(topic, messages, key_serde.deserialize,
                                              value_serde.deserialize)
        extractor = self._extractors.get(topic)
        if extractor is not None or (records and min(map(_timestamp, records)) < 0):
            records = self._event_times(topic, extractor, records)
        if records:
            latest = max(map(_timestamp, records))
            self._source_contexts[index].forward(records)
            self._pump(index)
            if latest > self.stream_time:
                self.stream_time = latest
                self._punctuate(PunctuationType.STREAM_TIME, latest)
        self._current = []

    def _event_times(self, topic: str, extractor: TimestampExtractor | None,
                     records: list[Record]) -> list[Record]:
        """Give each record its event time from the source's extractor (or check its own);
        a failing extractor or a negative time sends the record to the error policy."""
        kept: list[Record] = []
        partition_time = self._partition_time.get(topic, -1)
        for r in records:
            try:
                ts = r.timestamp if extractor is None else extractor.extract(r, partition_time)
                if not isinstance(ts, int):
                    raise TypeError(f"the timestamp extractor returned {ts!r}, not an int")
                if ts < 0:
                    raise ValueError(f"invalid (negative) timestamp {ts}: event time must be "
                                     f">= 0; use a timestamp extractor that gives one")
            except Exception as exc:
                self.on_error(r, exc, "extracting the timestamp")
                continue
            r.timestamp = ts
            if ts > partition_time:
                partition_time = ts
            kept.append(r)
        self._partition_time[topic] = partition_time
        return kept

    def _decode_one_by_one(self, topic: str, messages: list[Message], kd: Any,
                           vd: Any) -> list[Record]:
        records: list[Record] = []
        for m in messages:
            try:
                key = kd(m.key())
            except Exception as exc:
                self.on_error(Record(m.key(), m.value(), m.timestamp()[1], m.headers(), topic,
                                     self.partition, m.offset()), exc, "deserializing the key")
                continue
            try:
                value = vd(m.value())
            except Exception as exc:
                self.on_error(Record(m.key(), m.value(), m.timestamp()[1], m.headers(), topic,
                                     self.partition, m.offset()), exc, "deserializing the value")
                continue
            records.append(Record(key, value, m.timestamp()[1], m.headers(), topic,
                                  self.partition, m.offset()))
        return records

    def _enqueue(self, index: int, batch: list[Record]) -> None:
        queued = self._queues[index]
        if queued is None:
            self._queues[index] = batch
        elif self._mixed[index]:
            queued.extend(batch)
        else:
            self._queues[index] = queued + batch
            self._mixed[index] = True

    def _pump(self, start: int) -> None:
        queues, processors, mixed = self._queues, self._processors, self._mixed
        try:
            for i in range(start, len(queues)):
                batch = queues[i]
                if batch is None:
                    continue
                queues[i] = None
                if mixed[i]:
                    mixed[i] = False
                    batch.sort(key=_offset)
                processor = processors[i]
                if processor is not None and batch:
                    processor.process(batch)
        except BaseException:
            # the batch failed (on_error=stop): nothing of it may run with the next one
            queues[:] = [None] * len(queues)
            mixed[:] = [False] * len(mixed)
            raise

    # -- time ----------------------------------------------------------------------------

    def punctuate_wall_clock(self) -> bool:
        """Run the wall-clock punctuators that are due; whether any ran (and may have
        changed state or sent records)."""
        return self._punctuate(PunctuationType.WALL_CLOCK_TIME, self.clock())

    def _punctuate(self, kind: PunctuationType, now: int) -> bool:
        fired = False
        for schedule in self._schedules:
            if schedule.kind is kind and now >= schedule.next_time:
                # fire once however many intervals passed, as Kafka Streams does
                behind = (now - schedule.next_time) // schedule.interval + 1
                schedule.next_time += behind * schedule.interval
                schedule.callback(now)
                self._pump(schedule.node)
                fired = True
        return fired

    # -- errors --------------------------------------------------------------------------

    def on_error(self, record: Record, error: BaseException, stage: str) -> None:
        if isinstance(error, RegistryUnavailableError):
            raise error  # not the record's fault: no policy may drop it
        where = record.where()
        message = (f"application {self.application_id!r} task {self.task_id}: {stage} failed "
                   f"on {where}: {type(error).__name__}: {error}")
        mode = self.policy.on_error
        if mode is OnError.STOP:
            raise ProcessingError(message, application_id=self.application_id,
                                  task_id=self.task_id, topic=record.topic,
                                  partition=record.partition, offset=record.offset,
                                  stage=stage) from error
        self.skipped += 1
        context = record_context(self.task_id, record.topic, record.partition, record.offset,
                                 stage)
        if self.recent_errors is not None:
            self.recent_errors.note(mode.value, f"{stage}: {type(error).__name__}: {error}",
                                    record.topic, record.partition, record.offset, self.task_id)
        if mode is OnError.SKIP:
            log.warning("skipped: %s", message, extra=context)
            return
        raw = self._raw(record)
        headers = dead_letter_headers(raw.headers() if raw is not None else None, message,
                                      stage, record.topic, record.partition, record.offset,
                                      self.task_id)
        key = raw.key() if raw is not None else None
        value = raw.value() if raw is not None else None
        self.collector.send(self.policy.topic(self.application_id), key, value,
                            record.timestamp, headers, None)
        log.warning("dead-lettered: %s", message, extra=context)

    def _raw(self, record: Record) -> Message | None:
        """The consumed message a record came from (errors only: a linear scan is fine)."""
        for m in self._current:
            if m.offset() == record.offset and m.topic() == record.topic:
                return m
        return None

    # -- commit and close ----------------------------------------------------------------

    def flush(self) -> None:
        """Write cached state to the stores and their changelogs; the runtime then commits."""
        for store in self.stores.values():
            store.flush()

    def close(self) -> None:
        """Close the processors; whoever opened the stores closes them."""
        for processor in self._processors:
            if processor is not None:
                processor.close()


_offset = operator.attrgetter("offset")
_timestamp = operator.attrgetter("timestamp")


def _merges_after_fan_out(nodes: list[Any], processors: list[Processor | None]) -> bool:
    """Whether records sharing a source offset can reach one node through several parents."""
    index = {n.name: i for i, n in enumerate(nodes)}
    fanned = [False] * len(nodes)  # downstream of a node that can emit several per record
    for i, node in enumerate(nodes):  # parents come first
        processor = processors[i]
        if len(node.parents) > 1 and any(fanned[index[p]] for p in node.parents):
            return True
        fans_out = (processor.fans_out if processor is not None else False) or (
            len(node.children) > 1 and not isinstance(processor, Split))
        if fanned[i] or fans_out:
            for child in node.children:
                fanned[index[child]] = True
    return False


def _shares_a_store_below_one_source(nodes: list[Any]) -> bool:
    """Whether two processors using one store are both fed by one source node."""
    sources: dict[str, frozenset[str]] = {}
    for node in nodes:  # parents come first
        if isinstance(node, SourceNode):
            sources[node.name] = frozenset([node.name])
        else:
            sources[node.name] = frozenset().union(*(sources[p] for p in node.parents))
    users: dict[str, list[str]] = {}
    for node in nodes:
        if isinstance(node, ProcessorNode):
            for store in node.stores:
                users.setdefault(store, []).append(node.name)
    return any(sources[a] & sources[b] for names in users.values()
               for i, a in enumerate(names) for b in names[i + 1:])
