"""The talk's set-up on a local real Kafka cluster, with a crash: ``make demo-cluster``.

    python -m examples.airline.demo_cluster [--records N] [--instances 5] [--rate R]

1. starts a 3-node Kafka cluster (KRaft; ``tools/kafka_cluster.py``),
2. creates AirlineInputTopic and AirlineOutputTopic (10 partitions, replication 3) and the
   compacted AirlineModels topic (replication 3),
3. trains the flight-delay model, or reuses ``make demo``'s (``.cache/airline-model.json``,
   when it was trained on the same data file), and publishes it to AirlineModels,
4. starts 5 instances of the microservice, 5 ``fluvial run examples.airline.service:build``
   processes in one consumer group, each with its own state dir and HTTP port, under
   exactly-once,
5. replays the data file into AirlineInputTopic, SIGKILLs one instance when about a third of
   the flights are scored, and shows the others take over its partitions (their logs'
   ``tasks running`` lines, their ``/metrics`` ``fluvial_tasks_assigned``),
6. checks that every flight was scored exactly once: the outputs read ``read_committed`` are
   one per input offset, each flight once, none missing; prints a summary (time to take
   over, records/s) and stops everything: no JVM or instance is left running.

``--bootstrap-servers`` runs steps 2-6 on a cluster that is already up (fresh topic names
and application id; nothing of the cluster is stopped); the integration test does that.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from examples.airline.flights import DATA_FILE, LABEL, flight_key, parse_line, read_lines
from examples.airline.service import key_fields

REPO = Path(__file__).resolve().parents[2]
RUN_DIR = REPO / "build" / "demo-cluster"
INPUT, OUTPUT, MODELS = "AirlineInputTopic", "AirlineOutputTopic", "AirlineModels"
APP_ID = "airline-delay"
MODEL_NAME = "airline-delay"
TASKS_LINE = re.compile(r"tasks (running|revoked|lost): (.*)$")


@dataclass
class Settings:
    bootstrap_servers: str | None = None  # None: start a 3-node cluster
    records: int | None = None  # None: the whole file
    instances: int = 5
    partitions: int = 10
    replication: int = 3
    rate: float = 0.0  # records/s of the replay; 0: as fast as the producer goes
    kill_at: float = 0.3  # SIGKILL an instance when this share of the flights is scored
    victim: int = 2  # which instance
    timeout: float = 240.0  # for the replay + scoring part
    run_dir: Path = RUN_DIR
    suffix: str = ""  # appended to topic names and the application id
    quiet: bool = False


@dataclass
class Summary:
    ok: bool
    lines: list[str]
    inputs: int = 0
    outputs: int = 0
    distinct_outputs: int = 0
    missing: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    takeover_s: float | None = None
    resumed_s: float | None = None
    records_per_s: float = 0.0
    moved: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return "\n".join(self.lines)


class Clock:
    def __init__(self, quiet: bool = False) -> None:
        self.t0 = time.monotonic()
        self.quiet = quiet

    def __call__(self) -> float:
        return time.monotonic() - self.t0

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"[{self():6.1f}s] {message}", flush=True)


# -- the instances ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Instance:
    """One ``fluvial run examples.airline.service:build`` process, its log in a file."""

    def __init__(self, index: int, settings: Settings, bootstrap: str, app_id: str,
                 topics: dict[str, str]) -> None:
        self.name = f"instance-{index}"
        self.port = free_port()
        self.dir = settings.run_dir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "fluvial.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLUVIAL_")}
        env.update(FLUVIAL_AIRLINE_INPUT=topics["input"], FLUVIAL_AIRLINE_OUTPUT=topics["output"],
                   FLUVIAL_AIRLINE_MODELS=topics["models"],
                   PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "src")]))
        if not _has_group_protocol():
            # classic group protocol: a SIGKILLed member leaves after 6 s, not 45 s (under
            # the consumer protocol, KIP-848, the broker's setting rules: 6 s here too)
            env["FLUVIAL_CONSUMER_CONFIG"] = json.dumps({"session.timeout.ms": 6000,
                                                         "heartbeat.interval.ms": 500})
        self.command = [
            sys.executable, "-m", "fluvial", "run", "examples.airline.service:build",
            "-a", app_id, "-b", bootstrap, "--state-dir", str(self.dir / "state"),
            "--http-port", str(self.port), "--processing-guarantee", "exactly_once",
            "--on-error", "dead_letter", "--replication-factor", str(settings.replication)]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(self.command, cwd=REPO, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self._read = 0
        self.tasks: set[str] = set()
        self.events: list[tuple[float, str, set[str]]] = []  # (seen at, what, tasks)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def follow_log(self, now: float) -> None:
        """Read new log lines: keep the set of tasks this instance holds."""
        with self.log.open(errors="replace") as f:
            f.seek(self._read)
            chunk = f.read()
        complete = chunk[:chunk.rfind("\n") + 1]
        self._read += len(complete.encode(errors="replace"))
        for line in complete.splitlines():
            m = TASKS_LINE.search(line)
            if not m:
                continue
            what, tasks = m.group(1), set(m.group(2).split())
            if what == "running":
                self.tasks |= tasks
            else:
                self.tasks -= tasks
            self.events.append((now, what, tasks))

    def metrics(self, timeout: float = 2.0) -> dict[str, float]:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("fluvial_"):
                name, _, value = line.rpartition(" ")
                out[name.split("{", 1)[0]] = float(value)
        return out

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(30)


def _has_group_protocol() -> bool:
    from fluvial.runtime.config import StreamsConfig

    return "group_protocol" in getattr(StreamsConfig, "__dataclass_fields__", {})


# -- Kafka helpers ----------------------------------------------------------------------------


def _admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def create_topics(bootstrap: str, topics: dict[str, str], settings: Settings) -> None:
    from confluent_kafka.admin import NewTopic

    from fluvial.ml import ensure_models_topic

    admin = _admin(bootstrap)
    config = {"min.insync.replicas": str(min(2, settings.replication))}
    new = [NewTopic(topics[t], num_partitions=settings.partitions,
                    replication_factor=settings.replication, config=config)
           for t in ("input", "output")]
    new.append(NewTopic(topics["dead_letter"], num_partitions=3,
                        replication_factor=settings.replication, config=config))
    for name, future in admin.create_topics(new, operation_timeout=30).items():
        try:
            future.result(60)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise RuntimeError(f"creating topic {name}: {exc}") from exc
    ensure_models_topic(bootstrap, topics["models"], replication=settings.replication)
    warm_up_transactions(bootstrap)
    # wait until every partition has a leader (metadata may lag behind creation)
    deadline = time.monotonic() + 60
    while True:
        md = admin.list_topics(timeout=10).topics
        if all(name in md and md[name].partitions and
               all(p.leader >= 0 for p in md[name].partitions.values())
               for name in topics.values()):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"topics never got leaders: {sorted(topics.values())}")
        time.sleep(0.2)


def warm_up_transactions(bootstrap: str) -> None:
    """Have the broker create and load its transaction log now (a fresh cluster does it on
    the first transactional producer), so the instances' first commit does not wait for it."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap,
                         "transactional.id": f"demo-warm-up-{uuid.uuid4().hex[:8]}",
                         "logger": _quiet_logger()})
    producer.init_transactions(60)
    producer.begin_transaction()
    producer.commit_transaction(30)


