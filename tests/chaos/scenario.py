"""The chaos scenario: WordCount on a 3-node cluster while instances and a broker die.

N ``fluvial run`` instances count words of lines from a seeded generator. While the input
flows, a random instance is SIGKILLed every 8-15 s and restarted 2-5 s later (same state
directory: it takes its slot and transactional.id back); one instance is stopped with SIGTERM
instead and restarted; one broker (the KRaft leader, or a follower) is SIGKILLed and restarted.
The output is read as it is committed (read_committed) and checked against the reference
counts of the input: under exactly-once every word's final count equal and its counts
strictly increasing; under at-least-once nothing lost. No instance may exit by itself.

Takeover after a kill -9 is the time until every input and repartition partition's committed
offset moved past where it stood at the kill (or reached the end of what was written): the
victim's tasks are working again somewhere.
"""

from __future__ import annotations

import ast
import json
import random
import re
import signal
import statistics
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from examples.wordcount.app import split_words
from tests.integration.kafka_helpers import KafkaTestBroker
from tests.integration.wordcount_support import Instance

PARTITIONS = 6
MONITOR_EVERY_S = 0.25
_RESTORED = re.compile(r"task \S+ restored (\{[^}]*\})")


@dataclass(frozen=True)
class ChaosPlan:
    lines: int
    kills: int  # instance SIGKILLs (the SIGTERM comes on top)
    instances: int = 3
    guarantee: str = "exactly_once"
    seed: int = 1
    broker_role: str | None = "leader"  # "leader" | "follower" | None: no broker kill
    sigterm: bool = True
    static_membership: bool = False
    standbys: int = 0  # num_standby_replicas of every instance
    librdkafka_debug: str = ""  # librdkafka's ``debug`` contexts for the group consumers
    drain_timeout_s: float = 240.0

    @property
    def feed_seconds(self) -> float:
        """How long the input flows: past the last scheduled kill and its takeover."""
        return self.kills * 11.5 + 25.0


@dataclass
class ChaosResult:
    plan: ChaosPlan
    lines: int = 0
    words: int = 0
    kills: int = 0
    sigterms: int = 0
    broker_restarts: list[str] = field(default_factory=list)
    lost: int = 0  # counts missing (sum over words of reference - final, where below)
    lost_words: int = 0
    extra: int = 0  # counts above the reference
    extra_words: int = 0
    non_monotonic: int = 0  # committed counts of a word that did not strictly increase
    self_exits: list[str] = field(default_factory=list)
    takeovers: list[float] = field(default_factory=list)
    unmeasured_takeovers: int = 0
    longest_stall: float = 0.0  # longest time a partition behind its end made no progress
    idle_kills: int = 0  # victims that held no tasks yet
    replayed: int = 0  # changelog records applied by restores, over every instance
    recoveries: int = 0  # "rebuilding ... from their changelogs" lines in the logs
    seconds: float = 0.0
    events: list[str] = field(default_factory=list)

    def summary(self) -> str:
        p = self.plan
        tk = self.takeovers
        med = f"{statistics.median(tk):.1f}s" if tk else "n/a"
        mx = f"{max(tk):.1f}s" if tk else "n/a"
        return (f"chaos: guarantee={p.guarantee} seed={p.seed} instances={p.instances} "
                f"lines={self.lines} words={self.words} kills={self.kills} "
                f"sigterms={self.sigterms} broker_restarts={len(self.broker_restarts)}"
                f"({','.join(self.broker_restarts)}) lost={self.lost} "
                f"extra={self.extra} non_monotonic={self.non_monotonic} "
                f"self_exits={len(self.self_exits)} takeover_median={med} takeover_max={mx} "
                f"takeovers_measured={len(tk)}/{len(tk) + self.unmeasured_takeovers} "
                f"longest_stall={self.longest_stall:.1f}s "
                f"idle_kills={self.idle_kills} "
                f"changelog_replayed={self.replayed} recoveries={self.recoveries} "
                f"duration={self.seconds:.0f}s")

    def as_json(self) -> str:
        data = {k: v for k, v in self.__dict__.items() if k != "plan"}
        return json.dumps({"plan": self.plan.__dict__, **data})


