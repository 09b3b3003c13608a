"""The benchmark driver: one case = one system x one workload, on a real Kafka broker.

For each case it creates a fresh input topic and output topic (the output topic stamps
``LogAppendTime``, so an output's timestamp is when the broker appended it), starts the
system, then runs three phases against the same running process(es):

1. **warm-up**: a few records; wait for their outputs (the system is up and assigned), then
   until its consumer group is stable with every member, then a second small round.
2. **latency**: records at a fixed moderate rate, each stamped with its create time by the
   producer; latency of an output = its append time - the create time of the input it
   answers. p50/p99 over the phase.
3. **throughput**: the system's processes are paused (SIGSTOP), N records are produced into
   its input topic, then it is resumed (SIGCONT); throughput = N / (append time of the last
   output - the moment it was resumed). CPU seconds (user+system, the system's whole process
   tree) are read at the start and end of this phase; peak RSS is sampled (summed over the
   tree) during it.

Input is generated from a seed before the system starts, so every system gets the same
records in the same partitions.
"""

from __future__ import annotations

import logging
import random
import statistics
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from bench.runners import RunContext, Runner
from bench.workloads import Input, Tracker, Workload

log = logging.getLogger("bench")


@dataclass
class Settings:
    scale: float = 1.0  # x each workload's default_records
    records: int | None = None  # overrides scale
    partitions: int = 4
    commit_ms: int = 1000
    rate: int = 2000  # records/s in the latency phase
    latency_seconds: float = 10.0
    warmup: int = 40
    seed: int = 42
    startup_timeout: float = 180.0
    latency_drain_timeout: float = 60.0  # after the last latency input was produced
    throughput_cap: float = 120.0  # then measure by committed offsets instead
    guarantee: str = "at_least_once"

    def records_for(self, workload: Workload) -> int:
        if self.records is not None:
            return self.records
        return max(1, int(workload.default_records * self.scale))

    def as_dict(self) -> dict[str, Any]:
        return {
            "partitions": self.partitions,
            "replication_factor": 1,
            "commit_interval_ms": self.commit_ms,
            "processing_guarantee": self.guarantee,
            "latency_rate_per_s": self.rate,
            "latency_seconds": self.latency_seconds,
            "warmup_records": self.warmup,
            "latency_drain_timeout_s": self.latency_drain_timeout,
            "throughput_cap_s": self.throughput_cap,
            "seed": self.seed,
            "scale": self.scale,
            "records_override": self.records,
        }


# ---------------------------------------------------------------------------------------------
# Measuring the system's processes
# ---------------------------------------------------------------------------------------------