def _quiet_logger() -> Any:
    import logging

    logger = logging.getLogger("examples.airline.demo_cluster.rdkafka")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def committed_offsets(admin: Any, group: str, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p)
                                                   for p in range(partitions)])
    result = admin.list_consumer_group_offsets([request])[group].result(10)
    return {tp.partition: max(tp.offset, 0) for tp in result.topic_partitions}


def end_offsets(bootstrap: str, topic: str, partitions: int,
                isolation: str = "read_uncommitted") -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"demo-{uuid.uuid4()}",
                         "isolation.level": isolation, "enable.auto.commit": False})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
    finally:
        consumer.close()


def read_committed(bootstrap: str, topic: str, partitions: int,
                   timeout: float = 90.0) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """Every record of ``topic`` a read_committed reader sees: (partition, offset, key,
    value). Reads until its position reaches the log end of every partition, which happens
    only once no transaction is left open (an aborted one ends with its abort marker)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"demo-{uuid.uuid4()}",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "enable.partition.eof": False})
    out: list[tuple[int, int, bytes | None, bytes | None]] = []
    try:
        tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
        consumer.assign(tps)
        deadline = time.monotonic() + timeout
        while True:
            for m in consumer.consume(num_messages=5000, timeout=0.5):
                if m.error() is not None:
                    raise RuntimeError(f"reading {topic}: {m.error()}")
                out.append((m.partition() or 0, m.offset() or 0, m.key(), m.value()))
            ends = end_offsets(bootstrap, topic, partitions)
            positions = {tp.partition: tp.offset for tp in consumer.position(
                [TopicPartition(topic, p) for p in range(partitions)])}
            if all(ends[p] == 0 or positions[p] >= ends[p] for p in range(partitions)):
                return out
            if time.monotonic() > deadline:
                raise RuntimeError(f"read_committed reader of {topic} stuck at {positions}, "
                                   f"log ends {ends} (a transaction never ended?)")
    finally:
        consumer.close()


class Replay(threading.Thread):
    """The data file's lines into the input topic (``examples.airline.replay.replay``: the
    file's bytes as they are), keyed by flight, at ``rate`` records/s or as fast as it goes."""

    def __init__(self, bootstrap: str, topic: str, lines: list[str], rate: float) -> None:
        super().__init__(name="replay", daemon=True)
        self.bootstrap, self.topic, self.lines, self.rate = bootstrap, topic, lines, rate
        self.sent = 0
        self.error: BaseException | None = None
        self.started_at = self.done_at = 0.0

    def _progress(self, sent: int) -> None:
        self.sent = sent

    def run(self) -> None:
        from examples.airline.replay import replay

        try:
            self.started_at = time.monotonic()
            replay(self.bootstrap, self.topic, self.lines, rate=self.rate or None,
                   progress=False, key=lambda _i, line: flight_key(key_fields(str(line))).encode(),
                   on_progress=self._progress, progress_every=500)
            self.done_at = time.monotonic()
        except BaseException as exc:
            self.error = exc