class LineSource:
    """Lines of 1-10 words from a 300-word vocabulary, skewed like text; reproducible."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._vocabulary = [f"w{i:03d}" for i in range(300)]
        self._weights = [1.0 / (i + 1) ** 0.8 for i in range(300)]
        self.reference: Counter[str] = Counter()

    def batch(self, n: int) -> list[str]:
        lines = []
        for _ in range(n):
            words = self._rng.choices(self._vocabulary, self._weights, k=self._rng.randint(1, 10))
            lines.append(" ".join(words))
        return lines

    def count(self, lines: list[str]) -> None:
        self.reference.update(w for line in lines for w in split_words(line))


class OutputReader(threading.Thread):
    """Reads the output topic as committed, from the start: last count per word, and how
    many counts of a word did not strictly increase."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True, name="chaos-output")
        self.latest: dict[str, int] = {}
        self.non_monotonic = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"chaos-read-{topic}",
                            "isolation.level": "read_committed", "enable.auto.commit": False})
        self._c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                for m in self._c.consume(2000, 0.2):
                    if m.error() is not None:
                        continue  # transient (a broker down); librdkafka retries
                    word, count = m.key().decode(), struct.unpack(">q", m.value())[0]
                    if count <= self.latest.get(word, 0):
                        self.non_monotonic += 1
                    self.latest[word] = count
        except BaseException as exc:
            self.error = exc
        finally:
            self._c.close()


class Feeder(threading.Thread):
    """Produces the lines at a steady pace over ``seconds``; counts only acknowledged ones."""

    def __init__(self, bootstrap: str, topic: str, source: LineSource, lines: int,
                 seconds: float) -> None:
        super().__init__(daemon=True, name="chaos-feed")
        self.topic, self.source, self.total, self.seconds = topic, source, lines, seconds
        self.sent = 0
        self.error: BaseException | None = None
        self._p = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                            "enable.idempotence": True, "linger.ms": 5})

    def run(self) -> None:
        try:
            batch = 250
            pause = self.seconds * batch / self.total
            started = time.monotonic()
            while self.sent < self.total:
                lines = self.source.batch(min(batch, self.total - self.sent))
                for line in lines:
                    self._p.produce(self.topic, line.encode())
                if self._p.flush(120) != 0:
                    raise AssertionError("input not acknowledged within 120 s")
                self.source.count(lines)
                self.sent += len(lines)
                ahead = started + pause * (self.sent / batch) - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)  # pacing the input over the chaos, not synchronisation
        except BaseException as exc:
            self.error = exc


