"""The confluent-kafka adapter: ``fluvial.io.client`` on a real Kafka cluster.

Consumers never commit on their own (``enable.auto.commit`` and ``enable.auto.offset.store`` are
off): the runtime commits outputs, state and offsets together, so an offset must only move when
it says so. Producers hash keys with ``murmur2_random``, Java's default partitioner, so records
keyed alike land on the same partition whatever client wrote them.

Consumer messages are confluent's own objects, returned without a copy.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import operator
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic

from fluvial.errors import ConfigError, DeliveryError, FluvialError
from fluvial.io.client import (
    Clients,
    CommitFailedError,
    GroupMember,
    Headers,
    Message,
    OffsetFetchError,
    OutRecord,
    PartitionNotReadyError,
    ProducerFencedError,
    RebalanceCallback,
    TopicPartition,
    TopicSpec,
    TransactionAbortableError,
    UnknownTopicOrPartitionError,
)
from fluvial.io.kafka_logging import librdkafka_logger

log = logging.getLogger(__name__)

METADATA_WAIT_S = 10.0  # how long to wait for created/deleted topics to show in metadata
ADMIN_TIMEOUT_S = 30.0
_MAX_CONSUME = 1_000_000  # librdkafka's cap on consume(num_messages)
_UNKNOWN = (ck.KafkaError.UNKNOWN_TOPIC_OR_PART, ck.KafkaError._UNKNOWN_TOPIC,
            ck.KafkaError._UNKNOWN_PARTITION)
_NOT_AUTHORIZED = (ck.KafkaError.TOPIC_AUTHORIZATION_FAILED,
                   ck.KafkaError.GROUP_AUTHORIZATION_FAILED)
# OffsetFetch errors that resolve by themselves: a transactional offset commit still pending
# (the broker answers UNSTABLE_OFFSET_COMMIT under require_stable, which read_committed sets),
# a coordinator moving or loading, a member epoch the coordinator has not caught up with
_FETCH_TRANSIENT = frozenset({
    ck.KafkaError.UNSTABLE_OFFSET_COMMIT, ck.KafkaError.COORDINATOR_NOT_AVAILABLE,
    ck.KafkaError.NOT_COORDINATOR, ck.KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    ck.KafkaError.REBALANCE_IN_PROGRESS, ck.KafkaError.STALE_MEMBER_EPOCH,
    ck.KafkaError.REQUEST_TIMED_OUT, ck.KafkaError._WAIT_COORD, ck.KafkaError._TIMED_OUT,
    ck.KafkaError._TRANSPORT, ck.KafkaError._ALL_BROKERS_DOWN, ck.KafkaError._DESTROY_BROKER})
OFFSET_FETCH_RETRY_S = 0.2
# a partition's leader moving: answers that a retry soon fixes (seen during a broker kill;
# _DESTROY_BROKER: the request went to a broker handle librdkafka dropped as the cluster's
# metadata changed, seen with a 4.4 broker restarting)
_LEADER_MOVING = frozenset({
    ck.KafkaError.NOT_LEADER_FOR_PARTITION, ck.KafkaError.LEADER_NOT_AVAILABLE,
    ck.KafkaError.REQUEST_TIMED_OUT, ck.KafkaError._TIMED_OUT, ck.KafkaError._TRANSPORT,
    ck.KafkaError._ALL_BROKERS_DOWN, ck.KafkaError.UNKNOWN_LEADER_EPOCH,
    ck.KafkaError.FENCED_LEADER_EPOCH, ck.KafkaError._DESTROY_BROKER})
TXN_GRACE_S = 5.0  # beyond a transactional call's own timeout before it is given up


_error_of = operator.methodcaller("error")


def _ours(parts: Iterable[ck.TopicPartition]) -> list[TopicPartition]:
    return sorted(TopicPartition(p.topic, p.partition) for p in parts)


def _log_purge_failure(tp: ck.TopicPartition, future: Any) -> None:
    try:
        future.result()
    except ck.KafkaException as e:  # a broker away: the next purge asks again
        log.info("deleting records of %s[%d] below %d: %s", tp.topic, tp.partition, tp.offset,
                 e.args[0].str())


def _is_true(value: Any) -> bool:
    return str(value).lower() in ("true", "1", "yes")


class KafkaConsumer:
    """``fluvial.io.client.Consumer`` over ``confluent_kafka.Consumer``.

    Rebalance callbacks run inside ``poll_batch`` (librdkafka serves them from ``consume``).
    With the classic protocol and an eager strategy (``range``, the adapter's default)
    ``on_revoke`` gets the whole assignment and ``on_assign`` the whole new one; with
    ``cooperative-sticky``, or with ``group.protocol=consumer`` (KIP-848), both get only the
    partitions that move, and the rest keep being consumed through the rebalance.

    The adapter itself (incrementally) assigns *after* ``on_assign`` returns, using any offsets
    the callback chose with ``seek``; that is what makes seeking from ``on_assign`` reliable.
    """

    def __init__(self, conf: dict[str, Any], group_id: str | None) -> None:
        self._group_id = group_id
        self._cooperative = (
            str(conf.get("group.protocol", "classic")).lower() == "consumer"
            or "cooperative" in str(conf.get("partition.assignment.strategy", "")))
        self._fatal: ck.KafkaError | None = None
        self._pending: dict[TopicPartition, int] | None = None  # set while on_assign runs
        self._pending_pause: set[TopicPartition] = set()
        self._c = ck.Consumer({**conf, "error_cb": self._on_error})

    def _on_error(self, err: ck.KafkaError) -> None:
        if err.fatal() or err.code() == ck.KafkaError._FATAL:
            self._fatal = err
            log.error("kafka consumer: %s", err.str())
        else:
            log.warning("kafka consumer: %s", err.str())

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            raise FluvialError(f"fatal Kafka consumer error (the consumer must be recreated): "
                               f"{self._fatal.str()}")

    # -- membership -----------------------------------------------------------------------

    def subscribe(self, topics: Sequence[str], on_assign: RebalanceCallback,
                  on_revoke: RebalanceCallback, on_lost: RebalanceCallback) -> None:
        if self._group_id is None:
            raise ConfigError("subscribe() needs a group id; use assign() to read without one")
        if not topics:
            raise ValueError("subscribe() needs at least one topic")
        self._require(list(topics), [])

        def assigned(consumer: ck.Consumer, parts: list[ck.TopicPartition]) -> None:
            ours = _ours(parts)
            self._pending = {tp: ck.OFFSET_INVALID for tp in ours}
            try:
                on_assign(ours)
            finally:
                pending, self._pending = self._pending, None
                chosen = [ck.TopicPartition(tp.topic, tp.partition, off)
                          for tp, off in pending.items()]
                if self._cooperative:
                    consumer.incremental_assign(chosen)
                else:
                    consumer.assign(chosen)
                if self._pending_pause:
                    consumer.pause([ck.TopicPartition(tp.topic, tp.partition)
                                    for tp in self._pending_pause])
                    self._pending_pause.clear()

        def taken(callback: RebalanceCallback) -> Callable[[ck.Consumer,
                                                            list[ck.TopicPartition]], None]:
            def handler(consumer: ck.Consumer, parts: list[ck.TopicPartition]) -> None:
                try:
                    callback(_ours(parts))
                finally:
                    if self._cooperative:
                        consumer.incremental_unassign(parts)
                    else:
                        consumer.unassign()
            return handler

        self._c.subscribe(list(topics), on_assign=assigned, on_revoke=taken(on_revoke),
                          on_lost=taken(on_lost))

    def assign(self, partitions: Sequence[tuple[TopicPartition, int]]) -> None:
        """Read these partitions from these offsets (confluent's ``OFFSET_*`` allowed)."""
        self._require([tp.topic for tp, _ in partitions], [tp for tp, _ in partitions])
        self._c.assign([ck.TopicPartition(tp.topic, tp.partition, off) for tp, off in partitions])

    def _require(self, topics: list[str], partitions: list[TopicPartition]) -> None:
        """Fail early, as the embedded broker does, on a missing topic or partition.

        Retries briefly: a topic created a moment ago may not be in every broker's metadata.
        """
        deadline = time.monotonic() + METADATA_WAIT_S
        while True:
            md = self._c.list_topics(timeout=ADMIN_TIMEOUT_S)
            counts = {t: len(m.partitions) for t, m in md.topics.items() if m.error is None}
            missing = sorted({t for t in topics if t not in counts})
            bad = [tp for tp in partitions if tp.topic in counts
                   and not 0 <= tp.partition < counts[tp.topic]]
            if not missing and not bad:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if missing:
            raise UnknownTopicOrPartitionError(
                f"topic(s) {missing} do not exist (create them with Admin.create_topics)")
        tp = bad[0]
        raise UnknownTopicOrPartitionError(
            f"topic {tp.topic!r} has {counts[tp.topic]} partition(s); partition {tp.partition} "
            "does not exist")

    # -- reading --------------------------------------------------------------------------

    def poll_batch(self, max_records: int, timeout: float) -> list[Message]:
        if max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {max_records}")
        # take what is already fetched; only when there is nothing, wait for one record (not
        # for a full batch: that would add up to ``timeout`` of latency at moderate rates)
        limit = min(max_records, _MAX_CONSUME)
        msgs = cast("list[Message]", self._c.consume(limit, 0))
        if not msgs:
            msgs = cast("list[Message]", self._c.consume(1, timeout))
            if msgs and limit > 1:
                msgs += cast("list[Message]", self._c.consume(limit - 1, 0))
        self._raise_fatal()
        if any(map(_error_of, msgs)):  # a KafkaError is truthy, None is not
            return self._without_errors(msgs)
        return msgs

    def _without_errors(self, msgs: list[Message]) -> list[Message]:
        good: list[Message] = []
        for m in msgs:
            err = m.error()
            if err is None:
                good.append(m)
            elif err.code() == ck.KafkaError._PARTITION_EOF:
                continue
            elif err.fatal():
                raise FluvialError(f"fatal Kafka consumer error on {m.topic()!r}: {err.str()}")
            elif err.code() in _NOT_AUTHORIZED:
                raise FluvialError(f"not authorized: {err.str()}")
            else:  # transient (a broker down, metadata lag): librdkafka retries by itself
                log.warning("kafka consumer: %s", err.str())
        return good

    # -- offsets --------------------------------------------------------------------------

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self._group_id is None:
            raise ConfigError("commit() needs a group id; this consumer has none")
        if not offsets:
            return
        parts = [ck.TopicPartition(tp.topic, tp.partition, off) for tp, off in offsets.items()]
        try:
            result = self._c.commit(offsets=parts, asynchronous=False)
        except ck.KafkaException as e:
            raise CommitFailedError(f"group {self._group_id!r}: commit of {len(parts)} offset(s) "
                                    f"failed: {e.args[0].str()}") from e
        for p in result or []:
            if p.error is not None:
                raise CommitFailedError(f"group {self._group_id!r}: commit for {p.topic!r} "
                                        f"partition {p.partition} failed: {p.error.str()}")

    def committed(self, partitions: Sequence[TopicPartition],
                  timeout: float) -> dict[TopicPartition, int | None]:
        if self._group_id is None or not partitions:
            return {tp: None for tp in partitions}
        parts = [ck.TopicPartition(tp.topic, tp.partition) for tp in partitions]
        deadline = time.monotonic() + timeout
        while True:
            left = max(deadline - time.monotonic(), 0.1)
            try:
                res = self._c.committed(parts, timeout=left)
            except ck.KafkaException as e:
                err, where = e.args[0], f"{len(parts)} partition(s)"
            else:
                failed = next((p for p in res if p.error is not None), None)
                if failed is None:
                    return {TopicPartition(p.topic, p.partition):
                            (p.offset if p.offset >= 0 else None) for p in res}
                err, where = failed.error, f"{failed.topic}[{failed.partition}]"
            transient = err.code() in _FETCH_TRANSIENT or (err.retriable() and not err.fatal())
            if not transient or time.monotonic() >= deadline:
                raise OffsetFetchError(
                    f"group {self._group_id!r}: cannot read the committed offset of {where} "
                    f"(waited {timeout:g}s): {err.str()}; refusing to start it anywhere else",
                    retriable=transient)
            log.info("group %r: committed offset of %s not readable yet (%s); retrying",
                     self._group_id, where, err.str())
            time.sleep(OFFSET_FETCH_RETRY_S)

    def watermarks(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        """(low, high); waits out a leader moving (a broker failover) up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                low, high = self._c.get_watermark_offsets(
                    ck.TopicPartition(tp.topic, tp.partition),
                    timeout=max(deadline - time.monotonic(), 0.1), cached=False)
                return (low, high)
            except ck.KafkaException as e:
                err = e.args[0]
                if err.code() in _UNKNOWN:
                    raise UnknownTopicOrPartitionError(f"{tp}: {err.str()}") from e
                transient = err.retriable() or err.code() in _LEADER_MOVING
                if not transient or time.monotonic() >= deadline:
                    raise FluvialError(f"watermarks of {tp}: {err.str()}") from e
                log.info("watermarks of %s: %s; retrying", tp, err.str())
                time.sleep(OFFSET_FETCH_RETRY_S)

    def end_offset(self, tp: TopicPartition) -> int | None:
        try:
            _, high = self._c.get_watermark_offsets(ck.TopicPartition(tp.topic, tp.partition),
                                                    cached=True)
        except ck.KafkaException:
            return None
        return high if high >= 0 else None

    def position(self, tp: TopicPartition) -> int | None:
        if self._pending is not None and tp in self._pending:
            off = self._pending[tp]
            return off if off >= 0 else None
        (p,) = self._c.position([ck.TopicPartition(tp.topic, tp.partition)])
        return p.offset if p.offset >= 0 else None

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if self._pending is not None and tp in self._pending:
            self._pending[tp] = offset  # applied by the assign that follows on_assign
            return
        try:
            self._c.seek(ck.TopicPartition(tp.topic, tp.partition, offset))
        except ck.KafkaException as e:
            err = e.args[0]
            if err.code() == ck.KafkaError._STATE:  # its fetcher has not started yet
                raise PartitionNotReadyError(f"cannot seek {tp} to {offset} yet: "
                                             f"{err.str()}") from e
            raise FluvialError(f"cannot seek {tp} to {offset}: {err.str()}") from e

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        now = []
        for tp in partitions:
            if self._pending is not None and tp in self._pending:
                self._pending_pause.add(tp)
            else:
                now.append(ck.TopicPartition(tp.topic, tp.partition))
        if now:
            self._c.pause(now)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self._pending_pause.difference_update(partitions)
        self._c.resume([ck.TopicPartition(tp.topic, tp.partition) for tp in partitions])

    def group_metadata(self) -> Any:
        return self._c.consumer_group_metadata()

    def member_id(self) -> str | None:
        try:
            return self._c.memberid() or None
        except (RuntimeError, ck.KafkaException):  # not joined (yet)
            return None

    def assignment(self) -> list[TopicPartition]:
        return _ours(self._c.assignment())

    def close(self) -> None:
        """Leave the group; librdkafka calls ``on_revoke`` for what this member owned.

        A static member (``group.instance.id``) leaves only for the session timeout: a
        restart within it gets its partitions back without a rebalance."""
        try:
            self._c.close()
        except ck.KafkaException as e:  # the group forgets us at the session timeout anyway
            log.warning("kafka consumer: close: %s", e.args[0].str())


class KafkaProducer:
    """``fluvial.io.client.Producer`` over ``confluent_kafka.Producer``.

    Only failed deliveries produce a report (``delivery.report.only.error``): the callback
    costs Python time per record, and success needs no bookkeeping since ``flush`` waits.
    """

    def __init__(self, conf: dict[str, Any]) -> None:
        self._failures: list[str] = []
        self._failed = 0
        self._fatal: ck.KafkaError | None = None
        self._abandoned = False
        self._p = ck.Producer({**conf, "on_delivery": self._on_delivery,
                               "delivery.report.only.error": True, "error_cb": self._on_error})

    def _on_delivery(self, err: ck.KafkaError | None, msg: Any) -> None:
        if err is not None:
            self._failed += 1
            if len(self._failures) < 5:
                self._failures.append(f"topic {msg.topic()!r} partition {msg.partition()}: "
                                      f"{err.str()}")

    def _on_error(self, err: ck.KafkaError) -> None:
        if err.fatal() or err.code() == ck.KafkaError._FATAL:
            self._fatal = err
        else:
            log.warning("kafka producer: %s", err.str())

    def _raise_failures(self) -> None:
        if self._fatal is not None:
            raise ProducerFencedError(f"fatal Kafka producer error (the producer must be "
                                      f"recreated): {self._fatal.str()}")
        if self._failed:
            failed, failures = self._failed, "; ".join(self._failures)
            self._failed, self._failures = 0, []
            raise DeliveryError(f"{failed} record(s) were not delivered: {failures}")

    def produce(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
                headers: Headers | None = None, partition: int | None = None) -> None:
        part = -1 if partition is None else partition  # -1: let the partitioner choose
        while True:
            try:
                self._p.produce(topic, value, key, part, timestamp=timestamp,
                                headers=cast(Any, headers))
                return
            except BufferError:  # local queue full: serve delivery reports, then retry
                self._p.poll(0.05)
            except ck.KafkaException as e:
                where = f"topic {topic!r}" + ("" if partition is None else
                                              f" partition {partition}")
                raise self._produce_error(where, e.args[0]) from e

    def produce_many(self, topic: str, records: Iterable[OutRecord]) -> int:
        produce = self._p.produce
        queued = 0
        try:
            for key, value, timestamp, headers in records:
                try:
                    # positional: keyword arguments cost produce() a third of its time.
                    # (topic, value, key, partition, on_delivery, callback, timestamp, headers)
                    produce(topic, value, key, -1, None, None, timestamp,
                            headers)  # type: ignore[arg-type]  # stubs: invariant list
                except BufferError:  # local queue full: serve delivery reports, then retry
                    self.produce(topic, key, value, timestamp, headers)
                queued += 1
        except ck.KafkaException as e:
            raise self._produce_error(f"topic {topic!r}", e.args[0]) from e
        return queued

    def _produce_error(self, where: str, err: ck.KafkaError) -> FluvialError:
        """A refused ``produce``: fatal (recreate), abortable (abort the transaction) or not
        delivered (the caller's error policy)."""
        if err.fatal() or err.code() == ck.KafkaError._FATAL or self._fatal is not None:
            fatal = self._fatal.str() if self._fatal is not None else err.str()
            return ProducerFencedError(f"{where}: fatal Kafka producer error (the producer must "
                                       f"be recreated): {fatal}")
        if err.txn_requires_abort() or err.code() == ck.KafkaError._STATE:
            return TransactionAbortableError(f"{where}: {err.str()}")
        return DeliveryError(f"{where}: {err.str()}")

    def flush(self, timeout: float) -> None:
        try:
            left = self._p.flush(timeout)
        except ck.KafkaException as e:  # raised for a fatal (e.g. fenced) transactional state
            raise self._produce_error("flush", e.args[0]) from e
        self._raise_failures()
        if left:
            raise DeliveryError(f"{left} record(s) not acknowledged within {timeout:g}s "
                                "(is the cluster reachable?)")

    def poll(self, timeout: float) -> None:
        self._p.poll(timeout)

    def close(self) -> None:
        """Deliver what is queued (up to 30 s); failures still raise, never vanish.

        A producer that hit a fatal error can deliver nothing more: its queue is dropped
        (under exactly-once, what it held belonged to a transaction that never commits).
        An abandoned one (a call that never answered) is left alone."""
        if self._abandoned:
            return
        if self._fatal is not None:
            with contextlib.suppress(ck.KafkaException):
                self._p.purge()
            return
        self.flush(30.0)

    # -- transactions ---------------------------------------------------------------------
    # librdkafka classifies a failed transactional call: retriable (call it again), abortable
    # (txn_requires_abort: abort, rewind, go on) or fatal (the producer is done). A call still
    # retrying at its deadline counts as fatal too: the producer is replaced, and its
    # successor's init_transactions settles the transaction either way (seen after a broker
    # failover: send_offsets_to_transaction waiting on a coordinator for minutes).

    def _txn(self, what: str, call: Callable[[float], None], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._answered(what, call, max(deadline - time.monotonic(), 0.1))
                return
            except ck.KafkaException as e:
                err: ck.KafkaError = e.args[0]
                if err.fatal() or self._fatal is not None:
                    raise ProducerFencedError(f"{what}: fatal transactional error (the "
                                              f"producer must be recreated): {err.str()}") from e
                if err.txn_requires_abort():
                    raise TransactionAbortableError(f"{what}: {err.str()}") from e
                if err.retriable() and time.monotonic() < deadline:
                    log.warning("kafka producer: %s: %s; retrying", what, err.str())
                    time.sleep(0.1)
                    continue
                if err.retriable():
                    raise ProducerFencedError(f"{what}: did not complete within {timeout:g}s "
                                              f"(the producer must be recreated): "
                                              f"{err.str()}") from e
                raise ProducerFencedError(f"{what}: {err.str()}") from e

    def _answered(self, what: str, call: Callable[[float], None], timeout: float) -> None:
        """Run a blocking transactional call, but give up on it if librdkafka does not answer
        in time: seen after a broker failover, send_offsets_to_transaction waited on its
        internal reply for minutes whatever its timeout. The call goes on in its thread; the
        producer is abandoned (never used or closed again) and the caller replaces it."""
        failure: list[BaseException] = []

        def run() -> None:
            try:
                call(timeout)
            except BaseException as exc:  # handed to the caller's thread
                failure.append(exc)

        worker = threading.Thread(target=run, name=f"fluvial-{what}", daemon=True)
        worker.start()
        worker.join(timeout + TXN_GRACE_S)
        if worker.is_alive():
            self._abandoned = True
            raise ProducerFencedError(f"{what}: librdkafka did not answer within "
                                      f"{timeout + TXN_GRACE_S:g}s (the producer must be "
                                      "recreated)")
        if failure:
            raise failure[0]

    def init_transactions(self, timeout: float) -> None:
        self._txn("init_transactions", self._p.init_transactions, timeout)

    def begin_transaction(self) -> None:
        self._failed, self._failures = 0, []
        self._txn("begin_transaction", lambda _left: self._p.begin_transaction(), 0.0)

    def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int],
                                    group_metadata: Any, timeout: float) -> None:
        parts = [ck.TopicPartition(tp.topic, tp.partition, off) for tp, off in offsets.items()]
        self._txn("send_offsets_to_transaction",
                  lambda left: self._p.send_offsets_to_transaction(parts, group_metadata, left),
                  timeout)

    def commit_transaction(self, timeout: float) -> None:
        # a failed delivery inside the transaction makes librdkafka fail the commit (abortable)
        self._txn("commit_transaction", self._p.commit_transaction, timeout)

    def abort_transaction(self, timeout: float) -> None:
        self._txn("abort_transaction", self._p.abort_transaction, timeout)
        self._failed, self._failures = 0, []


class KafkaAdmin:
    """``fluvial.io.client.Admin`` over ``AdminClient``; create and delete are idempotent.

    Both wait until the change shows in the cluster metadata, so a consumer created next sees
    the topics (or their absence) as the caller expects.
    """

    def __init__(self, conf: dict[str, Any]) -> None:
        self._a = AdminClient(conf)

    def _topics(self) -> dict[str, Any]:
        """TopicMetadata of every topic that exists (no topic-level error)."""
        md = self._a.list_topics(timeout=ADMIN_TIMEOUT_S)
        return {t: m for t, m in md.topics.items() if m.error is None}

    def _wait_metadata(self, done: Callable[[dict[str, Any]], bool], what: str) -> None:
        deadline = time.monotonic() + METADATA_WAIT_S
        while not done(self._topics()):
            if time.monotonic() > deadline:
                raise FluvialError(f"{what} did not show in cluster metadata within "
                                   f"{METADATA_WAIT_S:g}s")
            time.sleep(0.1)

    def _settle(self, futures: Mapping[str, Any], ignore: int, action: str) -> None:
        failures = []
        for name, future in futures.items():
            try:
                future.result(timeout=ADMIN_TIMEOUT_S)
            except ck.KafkaException as e:
                err = e.args[0]
                if err.code() != ignore:
                    failures.append(f"{name!r}: {err.str()}")
        if failures:
            raise FluvialError(f"could not {action} topic(s): " + "; ".join(failures))

    def create_topics(self, specs: Sequence[TopicSpec]) -> None:
        if not specs:
            return
        new = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication,
                        config=dict(s.config)) for s in specs]
        futures = self._a.create_topics(new, request_timeout=ADMIN_TIMEOUT_S)
        self._settle(futures, ck.KafkaError.TOPIC_ALREADY_EXISTS, "create")
        names = [s.name for s in specs]

        def led(md: dict[str, Any]) -> bool:  # producers and consumers need leaders, not names
            return all(n in md and md[n].partitions
                       and all(p.leader >= 0 for p in md[n].partitions.values()) for n in names)

        self._wait_metadata(led, f"topics {names} with a leader for every partition")

    def partition_counts(self, topics: Sequence[str]) -> dict[str, int]:
        """Partitions of each topic that exists. A topic whose metadata carries a transient
        error (a leader moving while a broker dies) still exists when partitions are listed;
        only an unknown topic is missing."""
        md = self._a.list_topics(timeout=ADMIN_TIMEOUT_S).topics
        counts = {}
        for t in topics:
            meta = md.get(t)
            if meta is None or not meta.partitions:
                continue
            if meta.error is None or meta.error.code() not in _UNKNOWN:
                counts[t] = len(meta.partitions)
        return counts

    def delete_records(self, before: dict[TopicPartition, int]) -> None:
        futures = self._a.delete_records(
            [ck.TopicPartition(tp.topic, tp.partition, off) for tp, off in before.items()],
            request_timeout=ADMIN_TIMEOUT_S)
        for tp, future in futures.items():
            future.add_done_callback(functools.partial(_log_purge_failure, tp))

    def group_members(self, group_id: str, timeout: float) -> list[GroupMember]:
        (future,) = self._a.describe_consumer_groups([group_id],
                                                     request_timeout=timeout).values()
        try:
            description = future.result(timeout=timeout)
        except ck.KafkaException as e:
            if e.args[0].code() == ck.KafkaError.GROUP_ID_NOT_FOUND:
                return []
            raise FluvialError(f"describing group {group_id!r}: {e.args[0].str()}") from e
        return [GroupMember(m.member_id, m.client_id or "",
                            tuple(_ours(m.assignment.topic_partitions if m.assignment else [])),
                            m.group_instance_id or None)
                for m in description.members]

    def delete_topics(self, topics: Sequence[str]) -> None:
        if not topics:
            return
        futures = self._a.delete_topics(list(topics), request_timeout=ADMIN_TIMEOUT_S)
        self._settle(futures, ck.KafkaError.UNKNOWN_TOPIC_OR_PART, "delete")
        self._wait_metadata(lambda md: not any(t in md for t in topics),
                            f"deletion of {list(topics)}")


class KafkaClients:
    """``fluvial.io.client.Clients`` for the cluster at ``bootstrap_servers``.

    ``extra_config`` (librdkafka properties: security, client.id, ...) goes to every client;
    the ``config`` given to ``consumer``/``producer`` overrides it for that client.
    """

    _CONSUMER_DEFAULTS: dict[str, Any] = {
        "partition.assignment.strategy": "range",
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        # never see records of open or aborted transactions (librdkafka's default, made plain)
        "isolation.level": "read_committed",
        # librdkafka stops fetching a partition for this long once its local queue is over
        # queued.min.messages; at its default (1 s) a fast consumer drains the queue and then
        # idles: measured, a bare consume-produce loop ran 3x faster at 10 ms (bench/README.md)
        "fetch.queue.backoff.ms": 10,
    }
    _PRODUCER_DEFAULTS: dict[str, Any] = {
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "enable.idempotence": True,
    }

    def __init__(self, bootstrap_servers: str,
                 extra_config: Mapping[str, Any] | None = None) -> None:
        self.bootstrap_servers = bootstrap_servers
        # librdkafka logs through Python logging, rate-limited (io/kafka_logging.py)
        self._base = {"logger": librdkafka_logger(), **(extra_config or {}),
                      "bootstrap.servers": bootstrap_servers}

    def consumer(self, group_id: str | None, config: dict[str, Any]) -> KafkaConsumer:
        conf = {**self._CONSUMER_DEFAULTS, **self._base, **config}
        if str(conf.get("group.protocol", "classic")).lower() == "consumer":
            _drop_classic_only(conf, {**self._base, **config})
        for fixed in ("enable.auto.commit", "enable.auto.offset.store"):
            if _is_true(conf.get(fixed, False)):
                raise ConfigError(f"{fixed}=true is not allowed: fluvial commits offsets "
                                  "itself, together with outputs and state")
            conf[fixed] = False
        # librdkafka insists on a group id; a free reader gets a private one it never commits to
        conf["group.id"] = group_id if group_id else f"fluvial-reader-{uuid.uuid4().hex}"
        return KafkaConsumer(conf, group_id or None)

    def producer(self, config: dict[str, Any]) -> KafkaProducer:
        return KafkaProducer({**self._PRODUCER_DEFAULTS, **self._base, **config})

    def admin(self) -> KafkaAdmin:
        return KafkaAdmin(dict(self._base))


# Settings librdkafka refuses under group.protocol=consumer (KIP-848): the broker owns them
# there (group.consumer.session.timeout.ms, group.consumer.heartbeat.interval.ms, and
# group.remote.assignor instead of a client-side assignor).
_CLASSIC_ONLY = {
    "partition.assignment.strategy": "group.remote.assignor",
    "session.timeout.ms": "the broker's group.consumer.session.timeout.ms",
    "heartbeat.interval.ms": "the broker's group.consumer.heartbeat.interval.ms",
    "group.protocol.type": None,
}


def _drop_classic_only(conf: dict[str, Any], given: Mapping[str, Any]) -> None:
    """Remove classic-protocol-only settings; warn about those the caller set explicitly."""
    for name, instead in _CLASSIC_ONLY.items():
        if name not in conf:
            continue
        del conf[name]
        if name in given:
            log.warning("%s=%r is ignored under group.protocol=consumer%s", name, given[name],
                        f" (see {instead})" if instead else "")


def _conforms(clients: KafkaClients) -> Clients:
    """Never called: makes mypy check that these classes implement the client protocols."""
    return clients