# -- the model --------------------------------------------------------------------------------


def model_file(clock: Clock) -> bytes:
    """The trained model, as ``make demo`` has it: ``.cache/airline-model.json`` when it was
    trained on this data file with the demo's settings, else trained now (seconds)."""
    from examples.airline.demo import CACHE, load_or_train

    model, trained = load_or_train(say=clock.say)
    if not trained:
        clock.say(f"model: reusing {CACHE.relative_to(REPO)} ({model.name} {model.version})")
    return model.to_bytes()


# -- the demo ---------------------------------------------------------------------------------


@contextlib.contextmanager
def kafka(settings: Settings, clock: Clock) -> Iterator[tuple[str, Any]]:
    """The bootstrap servers of the given cluster, or of a 3-node one started (and
    stopped) here."""
    if settings.bootstrap_servers:
        yield settings.bootstrap_servers, None
        return
    sys.path.insert(0, str(REPO))
    from tools.kafka_cluster import KafkaCluster, kafka_version

    clock.say(f"starting a 3-node Kafka {kafka_version()} cluster (KRaft, replication 3, "
              f"min ISR 2) ...")
    cluster = KafkaCluster(nodes=3, name="demo-cluster")
    try:
        cluster.start()
        clock.say(f"cluster up in {cluster.start_seconds:.1f}s at {cluster.bootstrap_servers}")
        yield cluster.bootstrap_servers, cluster
    finally:
        pids = dict(cluster.pids)
        cluster.stop(graceful=False)  # the data is thrown away anyway
        from tools.kafka_cluster import pid_alive

        left = [pid for pid in pids.values() if pid_alive(pid)]
        clock.say(f"cluster stopped: {len(pids)} JVMs, "
                  f"{'none left running' if not left else f'STILL RUNNING: {left}'}")