class Monitor(threading.Thread):
    """Polls the group's committed offsets: takeover times after kills; self-exits."""

    def __init__(self, bootstrap: str, app_id: str, topics: list[str],
                 instances: dict[str, Instance], expected_down: set[str]) -> None:
        super().__init__(daemon=True, name="chaos-monitor")
        # read_uncommitted: no require_stable, so a pending transaction never stalls a sample
        conf = {"bootstrap.servers": bootstrap, "group.id": app_id,
                "enable.auto.commit": False, "isolation.level": "read_uncommitted"}
        self._c = Consumer(conf)
        self._at_kill = Consumer(conf)  # the offsets right after a kill, from the chaos thread
        self._parts = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        self.instances, self.expected_down = instances, expected_down
        self.lock = threading.Lock()
        self.committed: dict[tuple[str, int], int] = {}
        self.ends: dict[tuple[str, int], int] = {}
        self.started = time.monotonic()
        # per kill: when, the committed offsets then, the partitions still behind
        self._pending: list[tuple[float, dict[tuple[str, int], int], list[str]]] = []
        self.takeovers: list[float] = []
        # per partition behind its end: since when its committed offset has not moved
        self._stalled_since: dict[tuple[str, int], tuple[float, int]] = {}
        self.longest_stall = 0.0
        self.events: list[str] = []  # "t=12.3s kill i1: takeover 4.1s (last: in[3])"
        self.idle_kills = 0
        self.self_exits: list[str] = []
        self.stop = threading.Event()

    def mark_kill(self, what: str, had_tasks: bool) -> None:
        """Call right after the kill: the offsets read now are the victim's last (its
        partitions move only after the session timeout), not a sample from before it. A
        victim that had opened no tasks yet (restarted a moment before) leaves nothing to
        take over: counted apart, not measured."""
        killed_at = time.monotonic()
        if not had_tasks:
            self.note(f"{what} (it held no tasks yet: no takeover to measure)")
            self.idle_kills += 1
            return
        try:
            got = self._at_kill.committed(self._parts, timeout=10)
            before = {(p.topic, p.partition): p.offset for p in got if p.offset >= 0}
        except Exception:  # a broker is down: the last sample stands in
            before = dict(self.committed)
        with self.lock:
            self._pending.append((killed_at, before, []))
            self.events.append(f"t={killed_at - self.started:.1f}s {what}")

    def note(self, what: str) -> None:
        with self.lock:
            self.events.append(f"t={time.monotonic() - self.started:.1f}s {what}")

    @property
    def unmeasured(self) -> int:
        with self.lock:
            return len(self._pending)

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self._check_exits()
            self.stop.wait(MONITOR_EVERY_S)
        self.sample()  # the drain may end before the last takeover was sampled
        self._c.close()
        self._at_kill.close()

    def sample(self) -> None:
        try:
            got = self._c.committed(self._parts, timeout=5)
        except Exception:  # a broker is down: sample again next time
            return
        ends = dict(self.ends)
        for p in self._parts:
            try:
                ends[(p.topic, p.partition)] = self._c.get_watermark_offsets(p, 5)[1]
            except Exception:  # its leader is down: the last known end stands
                ends.setdefault((p.topic, p.partition), 0)
        now = time.monotonic()
        with self.lock:
            self.committed = {(p.topic, p.partition): p.offset for p in got if p.offset >= 0}
            self.ends = ends
            self._track_stalls(now)
            still = []
            for killed_at, before, behind in self._pending:
                lagging = [f"{k[0][-12:]}[{k[1]}]" for k, off in before.items()
                           if self.committed.get(k, -1) <= off and ends[k] > off + 1]
                if not lagging:
                    self.takeovers.append(now - killed_at)
                    self.events.append(f"t={killed_at - self.started:.1f}s kill: takeover "
                                       f"{now - killed_at:.1f}s (last behind: "
                                       f"{' '.join(behind)})")
                else:
                    still.append((killed_at, before, lagging))
            self._pending = still

    def _track_stalls(self, now: float) -> None:
        """A stall: a partition with records after its committed offset whose offset does
        not move (a takeover, or partitions nobody processes); the longest one counts."""
        for k, end in self.ends.items():
            offset = self.committed.get(k, -1)
            since = self._stalled_since.get(k)
            if end <= max(offset, 0) + 1 or (since is not None and since[1] != offset):
                self._stalled_since.pop(k, None)  # caught up, or moved
            elif since is None:
                self._stalled_since[k] = (now, offset)
            else:
                self.longest_stall = max(self.longest_stall, now - since[0])

    def _check_exits(self) -> None:
        for name, inst in self.instances.items():
            with self.lock:
                if name in self.expected_down:
                    continue
                rc = inst.proc.poll()
                if rc is None:
                    continue
                tail = inst.text()[-1500:]
                self.self_exits.append(f"{name} exited {rc} by itself:\n{tail}")
                inst.restart()  # keep the run going; the result reports the exit


def kraft_leader(logs: dict[int, Path]) -> int | None:
    """The KRaft quorum leader, from the nodes' last completed Raft state transitions."""
    best: tuple[int, int] | None = None  # (epoch, leader)
    for node, path in logs.items():
        last = None
        for line in path.read_text(errors="replace").splitlines():
            if "Completed transition to " in line:
                last = line
        if last is None:
            continue
        epoch = re.search(r"\bepoch=(\d+)", last)
        leader: int | None = None
        if "transition to Leader(" in last:
            leader = node
        elif m := re.search(r"FollowerState\(.*?\bleader=(\d+)", last):
            leader = int(m.group(1))
        if leader is not None and epoch is not None:
            candidate = (int(epoch.group(1)), leader)
            best = candidate if best is None or candidate > best else best
    return best[1] if best else None