class Sampler:
    """Samples RSS (summed over the process tree) and CPU time of a process and its children.

    Without psutil (the project venv in the smoke test) it records nothing.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        try:
            import psutil
        except ImportError:
            self._psutil = None
        else:
            self._psutil = psutil
        self.pid = pid
        self.interval = interval
        self.peak_rss = 0
        self._cpu: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    @property
    def enabled(self) -> bool:
        return self._psutil is not None

    def start(self) -> Sampler:
        if self.enabled:
            self._thread.start()
        return self

    def sample(self) -> None:
        if self._psutil is None:
            return
        ps = self._psutil
        try:
            root = ps.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except ps.Error:
            return
        rss = 0
        with self._lock:
            for p in procs:
                try:
                    with p.oneshot():
                        rss += p.memory_info().rss
                        t = p.cpu_times()
                        self._cpu[p.pid] = t.user + t.system
                except ps.Error:
                    continue
            self.peak_rss = max(self.peak_rss, rss)

    def cpu_seconds(self) -> float | None:
        if not self.enabled:
            return None
        self.sample()
        with self._lock:
            return sum(self._cpu.values())

    def reset_peak(self) -> None:
        self.sample()
        with self._lock:
            self.peak_rss = 0
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


# ---------------------------------------------------------------------------------------------
# Kafka side: topics, producing input, reading output
# ---------------------------------------------------------------------------------------------

def create_topics(admin: AdminClient, input_topic: str, output_topic: str,
                  partitions: int) -> None:
    futures = admin.create_topics([
        NewTopic(input_topic, partitions, 1),
        NewTopic(output_topic, partitions, 1,
                 config={"message.timestamp.type": "LogAppendTime"}),
    ])
    for future in futures.values():
        future.result(60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until both have leaders
        md = admin.list_topics(timeout=10).topics
        if all(t in md and len(md[t].partitions) == partitions
               and all(p.leader >= 0 for p in md[t].partitions.values())
               for t in (input_topic, output_topic)):
            return
        time.sleep(0.1)
    raise RuntimeError(f"topics {input_topic}, {output_topic} have no leaders after 60 s")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class InputProducer:
    def __init__(self, bootstrap: str, topic: str, linger_ms: int) -> None:
        self.topic = topic
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "linger.ms": linger_ms,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 2_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "acks": "all",
        })
        self.errors: list[str] = []

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))

    def send(self, record: Input, ts: int) -> None:
        while True:
            try:
                self.producer.produce(self.topic, record.value, record.key,
                                      partition=record.partition, timestamp=ts,
                                      on_delivery=self._on_delivery)
                return
            except BufferError:
                self.producer.poll(0.01)

    def flush(self) -> None:
        left = self.producer.flush(60)
        if left or self.errors:
            raise RuntimeError(f"input not delivered: {left} left, errors {self.errors[:3]}")

    def bulk(self, records: list[Input]) -> tuple[int, float]:
        """Produce as fast as possible; return (first create ts, produce seconds)."""
        t0 = time.perf_counter()
        first = _now_ms()
        send = self.send
        for r in records:
            send(r, _now_ms())
        self.flush()
        return first, time.perf_counter() - t0

    def paced(self, records: list[Input], rate: float, tracker: Tracker) -> float:
        """Produce at ``rate``/s, each record stamped and expected just before it is sent."""
        start = time.perf_counter()
        sent = 0
        n = len(records)
        while sent < n:
            due = min(n, int((time.perf_counter() - start) * rate) + 1)
            while sent < due:
                r = records[sent]
                ts = _now_ms()
                tracker.expect(r, ts)
                self.send(r, ts)
                sent += 1
            self.producer.poll(0)
            next_at = start + sent / rate
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(min(delay, 0.005))
        self.flush()
        return time.perf_counter() - start


class OutputReader:
    """Reads the output topic from the beginning, in a thread, feeding the tracker."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, tracker: Tracker) -> None:
        self.tracker = tracker
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            # latency is read from append times, so the reader may wait for fuller fetches:
            # a fetch per output record would load the shared broker during the measurement
            "fetch.min.bytes": 1_000_000,
            "fetch.wait.max.ms": 50,
            "isolation.level": "read_uncommitted",
        })
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                              for p in range(partitions)])
        self.errors: list[str] = []
        self.wrong_timestamp_type = False
        self.failure: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="output-reader", daemon=True)

    def start(self) -> OutputReader:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._read()
        except BaseException as exc:
            self.failure = f"output reader failed: {type(exc).__name__}: {exc}"
            raise

    def _read(self) -> None:
        seen = self.tracker.seen
        consume = self.consumer.consume
        while not self._stop.is_set():
            for m in consume(10_000, 0.05):
                if m.error() is not None:
                    self.errors.append(str(m.error()))
                    continue
                ts_type, ts = m.timestamp()
                if ts_type != TIMESTAMP_LOG_APPEND_TIME:
                    self.wrong_timestamp_type = True
                seen(m.key(), m.value(), ts)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.consumer.close()


def wait_group(admin: AdminClient, group: str, members: int, timeout: float) -> bool:
    """Until the consumer group is Stable with ``members`` members (each with partitions)."""
    from confluent_kafka import ConsumerGroupState

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            desc = admin.describe_consumer_groups([group])[group].result(10)
            if (desc.state == ConsumerGroupState.STABLE and len(desc.members) == members
                    and all(m.assignment and m.assignment.topic_partitions
                            for m in desc.members)):
                return True
        except Exception as exc:  # group not there yet
            log.debug("describe group %s: %s", group, exc)
        time.sleep(0.25)
    return False