def run(settings: Settings) -> Summary:
    clock = Clock(settings.quiet)
    lines = read_lines(DATA_FILE)
    if settings.records is not None:
        lines = lines[:settings.records]
    total = len(lines)
    suffix = settings.suffix
    topics = {"input": INPUT + suffix, "output": OUTPUT + suffix, "models": MODELS + suffix}
    app_id = APP_ID + suffix
    topics["dead_letter"] = f"{app_id}-dead-letter"
    shutil.rmtree(settings.run_dir, ignore_errors=True)  # no state dirs of an earlier run
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    instances: list[Instance] = []
    with kafka(settings, clock) as (bootstrap, cluster):
        try:
            create_topics(bootstrap, topics, settings)
            clock.say(f"topics: {topics['input']} and {topics['output']} ({settings.partitions} "
                      f"partitions, replication {settings.replication}), {topics['models']} "
                      f"(compacted), {topics['dead_letter']}")
            from fluvial.ml import publish_model

            info = publish_model(bootstrap, topics["models"], model_file(clock),
                                 name=MODEL_NAME, create_topic=False)
            clock.say(f"model {info.name} {info.version} published to {topics['models']}")
            summary = _run_instances(settings, clock, bootstrap, app_id, topics, lines,
                                     instances, info.version)
        finally:
            stopped = []
            for inst in instances:
                if inst.alive():
                    stopped.append((inst.name, inst.stop()))
            left = [i.name for i in instances if i.alive()]
            if instances:
                clock.say(f"instances stopped (SIGTERM): "
                          f"{', '.join(f'{n} exit {rc}' for n, rc in stopped) or 'none running'}"
                          f"{'; STILL RUNNING: ' + ', '.join(left) if left else ''}")
    summary.lines.insert(0, f"== make demo-cluster: {total:,} flights, {settings.instances} "
                            f"instances, one SIGKILLed ==")
    if cluster is not None:
        summary.lines.append("teardown          3 Kafka JVMs and every instance stopped; "
                             "nothing left running")
    return summary


