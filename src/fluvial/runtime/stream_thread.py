"""The processing loop of one instance: poll → route to tasks → process → produce → commit.

At-least-once: offsets are committed only after every output and changelog record that
depends on them has been acknowledged (producer flush), so a crash replays, never skips.

Exactly-once (Kafka Streams' exactly_once_v2): one transactional producer per thread, its
``transactional.id`` stable per instance slot (runtime/instance.py), so a restarted instance
fences its predecessor at once; the broker fences zombies of a moved task by the group
generation sent with the offsets. Everything produced between two commits (outputs,
repartition and changelog records) and the consumed offsets form one transaction: a commit
makes all of it visible to read_committed readers at once; a failure aborts all of it, and the
tasks are rebuilt from their changelogs and rewound to the committed offsets, so nothing is
applied twice. A fenced or fatal producer is replaced by a new one with the same id.

Rebalancing works with eager callbacks (revoke everything, assign everything: the classic
protocol's range assignor, the embedded broker) and incremental ones (KIP-848, cooperative:
only the partitions that move). A revoke commits everything processed so far (under
exactly-once: inside the transaction), then closes only the tasks that lose a partition; tasks
that stay run on untouched. An assign only records what this member gained and pauses it: as
in Kafka Streams, the loop does the slow part. There a task whose inputs are all owned opens
its stores and restores them from their changelogs, one poll at a time between the loop's own
polls (so processing, commits and a shutdown go on during a long restore), then fetches the
group's committed offsets (waiting out a previous owner's pending transactional commit),
seeks its inputs there (the reset policy only where the group has none) and resumes them.
A task opens only once this instance owns partition *p* of every topic it reads; a partition
whose siblings are elsewhere stays paused until they arrive (the range assignor never splits
them, so this is a guard, with a warning, not a path the runtime expects to take).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from fluvial.errors import ConfigError, DeliveryError, FluvialError
from fluvial.io.client import (
    Admin,
    Clients,
    CommitFailedError,
    Consumer,
    GroupMember,
    Message,
    OffsetFetchError,
    OutRecord,
    PartitionNotReadyError,
    Producer,
    ProducerFencedError,
    TopicPartition,
    TransactionAbortableError,
)
from fluvial.logs import record_context
from fluvial.processing.errors import RecentErrors
from fluvial.processing.task import Task
from fluvial.record import Headers
from fluvial.runtime.config import GroupProtocol, Guarantee, StreamsConfig
from fluvial.runtime.instance import InstanceSlot
from fluvial.runtime.standby import HOST_MARK, Standbys, host_token
from fluvial.runtime.stores import StoreRestore, TaskStores
from fluvial.runtime.topics import TopicPlan
from fluvial.state.store import KeyValueStore
from fluvial.topology.topology import Topology

log = logging.getLogger("fluvial.runtime")

# Failures the loop survives: the group refused a commit (Kafka Streams' TaskMigratedException),
# a transaction must abort, the producer is fenced or fatal, records were not delivered. Each
# drops the tasks' uncommitted work and rebuilds them from their changelogs (_recover).
RECOVERABLE = (CommitFailedError, TransactionAbortableError, ProducerFencedError, DeliveryError)
MAX_RECOVERIES_IN_A_ROW = 20  # without a successful commit in between: a failure that stays
# how long to wait for a readable committed offset: longer than the transaction timeout, after
# which the broker aborts a dead owner's open transaction and its offsets resolve
COMMITTED_TIMEOUT_S = 60.0
COMMITTED_STEP_S = 1.0  # one try of those, between two polls of the loop
# how long a just-assigned input may refuse a seek (librdkafka starting its fetcher)
SEEK_READY_TIMEOUT_S = 30.0
RESTORE_POLL_S = 0.05  # a restore step waits this long for changelog records
# a static member restarted after a kill -9 waits for its predecessor's membership to expire
PREDECESSOR_CHECK_S = 1.0
PREDECESSOR_TIMEOUT_S = 300.0  # past any broker's group.consumer.session.timeout.ms
# a transactional call (send offsets, commit, abort) still unfinished after this is given up
# and the producer replaced: longer than the transaction timeout, after which the broker
# aborts the transaction anyway
TXN_CALL_TIMEOUT_S = 15.0
RECENT_REBALANCES = 20  # rebalance events kept for the dashboard
# the group member's rebalance timeout under KIP-848 (group_consumer_config says why)
REBALANCE_TIMEOUT_MS = 60_000
# how often the client's own assignment is compared with what the rebalance callbacks said
RECONCILE_S = 5.0


class ProducerCollector:
    """Sinks' records go straight to the producer; librdkafka batches them."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.sent = 0

    def send(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
             headers: Headers | None, partition: int | None) -> None:
        self.producer.produce(topic, key, value, timestamp, headers, partition)
        self.sent += 1

    def send_many(self, topic: str, records: Iterable[OutRecord]) -> None:
        self.sent += self.producer.produce_many(topic, records)