def run_chaos(plan: ChaosPlan, kafka: KafkaTestBroker, tmp_path: Path,
              names: Callable[[str], str], started: list[Instance]) -> ChaosResult:
    cluster = kafka.cluster
    assert cluster is not None, "the chaos run kills brokers: it needs a cluster it started"
    rng = random.Random(plan.seed)
    result = ChaosResult(plan)
    source_topic, sink, app_id = names("in"), names("out"), names("app")
    kafka.create_topic(source_topic, partitions=PARTITIONS, replication=3)
    kafka.create_topic(sink, partitions=PARTITIONS, replication=3)
    repartition = f"{app_id}-counts-repartition"
    t0 = time.monotonic()

    instances: dict[str, Instance] = {}
    for i in range(plan.instances):
        name = f"i{i}"
        env = {"FLUVIAL_GROUP_INSTANCE_ID": f"chaos-{name}"} if plan.static_membership else {}
        env["FLUVIAL_NUM_STANDBY_REPLICAS"] = str(plan.standbys)
        if plan.librdkafka_debug:
            env["FLUVIAL_LOG_LEVEL"] = "DEBUG"
            env["FLUVIAL_CONSUMER_CONFIG"] = json.dumps({"debug": plan.librdkafka_debug})
        instances[name] = Instance(name, app_id, kafka.bootstrap_servers, source_topic, sink,
                                   tmp_path, plan.guarantee, env=env)
        started.append(instances[name])
    down: set[str] = set()
    source = LineSource(plan.seed)
    reader = OutputReader(kafka.bootstrap_servers, sink)
    feeder = Feeder(kafka.bootstrap_servers, source_topic, source, plan.lines, plan.feed_seconds)
    monitor = Monitor(kafka.bootstrap_servers, app_id, [source_topic, repartition], instances,
                      down)
    reader.start()
    feeder.start()
    monitor.start()
    try:
        _chaos(plan, rng, cluster, instances, down, monitor, result)
        feeder.join(plan.feed_seconds * 3 + 120)
        assert not feeder.is_alive(), "the input feeder did not finish"
        if feeder.error is not None:
            raise AssertionError(f"feeding the input failed: {feeder.error!r}")
        if not _await_drain(plan, source, reader, monitor):
            result.events += _group_state(kafka.bootstrap_servers, app_id)
    finally:
        monitor.stop.set()
        monitor.join(30)
        reader.stop.set()
        reader.join(30)
        # an instance restarted a moment ago may still be importing: SIGTERM that finds no
        # handler yet kills the process (nothing to commit, but no clean exit either)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                i.has_tasks() or i.proc.poll() is not None for i in instances.values()):
            time.sleep(0.2)
        for name, inst in instances.items():
            with monitor.lock:
                down.add(name)
            if inst.proc.poll() is None:
                inst.proc.send_signal(signal.SIGTERM)
        for name, inst in instances.items():
            try:
                rc = inst.proc.wait(90)
            except Exception:  # reported below; the fixture kills it
                rc = None
            if rc != 0:
                result.self_exits.append(f"{name} did not stop cleanly on SIGTERM (exit {rc}):"
                                         f"\n{inst.text()[-1500:]}")
    result.seconds = time.monotonic() - t0
    result.lines = feeder.sent
    result.words = sum(source.reference.values())
    for word, want in source.reference.items():
        got = reader.latest.get(word, 0)
        if got < want:
            result.lost += want - got
            result.lost_words += 1
        elif got > want:
            result.extra += got - want
            result.extra_words += 1
    result.non_monotonic = reader.non_monotonic
    result.self_exits += monitor.self_exits
    result.takeovers = monitor.takeovers
    result.unmeasured_takeovers = monitor.unmeasured
    result.longest_stall = monitor.longest_stall
    result.idle_kills = monitor.idle_kills
    result.events = monitor.events + result.events  # the group state, if the output stalled
    for inst in instances.values():
        text = inst.text()
        result.replayed += sum(sum(ast.literal_eval(m).values())
                               for m in _RESTORED.findall(text))
        result.recoveries += text.count("from their changelogs and rewinding")
    return result