def _wait(what: str, predicate: Callable[[], bool], timeout: float,
          instances: Sequence[Instance], interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        for inst in instances:
            if not inst.alive() and inst.proc.returncode != -signal.SIGKILL:
                raise RuntimeError(f"{inst.name} exited {inst.proc.returncode}:\n{inst.tail()}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {i.name}:\n{i.tail(15)}" for i in instances)
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")
        time.sleep(interval)


def _run_instances(settings: Settings, clock: Clock, bootstrap: str, app_id: str,
                   topics: dict[str, str], lines: list[str], instances: list[Instance],
                   model_version: str) -> Summary:
    total = len(lines)
    parts = settings.partitions
    for i in range(settings.instances):
        instances.append(Instance(i, settings, bootstrap, app_id, topics))
    clock.say(f"started {settings.instances} instances: fluvial run "
              f"examples.airline.service:build -a {app_id} --processing-guarantee exactly_once "
              f"(HTTP ports {', '.join(str(i.port) for i in instances)}; logs in "
              f"{settings.run_dir})")

    def follow() -> None:
        now = clock()
        for inst in instances:
            inst.follow_log(now)

    def balanced() -> bool:
        follow()
        held = [t for inst in instances for t in inst.tasks]
        return len(held) == len(set(held)) == parts and all(i.tasks for i in instances)

    _wait("the group to assign every partition", balanced, 120, instances)
    clock.say("group formed: " + ", ".join(
        f"{i.name} {' '.join(sorted(i.tasks, key=_task_order))}" for i in instances))

    admin = _admin(bootstrap)

    def scored() -> int:
        return sum(committed_offsets(admin, app_id, topics["input"], parts).values())

    replay = Replay(bootstrap, topics["input"], lines, settings.rate)
    replay.start()
    clock.say(f"replaying {total:,} flights into {topics['input']} "
              f"({f'{settings.rate:,.0f}/s' if settings.rate else 'as fast as possible'})")
    victim = instances[settings.victim % len(instances)]
    kill_mark = max(1, int(total * settings.kill_at))
    deadline = time.monotonic() + settings.timeout
    last_print = 0.0
    done = 0
    while True:
        done = scored()
        if replay.error is not None:
            raise RuntimeError(f"replay failed: {replay.error}")
        if clock() - last_print >= 2.0:
            last_print = clock()
            clock.say(f"scored {done:,}/{total:,} (committed); sent {replay.sent:,}; "
                      f"{_tasks_line(instances)}")
        if done >= kill_mark:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {total} scored before the kill point")
        time.sleep(0.1)
    follow()
    victim_tasks = set(victim.tasks)
    before_kill = dict(committed_offsets(admin, app_id, topics["input"], parts))
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(30)
    killed_at = clock()
    scored_at_kill = done
    clock.say(f"SIGKILL {victim.name} (pid {victim.proc.pid}) holding "
              f"{' '.join(sorted(victim_tasks, key=_task_order))}, at {done:,} scored")
    survivors = [i for i in instances if i is not victim]
    victim_parts = {_task_order(t)[1] for t in victim_tasks}

    takeover_at: float | None = None
    resumed_at: float | None = None
    while True:
        follow()
        now = clock()
        held = {t for inst in survivors for t in inst.tasks}
        if takeover_at is None and victim_tasks <= held:
            takeover_at = now
            moved = {t: next(i.name for i in survivors if t in i.tasks) for t in victim_tasks}
            clock.say(f"taken over {takeover_at - killed_at:.1f}s after the kill: " + ", ".join(
                f"{t} -> {moved[t]}" for t in sorted(moved, key=_task_order)))
        offsets = committed_offsets(admin, app_id, topics["input"], parts)
        if resumed_at is None and takeover_at is not None and all(
                offsets[p] > before_kill[p] or offsets[p] >= _sent_to(replay, p, bootstrap,
                                                                      topics["input"], parts)
                for p in victim_parts):
            resumed_at = now
            clock.say(f"the new owners committed past the victim's last commit "
                      f"{resumed_at - killed_at:.1f}s after the kill")
        done = sum(offsets.values())
        if now - last_print >= 2.0:
            last_print = now
            clock.say(f"scored {done:,}/{total:,} (committed); sent {replay.sent:,}; "
                      f"{_tasks_line(instances)}")
        if done >= total and replay.done_at and resumed_at is not None:
            break
        for inst in survivors:
            if not inst.alive():
                raise RuntimeError(f"{inst.name} died ({inst.proc.returncode}):\n{inst.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out: {done} of {total} scored\n" + "\n".join(
                f"--- {i.name}:\n{i.tail(15)}" for i in survivors))
        time.sleep(0.1)
    finished = time.monotonic()
    elapsed = finished - replay.started_at
    clock.say(f"all {total:,} flights committed; {_tasks_line(instances)}")
    follow()
    assert takeover_at is not None and resumed_at is not None
    moved = {t: next(i.name for i in survivors if t in i.tasks) for t in victim_tasks
             if any(t in i.tasks for i in survivors)}
    return _check(settings, clock, bootstrap, topics, lines, model_version, victim.name,
                  victim_tasks, moved, killed_at, takeover_at, resumed_at, elapsed,
                  scored_at_kill, {i.name: set(i.tasks) for i in survivors})


def _sent_to(replay: Replay, partition: int, bootstrap: str, topic: str, parts: int) -> int:
    """The log end of ``partition`` once the replay is done (a victim partition that had
    nothing left to do counts as resumed); before that, infinity."""
    if not replay.done_at:
        return 1 << 62
    return end_offsets(bootstrap, topic, parts)[partition]


def _tasks(tasks: set[str] | list[str]) -> str:
    return " ".join(sorted(tasks, key=_task_order))


def _task_order(task: str) -> tuple[int, int]:
    sub, _, part = task.partition("_")
    return int(sub), int(part)


def _tasks_line(instances: Sequence[Instance]) -> str:
    """Tasks held and records consumed per instance, from each one's /metrics."""
    counts = []
    consumed = 0.0
    for inst in instances:
        number = inst.name.split("-")[1]
        if not inst.alive():
            counts.append(f"{number}:dead")
            continue
        try:
            m = inst.metrics(1.0)
        except Exception:
            counts.append(f"{number}:?")
            continue
        consumed += m.get("fluvial_records_consumed_total", 0.0)
        counts.append(f"{number}:{int(m.get('fluvial_tasks_assigned', 0))}")
    return (f"consumed {consumed:,.0f} by the live instances; tasks per instance "
            f"{' '.join(counts)}")


def _check(settings: Settings, clock: Clock, bootstrap: str, topics: dict[str, str],
           lines: list[str], model_version: str, victim: str, victim_tasks: set[str],
           moved: dict[str, str], killed_at: float, takeover_at: float, resumed_at: float,
           elapsed: float, scored_at_kill: int,
           assignment: dict[str, set[str]]) -> Summary:
    parts = settings.partitions
    total = len(lines)
    clock.say("reading the outputs read_committed (waits for the victim's open transaction "
              "to be aborted) ...")
    in_ends = end_offsets(bootstrap, topics["input"], parts)
    inputs = sum(in_ends.values())
    outputs = read_committed(bootstrap, topics["output"], parts)
    dead = read_committed(bootstrap, topics["dead_letter"], 3)
    expected = {flight_key(key_fields(line)): line for line in lines}
    counts = collections.Counter(k.decode() if k is not None else None for _, _, k, _ in outputs)
    missing = [k for k in expected if k not in counts]
    duplicates = {k: n for k, n in counts.items() if n > 1}
    strangers = [k for k in counts if k not in expected]
    versions: collections.Counter[str] = collections.Counter()
    right = labelled = 0
    for _, _, key, value in outputs:
        if key is None or value is None:
            continue
        out = json.loads(value)
        versions[out.get("model_version")] += 1
        line = expected.get(key.decode())
        label = None if line is None else parse_line(line)[LABEL]
        if label is not None:
            labelled += 1
            right += (out.get("prediction") == "YES") == bool(label)
    ok = (inputs == total and len(outputs) + len(dead) == inputs and not missing
          and not duplicates and not strangers and len(dead) == 0)
    summary = Summary(ok=ok, lines=[], inputs=inputs, outputs=len(outputs),
                      distinct_outputs=len(counts), missing=len(missing),
                      duplicates=sum(n - 1 for n in duplicates.values()),
                      dead_letters=len(dead), takeover_s=takeover_at - killed_at,
                      resumed_s=resumed_at - killed_at, records_per_s=total / elapsed,
                      moved=moved)
    by_owner: dict[str, list[str]] = collections.defaultdict(list)
    for t, owner in moved.items():
        by_owner[owner].append(t)
    took = ", ".join(f"{owner} took {_tasks(ts)}" for owner, ts in sorted(by_owner.items()))
    where = ("3 Kafka nodes (KRaft) started here" if not settings.bootstrap_servers
             else bootstrap)
    seen = ", ".join(f"{v} ({n:,})" for v, n in versions.items())
    lines_out = [
        f"cluster           {where}; topics with {parts} partitions, replication "
        f"{settings.replication}",
        f"instances         {settings.instances} x fluvial run examples.airline.service:build, "
        f"exactly_once, one consumer group",
        f"crash             SIGKILL {victim} at {scored_at_kill:,} flights scored; it held "
        f"{_tasks(victim_tasks)}",
        f"takeover          {took}: assigned {summary.takeover_s:.1f}s after the kill, "
        f"first commit past the victim's {summary.resumed_s:.1f}s after it",
        "group now         " + ", ".join(f"{name} {_tasks(ts)}"
                                          for name, ts in sorted(assignment.items())),
        f"input             {inputs:,} records = {inputs:,} distinct offsets over {parts} "
        f"partitions",
        f"output            {len(outputs):,} predictions read read_committed: {len(counts):,} "
        f"distinct flights, {summary.duplicates} scored twice, {len(missing)} missing, "
        f"{len(strangers)} unknown; {len(dead)} dead-lettered",
        f"exactly once      {'YES: every flight scored exactly once' if ok else 'NO'}",
        f"throughput        {total:,} flights in {elapsed:.1f}s from the first record sent = "
        f"{summary.records_per_s:,.0f} records/s end to end, crash included",
        f"model             published {model_version}; outputs by version: {seen}; accuracy "
        f"{right / max(1, labelled):.3f} against IsDepDelayed on the replayed flights",
    ]
    if not ok:
        lines_out.append(f"missing (first 5): {missing[:5]}; twice (first 5): "
                         f"{list(duplicates)[:5]}; unknown (first 5): {strangers[:5]}")
    summary.lines = lines_out
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m examples.airline.demo_cluster",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=None, help="replay only the first N flights")
    p.add_argument("--instances", type=int, default=5)
    p.add_argument("--rate", type=float, default=0.0,
                   help="replay rate in records/s (default: as fast as possible)")
    p.add_argument("--kill-at", type=float, default=0.3,
                   help="SIGKILL an instance when this share of the flights is scored")
    p.add_argument("--bootstrap-servers", default=None,
                   help="use this cluster instead of starting a 3-node one")
    p.add_argument("--timeout", type=float, default=240.0)
    args = p.parse_args(argv)
    if args.instances < 2:
        p.error("--instances must be at least 2 (one is killed)")
    settings = Settings(bootstrap_servers=args.bootstrap_servers, records=args.records,
                        instances=args.instances, rate=args.rate, kill_at=args.kill_at,
                        timeout=args.timeout,
                        suffix=f"-{uuid.uuid4().hex[:8]}" if args.bootstrap_servers else "")
    # `kill <pid>` of the demo: unwind, so that the instances and the cluster are stopped
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    started = time.monotonic()
    summary = run(settings)
    print()
    print(summary.text())
    print(f"(demo took {time.monotonic() - started:.0f}s)")
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
