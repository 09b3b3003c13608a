"""The processing loop of one instance: poll → route to tasks → process → produce → commit.

At-least-once: offsets are committed only after every output and changelog record that
depends on them has been acknowledged (producer flush), so a crash replays, never skips.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from fluvial.io.client import Clients, Consumer, Message, Producer, TopicPartition
from fluvial.processing.task import Task
from fluvial.record import Headers
from fluvial.runtime.config import StreamsConfig
from fluvial.runtime.stores import TaskStores
from fluvial.runtime.topics import TopicPlan
from fluvial.topology.topology import Topology

log = logging.getLogger("fluvial.runtime")


class ProducerCollector:
    """Sinks' records go straight to the producer; librdkafka batches them."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.sent = 0

    def send(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
             headers: Headers | None, partition: int | None) -> None:
        self.producer.produce(topic, key, value, timestamp, headers, partition)
        self.sent += 1


class _ActiveTask:
    def __init__(self, task: Task, stores: TaskStores) -> None:
        self.task = task
        self.stores = stores


class StreamThread:
    def __init__(self, topology: Topology, config: StreamsConfig, clients: Clients,
                 plan: TopicPlan, clock: Callable[[], float] = time.time) -> None:
        self.topology = topology
        self.config = config
        self.clients = clients
        self.plan = plan
        self._clock = clock
        self._subtopology_of = plan.subtopology_of()
        self.producer = clients.producer(dict(config.producer_config))
        self.collector = ProducerCollector(self.producer)
        consumer_config: dict[str, Any] = {
            "partition.assignment.strategy": config.partition_assignment_strategy,
            **config.consumer_config,
        }
        self.consumer: Consumer = clients.consumer(config.application_id, consumer_config)
        self.tasks: dict[str, _ActiveTask] = {}
        self._pending: dict[TopicPartition, int] = {}  # next offset to commit, per partition
        self._last_commit = clock()
        self.processed = 0
        self.restored: dict[str, dict[str, int]] = {}  # task -> store -> records replayed
        self.commits = 0
        self.running = False

    # -- lifecycle ------------------------------------------------------------------------

    def subscribe(self) -> None:
        topics = sorted(self._subtopology_of)
        self.consumer.subscribe(topics, self._on_assign, self._on_revoke, self._on_lost)

    def run_once(self) -> int:
        """One poll and its processing; commits when the interval is due. Returns records."""
        cfg = self.config
        messages = self.consumer.poll_batch(cfg.max_poll_records, cfg.poll_timeout_ms / 1000)
        if messages:
            self._process(messages)
        now_ms = int(self._clock() * 1000)
        for active in self.tasks.values():
            active.task.punctuate_wall_clock()
        if now_ms - self._last_commit * 1000 >= cfg.commit_interval_ms:
            self.commit()
        return len(messages)

    def _process(self, messages: list[Message]) -> None:
        """Split a poll batch into runs of one partition, each run in offset order."""
        runs: dict[tuple[str, int], list[Message]] = {}
        for m in messages:
            key = (m.topic(), m.partition())
            run = runs.get(key)
            if run is None:
                runs[key] = [m]
            else:
                run.append(m)
        for (topic, partition), run in runs.items():
            task_id = f"{self._subtopology_of[topic]}_{partition}"
            active = self.tasks.get(task_id)
            if active is None:  # revoked between poll and now: it will be redelivered
                continue
            active.task.process(topic, run)
            self._pending[TopicPartition(topic, partition)] = run[-1].offset() + 1
            self.processed += len(run)

    def commit(self) -> None:
        """Flush state and outputs, wait for the broker's acks, then commit offsets."""
        for active in self.tasks.values():
            active.task.flush()
        self.producer.flush(60.0)
        if self._pending:
            self.consumer.commit(dict(self._pending))
            self._pending.clear()
            self.commits += 1
        self._last_commit = self._clock()

    def close(self, clean: bool = True) -> None:
        """Commit and close every task (checkpointing it), then leave the group."""
        try:
            if clean:
                self.commit()
            self._close_tasks(list(self.tasks), clean)
        finally:
            self.consumer.close()
            self.producer.close()

    # -- rebalancing ----------------------------------------------------------------------

    def _tasks_for(self, partitions: list[TopicPartition]) -> set[str]:
        return {f"{self._subtopology_of[tp.topic]}_{tp.partition}" for tp in partitions
                if tp.topic in self._subtopology_of}

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        for task_id in sorted(self._tasks_for(partitions) - set(self.tasks)):
            self._open_task(task_id)

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        revoked = self._tasks_for(partitions) & set(self.tasks)
        if not revoked:
            return
        self.commit()
        self._close_tasks(sorted(revoked), clean=True)

    def _on_lost(self, partitions: list[TopicPartition]) -> None:
        """Another member owns these now: drop them without committing."""
        lost = self._tasks_for(partitions) & set(self.tasks)
        for tp in partitions:
            self._pending.pop(tp, None)
        self._close_tasks(sorted(lost), clean=False)

    def _open_task(self, task_id: str) -> None:
        st_id, partition = (int(x) for x in task_id.split("_"))
        st = self.topology.subtopologies[st_id]
        cfg = self.config
        stores = TaskStores(cfg.state_dir / cfg.application_id / task_id, cfg.application_id,
                            partition, st.stores, self.producer)
        started = time.monotonic()
        restored = stores.restore(self.clients)
        if restored:
            log.info("task %s restored %s in %.2fs", task_id, restored,
                     time.monotonic() - started)
        task = Task(task_id, st, partition, cfg.application_id, stores.for_task(),
                    self.collector, cfg.error_policy, self._clock_ms, caching=cfg.record_cache)
        self.tasks[task_id] = _ActiveTask(task, stores)
        self.restored[task_id] = restored

    def _clock_ms(self) -> int:
        return int(self._clock() * 1000)

    def _close_tasks(self, task_ids: list[str], clean: bool) -> None:
        for task_id in task_ids:
            active = self.tasks.pop(task_id)
            try:
                active.task.close()
            except Exception:  # a user processor failing to close must not block the rest
                log.exception("closing task %s", task_id)
            active.stores.close(clean, self.clients if clean else None)
        if not clean:
            return
        for tp in [tp for tp in self._pending
                   if f"{self._subtopology_of[tp.topic]}_{tp.partition}" in task_ids]:
            del self._pending[tp]

    def stores_named(self, name: str) -> list[Any]:
        return [a.stores.stores[name].store for a in self.tasks.values()
                if name in a.stores.stores]