# ---------------------------------------------------------------------------------------------
# One case
# ---------------------------------------------------------------------------------------------

def committed_total(admin: AdminClient, group: str, topic: str, partitions: int) -> int:
    """Sum of the group's committed offsets on ``topic`` (0 where none)."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p)
                                              for p in range(partitions)])
    res = admin.list_consumer_group_offsets([req])[group].result(30)
    return sum(max(0, tp.offset) for tp in res.topic_partitions)


def _percentile(sorted_values: list[int], q: float) -> float | None:
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


class CaseFailed(RuntimeError):
    pass


def _wait_done(tracker: Tracker, handle: Any, reader: OutputReader, timeout: float,
               what: str) -> float:
    t0 = time.monotonic()
    deadline = t0 + timeout
    while tracker.pending():
        if reader.failure:
            raise CaseFailed(f"{what}: {reader.failure}")
        if not handle.alive():
            raise CaseFailed(f"{what}: the system exited (code {handle.proc.returncode}) with "
                             f"{tracker.pending()} output(s) pending")
        if time.monotonic() > deadline:
            raise CaseFailed(f"{what}: timed out after {timeout:.0f} s with "
                             f"{tracker.pending()} output(s) pending")
        time.sleep(0.02)
    return time.monotonic() - t0


def run_case(runner: Runner, workload: Workload, settings: Settings, bootstrap: str,
             work_dir: Path, run_id: str, label: str = "") -> dict[str, Any]:
    """Run one system on one workload; return its figures (or why it failed).

    ``label`` tells repeated runs of one case apart (their topics, group and log)."""
    n = settings.records_for(workload)
    result: dict[str, Any] = {"system": runner.key, "system_name": runner.name,
                              "workload": workload.name, "unit": workload.unit,
                              "records": n, "status": "ok"}
    rng = random.Random(f"{settings.seed}-{workload.name}")
    warm_a = workload.generate(rng, 0, settings.warmup, settings.partitions)
    warm_b = workload.generate(rng, settings.warmup, settings.warmup, settings.partitions)
    n_lat = max(1, int(settings.rate * settings.latency_seconds))
    lat = workload.generate(rng, 2 * settings.warmup, n_lat, settings.partitions)
    bulk = workload.generate(rng, 2 * settings.warmup + n_lat, n, settings.partitions)

    case = f"{runner.key}-{workload.name}{label}"
    app_id = f"bench-{run_id}-{case}"
    input_topic, output_topic = f"{app_id}-in", f"{app_id}-out"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    create_topics(admin, input_topic, output_topic, settings.partitions)
    ctx = RunContext(workload=workload, bootstrap=bootstrap, app_id=app_id,
                     input_topic=input_topic, output_topic=output_topic,
                     commit_ms=settings.commit_ms, partitions=settings.partitions,
                     state_dir=work_dir / "state" / case, log_path=work_dir / f"{case}.log",
                     wrap=list(runner.wrap))
    tracker = workload.tracker()
    reader = OutputReader(bootstrap, output_topic, settings.partitions, tracker).start()
    fast = InputProducer(bootstrap, input_topic, linger_ms=5)
    slow = InputProducer(bootstrap, input_topic, linger_ms=0)
    t_start = time.monotonic()
    handle = runner.start(ctx)
    sampler = Sampler(handle.pid).start()
    result["metrics_sampled"] = sampler.enabled
    try:
        # 1. warm-up
        for r in warm_a:
            tracker.expect(r, None)
        fast.bulk(warm_a)
        _wait_done(tracker, handle, reader, settings.startup_timeout, "warm-up")
        if not wait_group(admin, app_id, runner.members, settings.startup_timeout):
            raise CaseFailed(f"consumer group {app_id} never became stable with "
                             f"{runner.members} member(s)")
        for r in warm_b:
            tracker.expect(r, None)
        fast.bulk(warm_b)
        _wait_done(tracker, handle, reader, settings.startup_timeout, "warm-up after rebalance")
        result["startup_s"] = round(time.monotonic() - t_start, 2)

        # 2. latency at a fixed rate. A system slower than the rate cannot drain in time:
        # its latency is reported over what it answered, marked not sustained.
        tracker.take_latencies()
        produce_s = slow.paced(lat, settings.rate, tracker)
        sustained = True
        try:
            _wait_done(tracker, handle, reader, settings.latency_drain_timeout, "latency phase")
        except CaseFailed:
            if not handle.alive() or reader.failure:
                raise
            sustained = False
        lats = sorted(tracker.take_latencies())
        result["latency"] = {
            "records": n_lat, "rate_target": settings.rate,
            "rate_actual": round(n_lat / produce_s, 1) if produce_s else None,
            "sustained": sustained,
            "pending_at_end": tracker.pending(),
            "samples": len(lats),
            "p50_ms": _percentile(lats, 0.50), "p99_ms": _percentile(lats, 0.99),
            "max_ms": lats[-1] if lats else None,
            "mean_ms": round(statistics.fmean(lats), 1) if lats else None,
        }

        # 3. throughput: queue the whole input while the system is paused (SIGSTOP), so the
        # producer neither competes for CPU nor limits the rate; the clock starts at SIGCONT.
        # A system that has not finished after throughput_cap seconds is measured by the input
        # offsets its consumer group committed (= inputs fully processed, under at-least-once).
        for r in bulk:
            tracker.expect(r, None)
        handle.pause()
        try:
            _, produce_s = fast.bulk(bulk)
            committed0 = committed_total(admin, app_id, input_topic, settings.partitions)
            cpu0 = sampler.cpu_seconds()
            sampler.reset_peak()
            first_ms = _now_ms()
        finally:
            handle.resume()
        try:
            _wait_done(tracker, handle, reader, settings.throughput_cap, "throughput phase")
            partial = None
            last_ms = tracker.last_append_ms or first_ms
            seconds = max(0.001, (last_ms - first_ms) / 1000.0)
            processed = n
        except CaseFailed:
            if not handle.alive() or reader.failure:
                raise
            processed = committed_total(admin, app_id, input_topic, settings.partitions) \
                - committed0
            seconds = max(0.001, (_now_ms() - first_ms) / 1000.0)
            partial = (f"not finished after {settings.throughput_cap:.0f} s: rate from "
                       f"committed input offsets ({processed:,} {workload.unit} in "
                       f"{seconds:.0f} s)")
        cpu1 = sampler.cpu_seconds()
        result.update({
            "seconds": round(seconds, 3),
            "processed": processed,
            "throughput": round(processed / seconds, 1),
            "input_produce_rate": round(n / produce_s, 1) if produce_s else None,
            "peak_rss_mb": round(sampler.peak_rss / 2**20, 1) if sampler.enabled else None,
            "cpu_s": round(cpu1 - cpu0, 2) if cpu0 is not None and cpu1 is not None else None,
        })
        if result["cpu_s"] is not None and processed > 0:
            result["cpu_s_per_m"] = round(result["cpu_s"] / processed * 1e6, 1)
        if partial:
            result["status"] = "partial"
            result["partial"] = partial
    except CaseFailed as exc:
        result["status"] = "failed"
        result["error"] = str(exc)
        result["log_tail"] = handle.log_tail()
    finally:
        sampler.stop()
        result["exit_code"] = handle.stop()
        reader.stop()
        result["outputs"] = tracker.outputs
        result["expected_outputs"] = tracker.expected_outputs()
        result["duplicates"] = tracker.duplicates
        result["pending"] = tracker.pending()
        if tracker.bad:
            result["bad_outputs"] = tracker.bad[:10]
            result["bad_count"] = len(tracker.bad)
        if reader.wrong_timestamp_type:
            result["warning"] = "output records without LogAppendTime"
        fast.producer.flush(10)
        slow.producer.flush(10)
    if result["status"] == "ok" and tracker.bad:
        result["status"] = "wrong-output"
    return result