class _ActiveTask:
    def __init__(self, task: Task, stores: TaskStores,
                 positions: dict[TopicPartition, int]) -> None:
        self.task = task
        self.stores = stores
        # kept per run of records (never per record), read by the dashboard for its rate and lag
        self.processed = 0
        self.positions = positions  # input -> next offset to process


class _RestoringTask:
    """A task assigned here, not running yet: its stores catch up with their changelogs,
    then its committed offsets are fetched. Its inputs stay paused until it runs."""

    def __init__(self, stores: TaskStores, restore: StoreRestore) -> None:
        self.stores = stores
        self.restore = restore
        self.restored = False
        self.offsets_deadline: float | None = None  # set at the first try to fetch them
        self.committed: dict[TopicPartition, int | None] | None = None  # once fetched
        self.positions: dict[TopicPartition, int] | None = None  # where its inputs start
        self.seek_deadline: float | None = None  # set at the first seek librdkafka refused


class StreamThread:
    def __init__(self, topology: Topology, config: StreamsConfig, clients: Clients,
                 plan: TopicPlan, clock: Callable[[], float] = time.time,
                 global_stores: Mapping[str, KeyValueStore] | None = None,
                 instance: InstanceSlot | None = None,
                 members: Callable[[], list[GroupMember]] | None = None) -> None:
        self.topology = topology
        self.global_stores = global_stores or {}
        self.config = config
        self.clients = clients
        self.plan = plan
        self._clock = clock
        self._subtopology_of = plan.subtopology_of()
        self.eos = config.processing_guarantee is Guarantee.EXACTLY_ONCE
        producer_config = dict(config.producer_config)
        if "transactional.id" in producer_config:
            raise ConfigError("producer_config must not set transactional.id: fluvial sets it "
                              "under processing_guarantee=exactly_once")
        if self.eos:
            if instance is None:
                raise ConfigError("exactly_once needs an instance slot (its transactional.id)")
            producer_config["transactional.id"] = instance.transactional_id(
                config.application_id)
            # a crashed instance's open transaction blocks readers until the broker aborts it
            # (or its restart fences it, which is at once)
            producer_config.setdefault("transaction.timeout.ms", 10_000)
        self._producer_config = producer_config
        self.producer = clients.producer(producer_config)
        self.collector = ProducerCollector(self.producer)
        consumer_config = group_consumer_config(config)
        # the state directory's host token: standbys are never placed beside the active task
        consumer_config["client.id"] = (f"{consumer_config.get('client.id', 'fluvial')}"
                                        f"{HOST_MARK}{host_token(config.state_dir)}")
        if config.group_instance_id is not None and instance is not None:
            consumer_config.setdefault("group.instance.id",
                                       instance.group_instance_id(config.group_instance_id))
        static_id = consumer_config.get("group.instance.id")
        # a static member killed moments ago still holds its id: KIP-848 refuses (fatally)
        # a new member with that id until the old one's session expires
        self._predecessor: str | None = (
            str(static_id) if static_id and instance is not None and instance.crashed_before
            else None)
        self._subscribed = False
        self._next_predecessor_check = 0.0
        self._predecessor_deadline = 0.0
        self.consumer: Consumer = clients.consumer(config.application_id, consumer_config)
        self._reset = str(consumer_config.get("auto.offset.reset", "earliest")).lower()
        self.tasks: dict[str, _ActiveTask] = {}  # running
        self.restoring: dict[str, _RestoringTask] = {}
        self._sources: dict[int, list[str]] = {}  # sub-topology -> the topics it reads
        for topic, st_id in sorted(self._subtopology_of.items()):
            self._sources.setdefault(st_id, []).append(topic)
        self._owned: set[TopicPartition] = set()  # assigned to this member now
        # the same, as a snapshot other threads may read (the instance directory publishes it)
        self.assignment: frozenset[TopicPartition] = frozenset()
        self._paused: set[TopicPartition] = set()  # owned, their task not running (yet)
        self._incomplete: set[str] = set()  # tasks held back: some of their inputs are elsewhere
        self._locked: set[str] = set()  # tasks whose files another process holds open
        self.opened: collections.Counter[str] = collections.Counter()  # task -> times opened
        self.incomplete_assignments = 0  # times the guard held a task's partitions back
        self._pending: dict[TopicPartition, int] = {}  # next offset to commit, per partition
        # repartition topics: what the tasks here committed past, deleted every purge interval
        self._repartitions = frozenset(t.name for t in plan.internal
                                       if t.name in self._subtopology_of)
        self._purgeable: dict[TopicPartition, int] = {}
        self._next_purge = clock() + config.repartition_purge_interval_ms / 1000
        self._admin: Admin | None = None
        self._dirty: set[str] = set()  # tasks that processed or punctuated since the commit
        self._last_commit = clock()
        self.processed = 0
        self.restored: dict[str, dict[str, int]] = {}  # task -> store -> records replayed
        self.commits = 0
        self.aborts = 0
        self.recoveries = 0  # times the tasks were rebuilt after a failure (RECOVERABLE)
        self.recent_errors = RecentErrors()  # skipped and dead-lettered records, recoveries
        self.rebalances = 0  # assign, revoke and lost callbacks
        self.recent_rebalances: collections.deque[tuple[float, str, int]] = collections.deque(
            maxlen=RECENT_REBALANCES)  # (time, assigned|revoked|lost, partitions)
        self._recoveries_in_row = 0
        self._closing = False
        self._next_reconcile = 0.0
        self.last_poll = time.monotonic()  # liveness: the loop made progress
        self._in_txn = False
        if self.eos:
            self.producer.init_transactions(60.0)
        if config.num_standby_replicas > 0 and members is None:
            raise ConfigError("num_standby_replicas needs the instance directory (App runs it)")
        self.standbys = (Standbys(clients, members, config.num_standby_replicas,
                                  self._task_stores, self._task_of_if_ours)
                         if members is not None and config.num_standby_replicas > 0 else None)

    # -- lifecycle ------------------------------------------------------------------------

    def subscribe(self) -> None:
        """Join the group; a static member whose previous process was killed joins from the
        loop, once that process's membership has expired (``_predecessor_gone``)."""
        if self._predecessor is not None:
            log.info("the previous process of group.instance.id=%s was killed; joining once "
                     "the group has let its membership expire", self._predecessor)
            self._predecessor_deadline = time.monotonic() + PREDECESSOR_TIMEOUT_S
            return
        self._subscribe_now()

    def _subscribe_now(self) -> None:
        topics = sorted(self._subtopology_of)
        self.consumer.subscribe(topics, self._on_assign, self._on_revoke, self._on_lost)
        self._subscribed = True

    def _predecessor_gone(self) -> bool:
        """Whether the killed predecessor's static membership is gone (checked every
        PREDECESSOR_CHECK_S); past PREDECESSOR_TIMEOUT_S, join regardless."""
        now = time.monotonic()
        if now < self._next_predecessor_check:
            return False
        self._next_predecessor_check = now + PREDECESSOR_CHECK_S
        try:
            members = self.clients.admin().group_members(self.config.application_id, 5.0)
        except FluvialError as exc:
            log.info("describing the group: %s; trying again", exc)
            return now > self._predecessor_deadline
        return (all(m.instance_id != self._predecessor for m in members)
                or now > self._predecessor_deadline)

    def run_once(self) -> int:
        """One poll and its processing; commits when the interval is due. Returns records."""
        cfg = self.config
        if not self._subscribed:
            if not self._predecessor_gone():
                time.sleep(cfg.poll_timeout_ms / 1000)  # the loop's pace while it waits
                return 0
            self._subscribe_now()
        try:
            self._begin()
            wait = 0.0 if self.restoring else cfg.poll_timeout_ms / 1000
            messages = self.consumer.poll_batch(cfg.max_poll_records, wait)
            self.last_poll = time.monotonic()
            if messages:
                self._process(messages)
            self._advance_tasks()
            self._reconcile()
            if self.standbys is not None:
                self.standbys.step(self.consumer.member_id(), self._tasks_for(
                    sorted(self._owned)) | set(self.tasks) | set(self.restoring))
        except RECOVERABLE as exc:
            self._recover(exc)
            return 0
        now_ms = int(self._clock() * 1000)
        for task_id, active in self.tasks.items():
            if active.task.punctuate_wall_clock():
                self._dirty.add(task_id)
        if now_ms - self._last_commit * 1000 >= cfg.commit_interval_ms:
            self.commit()
        return len(messages)

    def _process(self, messages: list[Message]) -> None:
        """Split a poll batch into runs of one partition (offset order) and run each."""
        self._begin()  # a commit in on_revoke (inside the poll) ended the transaction
        partitions = [m.partition() for m in messages]
        topics = ([messages[0].topic()] * len(messages) if len(self._subtopology_of) == 1
                  else [m.topic() for m in messages])
        rewound: set[TopicPartition] = set()
        start, n = 0, len(messages)
        for i in range(1, n + 1):
            if i == n or partitions[i] != partitions[start] or topics[i] != topics[start]:
                self._process_run(topics[start], partitions[start], messages[start:i], rewound)
                start = i

    def _process_run(self, topic: str, partition: int, run: list[Message],
                     rewound: set[TopicPartition]) -> None:
        tp = TopicPartition(topic, partition)
        active = self.tasks.get(self._task_of(tp))
        if active is None:
            if tp in self._owned and tp not in rewound:
                # fetched before it was paused: read it again from its first record here
                self.consumer.seek(tp, run[0].offset())
                rewound.add(tp)
            return  # else revoked between poll and now: its new owner reads it
        self._dirty.add(active.task.task_id)
        active.task.process(topic, run)
        self._pending[tp] = active.positions[tp] = run[-1].offset() + 1
        self.processed += len(run)
        active.processed += len(run)

    def commit(self) -> bool:
        """Flush state and outputs, wait for the broker's acks, then commit offsets.

        Under exactly-once the offsets go into the producer's transaction, which then commits
        outputs, changelogs and offsets in one step. A failure (RECOVERABLE) drops what was
        not committed and rebuilds the tasks (``_recover``); returns whether it committed.
        """
        committing = dict(self._pending)
        try:
            self._begin()
            for active in self.tasks.values():
                active.task.flush()
            if self.eos:
                self._commit_transaction()
            else:
                self.producer.flush(60.0)
                if self._pending:
                    self.consumer.commit(dict(self._pending))
                    self._pending.clear()
                    self.commits += 1
        except RECOVERABLE as exc:
            self._recover(exc)
            return False
        finally:
            self._last_commit = self._clock()
        self._recoveries_in_row = 0
        self._dirty.clear()
        self._purge(committing)
        return True

    def _purge(self, committed: dict[TopicPartition, int]) -> None:
        """Every ``repartition_purge_interval_ms``, delete the repartition records the tasks
        here have committed past (Kafka Streams' purge): a repartition topic keeps records
        by no time limit, so without this it would grow for ever."""
        self._purgeable.update((tp, offset) for tp, offset in committed.items()
                               if tp.topic in self._repartitions)
        now = self._clock()
        if now < self._next_purge or not self._purgeable:
            return
        self._next_purge = now + self.config.repartition_purge_interval_ms / 1000
        if self._admin is None:
            self._admin = self.clients.admin()
        self._admin.delete_records(self._purgeable)
        self._purgeable = {}

    def _begin(self) -> None:
        if self.eos and not self._in_txn:
            self.producer.begin_transaction()
            self._in_txn = True

    def _commit_transaction(self) -> None:
        offsets = dict(self._pending)
        if offsets:
            # the group metadata of now: a member epoch older than the coordinator's makes
            # the broker refuse the offsets, and the whole transaction aborts
            self.producer.send_offsets_to_transaction(
                offsets, self.consumer.group_metadata(), TXN_CALL_TIMEOUT_S)
        self.producer.commit_transaction(TXN_CALL_TIMEOUT_S)
        self._in_txn = False
        self._pending.clear()
        if offsets:
            self.commits += 1

    def _recover(self, exc: FluvialError) -> None:
        """Drop every task's uncommitted work, rebuild the tasks from their changelogs and
        rewind their inputs to the committed offsets, as if the dropped work never happened.

        The group refused a commit (the member's epoch is stale: partitions are moving; Kafka
        Streams' TaskMigratedException), a transaction must abort, or the producer is fatal
        (fenced, e.g. after the broker aborted a transaction while its coordinator moved):
        then a new producer with the same transactional.id replaces it. Tasks whose
        partitions are no longer owned are not reopened; the rebalance callbacks follow.
        """
        self.recoveries += 1
        self._recoveries_in_row += 1
        self.recent_errors.note("recovery", str(exc))
        if self._recoveries_in_row > MAX_RECOVERIES_IN_A_ROW:
            raise FluvialError(f"{self._recoveries_in_row - 1} recoveries in a row without a "
                               f"successful commit; giving up: {exc}") from exc
        fatal = isinstance(exc, ProducerFencedError)
        if not fatal and self.eos and self._in_txn:
            try:
                self._abort()
            except ProducerFencedError:
                fatal = True
        self._in_txn = False
        self._pending.clear()
        # a task that neither processed nor punctuated since the last commit has nothing
        # uncommitted to drop; a new producer means every task's changelog writer changes
        task_ids = sorted(self.tasks) if fatal else sorted(self._dirty & set(self.tasks))
        self._dirty.clear()
        log.warning("%s; rebuilding %d of %d task(s) from their changelogs and rewinding to the "
                    "last commit%s", exc, len(task_ids), len(self.tasks),
                    " with a new producer" if fatal else "")
        self._close_tasks(task_ids, clean=False)
        if fatal:
            self._replace_producer()
        self._pause_idle()  # the loop reopens the closed tasks

    def _replace_producer(self) -> None:
        """Close a fatal producer (dropping what it queued) and start its successor."""
        try:
            self.producer.close()
        except FluvialError as exc:
            log.warning("closing the failed producer: %s", exc)
        self.producer = self.clients.producer(self._producer_config)
        self.collector.producer = self.producer
        if self.eos:
            self.producer.init_transactions(60.0)

    def _abort(self) -> None:
        """Drop the open transaction; what it held was never visible."""
        if self._in_txn:
            self._in_txn = False
            self._pending.clear()
            self.aborts += 1
            self.producer.abort_transaction(TXN_CALL_TIMEOUT_S)

    def close(self, clean: bool = True) -> None:
        """Commit and close every task (checkpointing it), then leave the group.

        Unclean (after an error): nothing more is committed; under exactly-once the open
        transaction is aborted, so none of the uncommitted work becomes visible.
        """
        self._closing = True
        try:
            if clean:
                clean = self.commit()
            elif self.eos:
                with contextlib.suppress(Exception):  # the broker aborts it on timeout anyway
                    self._abort()
            self._close_tasks(list(self.tasks), clean)
            self._drop_restoring(list(self.restoring))
            if self.standbys is not None:
                self.standbys.close()
        finally:
            self.consumer.close()
            try:
                self.producer.close()
            except FluvialError as exc:  # nothing committed depends on it any more
                log.warning("closing the producer: %s", exc)

    # -- rebalancing ----------------------------------------------------------------------

    @property
    def owned(self) -> frozenset[TopicPartition]:
        """The partitions the group assigned to this instance (paused ones included)."""
        return frozenset(self._owned)

    def _task_of(self, tp: TopicPartition) -> str:
        return f"{self._subtopology_of[tp.topic]}_{tp.partition}"

    def _inputs(self, task_id: str) -> list[TopicPartition]:
        st_id, partition = (int(x) for x in task_id.split("_"))
        return [TopicPartition(t, partition) for t in self._sources[st_id]]

    def _tasks_for(self, partitions: list[TopicPartition]) -> set[str]:
        return {self._task_of(tp) for tp in partitions if tp.topic in self._subtopology_of}

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        """Eager: the whole assignment; incremental: what this member gains. Held paused:
        the loop opens and restores their tasks (``_advance_tasks``)."""
        self._owned.update(tp for tp in partitions if tp.topic in self._subtopology_of)
        if partitions:
            log.info("partitions assigned: %s", _names(sorted(partitions)))
        self._pause_idle()
        self._membership_moved("assigned", partitions)

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        """Eager: everything; incremental: what moves. Commit all, close what moves."""
        moving = self._tasks_for(partitions)
        revoked = moving & set(self.tasks)
        self._owned.difference_update(partitions)
        self._paused.difference_update(partitions)
        # a failed commit rebuilt every task still owned and closed the revoked ones dirty
        if revoked and self.commit():
            self._close_tasks(sorted(revoked), clean=True)
        self._drop_restoring(sorted(moving & set(self.restoring)))
        if revoked:
            log.info("tasks revoked: %s", " ".join(sorted(revoked)))
        self._pause_idle()
        self._membership_moved("revoked", partitions)

    def _on_lost(self, partitions: list[TopicPartition]) -> None:
        """Another member owns these now: drop them without committing.

        Under exactly-once the open transaction holds their work too: abort it and rebuild
        the tasks that stay.
        """
        moving = self._tasks_for(partitions)
        lost = moving & set(self.tasks)
        for tp in partitions:
            self._pending.pop(tp, None)
        self._close_tasks(sorted(lost), clean=False)
        self._drop_restoring(sorted(moving & set(self.restoring)))
        if lost:
            log.info("tasks lost: %s", " ".join(sorted(lost)))
        self._owned.difference_update(partitions)
        self._paused.difference_update(partitions)
        if self.eos and self._in_txn:
            self._recover(TransactionAbortableError(
                f"partitions lost ({_names(partitions)}) while a transaction was open"))
        self._pause_idle()
        self._membership_moved("lost", partitions)

    def _reconcile(self) -> None:
        """Every RECONCILE_S, hold the client's own assignment against ``_owned``, which the
        rebalance callbacks keep: a partition the client holds that no callback announced is
        taken (its task restored and run as after ``on_assign``), one it no longer holds is
        dropped as lost. Neither should happen; when it does the partition is otherwise
        processed by nobody (or by two members) until the next rebalance, so it is logged."""
        now = time.monotonic()
        if now < self._next_reconcile or self._closing:
            return
        self._next_reconcile = now + RECONCILE_S
        held = {tp for tp in self.consumer.assignment() if tp.topic in self._subtopology_of}
        unannounced, gone = sorted(held - self._owned), sorted(self._owned - held)
        if unannounced:
            log.warning("%s assigned to this member without a rebalance callback; taking them",
                        _names(unannounced))
            self._on_assign(unannounced)
        if gone:
            log.warning("%s no longer assigned to this member, without a rebalance callback; "
                        "dropping them as lost", _names(gone))
            self._on_lost(gone)

    def _membership_moved(self, kind: str, partitions: list[TopicPartition]) -> None:
        self.rebalances += 1
        self.recent_rebalances.append((time.time(), kind, len(partitions)))
        if self.standbys is not None:
            self.standbys.refresh_soon()

    def _pause_idle(self) -> None:
        """Pause every owned partition whose task is not running: nothing is read for a task
        before it has restored and sought its committed offsets."""
        self.assignment = frozenset(self._owned)
        idle = sorted(tp for tp in self._owned
                      if tp not in self._paused and self._task_of(tp) not in self.tasks)
        if idle:
            self._paused.update(idle)
            self.consumer.pause(idle)

    def _advance_tasks(self) -> None:
        """The loop's share of rebalancing: start restoring every task whose inputs are all
        owned now, take one restore step for each, and run those that caught up."""
        if self._closing:
            return
        self._start_restores()
        running = []
        for task_id, pending in list(self.restoring.items()):
            if not pending.restored:
                if not pending.restore.step(RESTORE_POLL_S):
                    continue
                pending.restored = True
                self.restored[task_id] = pending.restore.applied
            if pending.committed is None:
                pending.committed = self._committed(task_id, pending)
            if pending.committed is not None and self._run_task(task_id, pending,
                                                                pending.committed):
                running.append(task_id)
        if running:
            log.info("tasks running: %s", " ".join(running))

    def _start_restores(self) -> None:
        for task_id in sorted(self._tasks_for(sorted(self._owned))
                              - set(self.tasks) - set(self.restoring)):
            inputs = self._inputs(task_id)
            missing = [tp for tp in inputs if tp not in self._owned]
            if not missing:
                self._incomplete.discard(task_id)
                if self.standbys is not None:
                    self.standbys.promote(task_id)
                stores = self._open_stores(task_id)
                if stores is None:
                    continue  # its files are still open in a sibling worker: next step
                self.restoring[task_id] = _RestoringTask(stores,
                                                         stores.begin_restore(self.clients))
            elif task_id not in self._incomplete:
                self._incomplete.add(task_id)
                self.incomplete_assignments += 1
                log.warning(
                    "task %s reads %s, but this instance was assigned only %s: pausing them "
                    "until %s arrive (a task needs partition %d of every topic it reads; is "
                    "the group's assignor range?)", task_id,
                    ", ".join(t.topic for t in inputs),
                    _names([tp for tp in inputs if tp in self._owned]), _names(missing),
                    inputs[0].partition)
        self._incomplete &= self._tasks_for(sorted(self._owned))

    def _committed(self, task_id: str,
                   pending: _RestoringTask) -> dict[TopicPartition, int | None] | None:
        """The group's committed offsets of the task's inputs, or None to try again at the
        next step: a previous owner's transactional commit still pending, a coordinator
        moving. Past COMMITTED_TIMEOUT_S it raises rather than guess where to start."""
        if pending.offsets_deadline is None:
            pending.offsets_deadline = time.monotonic() + COMMITTED_TIMEOUT_S
        try:
            return self.consumer.committed(self._inputs(task_id), COMMITTED_STEP_S)
        except OffsetFetchError as exc:
            if exc.retriable and time.monotonic() < pending.offsets_deadline:
                return None
            raise OffsetFetchError(f"task {task_id}: the committed offsets of its inputs "
                                   f"stayed unreadable for {COMMITTED_TIMEOUT_S:g}s: "
                                   f"{exc}") from exc

    def _run_task(self, task_id: str, pending: _RestoringTask,
                  committed: dict[TopicPartition, int | None]) -> bool:
        """Start each input at the group's committed offset (the reset policy only where the
        group has none), resume the inputs, and run the task. False (try at the next step)
        while librdkafka has not started fetching an input assigned a moment ago."""
        inputs = self._inputs(task_id)
        if pending.positions is None:
            pending.positions = {tp: self._start_offset(tp, committed.get(tp)) for tp in inputs}
        try:
            for tp, offset in pending.positions.items():
                self.consumer.seek(tp, offset)
        except PartitionNotReadyError as exc:
            if pending.seek_deadline is None:
                pending.seek_deadline = time.monotonic() + SEEK_READY_TIMEOUT_S
            if time.monotonic() < pending.seek_deadline:
                log.info("task %s: %s; trying again", task_id, exc)
                return False
            raise FluvialError(f"task {task_id}: {exc} (for {SEEK_READY_TIMEOUT_S:g}s)") from exc
        st_id, partition = (int(x) for x in task_id.split("_"))
        cfg = self.config
        task = Task(task_id, self.topology.subtopologies[st_id], partition, cfg.application_id,
                    pending.stores.for_task(), self.collector, cfg.error_policy,
                    self._clock_ms, caching=cfg.record_cache, global_stores=self.global_stores,
                    recent_errors=self.recent_errors)
        del self.restoring[task_id]
        self.tasks[task_id] = _ActiveTask(task, pending.stores, dict(pending.positions))
        self.opened[task_id] += 1
        self._paused.difference_update(inputs)
        self.consumer.resume(inputs)
        return True

    def _start_offset(self, tp: TopicPartition, committed: int | None) -> int:
        """The committed offset, or where auto.offset.reset says when the group has none."""
        if committed is not None:
            return committed
        offset = self._reset_offset(tp)
        log.info("%s[%d] has no committed offset: starting at %d (auto.offset.reset=%s)",
                 tp.topic, tp.partition, offset, self._reset,
                 extra=record_context(topic=tp.topic, partition=tp.partition, offset=offset))
        return offset

    def _drop_restoring(self, task_ids: list[str]) -> None:
        """Close tasks that never ran; their stores keep how far they got (a checkpoint)."""
        for task_id in task_ids:
            pending = self.restoring.pop(task_id)
            if not pending.restored:
                pending.restore.abandon()
            pending.stores.close(clean=False, clients=None,
                                 restored_to=pending.restore.positions())

    def _open_stores(self, task_id: str) -> TaskStores | None:
        """The task's stores, or None while another process holds their files (a sibling
        worker's standby of the task, closing at its next placement). Local state that cannot
        be opened otherwise (seen: RocksDB killed -9 while creating its database, "wal_dir
        contains existing log file") is wiped and restored from the changelogs, as Kafka
        Streams does with a corrupted task."""
        try:
            stores = self._task_stores(task_id)
        except Exception as exc:  # the backend's own error type; a second failure raises
            directory = self._task_dir(task_id)
            if _held_by_another_process(exc):
                if task_id not in self._locked:
                    self._locked.add(task_id)
                    log.info("task %s: %s is in use by another process; waiting", task_id,
                             directory, extra=record_context(task_id))
                return None
            log.warning("task %s: local state in %s cannot be opened (%s); wiping it, the "
                        "changelogs restore it", task_id, directory, exc,
                        extra=record_context(task_id))
            shutil.rmtree(directory, ignore_errors=True)
            stores = self._task_stores(task_id)
        self._locked.discard(task_id)
        return stores

    def _task_stores(self, task_id: str) -> TaskStores:
        st_id, partition = (int(x) for x in task_id.split("_"))
        cfg = self.config
        return TaskStores(self._task_dir(task_id), cfg.application_id, partition,
                          self.topology.subtopologies[st_id].stores, self.producer)

    def _task_dir(self, task_id: str) -> Path:
        return self.config.state_dir / self.config.application_id / task_id

    def _task_of_if_ours(self, tp: TopicPartition) -> str | None:
        return self._task_of(tp) if tp.topic in self._subtopology_of else None

    def _reset_offset(self, tp: TopicPartition) -> int:
        low, high = self.consumer.watermarks(tp, 30.0)
        if self._reset in ("earliest", "smallest", "beginning"):
            return low
        if self._reset in ("latest", "largest", "end"):
            return high
        raise ConfigError(f"{tp.topic}[{tp.partition}] has no committed offset and "
                          f"auto.offset.reset={self._reset!r}")

    def _clock_ms(self) -> int:
        return int(self._clock() * 1000)

    def _close_tasks(self, task_ids: list[str], clean: bool) -> None:
        for task_id in task_ids:
            active = self.tasks.pop(task_id)
            try:
                active.task.close()
            except Exception:  # a user processor failing to close must not block the rest
                log.exception("closing task %s", task_id, extra=record_context(task_id))
            active.stores.close(clean, self.clients if clean else None)
        if not clean:
            return
        for tp in [tp for tp in self._pending if self._task_of(tp) in task_ids]:
            del self._pending[tp]

    def stores_named(self, name: str) -> list[Any]:
        # a copy first: other threads (interactive queries) call this while tasks come and go
        return [a.stores.stores[name].store for a in list(self.tasks.values())
                if name in a.stores.stores]


