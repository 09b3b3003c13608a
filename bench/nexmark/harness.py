"""One harness case of a Nexmark query over the per-type topics (q3, q4, q5, q7, q8).

The bench driver's cases (``bench.driver.run_case``) follow one output per input; a windowed
or joined query answers windows and keys, not inputs, so its case runs differently:

1. the events (warm-up and timed, ``EVENT_RATE`` events/s of event time) are generated, and
   the query's reference computed, before the system starts;
2. the table side of a stream-table join (q3's people, q4's auctions: ``EventQuery.tables``),
   all of it, goes to its topic and is processed first (see below);
3. **warm-up**: the rest of the first ``warm`` events go to ``<case>-person``, ``-auction``,
   ``-bid`` (only the types the query reads; JSON keyed by id, bids by auction id,
   murmur2-partitioned as Kafka Streams would, record time = the event's ``dateTime``); wait
   until the consumer group is stable and has committed every input and repartition offset
   to its end;
4. **throughput**: the system is paused (SIGSTOP), the rest of the events are produced, it is
   resumed (SIGCONT); records/s = the records produced in this phase ÷ (the moment its group
   is seen to have committed every input and repartition topic to its end - the resume).
   Under at-least-once a committed offset means processed and its outputs flushed, so this is
   "input fully processed, outputs acknowledged"; it is late by up to one commit interval plus
   the 50 ms polling, alike for every system. ``events/s`` is the same time against the
   events of the stream (all types, as Flink's nexmark counts its source), of which a query
   over the per-type topics reads only its types;
5. the whole output topic is read back and checked against the reference over every event
   (``check``, or ``check_latest`` for a table's update stream): a mismatch makes the case
   ``wrong-output``, and its figures do not count.

**Stream-table joins, table first.** Which table row a stream record meets depends on the
order in which a task consumes the two topics. Neither system follows event time across them
after a burst (Kafka Streams waits for a partition's data only while it knows of a lag, and
its lag is stale right after the SIGCONT; fluvial runs each polled partition batch as it
comes), so the answer changed from run to run for both. With the table loaded first every
stream record meets the complete table, and the reference is the same query over the events
with the table's events moved to the front (for q4 that is the event-order answer too: a bid
that comes before its auction is before the auction's start).

**End-of-input events** (``closers``) then close every window. Kafka Streams and fluvial close
a window per task (partition) on that task's stream time, look for closed windows at most once
a second of wall-clock time after a record, and merge partitions into a repartition topic in
the order they fetch them (so event time there is out of order by up to a fetch). So the
harness gives the windows and q8's join a grace longer than the input (``GRACE_MS``: no record
is ever late), and once the timed events are processed sends one person, one auction of
theirs and one bid per partition a grace and a window past the last event (every window
closes), then, once those are processed and a second has passed, a second such set (which
emits what the first closed within the throttle's second). The reference is computed over the
events and both sets, so it is exact. The closers change nothing else: their people live in
WA (no q3 match), their bids are for auctions that never exist (no q4 price), their own
windows stay open. So q5, q7 and q8 emit their windows after the timed phase: the updates of
every window are timed, the emission of the final results (for 200,000 events: q7 20 rows,
q8 about 1,200, q5 one count per auction and window, about 20,000) is not.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from bench.driver import CaseFailed, Sampler, Settings, _now_ms, wait_group
from bench.nexmark.check import check, check_latest
from bench.nexmark.generator import AUCTION, BID, KIND_NAMES, PERSON, Generator, GeneratorConfig
from bench.nexmark.sink import event_key
from bench.nexmark.stateful import EventQuery
from bench.runners import RunContext, Runner
from fluvial.io.embedded.partitioner import partition_for_key

Event = tuple[int, dict[str, Any]]

#: event time advances 1 ms per event: 200,000 events span 200 s, so 10 s windows close
#: (20 of q7's, 100 of q5's) where Nexmark's default 10,000 events/s would close two
EVENT_RATE = 1_000
SEED = 0  # the generator's, as q0-q2's bids
POLL_S = 0.05
#: the windows' (and q8's join's) grace: longer than any input's span, so no record is late
#: however a system interleaves partitions (a repartition topic merges them in fetch order)
GRACE_MS = 3_600_000
CLOSE_AFTER_MS = GRACE_MS + 10_000 + 1_000  # closers: past every window's end and grace
EMIT_INTERVAL_S = 1.0  # Kafka Streams' and fluvial's wall-clock throttle on closing windows


def warmup_events(settings: Settings) -> int:
    return 50 * settings.warmup  # whole groups of 50 (1 person, 3 auctions, 46 bids)


def events(start: int, count: int, base_time_ms: int, kinds: tuple[int, ...],
           last: dict[int, dict[str, Any]]) -> list[Event]:
    """Events ``start`` .. ``start + count - 1`` of the kinds given (a query over people and
    auctions keeps 4 events in 50); ``last`` gets the last event of every kind (the closers'
    prototypes)."""
    config = GeneratorConfig(seed=SEED, events_per_second=EVENT_RATE, base_time_ms=base_time_ms)
    kept: list[Event] = []
    for kind, e in Generator(config).events(start, count):
        last[kind] = e
        if kind in kinds:
            kept.append((kind, e))
    return kept


def recent_base_time() -> int:
    """Event time of the first event: three graces before now, so that the closers (a grace
    past the last event) are still in the past for the broker (Kafka 4 refuses timestamps
    more than an hour ahead), and no event is older than the broker's retention (it deletes
    such segments, and fluvial's repartition topics keep the broker's default retention)."""
    return (_now_ms() - 3 * GRACE_MS) // 1000 * 1000


def _ids_per_partition(first: int, partitions: int) -> list[int]:
    """For each partition, the smallest id from ``first`` whose key lands there."""
    found: dict[int, int] = {}
    i = first
    while len(found) < partitions:
        found.setdefault(partition_for_key(str(i).encode(), partitions), i)
        i += 1
    return [found[p] for p in range(partitions)]


def closers(last: dict[int, dict[str, Any]], partitions: int, nth: int) -> list[Event]:
    """The ``nth`` set of end-of-input events (see the module's docstring) after a stream
    whose last event of each kind is ``last``."""
    ts = max(e["dateTime"] for e in last.values()) + CLOSE_AFTER_MS
    # far past every id the stream uses or refers to (bids and sellers reach 10 ahead)
    first = 1_000 + 100_000 * nth
    people = _ids_per_partition(last[PERSON]["id"] + first, partitions)
    auctions = _ids_per_partition(last[AUCTION]["id"] + first, partitions)
    missing = _ids_per_partition(auctions[-1] + 10_000_000, partitions)  # never auctioned
    out: list[Event] = []
    for person, auction, ghost in zip(people, auctions, missing, strict=True):
        out += [(PERSON, {**last[PERSON], "id": person, "state": "WA", "dateTime": ts}),
                (AUCTION, {**last[AUCTION], "id": auction, "seller": person, "dateTime": ts,
                           "expires": ts + 1}),
                (BID, {**last[BID], "auction": ghost, "bidder": person, "price": 1,
                       "dateTime": ts})]
    return out


class _Events:
    """Produces events to the per-type topics of one case, with the event time as record time."""

    def __init__(self, bootstrap: str, topics: dict[int, str]) -> None:
        self.topics = topics
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                                  "batch.size": 1_000_000, "acks": "all",
                                  "partitioner": "murmur2_random",
                                  "queue.buffering.max.messages": 2_000_000,
                                  "queue.buffering.max.kbytes": 1_048_576})
        self.errors: list[str] = []

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None and len(self.errors) < 5:
            self.errors.append(f"{msg.topic()}: {err}")

    def send(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        produce, dumps, topics = self.producer.produce, orjson.dumps, self.topics
        for kind, e in batch:
            topic = topics.get(kind)
            if topic is None:
                continue  # a type this query does not read
            while True:
                try:
                    produce(topic, dumps(e), event_key(kind, e), timestamp=e["dateTime"],
                            on_delivery=self._delivered)
                    break
                except BufferError:
                    self.producer.poll(0.01)
        left = self.producer.flush(60)
        if left or self.errors:
            raise CaseFailed(f"nexmark input not delivered: {left} left, errors {self.errors}")


class _Progress:
    """How many records of the inputs and repartition topics the group has not committed."""

    def __init__(self, admin: AdminClient, group: str, inputs: list[str]) -> None:
        self.admin, self.group, self.inputs = admin, group, inputs

    def _partitions(self) -> list[TopicPartition]:
        topics = self.admin.list_topics(timeout=10).topics
        names = [*self.inputs, *(t for t in topics if t.startswith(f"{self.group}-")
                                 and t.endswith("-repartition"))]
        return [TopicPartition(t, p) for t in names if t in topics
                for p in topics[t].partitions]

    def lag(self) -> int:
        """Records not committed yet; 1 while the broker cannot say (a topic just created,
        its leader not elected yet)."""
        try:
            return self._lag()
        except KafkaException:
            return 1

    def _lag(self) -> int:
        parts = self._partitions()
        # committed first, ends second: an input committed before the ends are read has its
        # repartition records in those ends (at-least-once flushes before it commits)
        request = ConsumerGroupTopicPartitions(self.group, parts)
        got = self.admin.list_consumer_group_offsets([request])[self.group].result(30)
        committed = {(tp.topic, tp.partition): max(0, tp.offset) for tp in got.topic_partitions}
        ends = self.admin.list_offsets({tp: OffsetSpec.latest() for tp in parts})
        return sum(future.result(30).offset - committed.get((tp.topic, tp.partition), 0)
                   for tp, future in ends.items())


def _wait_leaders(admin: AdminClient, names: list[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=10).topics
        if all(t in topics and topics[t].partitions
               and all(p.leader >= 0 for p in topics[t].partitions.values()) for t in names):
            return
        time.sleep(0.1)
    raise CaseFailed(f"topics {', '.join(names)} have no leaders after 60 s")


def _wait_caught_up(progress: _Progress, handle: Any, timeout: float, what: str) -> bool:
    """Until the group has committed everything; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while progress.lag() > 0:
        if not handle.alive():
            raise CaseFailed(f"{what}: the system exited (code {handle.proc.returncode})")
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


def read_output(bootstrap: str, topic: str, partitions: int) -> list[tuple[str | None, Any]]:
    """Every record of ``topic``, in order per partition, as (key, JSON value)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"nexmark-check-{topic}",
                         "enable.auto.commit": False})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
        left = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in left])
        out: list[tuple[str | None, Any]] = []
        deadline = time.monotonic() + 60
        while left:
            if time.monotonic() > deadline:
                raise CaseFailed(f"reading {topic}: partitions {sorted(left)} not read in 60 s")
            for m in consumer.consume(10_000, 0.5):
                if m.error() is not None:
                    raise CaseFailed(f"reading {topic}: {m.error()}")
                key, value, partition = m.key(), m.value(), m.partition() or 0
                out.append((None if key is None else key.decode(),
                            None if value is None else orjson.loads(value)))
                if (m.offset() or 0) + 1 >= ends[partition]:
                    left.discard(partition)
        return out
    finally:
        consumer.close()


def run_event_case(runner: Runner, workload: Any, query: EventQuery, settings: Settings,
                   bootstrap: str, work_dir: Path, run_id: str,
                   label: str = "") -> dict[str, Any]:
    """Run ``runner`` on ``query`` as described above; return its figures or why it failed."""
    n = settings.records_for(workload)
    warm = warmup_events(settings)
    result: dict[str, Any] = {"system": runner.key, "system_name": runner.name,
                              "workload": workload.name, "unit": workload.unit,
                              "records": n, "status": "ok", "event_rate": EVENT_RATE}
    if (warm + n) * 1000 // EVENT_RATE >= GRACE_MS:
        return {**result, "status": "failed",
                "error": f"{warm + n:,} events span more than the grace of {GRACE_MS:,} ms at "
                         f"{EVENT_RATE:,} events/s: use fewer"}
    base = recent_base_time()
    last: dict[int, dict[str, Any]] = {}
    warm_events = events(0, warm, base, query.reads, last)
    timed_events = events(warm, n, base, query.reads, last)
    ending = [closers(last, settings.partitions, nth) for nth in (0, 1)]
    tables = [(k, e) for k, e in warm_events + timed_events if k in query.tables]
    warm_up, timed = ([(k, e) for k, e in part if k not in query.tables]
                      for part in (warm_events, timed_events))
    reference = query.reference(tables + warm_up + timed + ending[0] + ending[1])
    case = f"{runner.key}-{workload.name}{label}"
    app_id = f"bench-{run_id}-{case}"
    topics = {kind: f"{app_id}-{KIND_NAMES[kind]}" for kind in query.reads}
    output_topic = f"{app_id}-out"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(t, settings.partitions, 1) for t in topics.values()]
        + [NewTopic(output_topic, settings.partitions, 1,
                    config={"message.timestamp.type": "LogAppendTime"})])
    for future in futures.values():
        future.result(60)
    _wait_leaders(admin, [*topics.values(), output_topic])
    ctx = RunContext(workload=workload, bootstrap=bootstrap, app_id=app_id,
                     input_topic=app_id, output_topic=output_topic,  # input: the topic prefix
                     commit_ms=settings.commit_ms, partitions=settings.partitions,
                     state_dir=work_dir / "state" / case, log_path=work_dir / f"{case}.log",
                     wrap=list(runner.wrap))
    producer = _Events(bootstrap, topics)
    progress = _Progress(admin, app_id, list(topics.values()))
    t_start = time.monotonic()
    handle = runner.start(ctx)
    sampler = Sampler(handle.pid).start()
    result["metrics_sampled"] = sampler.enabled
    try:
        for phase, batch in (("table", tables), ("warm-up", warm_up)):
            if not batch:
                continue
            producer.send(batch)
            if not wait_group(admin, app_id, runner.members, settings.startup_timeout):
                raise CaseFailed(f"consumer group {app_id} never became stable with "
                                 f"{runner.members} member(s)")
            if not _wait_caught_up(progress, handle, settings.startup_timeout, phase):
                raise CaseFailed(f"{phase}: {len(batch):,} records not processed after "
                                 f"{settings.startup_timeout:.0f} s")
        result["startup_s"] = round(time.monotonic() - t_start, 2)
        handle.pause()
        try:
            t0 = time.perf_counter()
            producer.send(timed)
            produce_s = time.perf_counter() - t0
            cpu0 = sampler.cpu_seconds()
            sampler.reset_peak()
            first_ms = _now_ms()
        finally:
            handle.resume()
        finished = _wait_caught_up(progress, handle, settings.throughput_cap, "throughput")
        seconds = max(0.001, (_now_ms() - first_ms) / 1000.0)
        cpu1 = sampler.cpu_seconds()
        read = len(timed)
        result.update({
            "seconds": round(seconds, 3), "processed": read if finished else None,
            "throughput": round(read / seconds, 1) if finished else None,
            "events_per_s": round(n / seconds, 1) if finished else None,
            "input_produce_rate": round(read / produce_s, 1) if produce_s else None,
            "peak_rss_mb": round(sampler.peak_rss / 2**20, 1) if sampler.enabled else None,
            "cpu_s": round(cpu1 - cpu0, 2) if cpu0 is not None and cpu1 is not None else None,
        })
        if not finished:
            raise CaseFailed(f"throughput: not caught up after {settings.throughput_cap:.0f} s "
                             f"({progress.lag():,} records uncommitted)")
        if result["cpu_s"] is not None:
            result["cpu_s_per_m"] = round(result["cpu_s"] / read * 1e6, 1)
        for closing in ending:  # a second apart: every task looks for closed windows again
            time.sleep(EMIT_INTERVAL_S + 0.2)
            producer.send(closing)
            if not _wait_caught_up(progress, handle, settings.startup_timeout, "end of input"):
                raise CaseFailed(f"end of input: the closing events not processed after "
                                 f"{settings.startup_timeout:.0f} s")
    except CaseFailed as exc:
        result["status"] = "failed"
        result["error"] = str(exc)
        result["log_tail"] = handle.log_tail()
    finally:
        sampler.stop()
        result["exit_code"] = handle.stop()
    if result["status"] == "ok":
        outputs = read_output(bootstrap, output_topic, settings.partitions)
        verdict = (check_latest if query.table else check)(outputs, reference)
        result.update({"outputs": len(outputs), "expected_outputs": verdict.expected,
                       "check": verdict.summary()})
        if not verdict.ok:
            result["status"] = "wrong-output"
            result["bad_count"] = verdict.missing_count + verdict.unexpected_count
            result["bad_outputs"] = [f"missing {m}" for m in verdict.missing[:5]] + \
                [f"unexpected {u}" for u in verdict.unexpected[:5]]
    return result