def _chaos(plan: ChaosPlan, rng: random.Random, cluster: Any, instances: dict[str, Instance],
           down: set[str], monitor: Monitor, result: ChaosResult) -> None:
    """Kill, stop and restart on a random schedule while the input flows."""
    names = sorted(instances)
    sigterm_at = plan.kills // 3 if plan.sigterm else -1
    broker_at = (2 * plan.kills) // 3 if plan.broker_role else -1
    time.sleep(rng.uniform(8, 15))  # the first kill lands on a running group, input flowing
    for k in range(plan.kills):
        victim = rng.choice(names)
        inst = instances[victim]
        with monitor.lock:
            down.add(victim)
        if inst.proc.poll() is not None:  # exited by itself just now: the monitor reports it
            inst.restart()
        had_tasks = inst.has_tasks()
        inst.proc.send_signal(signal.SIGKILL)
        inst.proc.wait(30)
        monitor.mark_kill(f"kill -9 {victim}", had_tasks)
        result.kills += 1
        time.sleep(rng.uniform(2, 5))
        inst.restart()
        with monitor.lock:
            down.discard(victim)
        if k == sigterm_at:  # not the one just restarted: a stop mid-start-up is no test
            other = rng.choice([n for n in names if n != victim])
            _sigterm_and_restart(rng, instances[other], down, monitor, result)
        if k == broker_at:
            _kill_broker(plan, rng, cluster, monitor, result)
        if k < plan.kills - 1:
            time.sleep(rng.uniform(8, 15) - 3.5)  # the restart pause counts in the interval


def _sigterm_and_restart(rng: random.Random, inst: Instance, down: set[str], monitor: Monitor,
                         result: ChaosResult) -> None:
    deadline = time.monotonic() + 60  # a graceful stop of a running instance, not a start-up
    while not inst.has_tasks() and time.monotonic() < deadline:
        time.sleep(0.2)
    with monitor.lock:
        down.add(inst.name)
    monitor.note(f"SIGTERM {inst.name}")
    inst.proc.send_signal(signal.SIGTERM)
    rc = inst.proc.wait(120)
    if rc != 0:
        result.self_exits.append(f"{inst.name} exited {rc} on SIGTERM:\n{inst.text()[-1500:]}")
    result.sigterms += 1
    time.sleep(rng.uniform(2, 5))
    inst.restart()
    with monitor.lock:
        down.discard(inst.name)


def _kill_broker(plan: ChaosPlan, rng: random.Random, cluster: Any, monitor: Monitor,
                 result: ChaosResult) -> None:
    leader = kraft_leader({i: cluster.log_path(i) for i in cluster.node_ids})
    if plan.broker_role == "leader":
        assert leader is not None, "could not find the KRaft leader in the broker logs"
        node = leader
    else:
        node = rng.choice([i for i in cluster.node_ids if i != leader])
    monitor.note(f"kill -9 broker {node} ({plan.broker_role})")
    cluster.kill_node(node)
    time.sleep(rng.uniform(3, 6))  # down for a while, as a crashed machine would be
    cluster.restart_node(node)
    monitor.note(f"broker {node} back")
    result.broker_restarts.append(f"{plan.broker_role}:{node}")


def _await_drain(plan: ChaosPlan, source: LineSource, reader: OutputReader,
                 monitor: Monitor) -> bool:
    """Until the output shows every input word counted (exactly, under exactly-once), or the
    drain timeout (False): the checks then report what is missing."""
    deadline = time.monotonic() + plan.drain_timeout_s
    want = dict(source.reference)
    while time.monotonic() < deadline:
        latest = dict(reader.latest)
        if plan.guarantee == "exactly_once" and latest == want:
            return True
        if plan.guarantee != "exactly_once" and all(latest.get(w, 0) >= n
                                                    for w, n in want.items()):
            return True
        time.sleep(0.5)  # polling the reader's view with a deadline
    return False


def _group_state(bootstrap: str, group_id: str) -> list[str]:
    """The group as its coordinator sees it when the output stalled: each member's epoch-free
    current and target assignment (partitions per topic), to tell a member that never got
    partitions from one whose client never took them."""
    from confluent_kafka.admin import AdminClient

    def parts(assignment: Any) -> str:
        tps = assignment.topic_partitions if assignment is not None else []
        return " ".join(sorted(f"{tp.topic.rsplit('-', 1)[-1]}[{tp.partition}]" for tp in tps))

    try:
        (future,) = AdminClient({"bootstrap.servers": bootstrap}).describe_consumer_groups(
            [group_id], request_timeout=10).values()
        group = future.result(timeout=15)
    except Exception as exc:  # a diagnosis only: the checks report the failure itself
        return [f"group {group_id}: not described ({exc})"]
    lines = [f"group at the stall: state {group.state}, {len(group.members)} member(s)"]
    lines += [f"  member {m.member_id} ({m.client_id}): assigned {parts(m.assignment)}; "
              f"target {parts(getattr(m, 'target_assignment', None))}" for m in group.members]
    return lines