def _held_by_another_process(exc: Exception) -> bool:
    """RocksDB's answer when another process holds the database's lock file (a kill -9
    releases it: the lock dies with its process, so this is a live holder)."""
    text = str(exc)
    return "LOCK" in text and "Resource temporarily unavailable" in text


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)


def group_consumer_config(config: StreamsConfig) -> dict[str, Any]:
    """The group member's client settings: the group protocol and its assignor first, so the
    user's ``consumer_config`` can override them.

    KIP-848 (``consumer``) uses the broker's ``range`` assignor: it keeps partition *p* of every
    subscribed topic with the same partition count on one member, as ``range`` does in the
    classic protocol, but moves only what must move (measured in docs/architecture.md). The
    embedded broker ignores these settings (its group is always eager range).

    Under KIP-848 ``max.poll.interval.ms`` is also the member's rebalance timeout, and it
    bounds a stall librdkafka (2.16) can get into: when a heartbeat times out while the
    coordinator is slow (a broker died and its writes wait for the ISR to shrink), a response
    telling the member to revoke partitions is lost; the client goes on heartbeating without
    its owned partitions, the coordinator waits for the revocation, and the partitions the
    revocation would free stay unprocessed until the coordinator fences the member at the
    rebalance timeout. Kafka's default is 5 minutes; REBALANCE_TIMEOUT_MS keeps that stall to
    one minute, still far beyond what a revocation here takes (a commit).
    """
    if config.group_protocol is GroupProtocol.CONSUMER:
        base: dict[str, Any] = {"group.protocol": "consumer", "group.remote.assignor": "range",
                                "max.poll.interval.ms": REBALANCE_TIMEOUT_MS}
    else:
        base = {"group.protocol": "classic",
                "partition.assignment.strategy": config.partition_assignment_strategy or "range"}
    return {**base, **config.consumer_config}
